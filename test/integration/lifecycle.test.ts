import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecipeRepo } from '../../fixtures/recipe-repo.js';
import {
  NOTHING,
  anyTestStacks,
  cli,
  ensureSwarm,
  forceRemoveStacks,
  removeEnvStacks,
  getRunsJson,
  leftoversOf,
  makeTestEnv,
  recipeRepo,
  runDirOf,
  type TestEnv,
} from '../support/harness.js';

/**
 * One run from spec to verdict on the real swarm, through the real CLI, with the abra test
 * double: a pass, a failure (unhealthy version), a deploy failure, and the bad inputs — each
 * ending with nothing of the run left behind.
 */

interface JsonResult {
  name: string;
  result: string;
  reason: string;
  tiers: Record<string, { result: string; reason: string | null; durationMs: number | null }>;
  domain: string | null;
  domains: string[];
  durationMs: number;
}

let t: TestEnv;
let repo: RecipeRepo;

beforeAll(async () => {
  await ensureSwarm();
  repo = await recipeRepo('webnotes');
  t = await makeTestEnv({ portRange: [21000, 21099], deploySeconds: 25, httpSeconds: 15 });
});

afterAll(async () => {
  await removeEnvStacks(t);
  t?.cleanup();
});

async function run(ref: string, extra: string[] = [], env: Record<string, string> = {}) {
  const r = await cli(t, ['run', 'webnotes', '--repo', repo.path, '--ref', ref, '--tiers', 'install', '--json', ...extra], env);
  let json: JsonResult | null = null;
  try {
    json = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as JsonResult;
  } catch {
    /* asserted by the caller */
  }
  return { ...r, json };
}

async function expectNothingLeft(json: JsonResult) {
  for (const d of json.domains) expect(await leftoversOf(t, d)).toEqual(NOTHING);
  expect(existsSync(join(runDirOf(t, json.name), 'abra'))).toBe(false);
}

describe('a run on the real swarm', () => {
  it('passes the install tier at the head of the bundled recipe, then leaves nothing behind', async () => {
    const r = await run('main');
    expect(r.exitCode, r.stderr).toBe(0);
    const json = r.json!;
    expect(json.result).toBe('passed');
    expect(json.tiers.install?.result).toBe('pass');
    expect(json.tiers.install?.durationMs).toBeGreaterThan(0);
    expect(json.domain).toMatch(/^webn-[0-9a-f]{6}\.ci\.localhost$/);
    expect(json.durationMs).toBeGreaterThan(0);
    await expectNothingLeft(json);

    // The record agrees, and the log kept the secret generation's values out.
    const runs = await getRunsJson(t);
    const row = runs.runs.find((x) => x.name === json.name);
    expect(row).toMatchObject({ phase: 'Done', result: 'passed' });
    const log = readFileSync(join(runDirOf(t, json.name), 'log.txt'), 'utf8');
    expect(log).toContain('generated 1 secret(s): api_token (values withheld)');
    expect(log).not.toMatch(/"value"\s*:/);
    const described = await cli(t, ['describe', 'run', json.name]);
    expect(described.stdout).toMatch(/install\s+pass/);
    expect(described.stdout).toContain('result.json');
  });

  it('fails the install tier of a version that never becomes healthy, naming the service and its task error', async () => {
    const r = await run('unhealthy');
    expect(r.exitCode, r.stderr).toBe(1);
    const json = r.json!;
    expect(json.result).toBe('failed');
    const reason = json.tiers.install?.reason ?? '';
    expect(json.tiers.install?.result).toBe('fail');
    expect(reason).toMatch(/did not converge within 25s/);
    expect(reason).toMatch(/_app 0\/1/);
    expect(reason).toMatch(/task /);
    const evidence = join(runDirOf(t, json.name), 'evidence');
    expect(existsSync(evidence)).toBe(true);
    await expectNothingLeft(json);
  });

  it('fails when abra cannot deploy the recipe at all, with abra\'s reason', async () => {
    const r = await run('deploy-fails');
    expect(r.exitCode, r.stderr).toBe(1);
    const json = r.json!;
    expect(json.tiers.install?.result).toBe('fail');
    expect(json.tiers.install?.reason).toMatch(/abra app deploy failed: .*undeclared_token/);
    await expectNothingLeft(json);
  });

  it('finishes teardown when abra fails halfway through it, falling back and saying so', async () => {
    const state = join(t.dir, 'faults-undeploy');
    const r = await run('main', [], { ABRA_DOUBLE_FAULTS: 'app.undeploy:1:fail,app.remove:1:fail', ABRA_DOUBLE_STATE: state });
    expect(r.exitCode, r.stderr).toBe(0);
    const json = r.json!;
    await expectNothingLeft(json);
    const log = readFileSync(join(runDirOf(t, json.name), 'log.txt'), 'utf8');
    expect(log).toMatch(/abra app undeploy failed: injected fault .*; continuing teardown/);
    expect(log).toMatch(/abra app rm failed: injected fault .*; continuing teardown/);
    expect(log).toMatch(/removing them with docker/);
  });

  it('fails a run whose deploy step abra aborts, and still tears down what app new created', async () => {
    const state = join(t.dir, 'faults-deploy');
    const r = await run('main', [], { ABRA_DOUBLE_FAULTS: 'app.deploy:1:fail', ABRA_DOUBLE_STATE: state });
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.json!.tiers.install?.reason).toMatch(/abra app deploy failed: injected fault/);
    expect(r.json!.result).toBe('failed');
    await expectNothingLeft(r.json!);
  });
});

