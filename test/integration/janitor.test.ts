import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { stringify } from 'yaml';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RecipeRepo } from '../../fixtures/recipe-repo.js';
import { BUSYBOX_IMAGE } from '../../fixtures/images.js';
import {
  NOTHING,
  callsOf,
  cli,
  dropSpec,
  faultEnv,
  withStore,
  ensureSwarm,
  forceRemoveStacks,
  removeEnvStacks,
  stopLeftoverServers,
  leftoversOf,
  makeTestEnv,
  recipeRepo,
  serve,
  waitFor,
  type TestEnv,
} from '../support/harness.js';

/**
 * The janitor against the real swarm: an app whose owner is alive is never reaped; one whose
 * owner died is reaped at once; one nobody claims is reaped only once old enough; apps outside
 * cc-ci's naming pattern are never candidates; --dry-run removes nothing.
 */

let t: TestEnv;
let repo: RecipeRepo;

beforeAll(async () => {
  await ensureSwarm();
  repo = await recipeRepo('webnotes');
  t = await makeTestEnv({ portRange: [21700, 21799], deploySeconds: 40, httpSeconds: 20, resyncSeconds: 1 });
});

afterEach(async () => {
  await stopLeftoverServers();
  await removeEnvStacks(t);
});

afterAll(() => t?.cleanup());

function drop(name: string): void {
  dropSpec(t, name, { repo: repo.path, ref: 'main' });
}

/** Waits until the run's app exists with its secret generated and abra hangs in the deploy. */
async function hungInDeploy(name: string, env: Record<string, string>): Promise<string> {
  return waitFor(`${name} hanging in abra app deploy`, async () => {
    const app = withStore(t, (s) => s.appsOfRun(name)[0]);
    return callsOf(env, 'app.deploy') >= 1 && app ? app.domain : undefined;
  }, 120_000, 200);
}

function janitorTable(stdout: string, domain: string): string {
  return stdout.split('\n').find((l) => l.startsWith(domain)) ?? '';
}

/** A stack made by hand, as another controller or a person would leave it. */
async function handMadeApp(domain: string): Promise<void> {
  const stack = domain.replace(/\./g, '_');
  const dir = join(t.dir, `hand-${stack}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'compose.yml'),
    stringify({
      version: '3.8',
      services: { app: { image: BUSYBOX_IMAGE, command: ['sleep', '3600'], volumes: ['data:/data'] } },
      volumes: { data: {} },
    }),
  );
  await execa('docker', ['stack', 'deploy', '--compose-file', join(dir, 'compose.yml'), stack], { timeout: 60_000 });
  await execa('docker', ['secret', 'create', `${stack}_token_v1`, '-'], { input: 'x'.repeat(16), timeout: 30_000 });
}

describe('the janitor', () => {
  it('never reaps an app whose owner is alive', async () => {
    const env = faultEnv(t, 'app.deploy:1:hang');
    const server = serve(t, env);
    try {
      drop('owned');
      const domain = await hungInDeploy('owned', env);
      const r = await cli(t, ['janitor', '--grace', '0']);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(janitorTable(r.stdout, domain)).toMatch(/keep .*owned by owned, run by live controller pid \d+/);
      expect((await leftoversOf(t, domain)).envFiles).toHaveLength(1);
      await cli(t, ['delete', 'run', 'owned']);
      await waitFor('owned to be cancelled', async () => withStore(t, (s) => s.getRun('owned')?.phase === 'Done'), 120_000);
      expect(await leftoversOf(t, domain)).toEqual(NOTHING);
    } finally {
      server.kill('SIGTERM');
      await server;
    }
  });

  it('reaps at once an app whose controller died, and a restarted controller then finishes the run cleanly', async () => {
    const env = faultEnv(t, 'app.deploy:1:hang');
    const server = serve(t, env);
    drop('orphaned');
    const domain = await hungInDeploy('orphaned', env);
    server.kill('SIGKILL');
    await server;
    const before = await leftoversOf(t, domain);
    expect(before.envFiles.length + before.secrets.length).toBeGreaterThan(0);

    const dry = await cli(t, ['janitor', '--dry-run', '--grace', '0']);
    expect(janitorTable(dry.stdout, domain)).toMatch(/reap +dry-run .*whose controller is gone/);
    expect(await leftoversOf(t, domain)).toEqual(before);

    const r = await cli(t, ['janitor', '--grace', '1']);
    expect(janitorTable(r.stdout, domain)).toMatch(/reap +reaped .*owned by orphaned, whose controller is gone/);
    expect(await leftoversOf(t, domain)).toEqual(NOTHING);
    expect(withStore(t, (s) => s.getApp(domain)?.state)).toBe('released');

    const again = serve(t, env);
    try {
      const done = await waitFor('orphaned to finish', async () => withStore(t, (s) => {
        const run = s.getRun('orphaned');
        return run?.phase === 'Done' ? run : undefined;
      }), 240_000);
      expect(done.result).toBe('passed');
      for (const a of withStore(t, (s) => s.appsOfRun('orphaned'))) expect(await leftoversOf(t, a.domain)).toEqual(NOTHING);
    } finally {
      again.kill('SIGTERM');
      await again;
    }
  });

  it('reaps an app nobody claims only once it is old enough, and never one outside its pattern', async () => {
    const orphan = 'abcd-0a1b2c.ci.localhost';
    const foreign = 'warm-webnotes.ci.localhost';
    await handMadeApp(orphan);
    await handMadeApp(foreign);
    try {
      const young = await cli(t, ['janitor', '--grace', '0']);
      expect(janitorTable(young.stdout, orphan)).toMatch(/wait .*no run owns it; reaped once 120 min old/);
      expect(young.stdout).not.toContain(foreign);
      expect((await leftoversOf(t, orphan)).services).toHaveLength(1);

      const cfg = join(t.dir, 'young-limit.yaml');
      writeFileSync(cfg, `${readFileSync(t.configFile, 'utf8')}janitor:\n  unknownOwnerAgeSeconds: 1\n  graceSeconds: 1\n`);
      await new Promise((r) => setTimeout(r, 1500));
      const old = await cli(t, ['janitor'], { CCCI_CONFIG: cfg });
      expect(old.exitCode, old.stdout).toBe(0);
      expect(janitorTable(old.stdout, orphan)).toMatch(/reap +reaped .*no run owns it/);
      expect(await leftoversOf(t, orphan)).toEqual(NOTHING);
      expect(old.stdout).not.toContain(foreign);
      expect((await leftoversOf(t, foreign)).services).toHaveLength(1);
      expect((await leftoversOf(t, foreign)).secrets).toHaveLength(1);
    } finally {
      await forceRemoveStacks(['warm-webnotes_ci_localhost', 'abcd-0a1b2c_ci_localhost']);
      await waitFor('hand-made stacks to stop', async () => (await leftoversOf(t, foreign)).containers.length === 0, 60_000);
      for (const s of ['warm-webnotes_ci_localhost', 'abcd-0a1b2c_ci_localhost']) {
        await execa('docker', ['secret', 'rm', `${s}_token_v1`], { reject: false });
        await execa('docker', ['volume', 'rm', '-f', `${s}_data`], { reject: false });
      }
    }
  });
});
