import { randomUUID } from 'node:crypto';
import { copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, relative } from 'node:path';
import { z } from 'zod';
import { junitXml, type JUnitCase } from '../../controller/model/junit.js';
import type { ProcessResult } from '../../controller/clients/process.js';
import { OutputTail } from '../../controller/clients/output-tail.js';
import { type RunContext, type SubjectApp } from '../context.js';
import { TestFailure } from '../errors.js';
import { subjectApp } from '../deploy.js';
import { describeCustomTests, describeFile, type CustomTestFile, type CustomTests } from '../../recipes/custom-tests.js';
import type { TierRunner } from './runner.js';
import { logProgramLines, scriptEnv } from '../hooks.js';
import { copyEvidence, maskEvidence } from '../evidence-mask.js';
import { runRepoCode, sandboxWorkDir } from '../sandboxed.js';

/**
 * custom: the recipe's own tests against the app install (or upgrade) left serving —
 * functional checks (executables, exit 0 = pass) first, then Playwright specs in Chromium.
 * Where the tests come from and which file wins is recipes/custom-tests.ts; what a maintainer
 * writes is docs/testing-custom.md.
 */

/** One functional check may run this long. */
const FUNCTIONAL_TIMEOUT_MS = 300_000;
/** The whole Playwright run may take this long (the tier's own deadline may end it sooner). */
const PLAYWRIGHT_TIMEOUT_MS = 1_200_000;
/** One Playwright test may take this long unless the spec says otherwise (test.setTimeout). */
const TEST_TIMEOUT_MS = 60_000;
/** The Chromium Playwright drives: the distribution's, since nothing can be downloaded here. */
const CHROMIUM = process.env.CCCI_CHROMIUM || '/usr/bin/chromium';
/** This machine's closed network needs Chromium to stop phoning home. */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
/** A Playwright report larger than this is not read (a hostile spec could write any size). */
const MAX_REPORT_BYTES = 64 * 1024 * 1024;
/** Output of a check or the Playwright runner kept for its evidence file (the log has its own bound). */
const OUTPUT_TAIL_CHARS = 4 * 1024 * 1024;
/** Output kept per functional check in the JUnit file. */
const MAX_OUTPUT_CHARS = 64_000;

interface Outcome {
  kind: 'functional' | 'playwright';
  /** How a person names it: `health.sh`, `notes.spec.ts › the page shows the title`. */
  title: string;
  classname: string;
  name: string;
  seconds: number;
  status: 'passed' | 'failed' | 'skipped';
  /** The first line of the error (failed only) and the whole of it. */
  error?: { line: string; details: string };
  /** Files the test left, relative to the run's directory. */
  evidence: string[];
  output?: string;
}

/** Found once, at prepare, with the rest of the customisation (and stored with it). */
function discover(ctx: RunContext): CustomTests {
  return ctx.workspace!.customization.tests;
}

export const customTier: TierRunner = {
  name: 'custom',

  async applies(ctx: RunContext) {
    const tests = discover(ctx);
    if (tests.specs.length + tests.functional.length > 0) return { applies: true };
    const ignored = tests.ignored.length ? ` (ignored: ${tests.ignored.map((i) => `${describeFile(i, tests.layers)}: ${i.why}`).join('; ')})` : '';
    return { applies: false, reason: `no Playwright specs or functional checks found for ${ctx.spec.spec.recipe}${ignored}` };
  },

  async run(ctx: RunContext) {
    const app = await subjectApp(ctx);
    const tests = discover(ctx);
    ctx.log('info', `custom tests: ${describeCustomTests(tests)}`);

    const evidence = join(ctx.dir, 'evidence', 'custom');
    // A retried attempt starts its evidence afresh.
    rmSync(evidence, { recursive: true, force: true });
    rmSync(join(ctx.dir, 'evidence', 'junit-custom.xml'), { force: true });
    mkdirSync(evidence, { recursive: true });
    const env = scriptEnv(ctx, app);

    const outcomes: Outcome[] = [];
    try {
      for (const f of tests.functional) outcomes.push(await runFunctional(ctx, f, tests, app, env, evidence));
      if (tests.specs.length > 0) outcomes.push(...(await runPlaywright(ctx, tests, app, env, evidence)));
    } finally {
      // Whatever the tests left, finished or stopped, is served only once masked (docs/security.md).
      const { withheld } = maskEvidence(evidence, ctx.redactor);
      for (const file of withheld) ctx.log('warn', `evidence ${relative(ctx.dir, file)} held a secret of the run and is withheld`);
    }

    writeFileSync(join(ctx.dir, 'evidence', 'junit-custom.xml'), ctx.redactor.apply(junitXml('custom', outcomes.map(toJUnit))));
    const failed = outcomes.filter((o) => o.status === 'failed');
    if (failed.length > 0) throw new TestFailure(failureReason(ctx, outcomes, failed));
    return { reason: passReason(outcomes) };
  },
};

