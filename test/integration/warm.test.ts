import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecipeRepo } from '../../fixtures/recipe-repo.js';
import { promotionRunName } from '../../reconcilers/warm.js';
import {
  cli,
  dropSpec,
  ensureSwarm,
  forceRemoveStacks,
  makeTestEnv,
  readRun,
  recipeRepo,
  removeEnvStacks,
  serve,
  serving,
  untilDone,
  waitFor,
  type TestEnv,
} from '../support/harness.js';

/**
 * The warm lane on the real swarm (docs/warm.md). Promotion: `cc-ci serve` reads the default
 * branch of each Warm object, submits a cold run of a head it has not promoted — once per commit —
 * and promotes the head only when that run passes; a failing head and a quick run never promote.
 * The warm app: created at the promoted commit, repaired after a service or its whole stack is
 * removed behind cc-ci's back, upgraded after a promote. The quick lane: holds the warm app (one
 * run at a time, the other waits saying why), upgrades it in place, and leaves it canonical with
 * its data whether it passed or failed — even when the server is killed mid-upgrade.
 */

let t: TestEnv;
let base: RecipeRepo;
let work: string;
let repo: string;

interface WarmJson {
  warm: {
    recipe: string;
    head: string | null;
    promotedCommit: string | null;
    promotedRun: string | null;
    candidateRun: string | null;
    health: string;
    healthReason: string | null;
    canonicalCommit: string | null;
    holder: string | null;
    upkeep: string | null;
    returnPending: string | null;
    snapshot: string | null;
    lastGateAt: number | null;
  }[];
}

const STACK = 'warm-webnotes_ci_localhost';
/** What `!testme --quick` asks for: the whole ladder (install is n/a on a warm app). */
const LADDER = ['install', 'upgrade', 'backup', 'restore', 'custom'];

const git = (...args: string[]): string => execFileSync('git', ['-C', repo, ...args], { encoding: 'utf8', timeout: 30_000 }).trim();
const warm = async () => (JSON.parse((await cli(t, ['get', 'warm', '-o', 'json'])).stdout) as WarmJson).warm.find((w) => w.recipe === 'webnotes');

beforeAll(async () => {
  await ensureSwarm();
  base = await recipeRepo('webnotes');
  work = mkdtempSync(join(tmpdir(), 'ccci-warm-'));
  repo = join(work, 'webnotes');
  // A clone of its own: this test moves main.
  execFileSync('git', ['clone', '--quiet', '--no-local', base.path, repo], { timeout: 60_000 });
  for (const b of Object.keys(base.branches)) git('branch', '--quiet', b, `origin/${b}`);
  t = await makeTestEnv({ portRange: [21300, 21399], deploySeconds: 25, httpSeconds: 15, warmHeadCheckSeconds: 1, warmCheckSeconds: 2 });
  // A passing head that is not the promoted one: what quick runs test.
  git('checkout', '--quiet', '-b', 'feature', 'main');
  writeFileSync(join(repo, 'README.md'), 'webnotes, with a feature\n');
  git('-c', 'user.name=t', '-c', 'user.email=t@example.org', 'commit', '--quiet', '-am', 'docs: a feature');
  git('checkout', '--quiet', 'main');
});

afterAll(async () => {
  await removeEnvStacks(t);
  await forceRemoveStacks([STACK]);
  // What a failed run of this test may have left of the warm app besides its stack.
  await waitFor('the warm stack to go', async () => !docker('ps', '-a', '--format', '{{.Names}}').includes(STACK), 60_000).catch(() => undefined);
  const left = (kind: string) =>
    docker(kind, 'ls', '--format', '{{.Name}}')
      .split('\n')
      .filter((n) => n.startsWith(`${STACK}_`));
  for (const v of left('volume')) docker('volume', 'rm', '-f', v);
  for (const s of left('secret')) docker('secret', 'rm', s);
  t?.cleanup();
  rmSync(work, { recursive: true, force: true });
});

