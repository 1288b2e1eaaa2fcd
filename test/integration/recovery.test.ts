import { existsSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RecipeRepo } from '../../fixtures/recipe-repo.js';
import { isAlive } from '../../controller/process.js';
import { Store } from '../../state/store.js';
import type { RunRecord } from '../../state/types.js';
import {
  NOTHING,
  callsOf,
  cli,
  dropSpec,
  ensureSwarm,
  faultEnv,
  readRun,
  removeEnvStacks,
  stopLeftoverServers,
  untilDone,
  withStore,
  leftoversOf,
  makeTestEnv,
  recipeRepo,
  serve,
  waitFor,
  type TestEnv,
} from '../support/harness.js';

/**
 * Crash safety, cancel, supersede and timeouts with real processes: `cc-ci serve` killed with
 * SIGKILL in each phase and started again, the abra child it left behind stopped, runs cancelled
 * and superseded mid-step — and after each, nothing of any run left on the swarm or on disk.
 */

let t: TestEnv;
let repo: RecipeRepo;
let n = 0;

beforeAll(async () => {
  await ensureSwarm();
  repo = await recipeRepo('webnotes');
  t = await makeTestEnv({ portRange: [21600, 21699], deploySeconds: 40, httpSeconds: 20, capacity: 2, maxAttempts: 2, resyncSeconds: 1 });
});

afterEach(async () => {
  await stopLeftoverServers();
  await removeEnvStacks(t);
});

afterAll(() => t?.cleanup());

/** A fresh fault-injection state per test, so call counts start at zero. */
function faults(spec: string): Record<string, string> {
  n++;
  return faultEnv(t, spec);
}

function drop(name: string, ref: string, extra: Record<string, unknown> = {}, tiers = ['install']): string {
  return dropSpec(t, name, { repo: repo.path, ref, tiers, extra });
}

async function untilStep(name: string, step: string, timeoutMs = 120_000): Promise<RunRecord> {
  return waitFor(`${name} to reach step "${step}"`, async () => {
    const r = readRun(t, name);
    return r && r.step === step && r.phase !== 'Done' ? r : undefined;
  }, timeoutMs, 100);
}

async function expectClean(name: string): Promise<void> {
  const s = new Store(join(t.stateDir, 'cc-ci.db'));
  try {
    for (const app of s.appsOfRun(name)) {
      expect(app.state).toBe('released');
      expect(await leftoversOf(t, app.domain)).toEqual(NOTHING);
    }
    expect(existsSync(join(t.stateDir, 'runs', name, 'abra'))).toBe(false);
    // No child process the run started is still running.
    for (const c of s.listChildren().filter((c) => c.run === name)) expect(isAlive(c.pid, c.startTicks)).toBe(false);
  } finally {
    s.close();
  }
}

async function stop(server: ReturnType<typeof serve>, signal: NodeJS.Signals = 'SIGTERM') {
  server.kill(signal);
  await server;
}