// ---------------------------------------------------------------------------------------------
// Functional checks

async function runFunctional(
  ctx: RunContext,
  f: CustomTestFile,
  tests: CustomTests,
  app: SubjectApp,
  env: Record<string, string>,
  evidence: string,
): Promise<Outcome> {
  const dir = join(evidence, 'functional');
  mkdirSync(dir, { recursive: true });
  const lines = new OutputTail(OUTPUT_TAIL_CHARS);
  let result: ProcessResult | undefined;
  const key = `functional-${f.name}`;
  const ownEvidence = join(sandboxWorkDir(ctx, key), 'evidence');
  try {
    await ctx.step(
      'functional check',
      async () => {
        result = await runRepoCode(ctx, {
          key,
          cmd: f.path,
          args: [],
          timeoutMs: FUNCTIONAL_TIMEOUT_MS,
          env: { ...env, EVIDENCE_DIR: ownEvidence },
          readOnly: [dirname(f.path)],
          dirs: ['evidence'],
          app,
          onLines: (stream, batch) => {
            const kept = logProgramLines(ctx, stream, batch, `  ${f.name}: `);
            lines.push(kept.map((line) => `${stream === 'err' ? '! ' : ''}${line}`));
          },
        });
        ctx.throwIfCancelled();
        const problem = functionalProblem(result);
        if (problem) throw new TestFailure(problem);
      },
      describeFile(f, tests.layers),
    );
  } catch (e) {
    if (!(e instanceof TestFailure)) throw e;
  } finally {
    copyEvidence(ownEvidence, dir);
  }
  const r = result!;
  const output = ctx.redactor.apply(lines.text());
  const logFile = join(dir, `${f.name}.log`);
  writeFileSync(logFile, `# ${describeFile(f, tests.layers)}: ${r.exitCode === 0 ? 'passed' : 'failed'} in ${(r.durationMs / 1000).toFixed(1)}s\n${output}\n`);
  const problem = functionalProblem(r);
  ctx.log(problem ? 'error' : 'info', `functional check ${f.name}: ${problem ? `FAIL — ${problem}` : 'pass'}`);
  return {
    kind: 'functional',
    title: f.name,
    classname: 'functional',
    name: f.name,
    seconds: r.durationMs / 1000,
    status: problem ? 'failed' : 'passed',
    ...(problem ? { error: { line: problem, details: output || problem } } : {}),
    evidence: [relative(ctx.dir, logFile)],
    output: output.length > MAX_OUTPUT_CHARS ? `…${output.slice(-MAX_OUTPUT_CHARS)}` : output,
  };
}

/** Why a check failed, or null: how it ended and the last line it wrote to stderr (else stdout). */
function functionalProblem(r: ProcessResult): string | null {
  if (r.spawnError) return `could not start: ${r.spawnError}`;
  if (r.timedOut) return `did not finish within ${FUNCTIONAL_TIMEOUT_MS / 1000}s and was killed`;
  if (r.exitCode === 0) return null;
  const last = (text: string) =>
    text
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .pop();
  const line = last(r.stderr) ?? last(r.stdout);
  const how = r.signal ? `killed by ${r.signal}` : `exit ${r.exitCode}`;
  return `${how}${line ? `: ${line}` : ''}`;
}

// ---------------------------------------------------------------------------------------------
// Playwright

/** cc-ci's own Playwright Test: its CLI, and the node_modules directory it is installed in. */
export function playwrightInstall(): { cli: string; nodeModules: string } {
  const require = createRequire(import.meta.url);
  const pkgDir = dirname(realpathSync(require.resolve('@playwright/test/package.json')));
  // <node_modules>/@playwright/test
  return { cli: join(pkgDir, 'cli.js'), nodeModules: dirname(dirname(pkgDir)) };
}

/**
 * The config cc-ci writes for a run. Specs are copied into `<run>/custom/specs/`, next to a
 * package.json (CommonJS, whatever the directories above say) and a node_modules link to
 * cc-ci's own, so `import { test, expect } from '@playwright/test'` in a spec from anywhere
 * loads the very copy the runner is — NODE_PATH says the same for Playwright's CJS loader.
 */
