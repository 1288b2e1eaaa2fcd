import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecipeRepo } from '../../fixtures/recipe-repo.js';
import { groupMembers, isAlive, processStartTicks } from '../../controller/clients/process.js';
import { Store } from '../../state/store.js';
import type { RunRecord } from '../../state/types.js';
import {
  NOTHING,
  ROOT,
  anyTestStacks,
  ensureSwarm,
  envStacks,
  leftoversOf,
  makeTestEnv,
  recipeRepo,
  removeEnvStacks,
  serve,
  waitFor,
  type TestEnv,
} from '../support/harness.js';

/**
 * Many runs through one `cc-ci serve`: more than its capacity; several of one recipe at once,
 * at different refs and overlapping in time; install-only and install+upgrade ladders; passing
 * and failing refs mixed. Every verdict must match its ref, every run must have tested (and
 * deployed) exactly the commit of its ref, the capacity must never be exceeded, and nothing may
 * be left afterwards: no stack object, no .env, no run ABRA_DIR, no child process. The numbers
 * go to dist/stress-report.json for the record.
 */

let t: TestEnv;
let webnotes: RecipeRepo;
let plainpage: RecipeRepo;

const CAPACITY = 3;

beforeAll(async () => {
  await ensureSwarm();
  webnotes = await recipeRepo('webnotes');
  plainpage = await recipeRepo('plainpage');
  t = await makeTestEnv({ portRange: [21800, 21899], deploySeconds: 40, httpSeconds: 20, capacity: CAPACITY, resyncSeconds: 2 });
});

afterAll(async () => {
  await removeEnvStacks(t);
  t?.cleanup();
});

interface Planned {
  name: string;
  recipe: 'webnotes' | 'plainpage';
  ref: string;
  tiers: string[];
  expect: 'passed' | 'failed';
  /** The commit the ref names. */
  commit: string;
  /** The chaos-versions the run's deploys must converge at, in order (null: only check that
   *  each is the ref's or the upgrade base's commit — a failing deploy may converge or not). */
  deploys: string[] | null;
}

function withState<T>(fn: (s: Store) => T): T {
  const s = new Store(join(t.stateDir, 'cc-ci.db'));
  try {
    return fn(s);
  } finally {
    s.close();
  }
}

function writeSpec(p: Planned): void {
  const repo = p.recipe === 'webnotes' ? webnotes : plainpage;
  writeFileSync(
    join(t.stateDir, 'specs', `${p.name}.yaml`),
    stringify({
      apiVersion: 'cc-ci/v1',
      kind: 'Run',
      metadata: { name: p.name },
      spec: { recipe: p.recipe, source: { repo: repo.path, ref: p.ref }, tiers: p.tiers },
    }),
  );
}

