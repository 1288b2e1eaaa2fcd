import { openSync } from 'node:fs';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { execa } from 'execa';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecipeRepo } from '../../fixtures/recipe-repo.js';
import { Store } from '../../state/store.js';
import type { RunRecord } from '../../state/types.js';
import { NOTHING, anyTestStacks, envStacks, ensureSwarm, forceRemoveStacks, removeEnvStacks, leftoversOf, makeTestEnv, recipeRepo, serve, waitFor, type TestEnv } from '../support/harness.js';

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

function readRun(name: string): RunRecord | undefined {
  const s = new Store(join(t.stateDir, 'cc-ci.db'));
  try {
    return s.getRun(name);
  } finally {
    s.close();
  }
}

describe('a Docker daemon restart in the middle of a run', () => {
  it('ends the run cleanly and leaves nothing once the daemon is back', async () => {
    const server = serve(t);
    try {
      mkdirSync(join(t.stateDir, 'specs'), { recursive: true });
      writeFileSync(
        join(t.stateDir, 'specs', 'daemon-restart.yaml'),
        stringify({ apiVersion: 'cc-ci/v1', kind: 'Run', metadata: { name: 'daemon-restart' }, spec: { recipe: 'webnotes', source: { repo: repo.path, ref: 'main' }, tiers: ['install'] } }),
      );
      // Stop the daemon once the stack is deployed and the controller waits for convergence.
      await waitFor('the deploy to be issued', async () => {
        const r = readRun('daemon-restart');
        return r && r.phase !== 'Done' && r.step === 'abra app deploy' ? r : undefined;
      }, 120_000, 100);
      await waitFor('services to exist', async () => (await envStacks(t)).length > 0 && (await anyTestStacks()).some((s) => s.startsWith('webn-')), 60_000, 200);
      await daemonDown();
      await new Promise((r) => setTimeout(r, 5_000));
      await daemonUp();

      const done = await waitFor('the run to be done', async () => {
        const r = readRun('daemon-restart');
        return r?.phase === 'Done' ? r : undefined;
      }, 600_000, 1000);
      // The controller polls the swarm every second while the deploy converges, so it meets the
      // dead daemon: an infrastructure fault. The attempt is torn down once the daemon answers
      // again, and the run retried from a clean slate — with the reason on record.
      expect(done.result).toBe('passed');
      expect(done.attempt).toBe(2);
      expect(done.retries[0]?.reason).toMatch(/the Docker daemon is unreachable/);
      const s = new Store(join(t.stateDir, 'cc-ci.db'));
      const apps = s.appsOfRun('daemon-restart');
      s.close();
      for (const a of apps) expect(await leftoversOf(t, a.domain)).toEqual(NOTHING);
    } finally {
      await daemonUp();
      server.kill('SIGTERM');
      await server;
    }
  });
});