export function playwrightConfig(o: { specsDir: string; outputDir: string; evidence: string; baseUrl: string; marker: string }): Record<string, unknown> {
  return {
    testDir: o.specsDir,
    testMatch: ['**/*.spec.ts', '**/*.spec.js'],
    outputDir: o.outputDir,
    timeout: TEST_TIMEOUT_MS,
    // Ends the run itself, with its reports written, before cc-ci would have to kill it.
    globalTimeout: PLAYWRIGHT_TIMEOUT_MS - 30_000,
    workers: 1,
    fullyParallel: false,
    // A failure is never retried silently, and a stray test.only must not hide the others.
    retries: 0,
    forbidOnly: true,
    preserveOutput: 'failures-only',
    reportSlowTests: null,
    reporter: [
      ['list'],
      ['junit', { outputFile: join(o.evidence, 'playwright-junit.xml') }],
      ['json', { outputFile: join(o.evidence, 'playwright-report.json') }],
    ],
    use: {
      baseURL: o.baseUrl,
      browserName: 'chromium',
      headless: true,
      // Behind Traefik the test apps have no real certificate.
      ignoreHTTPSErrors: true,
      screenshot: 'only-on-failure',
      trace: 'retain-on-failure',
      video: 'off',
      // The marker lets cc-ci find this run's browser should it outlive the runner.
      launchOptions: { executablePath: CHROMIUM, args: [...CHROMIUM_ARGS, o.marker] },
    },
  };
}

async function runPlaywright(ctx: RunContext, tests: CustomTests, app: SubjectApp, env: Record<string, string>, evidence: string): Promise<Outcome[]> {
  if (!existsSync(CHROMIUM)) {
    // Not the recipe's fault: an infrastructure error, not a failed tier.
    throw new Error(`Playwright specs found but Chromium is not installed at ${CHROMIUM} (set CCCI_CHROMIUM, or install the chromium package)`);
  }
  const pw = playwrightInstall();
  const key = 'playwright';
  const work = sandboxWorkDir(ctx, key);
  const specsDir = join(work, 'specs');
  const reports = join(work, 'reports');
  const outputDir = join(work, 'out');
  const marker = `--ccci-playwright=${randomUUID()}`;
  const config = join(work, 'playwright.config.cjs');
  // What the runner needs, written by cc-ci into the sandbox's work directory (read-only to it).
  const prepare = (): void => {
    mkdirSync(specsDir, { recursive: true });
    for (const f of [...tests.specs, ...tests.support]) copyFileSync(f.path, join(specsDir, f.name));
    writeFileSync(join(work, 'package.json'), `${JSON.stringify({ private: true, type: 'commonjs' }, null, 2)}\n`);
    symlinkSync(pw.nodeModules, join(work, 'node_modules'), 'dir');
    writeFileSync(
      config,
      `// Written by cc-ci for run ${ctx.name}; see docs/testing-custom.md.\nmodule.exports = ${JSON.stringify(
        playwrightConfig({ specsDir, outputDir, evidence: reports, baseUrl: app.baseUrl, marker }),
        null,
        2,
      )};\n`,
    );
  };

  const lines = new OutputTail(OUTPUT_TAIL_CHARS);
  let result: ProcessResult | undefined;
  try {
    await ctx.step(
      'playwright test',
      async () => {
        result = await runRepoCode(ctx, {
          key,
          cmd: process.execPath,
          args: [pw.cli, 'test', '--config', config],
          timeoutMs: PLAYWRIGHT_TIMEOUT_MS,
          cwd: work,
          prepare,
          dirs: ['out', 'reports'],
          readOnly: [],
          app,
          env: {
            ...env,
            NODE_PATH: pw.nodeModules,
            FORCE_COLOR: '0',
            CI: '1',
            PLAYWRIGHT_HTML_OPEN: 'never',
          },
          onLines: (stream, batch) => {
            lines.push(batch);
            ctx.logLines(
              stream,
              batch.filter((line) => line.trim()).map((line) => `  ${stripAnsi(line)}`),
            );
          },
        });
        ctx.throwIfCancelled();
        if (result.exitCode !== 0) throw new TestFailure(`playwright test ended with ${result.timedOut ? 'a timeout' : `exit ${result.exitCode}`}`);
      },
      `${tests.specs.length} spec file(s) against ${app.baseUrl}, sandboxed`,
    );
  } catch (e) {
    if (!(e instanceof TestFailure)) throw e;
  } finally {
    // The link into cc-ci's own node_modules is only for the runner: gone once it has run.
    rmSync(join(work, 'node_modules'), { force: true });
    killMarked(marker);
    // The evidence leaves the sandbox: screenshots and traces into evidence/, the reports with
    // their attachment paths pointing there (masked with the rest at the end of the tier).
    copyEvidence(outputDir, join(evidence, 'playwright'));
    for (const name of ['playwright-junit.xml', 'playwright-report.json']) {
      const from = join(reports, name);
      const st = lstatSync(from, { throwIfNoEntry: false });
      if (!st?.isFile() || st.size > MAX_REPORT_BYTES) continue;
      writeFileSync(join(evidence, name), readFileSync(from, 'utf8').split(outputDir).join(join(evidence, 'playwright')));
    }
  }
  const r = result!;
  writeFileSync(join(evidence, 'playwright-output.txt'), `${ctx.redactor.apply(stripAnsi(lines.text()))}\n`);
  return playwrightOutcomes(ctx, r, join(evidence, 'playwright-report.json'), specsDir);
}

