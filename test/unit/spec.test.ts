import { describe, expect, it } from 'vitest';
import { parseSpecText, refProblem, repoProblem, validateSpec } from '../../controller/model/spec.js';

const good = `apiVersion: cc-ci/v1
kind: Run
metadata:
  name: custom-html-pr42-7f3a9c
spec:
  recipe: custom-html
  source:
    repo: https://git.coopcloud.tech/coop-cloud/custom-html.git
    ref: 4b825dc642cb6eb9a060e54bf8d69288fbee4904
  lane: cold
  tiers: [install, upgrade, backup, restore, custom]
  trigger:
    kind: comment
    forge: { owner: coop-cloud, repo: custom-html, pr: 42, comment: 1234, by: alice }
`;

/** The "billion laughs" of YAML: nine lines that expand to 10^9 nodes when aliases are followed. */
function aliasBomb(): string {
  const lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  for (let i = 1; i < 9; i++) {
    const prev = String.fromCharCode(96 + i);
    const cur = String.fromCharCode(97 + i);
    lines.push(`${cur}: &${cur} [${Array(10).fill(`*${prev}`).join(',')}]`);
  }
  return `${lines.join('\n')}\n`;
}

describe('run spec', () => {
  it('accepts the design document example, in YAML and in JSON, with the same hash', () => {
    const y = parseSpecText(good);
    expect(y.ok).toBe(true);
    if (!y.ok) return;
    expect(y.spec.spec.lane).toBe('cold');
    const j = parseSpecText(JSON.stringify(y.spec));
    expect(j.ok && j.hash).toBe(y.hash);
  });

  it('defaults the lane to cold and leaves tiers unset', () => {
    const r = parseSpecText(good.replace('  lane: cold\n', '').replace('  tiers: [install, upgrade, backup, restore, custom]\n', ''));
    expect(r.ok && r.spec.spec.lane).toBe('cold');
    expect(r.ok && r.spec.spec.tiers).toBeUndefined();
  });

  it.each([
    ['not YAML at all', 'apiVersion: [unclosed', /not valid YAML or JSON/],
    ['an empty file', '   \n', /empty/],
    ['two documents', `${good}---\n${good}`, /one document/],
    ['a missing field', good.replace(/ {2}source:\n.*\n.*\n/, ''), /spec\.source/],
    ['a bad name', good.replace('custom-html-pr42-7f3a9c', 'Bad_Name'), /metadata\.name/],
    ['a too long name', good.replace('custom-html-pr42-7f3a9c', 'a'.repeat(64)), /metadata\.name: must be at most 63/],
    ['a bad recipe', good.replace('recipe: custom-html', 'recipe: "../etc"'), /spec\.recipe/],
    ['a ref that is an option', good.replace(/ref: .*/, 'ref: --upload-pack=evil'), /spec\.source\.ref: must not start with "-"/],
    ['a ref with a range', good.replace(/ref: .*/, 'ref: main..evil'), /spec\.source\.ref: must not contain "\.\."/],
    ['an unknown field', good.replace('  lane: cold', '  lane: cold\n  colour: blue'), /unknown field "colour"/],
    ['an unknown tier', good.replace('custom]', 'custom, lint]'), /spec\.tiers/],
    ['a repeated tier', good.replace('custom]', 'custom, install]'), /must not repeat/],
    ['the wrong kind', good.replace('kind: Run', 'kind: Job'), /kind: must be "Run"/],
    ['a remote helper repo', good.replace(/repo: .*/, 'repo: "ext::sh -c evil"'), /remote helper|URL scheme|absolute path/],
    ['a relative path repo', good.replace(/repo: .*/, 'repo: ./recipes/x'), /absolute path/],
    ['an alias bomb', aliasBomb(), /not a usable YAML document: .*alias/i],
    ['a file far too large for a spec', `${good}#${'x'.repeat(300 * 1024)}\n`, /larger than 256 KiB/],
    ['a scalar document', '42\n', /expected object|Invalid input/i],
  ])('rejects %s with a clear reason', (_what, text, reason) => {
    const r = parseSpecText(text);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(reason);
  });

  it('keeps the name of an otherwise invalid spec so the error can be shown against it', () => {
    const r = parseSpecText(good.replace('recipe: custom-html', 'recipe: 42'));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.name).toBe('custom-html-pr42-7f3a9c');
  });

  it('validates plain objects the same way (the CLI path)', () => {
    expect(validateSpec({ apiVersion: 'cc-ci/v1', kind: 'Run', metadata: { name: 'x' }, spec: {} }).ok).toBe(false);
  });

  it('checks refs and repos like git would', () => {
    expect(refProblem('main')).toBeNull();
    expect(refProblem('1.0.0+1.35.0')).toBeNull();
    expect(refProblem('feature/x')).toBeNull();
    expect(refProblem('a b')).not.toBeNull();
    expect(refProblem('x.lock')).not.toBeNull();
    expect(refProblem('HEAD@{1}')).not.toBeNull();
    expect(repoProblem('/srv/recipes/x')).toBeNull();
    expect(repoProblem('git@git.coopcloud.tech:coop-cloud/x.git')).toBeNull();
    expect(repoProblem('-oProxyCommand=x')).not.toBeNull();
    expect(repoProblem('ftp://x/y')).not.toBeNull();
  });
});