const healthy = async (why: string, pred: (w: NonNullable<Awaited<ReturnType<typeof warm>>>) => boolean = () => true) => {
  let last: Awaited<ReturnType<typeof warm>> = undefined;
  try {
    return await waitFor(
      why,
      async () => {
        const w = (last = await warm());
        return w && w.health === 'healthy' && !w.upkeep && !w.holder && !w.returnPending && pred(w) ? w : null;
      },
      180_000,
    );
  } catch (e) {
    // Which state it was stuck in, and the end of the upkeep's journal, say why.
    const journal = join(t.stateDir, 'warm-apps', 'webnotes', 'log.txt');
    const tail = existsSync(journal) ? readFileSync(journal, 'utf8').split('\n').slice(-40).join('\n') : '(no journal)';
    throw new Error(`${(e as Error).message}; last: ${JSON.stringify(last)}\n${tail}`, { cause: e });
  }
};

const docker = (...args: string[]): string => execFileSync('docker', args, { encoding: 'utf8', timeout: 60_000 }).trim();
const chaosVersion = (): string => docker('service', 'inspect', `${STACK}_app`, '--format', `{{index .Spec.Labels "coop-cloud.${STACK}.chaos-version"}}`);
const runLog = (name: string): string => {
  try {
    return readFileSync(join(t.stateDir, 'runs', name, 'log.txt'), 'utf8');
  } catch {
    return '';
  }
};

