import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../controller/clients/process.js';
import { TIER_NAMES } from '../../state/types.js';
import type { RecipeRepo } from '../../fixtures/recipe-repo.js';
import {
  NOTHING,
  cli,
  dropSpec,
  ensureSwarm,
  faultEnv,
  callsOf,
  readRun,
  untilDone,
  withStore,
  removeEnvStacks,
  getRunsJson,
  leftoversOf,
  makeTestEnv,
  recipeRepo,
  serve,
  serving,
  waitFor,
  type TestEnv,
} from '../support/harness.js';

/**
 * `cc-ci serve` as a real process: a spec file dropped into specs/ becomes a run, `logs -f`
 * follows it from another process, a second controller on the same state directory refuses,
 * and SIGTERM stops the server cleanly.
 */

let t: TestEnv;
let repo: RecipeRepo;

beforeAll(async () => {
  await ensureSwarm();
  repo = await recipeRepo('webnotes');
  t = await makeTestEnv({ portRange: [21100, 21199], deploySeconds: 25, httpSeconds: 15 });
});

afterAll(async () => {
  await removeEnvStacks(t);
  t?.cleanup();
});

function specFor(name: string, ref: string) {
  return {
    apiVersion: 'cc-ci/v1',
    kind: 'Run',
    metadata: { name },
    spec: { recipe: 'webnotes', source: { repo: repo.path, ref }, tiers: ['install'], trigger: { kind: 'file' } },
  };
}