describe('stress', () => {
  it('pushes 13 runs through capacity 3: every verdict and commit matches its ref and nothing leaks', async () => {
    const head = webnotes.head;
    const base = webnotes.tagCommits['1.1.0+1.35.0']!;
    const wipes = webnotes.branches['wipes-data']!;
    const install = ['install'];
    const upgrade = ['install', 'upgrade'];
    // Wave 1: one recipe at three refs, admitted together, so they overlap in time.
    const wave1: Planned[] = [
      { name: 's-main-1', recipe: 'webnotes', ref: 'main', tiers: install, expect: 'passed', commit: head, deploys: [head] },
      { name: 's-rel-110', recipe: 'webnotes', ref: '1.1.0+1.35.0', tiers: install, expect: 'passed', commit: base, deploys: [base] },
      {
        name: 's-rel-100',
        recipe: 'webnotes',
        ref: '1.0.0+1.35.0',
        tiers: install,
        expect: 'passed',
        commit: webnotes.tagCommits['1.0.0+1.35.0']!,
        deploys: [webnotes.tagCommits['1.0.0+1.35.0']!],
      },
    ];
    const wave2: Planned[] = [
      ...[1, 2].map((i): Planned => ({
        name: `s-upgrade-${i}`,
        recipe: 'webnotes',
        ref: 'main',
        tiers: upgrade,
        expect: 'passed',
        commit: head,
        deploys: [head, base, head],
      })),
      { name: 's-wipes-data', recipe: 'webnotes', ref: 'wipes-data', tiers: upgrade, expect: 'failed', commit: wipes, deploys: [wipes, base, wipes] },
      ...[1, 2].map((i): Planned => ({
        name: `s-unhealthy-${i}`,
        recipe: 'webnotes',
        ref: 'unhealthy',
        tiers: install,
        expect: 'failed',
        commit: webnotes.branches.unhealthy!,
        deploys: null,
      })),
      {
        name: 's-deploy-fails',
        recipe: 'webnotes',
        ref: 'deploy-fails',
        tiers: install,
        expect: 'failed',
        commit: webnotes.branches['deploy-fails']!,
        deploys: null,
      },
      ...[2, 3].map((i): Planned => ({
        name: `s-main-${i}`,
        recipe: 'webnotes',
        ref: 'main',
        tiers: install,
        expect: 'passed',
        commit: head,
        deploys: [head],
      })),
      ...[1, 2].map((i): Planned => ({
        name: `s-plain-${i}`,
        recipe: 'plainpage',
        ref: 'main',
        tiers: install,
        expect: 'passed',
        commit: plainpage.head,
        deploys: [plainpage.head],
      })),
    ];
    const plan = [...wave1, ...wave2];

    const server = serve(t);
    const started = Date.now();
    let maxActive = 0;
    const children = new Map<number, string | null>();
    const sample = (s: Store) => {
      maxActive = Math.max(maxActive, s.countActiveRuns());
      for (const c of s.listChildren()) children.set(c.pid, c.startTicks);
    };
    try {
      mkdirSync(join(t.stateDir, 'specs'), { recursive: true });
      for (const p of wave1) writeSpec(p);
      await waitFor(
        'wave 1 to be admitted together',
        async () =>
          withState((s) => {
            sample(s);
            return wave1.every((p) => {
              const r = s.getRun(p.name);
              return r && r.phase !== 'Pending';
            });
          }),
        120_000,
        250,
      );
      for (const p of wave2) writeSpec(p);
      const runs = await waitFor(
        'every run to be done',
        async () =>
          withState((s) => {
            sample(s);
            const all = plan.map((p) => s.getRun(p.name));
            return all.every((r) => r?.phase === 'Done') ? (all as RunRecord[]) : undefined;
          }),
        1_800_000,
        250,
      );
      const wallMs = Date.now() - started;

      // Verdicts, commits and what was deployed, per run.
      const perRun = plan.map((p) => {
        const r = runs.find((x) => x.name === p.name)!;
        const all = withState((s) => s.eventsSince(p.name, 0, 100_000));
        // What the final attempt deployed (an attempt retried for an infrastructure fault counts not).
        const lastRetry = all.map((e) => /^retrying from a clean slate/.test(e.text)).lastIndexOf(true);
        const events = all.slice(lastRetry + 1);
        // A head converges at its chaos-version; a release, deployed as an operator deploys it, at
        // its version, which stands for the commit the tag names.
        const deployed = events
          .map((e) => {
            const m = /^converged at (?:chaos-version (\S+)|version (\S+)):/.exec(e.text);
            return m?.[1] ?? (m?.[2] ? (webnotes.tagCommits[m[2]] ?? plainpage.tagCommits[m[2]] ?? m[2]) : undefined);
          })
          .filter((v): v is string => v !== undefined);
        return { p, r, deployed };
      });
      for (const { p, r, deployed } of perRun) {
        expect(`${p.name}: ${r.result}`, r.reason ?? '').toBe(`${p.name}: ${p.expect}`);
        // Never retried for what the recipe did; a retry is only ever for an infrastructure fault
        // (Docker's overlay networking can reject a task under this churn), and it is on record.
        expect(r.attempt, `${p.name}: attempts vs retries on record`).toBe(1 + r.retries.length);
        for (const retry of r.retries) expect(retry.reason, `${p.name} was retried`).toMatch(/^infrastructure: /);
        if (p.expect !== 'passed') expect(r.attempt, `${p.name} failed and was not retried`).toBe(1);
        expect(`${p.name}: ${r.commitSha}`).toBe(`${p.name}: ${p.commit}`);
        if (p.deploys) {
          // As a set, not in order: the upgrade's base release installs beside install's head
          // (reconcilers/tiers/upgrade.ts), so either may converge first.
          const short = (list: string[]) => list.map((c) => c.slice(0, 8)).sort();
          expect(short(deployed), `${p.name} deployed ${deployed.join(', ')}`).toEqual(short(p.deploys));
        } else {
          for (const d of deployed) expect(d.startsWith(p.commit.slice(0, 8)), `${p.name} deployed ${d}`).toBe(true);
        }
      }

      // One recipe at different refs ran at the same time: every pair of wave 1 overlapped.
      const w1 = wave1.map((p) => runs.find((r) => r.name === p.name)!);
      const overlapMs = Math.min(...w1.map((r) => r.finishedAt!)) - Math.max(...w1.map((r) => r.startedAt!));
      expect(overlapMs).toBeGreaterThan(0);
      expect(maxActive).toBeLessThanOrEqual(CAPACITY);
      expect(maxActive).toBeGreaterThan(1);

      // Leaks: every app's stack objects and .env, any stack of this env still on the swarm,
      // every run's ABRA_DIR, every child process (and its group) the controller started.
      const apps = withState((s) => plan.flatMap((p) => s.appsOfRun(p.name)));
      const leaks: string[] = [];
      for (const a of apps) {
        const left = await leftoversOf(t, a.domain);
        if (JSON.stringify(left) !== JSON.stringify(NOTHING)) leaks.push(`${a.domain}: ${JSON.stringify(left)}`);
        if (a.state !== 'released') leaks.push(`${a.domain}: lease still ${a.state}`);
      }
      const mine = new Set(await envStacks(t));
      for (const s of await anyTestStacks()) if (mine.has(s)) leaks.push(`stack ${s} still on the swarm`);
      for (const p of plan) {
        const dir = join(t.stateDir, 'runs', p.name, 'abra');
        if (existsSync(dir)) leaks.push(`ABRA_DIR ${dir}`);
      }
      for (const a of apps) if (existsSync(a.abraDir)) leaks.push(`ABRA_DIR ${a.abraDir}`);
      for (const c of withState((s) => s.listChildren())) leaks.push(`child ${c.pid} (${c.command}) still on record`);
      for (const [pid, ticks] of children) {
        if (isAlive(pid, ticks)) leaks.push(`child ${pid} still running`);
        // A pid reused since (another start time) means its old group ended before the reuse.
        const now = processStartTicks(pid);
        if ((now === null || now === ticks) && groupMembers(pid).length > 0) leaks.push(`process group ${pid} still has ${groupMembers(pid).join(', ')}`);
      }
      expect(leaks).toEqual([]);
      // Two runs of one recipe never shared a domain, a port or a checkout.
      expect(new Set(apps.map((a) => a.domain)).size).toBe(apps.length);
      // Each app deploys from a checkout of its own (the upgrade's base release beside install's
      // head, reconcilers/deploy.ts), inside its own run's directory (a retry reuses it).
      expect(new Set(apps.map((a) => `${a.attempt} ${a.abraDir}`)).size).toBe(apps.length);
      for (const a of apps) expect(a.abraDir.startsWith(join(t.stateDir, 'runs', a.run, 'abra')), a.abraDir).toBe(true);
      expect(new Set(apps.map((a) => a.run)).size).toBe(plan.length);
      expect(children.size).toBeGreaterThan(plan.length);

      const report = {
        runs: plan.length,
        capacity: CAPACITY,
        maxActiveObserved: maxActive,
        wallSeconds: Math.round(wallMs / 100) / 10,
        leaksFound: leaks.length,
        leaks,
        childProcessesSeen: children.size,
        sameRecipeDifferentRefsOverlapSeconds: Math.round(overlapMs / 100) / 10,
        perRun: perRun.map(({ p, r, deployed }) => ({
          name: r.name,
          recipe: p.recipe,
          ref: p.ref,
          tiers: p.tiers,
          expected: p.expect,
          result: r.result,
          commit: r.commitSha,
          deployedChaosVersions: deployed,
          attempt: r.attempt,
          retries: r.retries.map((x) => x.reason),
          seconds: r.finishedAt && r.startedAt ? (r.finishedAt - r.startedAt) / 1000 : null,
        })),
      };
      mkdirSync(join(ROOT, 'dist'), { recursive: true });
      writeFileSync(join(ROOT, 'dist', 'stress-report.json'), `${JSON.stringify(report, null, 2)}\n`);
      console.log(`stress: ${report.runs} runs, capacity ${CAPACITY}, ${report.wallSeconds}s wall, leaks ${report.leaksFound}`);
    } finally {
      server.kill('SIGTERM');
      await server;
    }
  }, 2_400_000);
});