describe('warm lane', () => {
  it('promotes, keeps the warm app canonical and repaired, and lends it to one quick run at a time', async () => {
    const file = join(work, 'warm.yaml');
    writeFileSync(
      file,
      stringify({ apiVersion: 'cc-ci/v1', kind: 'Warm', metadata: { name: 'webnotes' }, spec: { recipe: 'webnotes', source: { repo, branch: 'main' } } }),
    );
    const applied = await cli(t, ['apply', '-f', file]);
    expect(applied.exitCode, applied.stderr).toBe(0);
    expect(applied.stdout).toMatch(/^warm\/webnotes configured/);
    // Before any controller looked at it, it is listed as pending.
    expect((await warm())?.health).toBe('pending');

    // One pass with no server: the head is read and its promotion run submitted, as a spec file
    // the server takes in; nothing is healthy yet, so it exits 1 saying why.
    const head = base.head;
    const first = promotionRunName('webnotes', head);
    const embedded = await cli(t, ['warm', 'reconcile']);
    expect(embedded.exitCode, embedded.stderr).toBe(1);
    expect(embedded.stdout).toContain(`webnotes: absent: nothing promoted yet: ${first} is testing main's head`);
    expect(existsSync(join(t.stateDir, 'specs', `${first}.yaml`))).toBe(true);

    let server = serve(t);
    try {
      await serving(server);
      await waitFor('the promotion run', async () => (await warm())?.candidateRun === first, 60_000);
      const run = await untilDone(t, first, 600_000);
      expect(run).toMatchObject({ result: 'passed', lane: 'cold', commitSha: head });

      // Promoted, the warm app is created at the promoted commit, with its data and a snapshot.
      const created = await healthy('the warm app to be created', (w) => w.canonicalCommit === head);
      expect(created).toMatchObject({ promotedCommit: head, promotedRun: first, candidateRun: null });
      expect(created.healthReason).toMatch(/^created at [0-9a-f]{12}: \d service\(s\) converged, serving, canonical data written/);
      expect(created.snapshot).toMatch(/^abra backup snapshot \S+ at [0-9a-f]{12}/);
      expect(head.startsWith(chaosVersion())).toBe(true);

      // Through the running server: one pass, and the warm app is healthy.
      const pass = await cli(t, ['warm', 'reconcile', 'webnotes', '--wait-seconds', '60']);
      expect(pass.exitCode, pass.stdout + pass.stderr).toBe(0);
      expect(pass.stdout).toMatch(/^webnotes: healthy: /m);

      // Repaired after one of its services is removed behind cc-ci's back, then its whole stack.
      const removedAt = Date.now();
      docker('service', 'rm', `${STACK}_worker`);
      const repaired = await healthy('the removed service to be repaired', (w) => /^repaired/.test(w.healthReason ?? '') && (w.lastGateAt ?? 0) > removedAt);
      expect(repaired.healthReason).toMatch(/the canonical data is there/);
      expect(docker('service', 'ls', '--format', '{{.Name}}').split('\n')).toContain(`${STACK}_worker`);
      const stackRemovedAt = Date.now();
      docker('stack', 'rm', STACK);
      await waitFor('the stack to go', async () => !docker('service', 'ls', '--format', '{{.Name}}').includes(STACK), 60_000);
      const rebuilt = await healthy('the removed stack to be repaired', (w) => /^repaired/.test(w.healthReason ?? '') && (w.lastGateAt ?? 0) > stackRemovedAt);
      expect(rebuilt.canonicalCommit).toBe(head);

      // A passing quick run: holds the warm app, skips install, upgrades it in place to its head,
      // and leaves it canonical with its data.
      const feature = git('rev-parse', 'feature');
      dropSpec(t, 'quick-pass', { repo, ref: feature, tiers: LADDER, extra: { lane: 'quick' } });
      const passed = await untilDone(t, 'quick-pass', 300_000);
      expect(passed.result, passed.reason ?? '').toBe('passed');
      expect(passed.laneNote).toBeNull();
      const log = runLog('quick-pass');
      expect(log).toContain('quick lane (lower confidence): on warm-webnotes.ci.localhost');
      expect(log).toMatch(/install: n\/a \(quick lane/);
      expect(log).toMatch(/upgrade: pass/);
      const back = await healthy('the warm app to be returned after the passing quick run', (w) => /^returned to canonical/.test(w.healthReason ?? ''));
      expect(back.canonicalCommit).toBe(head);
      expect(back.healthReason).toMatch(/the canonical data is there/);
      expect(head.startsWith(chaosVersion())).toBe(true);
      // A quick run never promotes.
      expect((await warm())?.promotedCommit).toBe(head);

      // Two quick runs of one recipe: one holds the warm app, the other waits saying for what.
      // Both heads fail (one wipes the data on upgrade, one never becomes healthy); each leaves
      // the warm app restored and healthy.
      dropSpec(t, 'quick-wipes', { repo, ref: base.branches['wipes-data']!, tiers: LADDER, extra: { lane: 'quick' } });
      dropSpec(t, 'quick-sick', { repo, ref: base.branches['unhealthy']!, tiers: LADDER, extra: { lane: 'quick' } });
      const waiting = await waitFor(
        'one quick run to wait for the other',
        async () => {
          for (const [a, b] of [
            ['quick-wipes', 'quick-sick'],
            ['quick-sick', 'quick-wipes'],
          ] as const) {
            const r = readRun(t, b);
            if (r?.phase === 'Pending' && r.waitingReason === `waiting for warm-webnotes (held by ${a})`) return r;
            if (r?.phase === 'Pending' && r.waitingReason?.startsWith('waiting for warm-webnotes (being returned to canonical after')) return r;
          }
          return null;
        },
        120_000,
        200,
      );
      expect(waiting.waitingReason).toMatch(/^waiting for warm-webnotes \((held by|being returned to canonical after) quick-/);
      const wipes = await untilDone(t, 'quick-wipes', 400_000);
      const sick = await untilDone(t, 'quick-sick', 400_000);
      expect(wipes.result).toBe('failed');
      expect(wipes.reason).toMatch(/lost the data written before it/);
      expect(sick.result).toBe('failed');
      expect(sick.reason).toMatch(/did not converge|not serving/);
      const restored = await healthy('the warm app to be restored after the failing quick runs', (w) => /^returned to canonical/.test(w.healthReason ?? ''));
      expect(restored.canonicalCommit).toBe(head);
      expect(restored.healthReason).toMatch(/the canonical data is there \(restored from the snapshot\)|the canonical data is there/);
      expect(head.startsWith(chaosVersion())).toBe(true);

      // kill -9 of the server during a quick run's upgrade; a restart ends with the run's verdict
      // and the warm app canonical.
      dropSpec(t, 'quick-kill', { repo, ref: feature, tiers: LADDER, extra: { lane: 'quick' } });
      await waitFor(
        'the quick upgrade to be under way',
        async () => /abra app deploy: warm-webnotes\.ci\.localhost at head/.test(runLog('quick-kill')),
        180_000,
        100,
      );
      server.kill('SIGKILL');
      await server;
      server = serve(t);
      await serving(server);
      const killed = await untilDone(t, 'quick-kill', 400_000);
      expect(killed.result, killed.reason ?? '').toBe('passed');
      expect(killed.attempt).toBe(2);
      const after = await healthy('the warm app to be canonical after the restart', (w) => w.canonicalCommit === head);
      expect(after.holder).toBeNull();
      expect(head.startsWith(chaosVersion())).toBe(true);

      // main moves to the feature: its cold run passes, it is promoted, the warm app upgraded to it.
      git('update-ref', 'refs/heads/main', feature);
      const second = promotionRunName('webnotes', feature);
      expect((await untilDone(t, second, 600_000)).result).toBe('passed');
      const upgraded = await healthy('the warm app to be upgraded to the new promote', (w) => w.canonicalCommit === feature);
      expect(upgraded.healthReason).toMatch(/^upgraded at [0-9a-f]{12}: .*the canonical data is there/);
      expect(feature.startsWith(chaosVersion())).toBe(true);

      // main moves to a head whose deploy fails: its cold run fails, and the promoted commit stays.
      const broken = base.branches['deploy-fails']!;
      git('update-ref', 'refs/heads/main', broken);
      const third = promotionRunName('webnotes', broken);
      expect((await untilDone(t, third, 300_000)).result).toBe('failed');
      await waitFor('the failed candidate to be let go', async () => (await warm())?.candidateRun === null, 30_000);
      // Once per commit: looked at again and again, the failed head is not submitted twice.
      await new Promise((r) => setTimeout(r, 4_000));
      expect(await warm()).toMatchObject({ head: broken, promotedCommit: feature, canonicalCommit: feature, candidateRun: null });
      const runs = (JSON.parse((await cli(t, ['get', 'runs', '-o', 'json'])).stdout) as { runs: { name: string }[] }).runs.map((r) => r.name);
      expect(runs.filter((n) => n.startsWith('webnotes-promote-')).sort()).toEqual([first, second, third].sort());

      const described = await cli(t, ['describe', 'warm', 'webnotes']);
      expect(described.stdout).toContain(`Promoted:   ${feature} by ${second}`);
      expect(described.stdout).toMatch(new RegExp(`Canonical:  ${feature} \\(version \\S+\\)`));
      expect(described.stdout).toMatch(/Upkeep log \(last lines\):\n {2}\S+ /);
      expect(described.stdout).toContain('App:        warm-webnotes.ci.localhost');

      // Deleting the Warm file removes the warm app, then forgets its status.
      unlinkSync(join(t.stateDir, 'warm', 'webnotes.yaml'));
      await waitFor('the Warm object to be forgotten', async () => !(await warm()), 120_000);
      expect(docker('service', 'ls', '--format', '{{.Name}}')).not.toContain(STACK);
      expect(docker('volume', 'ls', '--format', '{{.Name}}')).not.toContain(STACK);
    } finally {
      server.kill('SIGTERM');
      const ended = await server;
      expect(ended.exitCode, String(ended.stderr).slice(-3000)).toBe(0);
    }
  }, 1_800_000);
});
