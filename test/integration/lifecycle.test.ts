import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecipeRepo } from '../../fixtures/recipe-repo.js';
import {
  ABRA_DOUBLE,
  CLI,
  anyTestStacks,
  cli,
  envStacks,
  faultEnv,
  ensureSwarm,
  removeEnvStacks,
  getRunsJson,
  makeTestEnv,
  nothingOfRun,
  recipeRepo,
  runLeftovers,
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
  expect(await runLeftovers(t, json.name, json.domains)).toEqual(nothingOfRun(json.domains));
  // No stack of any app this env ever leased is on the swarm, and no .env of one is on disk.
  const live = new Set(await anyTestStacks());
  expect((await envStacks(t)).filter((s) => live.has(s))).toEqual([]);
  const envDir = join(t.abraDir, 'servers', 'default');
  expect(readdirSync(envDir).filter((f) => f.endsWith('.env'))).toEqual([]);
}

/** Every file under a directory, as bytes (the SQLite database and its WAL included). */
function filesUnder(dir: string): { path: string; bytes: Buffer }[] {
  const found: { path: string; bytes: Buffer }[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) found.push(...filesUnder(p));
    else if (st.isFile()) found.push({ path: p, bytes: readFileSync(p) });
  }
  return found;
}

function specFiles(): string[] {
  return readdirSync(join(t.stateDir, 'specs')).sort();
}