describe('cc-ci serve', () => {
  it('turns a dropped spec file into a verdict, with a live log another process can follow', async () => {
    const server = serve(t);
    try {
      await serving(server);
      // JSON, by hand, into the directory: the file is the whole API.
      writeFileSync(join(t.stateDir, 'specs', 'by-hand.json'), JSON.stringify(specFor('by-hand', 'main')));
      await waitFor('the run to appear', async () => (await getRunsJson(t)).runs.some((r) => r.name === 'by-hand'), 30_000);

      const second = await cli(t, ['serve']);
      expect(second.exitCode).toBe(2);
      expect(second.stderr).toMatch(/another cc-ci controller \(pid \d+ .*\) is already serving this state directory/);

      const follow = await cli(t, ['logs', '-f', 'by-hand']);
      expect(follow.exitCode).toBe(0);
      expect(follow.stdout).toMatch(/==> Preparing/);
      expect(follow.stdout).toMatch(/--> install: pass/);
      expect(follow.stdout).toMatch(/\*\*\* passed/);

      const run = (await getRunsJson(t)).runs.find((r) => r.name === 'by-hand')!;
      expect(run).toMatchObject({ phase: 'Done', result: 'passed' });
      for (const d of run.domains) expect(await leftoversOf(t, d)).toEqual(NOTHING);

      // Re-writing the same spec does nothing; a changed spec under the same name is refused.
      writeFileSync(join(t.stateDir, 'specs', 'by-hand.json'), JSON.stringify(specFor('by-hand', 'main')));
      writeFileSync(join(t.stateDir, 'specs', 'by-hand-2.yaml'), stringify(specFor('by-hand', '1.0.0+1.35.0')));
      const invalid = await waitFor(
        'the duplicate to be recorded',
        async () => (await getRunsJson(t)).invalidSpecs.find((i) => i.file.endsWith('by-hand-2.yaml')),
        30_000,
      );
      expect(invalid.error).toMatch(/already used by by-hand\.json/);
      expect((await getRunsJson(t)).runs.filter((r) => r.name === 'by-hand')).toHaveLength(1);
    } finally {
      server.kill('SIGTERM');
      const r = await server;
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toMatch(/SIGTERM: stopping/);
    }
  });

  it('every reconcile of a full five-tier run returns within 250 ms (ccci_reconcile_duration_seconds on /metrics)', async () => {
    const server = serve(t);
    let output = '';
    server.stdout?.on('data', (c: Buffer) => (output += c.toString()));
    server.stderr?.on('data', (c: Buffer) => (output += c.toString()));
    let stopped = false;
    try {
      await serving(server);
      const url = await waitFor('the HTTP address', async () => /"address":"(http:\/\/[^"]+)"/.exec(output)?.[1], 30_000, 100);
      dropSpec(t, 'five-tiers', { repo: repo.path, ref: 'main', tiers: [...TIER_NAMES] });
      const run = await untilDone(t, 'five-tiers', 600_000);
      expect(run.result).toBe('passed');
      const tiers = withStore(t, (s) => s.getTiers('five-tiers').map((x) => `${x.tier}:${x.result}`));
      expect(tiers).toEqual(TIER_NAMES.map((n) => `${n}:pass`));

      const metrics = await (await fetch(`${url}/metrics`)).text();
      const sample = (name: string, labels: Record<string, string>): number | null => {
        for (const line of metrics.split('\n')) {
          const m = /^(\w+)\{([^}]*)\} (\S+)$/.exec(line);
          if (!m || m[1] !== name) continue;
          const got = Object.fromEntries([...m[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
          if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
        }
        return null;
      };
      server.kill('SIGTERM');
      stopped = true;
      expect((await server).exitCode).toBe(0);
      // The manager's own account at stop: the longest call of each controller, in ms.
      const line = output.split('\n').find((l) => l.includes('"controller stopped"'));
      const longest = (JSON.parse(line ?? '{}') as { longestReconcile?: Record<string, string> }).longestReconcile ?? {};
      // The figure the engine is judged by, printed for the record (before: one call lasted the whole attempt).
      console.log(
        `longest reconcile per controller: ${JSON.stringify(longest)}; the attempt took ${Math.round(((run.finishedAt ?? 0) - (run.startedAt ?? 0)) / 1000)} s`,
      );
      for (const controller of ['run', 'app']) {
        const count = sample('ccci_reconcile_duration_seconds_count', { controller });
        // Dozens of passes: the run is observed step by step, not awaited in one call.
        expect(count, controller).toBeGreaterThan(20);
        expect(
          sample('ccci_reconcile_duration_seconds_bucket', { controller, le: '0.25' }),
          `${controller} calls within 0.25 s (the longest: ${longest[controller]})`,
        ).toBe(count);
      }
      expect(Object.keys(longest)).toEqual(expect.arrayContaining(['run', 'app']));
      for (const [controller, text] of Object.entries(longest)) expect(Number(/^(\d+) ms/.exec(text)?.[1]), `${controller}: ${text}`).toBeLessThan(250);
    } finally {
      if (!stopped) {
        server.kill('SIGTERM');
        await server;
      }
    }
  }, 700_000);

  it('SIGTERM mid-deploy stops the abra child and exits; the next server claims the directory and resumes the run to a verdict', async () => {
    // The first `abra app deploy` hangs; a restarted controller's retry (call 2) does not.
    const { faults, during } = await sigtermWhileHung('sigterm-mid-deploy', 'app.deploy', 'app deploy', 120_000);
    expect(during.phase).toBe('Deploying');

    // The claim was released: a new server takes the directory and finishes the run.
    const { done, apps } = await restartUntilDone('sigterm-mid-deploy', faults);
    expect(done.attempt).toBe(2);
    expect(done.retries).toHaveLength(1);
    expect(done.retries[0]?.reason).toMatch(/interrupted: the controller stopped while the run was Deploying/);
    expect(apps).toBeGreaterThanOrEqual(2);
  });

  it('SIGTERM mid-teardown does not wait out the teardown: the server exits, and the next one finishes it', async () => {
    const { faults, during } = await sigtermWhileHung('sigterm-mid-teardown', 'app.undeploy', 'app undeploy', 180_000);
    // The verdict was recorded before teardown began; teardown is what is left to do.
    expect(during).toMatchObject({ phase: 'TearingDown', result: 'passed' });
    // It was stopped for the shutdown, not left to run out its own deadline.
    const log = readFileSync(join(t.stateDir, 'runs', 'sigterm-mid-teardown', 'log.txt'), 'utf8');
    expect(log).toMatch(/teardown paused by the controller stopping; it continues on the next start/);
    expect(log).not.toMatch(/teardown incomplete/);

    const { done } = await restartUntilDone('sigterm-mid-teardown', faults);
    expect(done.attempt).toBe(1);
  });
});

/**
 * Serves with the first call of `command` (abra's dotted name) hanging, drops a run, waits until
 * that call hangs and is on record as a child, then SIGTERMs the server: it must exit 0 saying
 * so, with the hung child (and its group) gone. Returns the run as the stop left it.
 */
async function sigtermWhileHung(run: string, command: string, words: string, hangWithinMs: number) {
  const faults = faultEnv(t, `${command}:1:hang`);
  const first = serve(t, faults);
  try {
    await serving(first);
    dropSpec(t, run, { repo: repo.path, ref: 'main' });
    await waitFor(`abra ${words} to hang`, async () => callsOf(faults, command) >= 1, hangWithinMs);
    const hung = await waitFor(
      `the hung ${words} to be recorded as a child`,
      async () => withStore(t, (s) => s.listChildren().find((c) => c.command.includes(words))),
      30_000,
    );
    expect(isAlive(hung.pid, hung.startTicks)).toBe(true);
    first.kill('SIGTERM');
    const r = await first;
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/SIGTERM: stopping/);
    // Nothing of the stopped step runs on: the abra child and its process group are gone.
    expect(isAlive(hung.pid, hung.startTicks)).toBe(false);
    return { faults, during: readRun(t, run)! };
  } finally {
    if (first.exitCode === null) first.kill('SIGKILL');
  }
}

/** A new server on the same state directory finishes the run: passed, nothing of it left. */
async function restartUntilDone(run: string, faults: Record<string, string>) {
  const second = serve(t, faults);
  try {
    await serving(second);
    const done = await untilDone(t, run, 240_000);
    expect(done.result, done.reason ?? '').toBe('passed');
    const apps = withStore(t, (s) => s.appsOfRun(run));
    for (const a of apps) expect(await leftoversOf(t, a.domain)).toEqual(NOTHING);
    expect(existsSync(join(t.stateDir, 'runs', run, 'abra'))).toBe(false);
    return { done, apps: apps.length };
  } finally {
    second.kill('SIGTERM');
    expect((await second).exitCode).toBe(0);
  }
}
