/**
 * JUnit XML, the evidence format every CI viewer reads (Prow's spyglass, Gitea/Forgejo
 * artifacts, IDEs). One file per tier: a testsuite of the checks the tier made.
 */

export interface JUnitCase {
  name: string;
  classname: string;
  timeSeconds: number;
  /** Present when the case failed. */
  failure?: { message: string; details?: string };
  /** Present when the case could not be evaluated (cc-ci's own or the infrastructure's fault). */
  error?: { message: string; details?: string };
  /** Present when the case did not run (n/a, skipped). */
  skipped?: string;
  systemOut?: string;
}

function esc(s: string): string {
  // XML 1.0 cannot carry most control characters at all: drop them.
  return s
    .replace(/[\x00-\x08\x0b\x0c\x0e-\x1f]/g, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

export function junitXml(suite: string, cases: JUnitCase[], timestamp = new Date()): string {
  const failures = cases.filter((c) => c.failure).length;
  const errors = cases.filter((c) => c.error).length;
  const skipped = cases.filter((c) => c.skipped !== undefined).length;
  const time = cases.reduce((a, c) => a + c.timeSeconds, 0);
  const body = cases
    .map((c) => {
      const inner = [
        c.failure ? `      <failure message="${esc(c.failure.message)}">${esc(c.failure.details ?? c.failure.message)}</failure>` : '',
        c.error ? `      <error message="${esc(c.error.message)}">${esc(c.error.details ?? c.error.message)}</error>` : '',
        c.skipped !== undefined ? `      <skipped message="${esc(c.skipped)}"/>` : '',
        c.systemOut ? `      <system-out>${esc(c.systemOut)}</system-out>` : '',
      ].filter(Boolean);
      const open = `    <testcase name="${esc(c.name)}" classname="${esc(c.classname)}" time="${c.timeSeconds.toFixed(3)}"`;
      return inner.length ? `${open}>\n${inner.join('\n')}\n    </testcase>` : `${open}/>`;
    })
    .join('\n');
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="cc-ci" tests="${cases.length}" failures="${failures}" errors="${errors}" skipped="${skipped}" time="${time.toFixed(3)}">`,
    `  <testsuite name="${esc(suite)}" tests="${cases.length}" failures="${failures}" errors="${errors}" skipped="${skipped}" time="${time.toFixed(3)}" timestamp="${timestamp.toISOString()}">`,
    body,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}