describe('cc-ci doctor', () => {
  it('passes on this host with the abra double, having checked every flag cc-ci passes', async () => {
    const r = await cli(t, ['doctor']);
    expect(r.exitCode, r.stdout).toBe(0);
    for (const check of ['git', 'docker daemon', 'swarm', 'proxy network', 'abra', 'abra flags', 'abra server', 'state directory']) {
      expect(r.stdout).toMatch(new RegExp(`^ok +${check}:`, 'm'));
    }
    expect(r.stdout).toMatch(/abra flags: every flag cc-ci passes is present/);
  });

  it('says exactly what is missing and how to fix it', async () => {
    const cfg = join(t.dir, 'doctor-bad.yaml');
    writeFileSync(cfg, `abra:\n  dir: ${join(t.dir, 'empty-abra')}\n`);
    const r = await cli(t, ['doctor'], { CCCI_CONFIG: cfg, CCCI_ABRA: join(t.dir, 'no-such-abra') });
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/^FAIL +abra: .*no-such-abra.*ENOENT/m);
    expect(r.stdout).toMatch(/fix: install the pinned abra binary, or point CCCI_ABRA/);
    expect(r.stdout).toMatch(/^FAIL +abra server: .*empty-abra\/servers\/default does not exist/m);
    expect(r.stdout).toMatch(/fix: ABRA_DIR=.*empty-abra abra server add --local/);
  });
});

