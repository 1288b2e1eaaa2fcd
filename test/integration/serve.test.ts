import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
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
      const invalid = await waitFor('the duplicate to be recorded', async () =>
        (await getRunsJson(t)).invalidSpecs.find((i) => i.file.endsWith('by-hand-2.yaml')),
      30_000);
      expect(invalid.error).toMatch(/already used by by-hand\.json/);
      expect((await getRunsJson(t)).runs.filter((r) => r.name === 'by-hand')).toHaveLength(1);
    } finally {
      server.kill('SIGTERM');
      const r = await server;
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toMatch(/SIGTERM: stopping/);
    }
  });

  it('after a clean stop, a new server may claim the same state directory', async () => {
    const server = serve(t);
    try {
      await serving(server);
      const r = await cli(t, ['serve']);
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toMatch(/already serving/);
      // The refusal came from the new server, which is still up.
      expect(server.exitCode).toBeNull();
    } finally {
      server.kill('SIGTERM');
      expect((await server).exitCode).toBe(0);
    }
  });
});
