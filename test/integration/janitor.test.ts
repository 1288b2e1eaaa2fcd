import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { parse, stringify } from 'yaml';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RecipeRepo } from '../../fixtures/recipe-repo.js';
import { BUSYBOX_IMAGE } from '../../fixtures/images.js';
import {
  CLI,
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
  serving,
  waitFor,
  type TestEnv,
} from '../support/harness.js';

/**
 * The janitor against the real swarm: an app whose owner is alive is never reaped; one whose
 * owner died is reaped at once — unless a controller comes back during the grace period; one
 * nobody claims is reaped only once old enough; apps outside cc-ci's naming pattern (warm
 * canonicals, infrastructure) are never candidates; --dry-run removes nothing; `cc-ci serve`
 * runs it at startup and then periodically.
 *
 * The cases with apps nobody claims use their own domain base (BASE), so that a janitor told to
 * reap unclaimed apps after one second can never touch another suite's apps on the shared swarm.
 */

let t: TestEnv;
let repo: RecipeRepo;
let files = 0;

const BASE = 'janitor.localhost';
const STACK_BASE = BASE.replace(/\./g, '_');

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

/** The test env's config with some keys changed, as a file for CCCI_CONFIG. */
function configWith(patch: { domain?: object; janitor?: object }): string {
  const base = parse(readFileSync(t.configFile, 'utf8')) as Record<string, Record<string, unknown>>;
  const merged = { ...base, domain: { ...base.domain, ...patch.domain }, janitor: { ...base.janitor, ...patch.janitor } };
  const file = join(t.dir, `janitor-config-${++files}.yaml`);
  writeFileSync(file, stringify(merged));
  return file;
}

/** Waits until the run's app exists with its secret generated and abra hangs in the deploy. */
async function hungInDeploy(name: string, env: Record<string, string>): Promise<string> {
  return waitFor(
    `${name} hanging in abra app deploy`,
    async () => {
      const app = withStore(t, (s) => s.appsOfRun(name)[0]);
      return callsOf(env, 'app.deploy') >= 1 && app ? app.domain : undefined;
    },
    120_000,
    200,
  );
}

function janitorTable(stdout: string, domain: string): string {
  return stdout.split('\n').find((l) => l.startsWith(domain)) ?? '';
}

/** Resolves when a child's stderr (pino JSON lines) has said `msg` `times` times. */
function logged(child: ResultPromise, msg: string, times = 1, timeoutMs = 120_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = 0;
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`"${msg}" was not logged ${times} time(s) within ${timeoutMs} ms`)), timeoutMs);
    child.stderr?.on('data', (chunk: Buffer) => {
      buf += chunk.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines) {
        if (l.includes(`"msg":"${msg}"`) && ++seen >= times) {
          clearTimeout(timer);
          resolve();
        }
      }
    });
  });
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

