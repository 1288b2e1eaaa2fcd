import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecipeRepo } from '../../fixtures/recipe-repo.js';
import { Store } from '../../state/store.js';
import type { RunRecord } from '../../state/types.js';
import { NOTHING, anyTestStacks, ensureSwarm, forceRemoveStacks, removeEnvStacks, leftoversOf, makeTestEnv, recipeRepo, serve, waitFor, type TestEnv } from '../support/harness.js';

/**
 * Many runs through one `cc-ci serve`: more than its capacity, several of one recipe at once,
 * passing and failing refs mixed. Every verdict must match its ref, the capacity must never be
 * exceeded, and nothing may be left on the swarm afterwards. The numbers go to
 * dist/stress-report.json for the record.
 */

let t: TestEnv;
let webnotes: RecipeRepo;
let plainpage: RecipeRepo;

const CAPACITY = 3;

beforeAll(async () => {
  await ensureSwarm();
  webnotes = await recipeRepo('webnotes');
  plainpage = await recipeRepo('plainpage');
  t = await makeTestEnv({ portRange: [21800, 21899], deploySeconds: 25, httpSeconds: 15, capacity: CAPACITY, resyncSeconds: 2 });
});

afterAll(async () => {
  await removeEnvStacks(t);
  t?.cleanup();
});

describe('stress', () => {
  it('pushes 10 runs through capacity 3: every verdict matches its ref and nothing leaks', async () => {
    const plan: { name: string; recipe: string; repo: string; ref: string; expect: string }[] = [
      ...[1, 2, 3, 4].map((i) => ({ name: `s-main-${i}`, recipe: 'webnotes', repo: webnotes.path, ref: 'main', expect: 'passed' })),
      ...[1, 2].map((i) => ({ name: `s-unhealthy-${i}`, recipe: 'webnotes', repo: webnotes.path, ref: 'unhealthy', expect: 'failed' })),
      { name: 's-deploy-fails', recipe: 'webnotes', repo: webnotes.path, ref: 'deploy-fails', expect: 'failed' },
      { name: 's-release', recipe: 'webnotes', repo: webnotes.path, ref: '1.0.0+1.35.0', expect: 'passed' },
      ...[1, 2].map((i) => ({ name: `s-plain-${i}`, recipe: 'plainpage', repo: plainpage.path, ref: 'main', expect: 'passed' })),
    ];
    const server = serve(t);
    const started = Date.now();
    let maxActive = 0;
    try {
      mkdirSync(join(t.stateDir, 'specs'), { recursive: true });
      for (const p of plan) {
        writeFileSync(
          join(t.stateDir, 'specs', `${p.name}.yaml`),
          stringify({ apiVersion: 'cc-ci/v1', kind: 'Run', metadata: { name: p.name }, spec: { recipe: p.recipe, source: { repo: p.repo, ref: p.ref }, tiers: ['install'] } }),
        );
      }
      const runs = await waitFor('every run to be done', async () => {
        const s = new Store(join(t.stateDir, 'cc-ci.db'));
        try {
          maxActive = Math.max(maxActive, s.countActiveRuns());
          const all = plan.map((p) => s.getRun(p.name));
          return all.every((r) => r?.phase === 'Done') ? (all as RunRecord[]) : undefined;
        } finally {
          s.close();
        }
      }, 1_200_000, 250);
      const wallMs = Date.now() - started;

      for (const p of plan) {
        const r = runs.find((x) => x.name === p.name)!;
        expect(`${p.name}: ${r.result}`).toBe(`${p.name}: ${p.expect}`);
        expect(r.attempt).toBe(1);
      }
      expect(maxActive).toBeLessThanOrEqual(CAPACITY);
      expect(maxActive).toBeGreaterThan(1);

      const s = new Store(join(t.stateDir, 'cc-ci.db'));
      const apps = plan.flatMap((p) => s.appsOfRun(p.name));
      s.close();
      const leaks: string[] = [];
      for (const a of apps) {
        const left = await leftoversOf(t, a.domain);
        if (JSON.stringify(left) !== JSON.stringify(NOTHING)) leaks.push(`${a.domain}: ${JSON.stringify(left)}`);
      }
      expect(leaks).toEqual([]);
      // Two runs of one recipe never shared a domain, a port or a checkout.
      expect(new Set(apps.map((a) => a.domain)).size).toBe(apps.length);
      expect(new Set(apps.map((a) => a.abraDir)).size).toBe(plan.length);

      const report = {
        runs: plan.length,
        capacity: CAPACITY,
        maxActiveObserved: maxActive,
        wallSeconds: Math.round(wallMs / 100) / 10,
        leaksFound: leaks.length,
        perRunSeconds: runs.map((r) => ({ name: r.name, result: r.result, seconds: r.finishedAt && r.startedAt ? (r.finishedAt - r.startedAt) / 1000 : null })),
      };
      mkdirSync('dist', { recursive: true });
      writeFileSync('dist/stress-report.json', `${JSON.stringify(report, null, 2)}\n`);
      console.log(`stress: ${report.runs} runs, capacity ${CAPACITY}, ${report.wallSeconds}s wall, leaks ${report.leaksFound}`);
    } finally {
      server.kill('SIGTERM');
      await server;
      await execa('docker', ['service', 'ls', '-q'], { reject: false });
    }
  });
});