/**
 * Playwright launches Chromium in a process group of its own; the runner closes it when it is
 * stopped, but if the runner had to be killed outright the browser would outlive it. Finds
 * processes carrying this run's marker argument and kills their group (Linux /proc; elsewhere
 * nothing to do).
 */
function killMarked(marker: string): void {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return;
  }
  for (const p of pids) {
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      if (!argv.includes(marker)) continue;
      const pid = Number(p);
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const pgid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
      process.kill(pgid === pid ? -pid : pid, 'SIGKILL');
    } catch {
      /* gone, or not ours to read */
    }
  }
}

// The part of Playwright's JSON report cc-ci reads.
const jsonError = z.object({ message: z.string().optional(), stack: z.string().optional() });
const jsonResult = z.object({
  status: z.string().optional(),
  duration: z.number().default(0),
  error: jsonError.optional(),
  errors: z.array(jsonError).default([]),
  errorLocation: z.object({ file: z.string(), line: z.number() }).optional(),
  attachments: z.array(z.object({ name: z.string(), path: z.string().optional(), contentType: z.string() })).default([]),
});
const jsonSpec = z.object({
  title: z.string(),
  file: z.string().optional(),
  tests: z.array(z.object({ status: z.string(), results: z.array(jsonResult).default([]) })).default([]),
});
interface JsonSuite {
  title: string;
  file?: string | undefined;
  specs: z.infer<typeof jsonSpec>[];
  suites?: JsonSuite[] | undefined;
}
const jsonSuite: z.ZodType<JsonSuite> = z.lazy(() =>
  z.object({ title: z.string(), file: z.string().optional(), specs: z.array(jsonSpec).default([]), suites: z.array(jsonSuite).optional() }),
);
const jsonReport = z.object({ suites: z.array(jsonSuite).default([]), errors: z.array(jsonError).default([]) });

function playwrightOutcomes(ctx: RunContext, r: ProcessResult, reportFile: string, specsDir: string): Outcome[] {
  let report: z.infer<typeof jsonReport> | null;
  try {
    report = jsonReport.parse(JSON.parse(readFileSync(reportFile, 'utf8')));
  } catch {
    report = null;
  }
  const outcomes: Outcome[] = [];
  const walk = (suite: JsonSuite, path: string[]) => {
    for (const spec of suite.specs) {
      for (const t of spec.tests) {
        const res = t.results[t.results.length - 1];
        const titles = [...path, spec.title];
        const status = t.status === 'skipped' ? 'skipped' : t.status === 'expected' || t.status === 'flaky' ? 'passed' : 'failed';
        const err = res?.error ?? res?.errors[0];
        const message = stripAnsi(err?.message ?? err?.stack ?? `status ${res?.status ?? t.status}`);
        const at = res?.errorLocation ? ` (${relative(specsDir, res.errorLocation.file)}:${res.errorLocation.line})` : '';
        const files = (res?.attachments ?? []).filter((a) => a.path && existsSync(a.path)).map((a) => relative(ctx.dir, a.path!));
        outcomes.push({
          kind: 'playwright',
          title: titles.join(' › '),
          classname: `playwright.${titles[0] ?? 'spec'}`,
          name: titles.slice(1).join(' › '),
          seconds: (res?.duration ?? 0) / 1000,
          status,
          ...(status === 'failed' ? { error: { line: `${errorSummary(message)}${at}`, details: stripAnsi(err?.stack ?? message) } } : {}),
          evidence: files,
        });
      }
    }
    for (const s of suite.suites ?? []) walk(s, [...path, s.title]);
  };
  for (const s of report?.suites ?? []) walk(s, [s.title || basename(s.file ?? 'spec')]);

  // Errors outside any test: a spec that does not compile, an import that does not resolve,
  // no tests at all, the global timeout — or no report because the runner itself failed.
  const general = (report?.errors ?? []).map((e) => stripAnsi(e.message ?? e.stack ?? 'error'));
  if (!report && r.exitCode !== 0) {
    const last = stripAnsi(r.stderr || r.stdout)
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
    general.push(
      r.timedOut
        ? `did not finish within ${PLAYWRIGHT_TIMEOUT_MS / 1000}s and was killed`
        : (last.find((l) => /error/i.test(l)) ?? last.pop() ?? `exit ${r.exitCode}`),
    );
  }
  for (const [i, message] of general.entries()) {
    outcomes.push({
      kind: 'playwright',
      title: 'Playwright run',
      classname: 'playwright',
      name: general.length > 1 ? `run error ${i + 1}` : 'run error',
      seconds: 0,
      status: 'failed',
      error: { line: firstLine(message), details: message },
      evidence: [],
    });
  }
  if (outcomes.length === 0 && r.exitCode !== 0) {
    outcomes.push({
      kind: 'playwright',
      title: 'Playwright run',
      classname: 'playwright',
      name: 'run error',
      seconds: r.durationMs / 1000,
      status: 'failed',
      error: { line: `playwright test ended with exit ${r.exitCode} and reported no test`, details: stripAnsi(r.stdout) },
      evidence: [],
    });
  }
  return outcomes;
}