describe('bad input gets a clear error and loses nothing', () => {
  it('a repository that does not exist: error, exit 2, nothing leased', async () => {
    const r = await cli(t, ['run', 'webnotes', '--repo', join(t.dir, 'no-such-repo'), '--ref', 'main', '--json']);
    expect(r.exitCode).toBe(2);
    const json = JSON.parse(r.stdout) as JsonResult;
    expect(json.result).toBe('error');
    expect(json.reason).toMatch(/could not clone .*no-such-repo/);
    expect(json.domains).toEqual([]);
  });

  it('a ref that does not exist in the repository: error naming the ref', async () => {
    const r = await run('no-such-branch');
    expect(r.exitCode).toBe(2);
    expect(r.json!.reason).toMatch(/ref "no-such-branch" does not exist/);
    expect(r.json!.domains).toEqual([]);
  });

  it('a repository that is not a recipe: error before anything is deployed', async () => {
    const notRecipe = join(t.dir, 'not-a-recipe');
    await execa('git', ['init', '-q', '-b', 'main', notRecipe]);
    writeFileSync(join(notRecipe, 'README.md'), 'just a readme\n');
    await execa('git', ['-C', notRecipe, 'add', '.']);
    await execa('git', ['-C', notRecipe, '-c', 'user.name=t', '-c', 'user.email=t@example.org', 'commit', '-qm', 'init']);
    const r = await cli(t, ['run', 'webnotes', '--repo', notRecipe, '--ref', 'main', '--json']);
    expect(r.exitCode).toBe(2);
    const json = JSON.parse(r.stdout) as JsonResult;
    expect(json.reason).toMatch(/not a Co-op Cloud recipe at main: compose\.yml is missing/);
    expect(json.domains).toEqual([]);
  });

  it.each([
    [['run', 'Bad_Recipe', '--repo', '/tmp/x', '--ref', 'main'], /spec\.recipe/],
    [['run', 'webnotes', '--repo', '/tmp/x', '--ref', '--upload-pack=x'], /spec\.source\.ref/],
    [['run', 'webnotes', '--repo', '/tmp/x', '--ref', 'a..b'], /spec\.source\.ref/],
    [['run', 'webnotes', '--repo', '/tmp/x', '--ref', 'main', '--tiers', 'install,lint'], /unknown tier lint/],
    [['run', 'webnotes', '--repo', '/tmp/x', '--ref', 'main', '--name', 'NOPE'], /metadata\.name/],
  ])('cc-ci %j is refused with exit 2 and a reason, and writes no spec', async (args, reason) => {
    const before = (await getRunsJson(t)).runs.length;
    const r = await cli(t, args);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(reason);
    expect((await getRunsJson(t)).runs.length).toBe(before);
  });

  it('spec files that do not parse or validate are recorded with their reason and left in place', async () => {
    const specs = join(t.stateDir, 'specs');
    const files: Record<string, string> = {
      'garbage.yaml': 'apiVersion: [unclosed',
      'no-source.yaml': 'apiVersion: cc-ci/v1\nkind: Run\nmetadata: {name: no-source}\nspec: {recipe: webnotes}\n',
      'bad-name.json': JSON.stringify({ apiVersion: 'cc-ci/v1', kind: 'Run', metadata: { name: 'Bad Name' }, spec: {} }),
    };
    for (const [f, text] of Object.entries(files)) writeFileSync(join(specs, f), text);
    // Any controller start reads the directory; `cc-ci run` of a bad ref is the cheapest one.
    await run('no-such-branch-2');
    const { invalidSpecs } = await getRunsJson(t);
    const byFile = (f: string) => invalidSpecs.find((i) => i.file.endsWith(f))?.error ?? '';
    expect(byFile('garbage.yaml')).toMatch(/not valid YAML or JSON/);
    expect(byFile('no-source.yaml')).toMatch(/spec\.source/);
    expect(byFile('bad-name.json')).toMatch(/metadata\.name/);
    for (const f of Object.keys(files)) expect(existsSync(join(specs, f))).toBe(true);
    const table = await cli(t, ['get', 'runs']);
    expect(table.stdout).toMatch(/Invalid .*garbage\.yaml: not valid YAML/);
  });

  it('cc-ci apply refuses an invalid file and writes nothing', async () => {
    const f = join(t.dir, 'bad.yaml');
    writeFileSync(f, 'apiVersion: cc-ci/v1\nkind: Run\nmetadata: {name: ok-name}\nspec:\n  recipe: webnotes\n  source: {repo: /x, ref: main}\n  lane: warm\n');
    const r = await cli(t, ['apply', '-f', f]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/spec\.lane/);
    expect(existsSync(join(t.stateDir, 'specs', 'ok-name.yaml'))).toBe(false);
  });

  it('a config file with an unknown key is an error, not ignored', async () => {
    const f = join(t.dir, 'bad-config.yaml');
    writeFileSync(f, 'capacity: 2\ncapacty: 3\n');
    const r = await cli(t, ['get', 'runs'], { CCCI_CONFIG: f });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/unknown field "capacty"/);
  });
});