describe('kill -9 of cc-ci serve, then a restart', () => {
  // A plain child outlives a killed controller (the restart must stop it); one under a
  // pseudo-terminal may or may not survive the terminal's SIGHUP — either way it must be gone
  // once the restarted controller has recovered.
  it.each([
    ['Deploying', 'abra app deploy', 'app.deploy:1:hang', true],
    ['Deploying', 'abra app new', 'app.new:1:hang', true],
    ['Testing', 'abra app backup create', 'app.backup.create:1:hang', null],
  ])('in %s (step %s): the orphaned abra is stopped, the attempt torn down, and the retry reaches a verdict', async (_phase, step, fault, outlives) => {
    const env = faults(fault);
    const name = `crash-${n}`;
    const tiers = step.includes('backup') ? ['install', 'backup'] : ['install'];
    const first = serve(t, env);
    drop(name, 'main', {}, tiers);
    const during = await untilStep(name, step);
    // The step is on record before the child starts: wait until abra itself is hanging in it.
    const command = fault.split(':')[0]!;
    await waitFor('the hung abra call', async () => callsOf(env, command) >= 1, 30_000, 100);
    const orphan = withStore(t, (s) => s.listChildren()).find((c) => c.run === name && c.command.includes(step.replace('abra ', '')));
    expect(orphan, 'the hung abra child is on record').toBeDefined();
    await stop(first, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 500));
    if (outlives !== null) expect(isAlive(orphan!.pid, orphan!.startTicks)).toBe(outlives);

    const second = serve(t, env);
    try {
      const done = await untilDone(t, name);
      expect(isAlive(orphan!.pid, orphan!.startTicks)).toBe(false);
      expect(done.result).toBe('passed');
      expect(done.attempt).toBe(2);
      expect(done.retries[0]?.reason).toMatch(new RegExp(`interrupted: the controller stopped while the run was ${during.phase}`));
      await expectClean(name);
    } finally {
      await stop(second);
    }
  });

  it('in TearingDown: teardown resumes after the restart and the verdict stands', async () => {
    const env = faults('app.undeploy:1:hang');
    const name = `crash-teardown-${n}`;
    const first = serve(t, env);
    drop(name, 'main');
    await untilStep(name, 'abra app undeploy');
    await waitFor('the hung abra call', async () => callsOf(env, 'app.undeploy') >= 1, 30_000, 100);
    await stop(first, 'SIGKILL');
    const second = serve(t, env);
    try {
      const done = await untilDone(t, name);
      expect(done.result).toBe('passed');
      expect(done.attempt).toBe(1);
      await expectClean(name);
    } finally {
      await stop(second);
    }
  });

  it('twice in a row: no attempts left, the run ends error, still clean', async () => {
    const env = faults('app.deploy:1:hang,app.deploy:2:hang');
    const name = `crash-twice-${n}`;
    let server = serve(t, env);
    drop(name, 'main');
    await untilStep(name, 'abra app deploy');
    await waitFor('the hung abra call', async () => callsOf(env, 'app.deploy') >= 1, 30_000, 100);
    await stop(server, 'SIGKILL');
    server = serve(t, env);
    await waitFor('attempt 2 to deploy', async () => {
      const r = readRun(t, name);
      return r?.attempt === 2 && r.step === 'abra app deploy' && callsOf(env, 'app.deploy') >= 2;
    }, 180_000, 100);
    await stop(server, 'SIGKILL');
    server = serve(t, env);
    try {
      const done = await untilDone(t, name);
      expect(done.result).toBe('error');
      expect(done.reason).toMatch(/no attempts left: 2 of 2/);
      expect(done.retries).toHaveLength(1);
      await expectClean(name);
    } finally {
      await stop(server);
    }
  });
});