// ---------------------------------------------------------------------------------------------
// Verdicts

function toJUnit(o: Outcome): JUnitCase {
  const c: JUnitCase = { name: o.name || o.title, classname: o.classname, timeSeconds: o.seconds };
  if (o.status === 'failed') c.failure = { message: o.error?.line ?? 'failed', details: o.error?.details ?? '' };
  if (o.status === 'skipped') c.skipped = 'skipped by the spec';
  const out = [o.evidence.length ? `evidence: ${o.evidence.join(', ')}` : '', o.output ?? ''].filter(Boolean).join('\n');
  if (out) c.systemOut = out;
  return c;
}

function count(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}

function passReason(outcomes: Outcome[]): string {
  const passed = (k: Outcome['kind']) => outcomes.filter((o) => o.kind === k && o.status === 'passed').length;
  const parts: string[] = [];
  const pw = passed('playwright');
  const fn = passed('functional');
  if (pw > 0 || outcomes.some((o) => o.kind === 'playwright')) parts.push(count(pw, 'Playwright test'));
  if (fn > 0) parts.push(count(fn, 'functional check'));
  const skipped = outcomes.filter((o) => o.status === 'skipped').length;
  return `${parts.join(' and ')} passed${skipped ? `; ${skipped} skipped` : ''}`;
}

function failureReason(ctx: RunContext, outcomes: Outcome[], failed: Outcome[]): string {
  const named = failed
    .slice(0, 3)
    .map((o) => `${o.kind === 'playwright' ? 'Playwright test' : 'functional check'} "${o.title}" failed: ${o.error?.line ?? 'failed'}`);
  if (failed.length > 3) named.push(`and ${failed.length - 3} more`);
  const files = failed.flatMap((o) => o.evidence);
  const shot = files.find((f) => f.endsWith('.png'));
  const trace = files.find((f) => f.endsWith('.zip'));
  const pointers = [shot ? `screenshot ${shot}` : '', trace ? `trace ${trace} (npx playwright show-trace)` : ''].filter(Boolean);
  const evidenceDir = relative(ctx.dir, join(ctx.dir, 'evidence', 'custom'));
  return (
    `${failed.length} of ${outcomes.length} custom test(s) failed: ${named.join('; ')}. ` +
    `Evidence in ${evidenceDir}/${pointers.length ? `: ${pointers.join(', ')}` : ''}`
  );
}

/** The first line of a Playwright error, with what an expect said it looked for and found:
 *  `Error: expect(locator).toBeVisible() failed; Locator: locator('#x'); Expected: visible; Error: element(s) not found`. */
function errorSummary(message: string): string {
  const lines = message
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const first = lines[0] ?? message;
  const cut = lines.findIndex((l) => /^Call log:/.test(l));
  const detail = (cut >= 0 ? lines.slice(1, cut) : lines.slice(1, 8)).filter((l) => /^(Locator|Expected|Received|Error):/.test(l));
  return [first, ...detail].join('; ').slice(0, 400);
}

function firstLine(text: string): string {
  return (
    text
      .split('\n')
      .map((l) => l.trim())
      .find(Boolean) ?? text
  ).slice(0, 300);
}

function stripAnsi(text: string): string {
  return text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
}