async function removeHandMade(domains: string[]): Promise<void> {
  const stacks = domains.map((d) => d.replace(/\./g, '_'));
  await forceRemoveStacks(stacks);
  for (const d of domains) await waitFor(`${d} to stop`, async () => (await leftoversOf(t, d)).containers.length === 0, 60_000);
  for (const s of stacks) {
    await execa('docker', ['secret', 'rm', `${s}_token_v1`], { reject: false });
    await execa('docker', ['volume', 'rm', '-f', `${s}_data`], { reject: false });
  }
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
      const done = await waitFor(
        'orphaned to finish',
        async () =>
          withStore(t, (s) => {
            const run = s.getRun('orphaned');
            return run?.phase === 'Done' ? run : undefined;
          }),
        240_000,
      );
      expect(done.result).toBe('passed');
      for (const a of withStore(t, (s) => s.appsOfRun('orphaned'))) expect(await leftoversOf(t, a.domain)).toEqual(NOTHING);
    } finally {
      again.kill('SIGTERM');
      await again;
    }
  });

  it('looks again after the grace period: a controller that came back in the meantime wins, nothing is reaped', async () => {
    const env = faultEnv(t, 'app.deploy:1:hang');
    const first = serve(t, env);
    drop('regrace');
    const domain = await hungInDeploy('regrace', env);
    first.kill('SIGKILL');
    await first;

    const janitor = execa('node', [CLI, 'janitor', '--grace', '20'], { env: { ...t.env, CCCI_LOG_LEVEL: 'info' }, reject: false });
    // The first look found the app reapable (its controller is gone) ...
    await logged(janitor, 'janitor: looking again after the grace period before deleting', 1, 60_000);
    // ... and during the grace period a controller starts serving the state directory again.
    const second = serve(t, env);
    try {
      await serving(second);
      const r = await janitor;
      expect(r.exitCode, r.stderr).toBe(0);
      // Depending on how far the controller's recovery got in the grace period, the second look
      // finds the app kept for it, or already gone; either way the janitor deleted nothing.
      expect(janitorTable(r.stdout, domain)).toMatch(
        /reap +changed .*(on a second look: owned by regrace, whose controller died; the serving controller recovers it|gone on a second look)/,
      );
      const done = await waitFor(
        'regrace to finish',
        async () =>
          withStore(t, (s) => {
            const run = s.getRun('regrace');
            return run?.phase === 'Done' ? run : undefined;
          }),
        240_000,
      );
      // The controller's own recovery tore the first attempt down, not the janitor.
      expect(done.result).toBe('passed');
      expect(done.attempt).toBe(2);
      const events = withStore(t, (s) => s.eventsSince('regrace', 0, 100_000).map((e) => e.text));
      expect(events.some((e) => e.startsWith('janitor reaped'))).toBe(false);
      for (const a of withStore(t, (s) => s.appsOfRun('regrace'))) expect(await leftoversOf(t, a.domain)).toEqual(NOTHING);
    } finally {
      second.kill('SIGTERM');
      await second;
    }
  });

  it('reaps an app nobody claims only once it is old enough, and never a warm or infrastructure app', async () => {
    const orphan = `abcd-0a1b2c.${BASE}`;
    // warm-facade is <4 chars>-<6 hex>: the shape of a test app, but the warm prefix is reserved.
    const warm = `warm-facade.${BASE}`;
    const infra = `traefik.${BASE}`;
    await handMadeApp(orphan);
    await handMadeApp(warm);
    await handMadeApp(infra);
    try {
      const young = await cli(t, ['janitor', '--grace', '0'], {
        CCCI_CONFIG: configWith({ domain: { base: BASE }, janitor: { unknownOwnerAgeSeconds: 7200 } }),
      });
      expect(janitorTable(young.stdout, orphan)).toMatch(/wait .*no run owns it; reaped once 120 min old/);
      expect(young.stdout).not.toContain(warm);
      expect(young.stdout).not.toContain(infra);
      expect((await leftoversOf(t, orphan)).services).toHaveLength(1);

      const cfg = configWith({ domain: { base: BASE }, janitor: { unknownOwnerAgeSeconds: 1, graceSeconds: 1 } });
      await new Promise((r) => setTimeout(r, 1500));
      const old = await cli(t, ['janitor'], { CCCI_CONFIG: cfg });
      expect(old.exitCode, old.stdout).toBe(0);
      expect(janitorTable(old.stdout, orphan)).toMatch(/reap +reaped .*no run owns it/);
      expect(await leftoversOf(t, orphan)).toEqual(NOTHING);
      for (const other of [warm, infra]) {
        expect(old.stdout).not.toContain(other);
        expect((await leftoversOf(t, other)).services).toHaveLength(1);
        expect((await leftoversOf(t, other)).secrets).toHaveLength(1);
        expect((await leftoversOf(t, other)).volumes).toHaveLength(1);
      }
    } finally {
      await removeHandMade([orphan, warm, infra]);
    }
  });

  it('cc-ci serve runs it once at startup and then every intervalSeconds', async () => {
    const early = `aaaa-00e001.${BASE}`;
    const late = `bbbb-00e002.${BASE}`;
    const warm = `warm-facade.${BASE}`;
    await handMadeApp(early);
    await handMadeApp(warm);
    const cfg = configWith({ domain: { base: BASE }, janitor: { unknownOwnerAgeSeconds: 1, graceSeconds: 1, intervalSeconds: 5 } });
    await new Promise((r) => setTimeout(r, 1500));
    const server = serve(t, { CCCI_CONFIG: cfg, CCCI_LOG_LEVEL: 'info' });
    try {
      // The startup pass, before any interval has passed, reaps what an earlier outage left.
      const firstPass = logged(server, 'janitor pass done', 1);
      await serving(server);
      await firstPass;
      expect(await leftoversOf(t, early)).toEqual(NOTHING);
      // Then an app appears while the controller serves: a later, periodic pass reaps it.
      await handMadeApp(late);
      // Two more passes: the second of them surely began after the app existed.
      await logged(server, 'janitor pass done', 2, 180_000);
      await waitFor(
        `${late} to be reaped by a periodic pass`,
        async () => JSON.stringify(await leftoversOf(t, late)) === JSON.stringify(NOTHING),
        120_000,
        500,
      );
      expect((await leftoversOf(t, warm)).services).toHaveLength(1);
    } finally {
      server.kill('SIGTERM');
      await server;
      await removeHandMade([early, late, warm]);
    }
  });
});

// Keep the shared swarm tidy even when a case above failed half-way.
afterAll(async () => {
  const r = await execa('docker', ['stack', 'ls', '--format', '{{.Name}}'], { reject: false });
  const mine = r.stdout.split('\n').filter((s) => s.endsWith(`_${STACK_BASE}`));
  await forceRemoveStacks(mine);
});