describe('cancel, supersede, timeouts, queue', () => {
  it('cc-ci delete run stops the running abra step, tears down and records cancelled', async () => {
    const env = faults('app.deploy:1:hang');
    const server = serve(t, env);
    try {
      drop('cancel-me', 'main');
      await untilStep('cancel-me', 'abra app deploy');
      await waitFor('the hung abra call', async () => callsOf(env, 'app.deploy') >= 1, 30_000, 100);
      const child = withStore(t, (s) => s.listChildren()).find((c) => c.run === 'cancel-me');
      const r = await cli(t, ['delete', 'run', 'cancel-me']);
      expect(r.exitCode).toBe(0);
      const done = await untilDone(t, 'cancel-me');
      expect(done.result).toBe('cancelled');
      expect(done.reason).toMatch(/deleted/);
      expect(isAlive(child!.pid, child!.startTicks)).toBe(false);
      await expectClean('cancel-me');
    } finally {
      await stop(server);
    }
  });

  it('deleting the spec file cancels the same way', async () => {
    const env = faults('app.deploy:1:hang');
    const server = serve(t, env);
    try {
      const file = drop('unlink-me', 'main');
      await untilStep('unlink-me', 'abra app deploy');
      await waitFor('the hung abra call', async () => callsOf(env, 'app.deploy') >= 1, 30_000, 100);
      unlinkSync(file);
      const done = await untilDone(t, 'unlink-me');
      expect(done.result).toBe('cancelled');
      expect(done.reason).toMatch(/spec file unlink-me\.yaml was deleted/);
      await expectClean('unlink-me');
    } finally {
      await stop(server);
    }
  });

  it('a new run for the same PR and lane supersedes the older one, queued or running', async () => {
    const env = faults('app.deploy:1:hang');
    const server = serve(t, env);
    const forge = (comment: number) => ({ trigger: { kind: 'comment', forge: { owner: 'recipes', repo: 'webnotes', pr: 7, comment } } });
    try {
      drop('pr7-a', 'main', forge(1));
      await untilStep('pr7-a', 'abra app deploy');
      // pr7-a must be the one hanging in the first deploy call, not pr7-b.
      await waitFor('the hung abra call', async () => callsOf(env, 'app.deploy') >= 1, 30_000, 100);
      drop('pr7-b', 'main', forge(2));
      const a = await untilDone(t, 'pr7-a');
      expect(a.result).toBe('cancelled');
      expect(a.reason).toBe('superseded by pr7-b');
      const b = await untilDone(t, 'pr7-b');
      expect(b.result).toBe('passed');
      await expectClean('pr7-a');
      await expectClean('pr7-b');
    } finally {
      await stop(server);
    }
  });

  it('a hung abra call is killed when the tier runs out of time: "timed out in install"', async () => {
    const env = faults('app.deploy:1:hang');
    const cfg = join(t.dir, 'short-tier.yaml');
    writeFileSync(cfg, readFileSync(t.configFile, 'utf8').replace(/tierSeconds: \d+/, 'tierSeconds: 15'));
    const r = await cli(t, ['run', 'webnotes', '--repo', repo.path, '--ref', 'main', '--tiers', 'install', '--json'], { ...env, CCCI_CONFIG: cfg });
    const json = JSON.parse(r.stdout.trim().split('\n').pop()!) as { name: string; result: string; tiers: Record<string, { result: string; reason: string }> };
    expect(r.exitCode).toBe(1);
    expect(json.tiers.install?.result).toBe('fail');
    expect(json.tiers.install?.reason).toMatch(/timed out in install after 15s/);
    await expectClean(json.name);
  });

  it('a run that outlives its own deadline ends error, "run timed out in install", cleanly', async () => {
    const env = faults('app.deploy:1:hang');
    const cfg = join(t.dir, 'short-run.yaml');
    writeFileSync(cfg, readFileSync(t.configFile, 'utf8').replace(/runSeconds: \d+/, 'runSeconds: 20'));
    const r = await cli(t, ['run', 'webnotes', '--repo', repo.path, '--ref', 'main', '--tiers', 'install', '--json'], { ...env, CCCI_CONFIG: cfg });
    const json = JSON.parse(r.stdout.trim().split('\n').pop()!) as { name: string; result: string; reason: string };
    expect(r.exitCode).toBe(2);
    expect(json.result).toBe('error');
    expect(json.reason).toMatch(/run timed out in install after 20s \(step: abra app deploy\)/);
    await expectClean(json.name);
  });

  it('waiting runs show their place in the queue and why they wait', async () => {
    const env = faults('app.deploy:1:hang,app.deploy:2:hang');
    const server = serve(t, env);
    try {
      drop('q-1', 'main');
      drop('q-2', 'main');
      await untilStep('q-1', 'abra app deploy');
      await untilStep('q-2', 'abra app deploy');
      await waitFor('both hung abra calls', async () => callsOf(env, 'app.deploy') >= 2, 30_000, 100);
      drop('q-3', 'main');
      drop('q-4', 'main');
      const rows = await waitFor('q-4 to be queued', async () => {
        const r = await cli(t, ['get', 'runs', '-o', 'json']);
        const runs = (JSON.parse(r.stdout) as { runs: { name: string; queuePosition: number | null; waiting: string | null }[] }).runs;
        return runs.find((x) => x.name === 'q-4')?.waiting?.startsWith('capacity') ? runs : undefined;
      }, 30_000);
      expect(rows.find((x) => x.name === 'q-3')).toMatchObject({ queuePosition: 1, waiting: 'capacity full (2/2 runs active)' });
      expect(rows.find((x) => x.name === 'q-4')).toMatchObject({ queuePosition: 2, waiting: 'capacity full (2/2 runs active)' });
      const table = await cli(t, ['get', 'runs']);
      expect(table.stdout).toMatch(/q-3 .*#1 in queue: capacity full \(2\/2 runs active\)/);
      for (const name of ['q-1', 'q-2', 'q-3', 'q-4']) await cli(t, ['delete', 'run', name]);
      for (const name of ['q-1', 'q-2', 'q-3', 'q-4']) {
        expect((await untilDone(t, name)).result).toBe('cancelled');
        await expectClean(name);
      }
    } finally {
      await stop(server);
    }
  });
});