describe('a run on the real swarm', () => {
  it('passes the install tier at the head of the bundled recipe, then leaves nothing behind', async () => {
    // No faults: the double only counts calls and records the secret values it generates.
    const counted = faultEnv(t, '');
    const r = await run('main', [], counted);
    expect(r.exitCode, r.stderr).toBe(0);
    // With --json the live log goes to stderr: a progress line per phase and per tier.
    for (const line of [/==> Preparing \(attempt 1\)/, /==> Testing: tier install/, /--> install: started/, /--> install: pass in /, /==> TearingDown/]) {
      expect(r.stderr).toMatch(line);
    }
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
    // Teardown did not wait for Docker to stop the app's two containers gracefully (teardown.ts).
    expect(log).toMatch(/removing \d container\(s\) of webn-[0-9a-f]{6}_ci_localhost at once: their services are gone/);
    // The value abra printed is nowhere: not in the output, the log, the store or any file.
    const values = readFileSync(join(counted.ABRA_DOUBLE_STATE!, 'generated-secrets.txt'), 'utf8').split('\n').filter(Boolean);
    expect(values).toHaveLength(1);
    for (const value of values) {
      expect(r.stdout).not.toContain(value);
      expect(r.stderr).not.toContain(value);
      for (const f of filesUnder(t.stateDir)) expect(f.bytes.includes(value), f.path).toBe(false);
    }
    const described = await cli(t, ['describe', 'run', json.name]);
    expect(described.stdout).toMatch(/install\s+pass/);
    expect(described.stdout).toContain('result.json');
  });

  it('fails a head whose app keeps exiting on its third failed task, not at the deadline, with the task error and log tail', async () => {
    // The variant's settings give the deploy 120 s: only counting the failed tasks ends it early.
    const r = await run('crash-loop');
    expect(r.exitCode, r.stderr).toBe(1);
    const json = r.json!;
    expect(json.tiers.install?.result).toBe('fail');
    const reason = json.tiers.install?.reason ?? '';
    expect(reason).toMatch(/_app failed [3-9] times since the deploy \(last task error: task: non-zero exit \(1\)/);
    expect(reason).not.toMatch(/did not converge within/);
    expect(reason).toMatch(/log tail: .*cannot reach the database/);
    await expectNothingLeft(json);
  });

  it('fails a version that never becomes healthy on its third task killed as unhealthy, long before a 300 s deadline, naming the service, what the check answered and the log tail', async () => {
    // The app stops cleanly on Docker's SIGTERM: swarm records those tasks `complete`, not `failed`.
    // (The deadline itself is tested in tiers.test.ts, deployTimeoutSeconds.)
    const config = join(t.dir, 'config-deploy-300.yaml');
    const base = parseYaml(readFileSync(t.configFile, 'utf8')) as { timeouts: Record<string, number> };
    writeFileSync(config, stringifyYaml({ ...base, timeouts: { ...base.timeouts, deploySeconds: 300 } }));
    const r = await run('unhealthy', [], { CCCI_CONFIG: config });
    expect(r.exitCode, r.stderr).toBe(1);
    const json = r.json!;
    expect(json.result).toBe('failed');
    expect(json.tiers.install?.result).toBe('fail');
    const reason = json.tiers.install?.reason ?? '';
    expect(reason).toMatch(
      /_app failed 3 times since the deploy \(last task error: exited 0 while it should have kept running: killed as unhealthy, its healthcheck failed \d+ times in a row \(last: exit 1, [^)]*404/,
    );
    expect(reason).not.toMatch(/did not converge within/);
    expect(reason).toMatch(/_app 0\/1/);
    // The evidence outlives the teardown: the failing service, its tasks and its log tail.
    const evidence = join(runDirOf(t, json.name), 'evidence');
    const diag = readdirSync(evidence).filter((f) => /^diagnostics-.*\.txt$/.test(f));
    expect(diag).toHaveLength(1);
    const text = readFileSync(join(evidence, diag[0]!), 'utf8');
    expect(text).toMatch(/^== webn-[0-9a-f]{6}_ci_localhost_app 0\/1/m);
    expect(text).toMatch(/^task webn-[0-9a-f]{6}_ci_localhost_app\.1 desired=\w+ current=/m);
    expect(text).toMatch(/^-- log tail \(last 20 lines\)$/m);
    // The log tail shows the cause: the healthcheck's requests answered 404.
    expect(text).toMatch(/response:404/);
    expect(reason).toMatch(/log tail: .*response:404/);
    await expectNothingLeft(json);
  });

  it('passes a head whose app fails its first two starts and then serves (fewer failures than taskFailuresToFail)', async () => {
    const r = await run('slow-start');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.json!.tiers.install?.result).toBe('pass');
    // It did restart: the failures were seen and tolerated, not absent.
    const log = readFileSync(join(runDirOf(t, r.json!.name), 'log.txt'), 'utf8');
    expect(log).toMatch(/converged at .*\(after [12] failed task\(s\) of one service, fewer than taskFailuresToFail 3\)/);
    expect(log).not.toMatch(/failing fast/);
    await expectNothingLeft(r.json!);
  });

  it("fails when abra cannot deploy the recipe at all, with abra's reason", async () => {
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

describe('two cc-ci run on one state directory', () => {
  it('the second waits for the first to release the directory, then runs its own; both reach a verdict', async () => {
    const [a, b] = await Promise.all([
      run('main', ['--name', 'two-runs-a']),
      // Started a moment later, so that it meets the first one's embedded controller.
      new Promise((r) => setTimeout(r, 1500)).then(() => run('main', ['--name', 'two-runs-b'])),
    ]);
    expect(a.exitCode, a.stderr).toBe(0);
    expect(b.exitCode, b.stderr).toBe(0);
    expect(a.json!.result).toBe('passed');
    expect(b.json!.result).toBe('passed');
    expect(b.stderr).toMatch(/waiting: another cc-ci run \(pid \d+ on .*\) is using .*; this run starts when it has finished/);
    await expectNothingLeft(a.json!);
    await expectNothingLeft(b.json!);
  });
});

describe('where the state directory, the config and abra come from', () => {
  it('--state-dir and --config win over CCCI_STATE_DIR and CCCI_CONFIG', async () => {
    const other = join(t.dir, 'other-state');
    const cfg = join(t.dir, 'flags.yaml');
    writeFileSync(cfg, readFileSync(t.configFile, 'utf8').replace(/^capacity: \d+$/m, 'capacity: 7'));
    const r = await cli(t, ['run', 'webnotes', '--repo', repo.path, '--ref', 'no-such-branch-flags', '--json', '--state-dir', other, '--config', cfg], {
      CCCI_STATE_DIR: join(t.dir, 'not-this-one'),
      CCCI_CONFIG: join(t.dir, 'no-such-config.yaml'),
    });
    expect(r.exitCode, r.stderr).toBe(2);
    expect(JSON.parse(r.stdout).reason).toMatch(/ref "no-such-branch-flags" does not exist/);
    expect(existsSync(join(other, 'cc-ci.db'))).toBe(true);
    expect(existsSync(join(t.dir, 'not-this-one'))).toBe(false);
    const listed = await cli(t, ['get', 'runs', '-o', 'json', '--state-dir', other]);
    expect((JSON.parse(listed.stdout) as { runs: { name: string }[] }).runs.map((x) => x.name)).toEqual([JSON.parse(r.stdout).name]);
    // A config that does not exist is an error naming it, not a silent default.
    const missing = await cli(t, ['get', 'runs', '--config', join(t.dir, 'no-such-config.yaml')]);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toMatch(/no-such-config\.yaml/);
  });

  it("abra is CCCI_ABRA, else the config's abra.bin, else abra on PATH", async () => {
    const bin = join(t.dir, 'bin');
    mkdirSync(bin, { recursive: true });
    const onPath = join(bin, 'abra');
    if (!existsSync(onPath)) symlinkSync(ABRA_DOUBLE, onPath);
    const named = join(t.dir, 'abra-by-config');
    if (!existsSync(named)) symlinkSync(ABRA_DOUBLE, named);
    const cfg = join(t.dir, 'abra-bin.yaml');
    writeFileSync(cfg, `${readFileSync(t.configFile, 'utf8')}`.replace('abra:\n', `abra:\n  bin: ${named}\n`));
    const plain = join(t.dir, 'abra-plain.yaml');
    writeFileSync(plain, readFileSync(t.configFile, 'utf8'));
    const doctorAbra = async (env: Record<string, string>) => {
      const r = await execa('node', [CLI, 'doctor'], { env: { ...t.env, ...env }, extendEnv: false, reject: false, timeout: 120_000 });
      return r.stdout.split('\n').find((l) => /^\S+ +abra: /.test(l)) ?? '';
    };
    const path = `${bin}:${process.env.PATH ?? ''}`;
    const base = { PATH: path, HOME: process.env.HOME ?? '/root' };
    expect(await doctorAbra({ ...base, CCCI_CONFIG: cfg, CCCI_ABRA: join(t.dir, 'no-such-abra') })).toMatch(/^FAIL +abra: .*no-such-abra/);
    expect(await doctorAbra({ ...base, CCCI_CONFIG: cfg, CCCI_ABRA: '' })).toMatch(new RegExp(`^ok +abra: ${named}:`));
    expect(await doctorAbra({ ...base, CCCI_CONFIG: plain, CCCI_ABRA: '' })).toMatch(/^ok +abra: abra: abra version/);
    expect(await doctorAbra({ PATH: '/usr/bin:/bin', HOME: base.HOME, CCCI_CONFIG: plain, CCCI_ABRA: '' })).toMatch(/^FAIL +abra: abra/);
  });
});

describe('cc-ci doctor', () => {
  it('passes on this host with the abra double, having checked every flag cc-ci passes', async () => {
    const r = await cli(t, ['doctor']);
    expect(r.exitCode, r.stdout).toBe(0);
    for (const check of [
      'git',
      'docker daemon',
      'swarm',
      'proxy network',
      'abra',
      'abra commands',
      'abra recipe flags',
      'backup-bot-two',
      'abra server',
      'state directory',
    ]) {
      expect(r.stdout).toMatch(new RegExp(`^ok +${check}:`, 'm'));
    }
    expect(r.stdout).toMatch(/abra commands: 12 commands, every flag cc-ci needs is present/);
    expect(r.stdout).toMatch(/abra recipe flags: --chaos\/--offline on every recipe-touching command, --volumes on backup download/);
    expect(r.stdout).toMatch(/backup-bot-two: not needed: the abra test double keeps backups itself/);
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
    await expectNothingLeft(json);
  });

  it('a repository URL with credentials that cannot be reached: error, and the credentials are shown nowhere', async () => {
    const token = 'tok-9f8e7d6c5b4a';
    const r = await cli(t, ['run', 'webnotes', '--repo', `http://ci-bot:${token}@127.0.0.1:9/recipes/webnotes.git`, '--ref', 'main', '--json']);
    expect(r.exitCode).toBe(2);
    const json = JSON.parse(r.stdout) as JsonResult;
    expect(json.reason).toMatch(/could not clone http:\/\/\*\*\*@127\.0\.0\.1:9\/recipes\/webnotes\.git/);
    expect(r.stdout).not.toContain(token);
    expect(r.stderr).not.toContain(token);
    expect(readFileSync(join(runDirOf(t, json.name), 'log.txt'), 'utf8')).not.toContain(token);
    const described = await cli(t, ['describe', 'run', json.name]);
    expect(described.stdout).toMatch(/http:\/\/\*\*\*@127\.0\.0\.1:9/);
    expect(described.stdout).not.toContain(token);
    const listed = await cli(t, ['get', 'runs', '-o', 'json']);
    expect(listed.stdout).not.toContain(token);
    await expectNothingLeft(json);
  });

  it('a ref that does not exist in the repository: error naming the ref', async () => {
    const r = await run('no-such-branch');
    expect(r.exitCode).toBe(2);
    expect(r.json!.reason).toMatch(/ref "no-such-branch" does not exist/);
    expect(r.json!.domains).toEqual([]);
    await expectNothingLeft(r.json!);
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
    await expectNothingLeft(json);
  });

  it.each([
    [['run', 'Bad_Recipe', '--repo', '/tmp/x', '--ref', 'main'], /spec\.recipe/],
    [['run', 'webnotes', '--repo', '/tmp/x', '--ref', '--upload-pack=x'], /spec\.source\.ref/],
    [['run', 'webnotes', '--repo', '/tmp/x', '--ref', 'a..b'], /spec\.source\.ref/],
    [['run', 'webnotes', '--repo', '/tmp/x', '--ref', 'main', '--tiers', 'install,lint'], /unknown tier lint/],
    [['run', 'webnotes', '--repo', '/tmp/x', '--ref', 'main', '--name', 'NOPE'], /metadata\.name/],
  ])('cc-ci %j is refused with exit 2 and a reason, and writes no spec', async (args, reason) => {
    const before = (await getRunsJson(t)).runs.length;
    const files = specFiles();
    const r = await cli(t, args);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(reason);
    expect(specFiles()).toEqual(files);
    expect((await getRunsJson(t)).runs.length).toBe(before);
  });

  it('spec files that do not parse or validate are recorded with their reason and left in place', async () => {
    const specs = join(t.stateDir, 'specs');
    const files: Record<string, string> = {
      'garbage.yaml': 'apiVersion: [unclosed',
      'no-source.yaml': 'apiVersion: cc-ci/v1\nkind: Run\nmetadata: {name: no-source}\nspec: {recipe: webnotes}\n',
      'bad-name.json': JSON.stringify({ apiVersion: 'cc-ci/v1', kind: 'Run', metadata: { name: 'Bad Name' }, spec: {} }),
      // Nine lines that would expand to 10^9 nodes if the aliases were followed.
      'alias-bomb.yaml': `a: &a [x,x,x,x,x,x,x,x,x,x]\n${'bcdefghi'
        .split('')
        .map((c, i) => `${c}: &${c} [${Array(10).fill(`*${'abcdefghi'[i]}`).join(',')}]`)
        .join('\n')}\n`,
    };
    for (const [f, text] of Object.entries(files)) writeFileSync(join(specs, f), text);
    // Any controller start reads the directory; `cc-ci run` of a bad ref is the cheapest one.
    await run('no-such-branch-2');
    const { invalidSpecs } = await getRunsJson(t);
    const byFile = (f: string) => invalidSpecs.find((i) => i.file.endsWith(f))?.error ?? '';
    expect(byFile('garbage.yaml')).toMatch(/not valid YAML or JSON/);
    expect(byFile('no-source.yaml')).toMatch(/spec\.source/);
    expect(byFile('bad-name.json')).toMatch(/metadata\.name/);
    expect(byFile('alias-bomb.yaml')).toMatch(/not a usable YAML document: .*alias/i);
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
