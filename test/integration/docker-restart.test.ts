import { spawn } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecipeRepo } from '../../fixtures/recipe-repo.js';
import { groupMembers, isAlive, processStartTicks } from '../../controller/clients/process.js';
import {
  NOTHING,
  anyTestStacks,
  dropSpec,
  envStacks,
  ensureSwarm,
  leftoversOf,
  makeTestEnv,
  readRun,
  recipeRepo,
  removeEnvStacks,
  runDirOf,
  serve,
  waitFor,
  withStore,
  type TestEnv,
} from '../support/harness.js';

/**
 * The Docker daemon stops in the middle of a run and comes back: the run must end cleanly —
 * recovered to a verdict or ended with a clean teardown — and nothing may be left once the
 * daemon is back. The daemon is stopped and started the way setup.sh starts it.
 */

let t: TestEnv;
let repo: RecipeRepo;

beforeAll(async () => {
  await ensureSwarm();
  repo = await recipeRepo('webnotes');
  t = await makeTestEnv({ portRange: [21900, 21999], deploySeconds: 60, httpSeconds: 30, resyncSeconds: 1 });
});

afterAll(async () => {
  await daemonUp();
  await removeEnvStacks(t);
  t?.cleanup();
});

async function dockerAnswers(): Promise<boolean> {
  const r = await execa('docker', ['info', '--format', '{{.Swarm.LocalNodeState}}'], { reject: false, timeout: 10_000 });
  return r.exitCode === 0 && r.stdout.trim() === 'active';
}

async function daemonDown(): Promise<void> {
  await execa('pkill', ['-TERM', '-x', 'dockerd'], { reject: false });
  await waitFor('dockerd to stop', async () => (await execa('pgrep', ['-x', 'dockerd'], { reject: false })).exitCode !== 0, 60_000, 200);
}

async function daemonUp(): Promise<void> {
  if ((await execa('pgrep', ['-x', 'dockerd'], { reject: false })).exitCode !== 0) {
    const log = openSync('/var/log/cc-ci-dockerd.log', 'a');
    spawn('dockerd', [], { detached: true, stdio: ['ignore', log, log] }).unref();
  }
  await waitFor('dockerd and the swarm to answer', dockerAnswers, 120_000, 500);
}

describe('a Docker daemon restart in the middle of a run', () => {
  it('ends the run cleanly and leaves nothing once the daemon is back', async () => {
    const server = serve(t);
    const children = new Map<number, string | null>();
    try {
      dropSpec(t, 'daemon-restart', { repo: repo.path, ref: 'main' });
      // Stop the daemon once the stack is deployed and the controller waits for convergence.
      await waitFor(
        'the deploy to be issued',
        async () => {
          for (const c of withStore(t, (s) => s.listChildren())) children.set(c.pid, c.startTicks);
          const r = readRun(t, 'daemon-restart');
          return r && r.phase !== 'Done' && r.step === 'abra app deploy' ? r : undefined;
        },
        120_000,
        100,
      );
      await waitFor(
        'services to exist',
        async () => (await envStacks(t)).length > 0 && (await anyTestStacks()).some((s) => s.startsWith('webn-')),
        60_000,
        200,
      );
      await daemonDown();
      await new Promise((r) => setTimeout(r, 5_000));
      await daemonUp();

      const done = await waitFor(
        'the run to be done',
        async () => {
          for (const c of withStore(t, (s) => s.listChildren())) children.set(c.pid, c.startTicks);
          const r = readRun(t, 'daemon-restart');
          return r?.phase === 'Done' ? r : undefined;
        },
        600_000,
        250,
      );
      // The controller polls the swarm every second while the deploy converges, so it meets the
      // dead daemon: an infrastructure fault. The attempt is torn down once the daemon answers
      // again, and the run retried from a clean slate — with the reason on record.
      expect(done.result).toBe('passed');
      expect(done.attempt).toBe(2);
      expect(done.retries[0]?.reason).toMatch(/the Docker daemon is unreachable/);
      const apps = withStore(t, (s) => s.appsOfRun('daemon-restart'));
      expect(apps.map((a) => a.attempt)).toEqual([1, 2]);
      for (const a of apps) {
        expect(a.state).toBe('released');
        expect(await leftoversOf(t, a.domain)).toEqual(NOTHING);
      }
      expect(existsSync(join(runDirOf(t, 'daemon-restart'), 'abra'))).toBe(false);
      // No child the controller started (abra, docker, git) is on record or still running.
      expect(withStore(t, (s) => s.listChildren())).toEqual([]);
      for (const [pid, ticks] of children) {
        expect(isAlive(pid, ticks), `child ${pid}`).toBe(false);
        const now = processStartTicks(pid);
        if (now === null || now === ticks) expect(groupMembers(pid), `process group ${pid}`).toEqual([]);
      }
    } finally {
      await daemonUp();
      server.kill('SIGTERM');
      await server;
    }
  });
});
