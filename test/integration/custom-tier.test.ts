import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecipeRepo } from '../../fixtures/recipe-repo.js';
import { playwrightConfig, playwrightInstall } from '../../reconcilers/tiers/custom.js';
import { describeCustomTests, discoverCustomTests } from '../../recipes/custom-tests.js';
import {
  CLI,
  ROOT,
  anyTestStacks,
  cli,
  ensureSwarm,
  forceRemoveStacks,
  getRunsJson,
  makeTestEnv,
  nothingOfRun,
  recipeRepo,
  runDirOf,
  runLeftovers,
  waitFor,
  type TestEnv,
} from '../support/harness.js';

/**
 * The custom tier: the recipe's own Playwright specs and functional checks, found in three
 * layers, run against the app install left serving — in real Chromium, on the real swarm,
 * through the real CLI.
 */

// ---------------------------------------------------------------------------------------------
// Discovery and precedence (no docker)

function put(path: string, content: string, mode = 0o644): void {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, content);
  chmodSync(path, mode);
}

describe('custom test discovery', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ccci-custom-discovery-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('finds nothing when no layer has tests', () => {
    const recipeDir = join(dir, 'empty-recipe');
    mkdirSync(recipeDir, { recursive: true });
    const t = discoverCustomTests({ recipe: 'nothing', recipeDir, bundledDir: join(dir, 'no-bundled') });
    expect(t.specs).toEqual([]);
    expect(t.functional).toEqual([]);
    expect(describeCustomTests(t)).toBe('nothing');
    expect(t.layers.map((l) => l.source)).toEqual(['recipe-repo', 'bundled']);
  });

  it('layers recipe repo < bundled < operator: same names replace, different names add up', () => {
    const recipeDir = join(dir, 'r1', 'repo');
    const bundled = join(dir, 'r1', 'bundled');
    const operator = join(dir, 'r1', 'operator');
    put(join(recipeDir, '.cc-ci', 'playwright', 'own.spec.ts'), '// own');
    put(join(recipeDir, '.cc-ci', 'playwright', 'shared.spec.ts'), '// repo shared');
    put(join(recipeDir, '.cc-ci', 'playwright', 'helpers.ts'), '// helper');
    put(join(recipeDir, '.cc-ci', 'playwright', '.gitkeep'), '');
    put(join(recipeDir, '.cc-ci', 'functional', 'check.sh'), '#!/bin/sh\n', 0o755);
    put(join(recipeDir, '.cc-ci', 'functional', 'README.md'), 'not a check');
    put(join(bundled, 'app', 'playwright', 'shared.spec.ts'), '// bundled shared');
    put(join(bundled, 'app', 'functional', 'check.sh'), '#!/bin/sh\n', 0o755);
    put(join(bundled, 'other', 'functional', 'not-this-recipe.sh'), '#!/bin/sh\n', 0o755);
    put(join(operator, 'app', 'functional', 'check.sh'), '#!/bin/sh\n', 0o755);
    put(join(operator, 'app', 'functional', 'extra.sh'), '#!/bin/sh\n', 0o755);
    mkdirSync(join(operator, 'app', 'functional', 'subdir'), { recursive: true });

    const t = discoverCustomTests({ recipe: 'app', recipeDir, bundledDir: bundled, operatorDir: operator });
    expect(t.specs.map((f) => [f.name, f.source, f.path])).toEqual([
      ['own.spec.ts', 'recipe-repo', join(recipeDir, '.cc-ci', 'playwright', 'own.spec.ts')],
      ['shared.spec.ts', 'bundled', join(bundled, 'app', 'playwright', 'shared.spec.ts')],
    ]);
    expect(t.support.map((f) => [f.name, f.source])).toEqual([['helpers.ts', 'recipe-repo']]);
    expect(t.functional.map((f) => [f.name, f.source])).toEqual([
      ['check.sh', 'operator'],
      ['extra.sh', 'operator'],
    ]);
    expect(t.replaced.map((r) => [relative(dir, r.path), r.source, r.by])).toEqual([
      ['r1/repo/.cc-ci/playwright/shared.spec.ts', 'recipe-repo', 'bundled'],
      ['r1/repo/.cc-ci/functional/check.sh', 'recipe-repo', 'bundled'],
      ['r1/bundled/app/functional/check.sh', 'bundled', 'operator'],
    ]);
    const ignored = Object.fromEntries(t.ignored.map((i) => [relative(dir, i.path), i.why]));
    expect(ignored['r1/repo/.cc-ci/functional/README.md']).toMatch(/not executable/);
    expect(ignored['r1/operator/app/functional/subdir']).toMatch(/a directory/);
    expect(Object.keys(ignored)).toHaveLength(2);
    const summary = describeCustomTests(t);
    expect(summary).toContain('Playwright: .cc-ci/playwright/own.spec.ts (recipe-repo), playwright/shared.spec.ts (bundled)');
    expect(summary).toContain('functional: functional/check.sh (operator), functional/extra.sh (operator)');
  });

  it('ignores a link in the recipe repository that leads out of it, and a non-executable check alone is no test', () => {
    const recipeDir = join(dir, 'r2', 'repo');
    put(join(dir, 'r2', 'outside.spec.ts'), '// outside');
    mkdirSync(join(recipeDir, '.cc-ci', 'playwright'), { recursive: true });
    symlinkSync(join(dir, 'r2', 'outside.spec.ts'), join(recipeDir, '.cc-ci', 'playwright', 'escape.spec.ts'));
    put(join(recipeDir, '.cc-ci', 'functional', 'check.sh'), '#!/bin/sh\n', 0o644);
    const t = discoverCustomTests({ recipe: 'app', recipeDir, bundledDir: join(dir, 'r2', 'none') });
    expect(t.specs).toEqual([]);
    expect(t.functional).toEqual([]);
    expect(t.ignored.map((i) => i.why)).toEqual([
      'a link that leaves the recipe repository',
      'not executable (a functional check must be an executable file with a #! line: chmod +x, and commit the mode)',
    ]);
  });

  it('finds the bundled tests in cc-ci itself: webnotes has a spec and a check, plainpage a check', () => {
    const w = discoverCustomTests({ recipe: 'webnotes' });
    expect(w.specs.map((f) => [f.name, f.source])).toEqual([['notes.spec.ts', 'bundled']]);
    expect(w.functional.map((f) => [f.name, f.source])).toEqual([['health.sh', 'bundled']]);
    expect(statSync(w.functional[0]!.path).mode & 0o111).not.toBe(0);
    const p = discoverCustomTests({ recipe: 'plainpage' });
    expect(p.specs).toEqual([]);
    expect(p.functional.map((f) => [f.name, f.source])).toEqual([['page.sh', 'bundled']]);
    expect(statSync(p.functional[0]!.path).mode & 0o111).not.toBe(0);
  });

  it('reads the recipe repository layer from a copy when one is given, links checked against the copy', () => {
    const copy = join(dir, 'r3', 'copy');
    put(join(copy, 'functional', 'check.sh'), '#!/bin/sh\n', 0o755);
    put(join(dir, 'r3', 'outside.sh'), '#!/bin/sh\n', 0o755);
    symlinkSync(join(dir, 'r3', 'outside.sh'), join(copy, 'functional', 'escape.sh'));
    const t = discoverCustomTests({
      recipe: 'app',
      recipeDir: join(dir, 'r3', 'moved-on'),
      recipeLayer: { dir: copy, root: copy },
      bundledDir: join(dir, 'r3', 'none'),
    });
    expect(t.layers[0]).toEqual({ source: 'recipe-repo', dir: copy });
    expect(t.functional.map((f) => [f.name, f.path])).toEqual([['check.sh', join(copy, 'functional', 'check.sh')]]);
    expect(t.ignored.map((i) => i.why)).toEqual(['a link that leaves the recipe repository']);
    expect(describeCustomTests(t)).toContain('functional: .cc-ci/functional/check.sh (recipe-repo)');
  });

  it("resolves cc-ci's own Playwright Test and writes a config with the closed-network Chromium flags", () => {
    const pw = playwrightInstall();
    expect(pw.cli).toBe(join(ROOT, 'node_modules', '@playwright', 'test', 'cli.js'));
    expect(pw.nodeModules).toBe(join(ROOT, 'node_modules'));
    const c = playwrightConfig({ specsDir: '/s', outputDir: '/o', evidence: '/e', baseUrl: 'http://127.0.0.1:1', marker: '--m' });
    expect(c).toMatchObject({ workers: 1, retries: 0, outputDir: '/o', testDir: '/s' });
    const use = c.use as Record<string, unknown>;
    expect(use).toMatchObject({ baseURL: 'http://127.0.0.1:1', ignoreHTTPSErrors: true, screenshot: 'only-on-failure', trace: 'retain-on-failure' });
    expect(use.extraHTTPHeaders).toBeUndefined();
    expect(use.launchOptions).toEqual({
      executablePath: '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--m',
      ],
    });
    expect(c.reporter).toContainEqual(['junit', { outputFile: '/e/playwright-junit.xml' }]);
  });
});

