import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecipeRepo } from '../../fixtures/recipe-repo.js';
import { promotionRunName } from '../../reconcilers/warm.js';
import { cli, dropSpec, ensureSwarm, makeTestEnv, recipeRepo, removeEnvStacks, serve, serving, untilDone, waitFor, type TestEnv } from '../support/harness.js';

/**
 * Promotion, the part of the warm lane that decides the canonical version: `cc-ci serve` reads
 * the default branch of each Warm object, submits a cold run of a head it has not promoted — once
 * per commit — and promotes the head only when that run passes. A failing head and a quick run
 * never promote.
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
  }[];
}

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
  t = await makeTestEnv({ portRange: [21300, 21399], deploySeconds: 25, httpSeconds: 15, warmHeadCheckSeconds: 1 });
});

afterAll(async () => {
  await removeEnvStacks(t);
  t?.cleanup();
  rmSync(work, { recursive: true, force: true });
});

describe('warm promotion', () => {
  it('promotes the default branch head only after its own cold run passes; a failing head and a quick run never do', async () => {
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

    const server = serve(t);
    try {
      await serving(server);
      await waitFor('the promotion run', async () => (await warm())?.candidateRun === first, 60_000);
      const run = await untilDone(t, first, 600_000);
      expect(run).toMatchObject({ result: 'passed', lane: 'cold', commitSha: head });
      const promoted = await waitFor('the promotion', async () => ((await warm())?.promotedCommit === head ? warm() : null), 60_000);
      expect(promoted).toMatchObject({ head, promotedRun: first, candidateRun: null, health: 'absent' });

      // Through the running server: it reconciles, and the warm app is not healthy (not deployed yet).
      const pass = await cli(t, ['warm', 'reconcile', 'webnotes', '--wait-seconds', '30']);
      expect(pass.exitCode, pass.stderr).toBe(1);
      expect(pass.stdout).toMatch(/^webnotes: absent: promoted [0-9a-f]{12}; the warm app itself is not deployed/m);

      // A quick run of another commit passes, and promotes nothing.
      const other = base.tagCommits[base.tags.at(-1)!]!;
      dropSpec(t, 'quick-other', { repo, ref: other, extra: { lane: 'quick' } });
      const quick = await untilDone(t, 'quick-other', 300_000);
      expect(quick.result).toBe('passed');
      // It had no healthy warm app to borrow, fell back to the cold ladder, and says why.
      expect(quick.laneNote).toMatch(/^no healthy warm app — warm-webnotes is absent \(promoted [0-9a-f]{12}; the warm app itself is not deployed/);

      // main moves to a head whose deploy fails: its cold run fails, and the promoted commit stays.
      const broken = base.branches['deploy-fails']!;
      git('update-ref', 'refs/heads/main', broken);
      const second = promotionRunName('webnotes', broken);
      expect((await untilDone(t, second, 300_000)).result).toBe('failed');
      await waitFor('the failed candidate to be let go', async () => (await warm())?.candidateRun === null, 30_000);
      // Once per commit: looked at again and again, the failed head is not submitted twice.
      await new Promise((r) => setTimeout(r, 4_000));
      const after = await warm();
      expect(after).toMatchObject({ head: broken, promotedCommit: head, promotedRun: first, candidateRun: null });
      const runs = (JSON.parse((await cli(t, ['get', 'runs', '-o', 'json'])).stdout) as { runs: { name: string }[] }).runs.map((r) => r.name);
      expect(runs.filter((n) => n.startsWith('webnotes-promote-')).sort()).toEqual([first, second].sort());

      const described = await cli(t, ['describe', 'warm', 'webnotes']);
      expect(described.stdout).toContain(`Promoted:   ${head} by ${first}`);

      // Deleting the Warm file forgets its status.
      unlinkSync(join(t.stateDir, 'warm', 'webnotes.yaml'));
      await waitFor('the Warm object to be forgotten', async () => !(await warm()), 30_000);
    } finally {
      server.kill('SIGTERM');
      expect((await server).exitCode).toBe(0);
    }
  }, 900_000);
});