// ---------------------------------------------------------------------------------------------
// On the real swarm

interface JsonResult {
  name: string;
  result: string;
  reason: string;
  tiers: Record<string, { result: string; reason: string | null; durationMs: number | null }>;
  domains: string[];
}

describe('the custom tier on the real swarm', () => {
  let t: TestEnv;
  let webnotes: RecipeRepo;

  beforeAll(async () => {
    await ensureSwarm();
    webnotes = await recipeRepo('webnotes');
    t = await makeTestEnv({ portRange: [21300, 21399], deploySeconds: 40, httpSeconds: 20 });
  });

  afterAll(async () => {
    // Last resort after a failed test: remove only the stacks of this file's own runs (other
    // test files may be using the swarm at the same time).
    if (t) {
      const ours = (await getRunsJson(t).catch(() => ({ runs: [] }))).runs.flatMap((r) => r.domains).map((d) => d.replace(/\./g, '_').slice(0, 45));
      await forceRemoveStacks((await anyTestStacks()).filter((s) => ours.includes(s)));
    }
    t?.cleanup();
  });

  async function run(recipe: string, repo: string, ref: string) {
    const r = await cli(t, ['run', recipe, '--repo', repo, '--ref', ref, '--tiers', 'install,custom', '--json']);
    let json: JsonResult | null = null;
    try {
      json = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as JsonResult;
    } catch {
      /* asserted below */
    }
    expect(json, `stdout: ${r.stdout}\nstderr: ${r.stderr.slice(-4000)}`).not.toBeNull();
    return { ...r, json: json! };
  }

  async function expectNothingLeft(json: JsonResult) {
    expect(json.domains.length).toBeGreaterThan(0);
    expect(await runLeftovers(t, json.name, json.domains)).toEqual(nothingOfRun(json.domains));
    const dir = runDirOf(t, json.name);
    // The link to cc-ci's node_modules is gone once Playwright has run.
    expect(existsSync(join(dir, 'sandbox', 'playwright', 'node_modules'))).toBe(false);
    // The secrets the run masked are forgotten with its apps.
    expect(existsSync(join(dir, 'masks'))).toBe(false);
  }

  interface StoredFile {
    name: string;
    path: string;
    source: string;
  }

  function storedTests(json: JsonResult): { specs: StoredFile[]; support: StoredFile[]; functional: StoredFile[] } {
    const stored = JSON.parse(readFileSync(join(runDirOf(t, json.name), 'result.json'), 'utf8')) as {
      customization: { tests: { specs: StoredFile[]; support: StoredFile[]; functional: StoredFile[] } };
    };
    return stored.customization.tests;
  }

  function junit(json: JsonResult): string {
    return readFileSync(join(runDirOf(t, json.name), 'evidence', 'junit-custom.xml'), 'utf8');
  }

  function log(json: JsonResult): string {
    return readFileSync(join(runDirOf(t, json.name), 'log.txt'), 'utf8');
  }

  it('passes on main: the bundled Playwright specs and functional check, listed in the JUnit file', async () => {
    const r = await run('webnotes', webnotes.path, 'main');
    expect(r.exitCode, r.stderr.slice(-4000)).toBe(0);
    const { json } = r;
    expect(json.result).toBe('passed');
    expect(json.tiers.install?.result).toBe('pass');
    expect(json.tiers.custom?.result).toBe('pass');
    expect(json.tiers.custom?.reason).toBe('2 Playwright tests and 1 functional check passed');

    const xml = junit(json);
    expect(xml).toMatch(/<testsuite name="custom" tests="3" failures="0" errors="0" skipped="0"/);
    expect(xml).toMatch(/<testcase name="the page shows the notes title" classname="playwright\.notes\.spec\.ts"/);
    expect(xml).toMatch(/<testcase name="a note written through the API reads back, also in the browser" classname="playwright\.notes\.spec\.ts"/);
    expect(xml).toMatch(/<testcase name="health\.sh" classname="functional"/);
    expect(xml).not.toContain('<failure');

    const evidence = join(runDirOf(t, json.name), 'evidence', 'custom');
    expect(readFileSync(join(evidence, 'functional', 'health.sh.log'), 'utf8')).toMatch(/GET http:\/\/127\.0\.0\.1:\d+\/health: ok/);
    expect(readFileSync(join(evidence, 'playwright-junit.xml'), 'utf8')).toContain('the page shows the notes title');
    // The config cc-ci wrote for the run points Playwright at the app and at the evidence.
    const config = readFileSync(join(runDirOf(t, json.name), 'sandbox', 'playwright', 'playwright.config.cjs'), 'utf8');
    expect(config).toMatch(/"baseURL": "http:\/\/127\.0\.0\.1:213\d\d"/);

    const text = log(json);
    expect(text).toContain('custom tests: Playwright: playwright/notes.spec.ts (bundled); functional: functional/health.sh (bundled)');
    expect(text).toMatch(/✓ .*notes\.spec\.ts.* › the page shows the notes title/);
    expect(text).toMatch(/health\.sh: GET http:\/\/127\.0\.0\.1:\d+\/health: ok/);
    // The tests used are stored with the run's customisation.
    const tests = storedTests(json);
    expect(tests.specs.map((f) => [f.name, f.source])).toEqual([['notes.spec.ts', 'bundled']]);
    expect(tests.functional.map((f) => [f.name, f.source])).toEqual([['health.sh', 'bundled']]);
    await expectNothingLeft(json);
  });

  it('fails on page-broken, naming the test and its error, with a screenshot and a trace as evidence', async () => {
    const r = await run('webnotes', webnotes.path, 'page-broken');
    expect(r.exitCode, r.stderr.slice(-4000)).toBe(1);
    const { json } = r;
    expect(json.result).toBe('failed');
    expect(json.tiers.install?.result).toBe('pass');
    const reason = json.tiers.custom?.reason ?? '';
    expect(json.tiers.custom?.result).toBe('fail');
    expect(reason).toMatch(/^1 of 3 custom test\(s\) failed: Playwright test "notes\.spec\.ts › the page shows the notes title" failed: /);
    expect(reason).toMatch(
      /: Error: expect\(locator\)\.toBeVisible\(\) failed; Locator: locator\('#notes-title'\); Expected: visible; .*\(notes\.spec\.ts:\d+\)\. /,
    );
    expect(reason).toMatch(
      /Evidence in evidence\/custom\/: screenshot evidence\/custom\/playwright\/.*\.png, trace evidence\/custom\/playwright\/.*trace\.zip/,
    );
    expect(reason).not.toContain('notes written through the API');

    const evidence = join(runDirOf(t, json.name), 'evidence', 'custom');
    const files = walk(evidence);
    const png = files.filter((f) => f.endsWith('.png'));
    const zip = files.filter((f) => f.endsWith('.zip'));
    expect(png.length).toBeGreaterThan(0);
    expect(zip.length).toBeGreaterThan(0);
    for (const f of [...png, ...zip]) expect(statSync(f).size).toBeGreaterThan(0);
    // A real PNG and a real zip.
    expect(readFileSync(png[0]!).subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
    expect(readFileSync(zip[0]!).subarray(0, 2).toString()).toBe('PK');

    const xml = junit(json);
    expect(xml).toMatch(/<testsuite name="custom" tests="3" failures="1"/);
    expect(xml).toMatch(/<testcase name="the page shows the notes title"[^>]*>\s*<failure message="[^"]*toBeVisible/);

    const described = await cli(t, ['describe', 'run', json.name]);
    expect(described.stdout).toMatch(/custom\s+fail/);
    const runDir = runDirOf(t, json.name);
    for (const f of [...png, ...zip]) expect(described.stdout).toContain(relative(runDir, f));
    expect(described.stdout).toContain('evidence/junit-custom.xml');
    await expectNothingLeft(json);
  });

  it('is n/a for a recipe without any tests, and says so', async () => {
    // plainpage's repository under a name cc-ci bundles nothing for.
    const plainpage = await recipeRepo('plainpage');
    const r = await run('page', plainpage.path, 'main');
    expect(r.exitCode, r.stderr.slice(-4000)).toBe(0);
    const { json } = r;
    expect(json.result).toBe('passed');
    expect(json.tiers.custom).toMatchObject({ result: 'n/a', reason: 'no Playwright specs or functional checks found for page' });
    expect(existsSync(join(runDirOf(t, json.name), 'evidence', 'custom'))).toBe(false);
    await expectNothingLeft(json);
  });

  it("runs the specs and checks a recipe repository carries in .cc-ci/, next to cc-ci's bundled ones", async () => {
    const repo = join(t.dir, 'webnotes-own-tests');
    await execa('git', ['clone', '-q', webnotes.path, repo]);
    const git = (args: string[]) =>
      execa('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@example.org', ...args], { env: { GIT_CONFIG_GLOBAL: '/dev/null' } });
    await git(['checkout', '-q', '-b', 'own-tests', 'origin/main']);
    // Its own spec imports a helper next to it and reads the variables cc-ci sets.
    put(
      join(repo, '.cc-ci', 'playwright', 'own.spec.ts'),
      [
        "import { expect, test } from '@playwright/test';",
        "import { healthPath } from './paths';",
        '',
        "test('the recipe repository\\'s own spec sees the app', async ({ request, page }) => {",
        '  const health = await request.get(healthPath);',
        "  expect((await health.text()).trim()).toBe('ok');",
        '  expect(process.env.DOMAIN).toMatch(/^webn-[0-9a-f]{6}\\.ci\\.localhost$/);',
        "  await page.goto('/');",
        '  await expect(page.locator("#domain")).toContainText(process.env.DOMAIN!);',
        '});',
        '',
      ].join('\n'),
    );
    put(join(repo, '.cc-ci', 'playwright', 'paths.ts'), "export const healthPath = '/health';\n");
    put(
      join(repo, '.cc-ci', 'functional', 'notes-list.sh'),
      '#!/bin/sh\nset -eu\ntest -f "$RECIPE_DIR/compose.yml"\ncurl -fsS "$BASE_URL/cgi-bin/notes" >/dev/null\necho "notes list answers for $STACK_NAME"\n',
      0o755,
    );
    await git(['add', '.cc-ci']);
    await git(['commit', '-qm', 'test: the recipe carries its own cc-ci tests']);

    const r = await run('webnotes', repo, 'own-tests');
    expect(r.exitCode, r.stderr.slice(-4000)).toBe(0);
    const { json } = r;
    expect(json.tiers.custom?.result).toBe('pass');
    expect(json.tiers.custom?.reason).toBe('3 Playwright tests and 2 functional checks passed');
    const xml = junit(json);
    expect(xml).toMatch(/<testcase name="the recipe repository's own spec sees the app" classname="playwright\.own\.spec\.ts"/);
    expect(xml).toMatch(/<testcase name="notes-list\.sh" classname="functional"/);
    expect(xml).not.toContain('<failure');
    const text = log(json);
    expect(text).toContain(
      'custom tests: Playwright: playwright/notes.spec.ts (bundled), .cc-ci/playwright/own.spec.ts (recipe-repo); ' +
        'support: .cc-ci/playwright/paths.ts (recipe-repo); ' +
        'functional: functional/health.sh (bundled), .cc-ci/functional/notes-list.sh (recipe-repo)',
    );
    expect(text).toMatch(/notes-list\.sh: notes list answers for webn-[0-9a-f]{6}_ci_localhost/);
    // What ran is stored, the repository's files as the copy of its head's .cc-ci/ the run took.
    const copy = join(runDirOf(t, json.name), 'recipe-cc-ci');
    const tests = storedTests(json);
    expect(tests.specs.map((f) => [f.name, f.source, f.path])).toEqual([
      ['notes.spec.ts', 'bundled', join(ROOT, 'recipes', 'webnotes', 'playwright', 'notes.spec.ts')],
      ['own.spec.ts', 'recipe-repo', join(copy, 'playwright', 'own.spec.ts')],
    ]);
    expect(tests.support.map((f) => [f.name, f.source])).toEqual([['paths.ts', 'recipe-repo']]);
    expect(tests.functional.map((f) => [f.name, f.source])).toEqual([
      ['health.sh', 'bundled'],
      ['notes-list.sh', 'recipe-repo'],
    ]);
    const described = await cli(t, ['describe', 'run', json.name]);
    expect(described.stdout).toMatch(
      /Customisation:\n .*"tests":\{.*"name":"own\.spec\.ts","path":"[^"]*\/recipe-cc-ci\/playwright\/own\.spec\.ts","source":"recipe-repo"/,
    );
    await expectNothingLeft(json);
  });

  it('a run cancelled while Playwright runs stops Chromium and all it started, then tears down', async () => {
    const repo = join(t.dir, 'webnotes-hangs');
    await execa('git', ['clone', '-q', webnotes.path, repo]);
    const git = (args: string[]) =>
      execa('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@example.org', ...args], { env: { GIT_CONFIG_GLOBAL: '/dev/null' } });
    await git(['checkout', '-q', '-b', 'hangs', 'origin/main']);
    put(
      join(repo, '.cc-ci', 'playwright', 'hang.spec.ts'),
      "import { test } from '@playwright/test';\ntest('waits for ever', async ({ page }) => {\n  test.setTimeout(0);\n  await page.goto('/');\n  await page.waitForTimeout(600_000);\n});\n",
    );
    await git(['add', '.cc-ci']);
    await git(['commit', '-qm', 'test: a spec that never ends']);

    const name = `custom-cancel-${Date.now().toString(36)}`;
    const child = execa('node', [CLI, 'run', 'webnotes', '--repo', repo, '--ref', 'hangs', '--tiers', 'install,custom', '--json', '--name', name], {
      env: t.env,
      reject: false,
      timeout: 600_000,
    });
    const runDir = runDirOf(t, name);
    const config = join(runDir, 'sandbox', 'playwright', 'playwright.config.cjs');
    const marker = await waitFor(
      'the Playwright config',
      async () => (existsSync(config) ? /--ccci-playwright=[0-9a-f-]+/.exec(readFileSync(config, 'utf8'))?.[0] : null),
      240_000,
    );
    // The browser carries the run's marker; its renderers and helpers share its process group.
    const browser = await waitFor('Chromium to start', async () => processes().find((p) => p.argv.includes(marker)), 120_000);
    await waitFor(
      'the test to be running',
      async () =>
        /waits for ever/.test(readFileSync(join(runDir, 'log.txt'), 'utf8')) || processes().some((p) => p.pgid === browser.pgid && p.pid !== browser.pid),
      60_000,
    );
    expect(processes().filter((p) => p.pgid === browser.pgid).length).toBeGreaterThan(0);

    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode, String(r.stderr).slice(-4000)).toBe(2);
    const json = JSON.parse(String(r.stdout).trim().split('\n').pop() ?? '') as JsonResult;
    expect(json.result).toBe('cancelled');
    expect(processes().filter((p) => p.argv.includes(marker) || p.pgid === browser.pgid)).toEqual([]);
    await expectNothingLeft(json);
  });
});

/** Every process this user can see: pid, process group and arguments (Linux /proc). */
function processes(): { pid: number; pgid: number; argv: string[] }[] {
  const out: { pid: number; pgid: number; argv: string[] }[] = [];
  for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const pgid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
      out.push({ pid: Number(p), pgid, argv: readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0') });
    } catch {
      /* gone */
    }
  }
  return out;
}

function walk(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}
