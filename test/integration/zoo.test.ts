import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRecipeRepo, zooDir, type RecipeRepo } from '../../fixtures/recipe-repo.js';
import { cli, ensureSwarm, makeTestEnv, nothingOfRun, removeEnvStacks, runDirOf, runLeftovers, type TestEnv } from '../support/harness.js';
import { tmpdir } from 'node:os';

/**
 * The recipe zoo (fixtures/zoo/, one recipe per layout real public recipes use) climbing the
 * ladder on the real swarm through `cc-ci run`: each gets the verdict a maintainer should get —
 * every tier's result and what it says — and leaves nothing behind. What cc-ci understood of each
 * recipe before deploying it is checked too (the JSON summary's `understanding`).
 */

interface Understanding {
  composeFiles: string[];
  composeVersion: string | null;
  services: { name: string; replicas: number | null }[];
  web: { service: string; port: number; why: string } | { problem: string };
  backup: { capable: boolean; services: string[]; testData: string | null; why: string };
  secrets: { key: string; version: string | null; modifiers: string; generate: boolean }[];
  upgradeBase: { tag: string; why: string } | { none: string };
}

interface Summary {
  name: string;
  result: string;
  reason: string;
  tiers: Record<string, { result: string; reason: string | null }>;
  domains: string[];
  understanding: Understanding;
}

let t: TestEnv;
let work: string;
const repos: Record<string, RecipeRepo> = {};
const ZOO = ['minimal', 'multicompose', 'hotline', 'rollout', 'oldtags', 'noversion', 'socketproxy'];

beforeAll(async () => {
  await ensureSwarm();
  work = mkdtempSync(join(tmpdir(), 'ccci-zoo-'));
  for (const r of ZOO) repos[r] = await buildRecipeRepo(r, join(work, r), { recipesDir: zooDir() });
  // A short deploy deadline: the broken head must fail within it (the others converge in seconds).
  t = await makeTestEnv({ portRange: [21600, 21699], deploySeconds: 30, httpSeconds: 20 });
});

afterAll(async () => {
  await removeEnvStacks(t);
  t?.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** `cc-ci run` of a zoo recipe; the run must have left nothing on the swarm or on disk. */
async function run(recipe: string, ref = 'main', o: { tiers?: string; env?: Record<string, string> } = {}) {
  const args = ['run', recipe, '--repo', repos[recipe]!.path, '--ref', ref, '--json', ...(o.tiers ? ['--tiers', o.tiers] : [])];
  const r = await cli(t, args, o.env ?? {});
  const json = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as Summary;
  expect(json.name, r.stderr.slice(-2000)).toBeTruthy();
  expect(await runLeftovers(t, json.name, json.domains)).toEqual(nothingOfRun(json.domains));
  const dir = runDirOf(t, json.name);
  return { ...json, exitCode: r.exitCode, log: readFileSync(join(dir, 'log.txt'), 'utf8'), dir };
}

function tiers(s: Summary): Record<string, string> {
  return Object.fromEntries(Object.entries(s.tiers).map(([k, v]) => [k, v.result]));
}

const FULL = 900_000;

describe('the recipe zoo on the real swarm', () => {
  it(
    "minimal (abra recipe new, no COMPOSE_FILE): compose.yml is deployed with cc-ci's overlay; passes",
    async () => {
      const s = await run('minimal');
      expect(s.result, s.reason).toBe('passed');
      expect(tiers(s)).toEqual({ install: 'pass', upgrade: 'pass', backup: 'n/a', restore: 'n/a', custom: 'n/a' });
      expect(s.tiers.upgrade?.reason).toMatch(
        /^0\.2\.0\+1\.35\.0 → head [0-9a-f]{8} in place \(chaos-version [0-9a-f]{8}\), converged and serving; data not checked: no volume of app/,
      );
      expect(s.tiers.backup?.reason).toBe('no service carries backupbot.backup labels');
      expect(s.understanding.composeFiles).toEqual(['compose.yml']);
      expect(s.understanding.composeVersion).toBe('3.8');
      // The app env spells COMPOSE_FILE out: the recipe's compose.yml, then cc-ci's overlay.
      expect(s.log).toMatch(
        /app env: LETS_ENCRYPT_ENV= TIMEOUT=30 DOMAIN=mini-[0-9a-f]{6}\.ci\.localhost COMPOSE_FILE=compose\.yml:compose\.ccci-ingress\.yml/,
      );
      // The release deploys as an operator deploys it; the head as a chaos deploy without +U.
      expect(s.log).toMatch(/abra app deploy: mini-\S+ at release 0\.2\.0\+1\.35\.0 \(as an operator deploys a release\)/);
      expect(s.log).toMatch(/converged at version 0\.2\.0\+1\.35\.0/);
      expect(s.log).toMatch(/converged at chaos-version [0-9a-f]{8}:/);
    },
    FULL,
  );

  it(
    'multicompose (bonfire: COMPOSE_FILE self-reference, backups on app and db, a head that adds a secret): passes',
    async () => {
      const s = await run('multicompose');
      expect(s.result, s.reason).toBe('passed');
      expect(tiers(s)).toEqual({ install: 'pass', upgrade: 'pass', backup: 'pass', restore: 'pass', custom: 'n/a' });
      const u = s.understanding;
      expect(u.composeFiles).toEqual(['compose.yml', 'compose.db.yml']);
      expect(u.backup.services).toEqual(['app', 'db']);
      // db's backup is limited to the dump file: the test data goes into app's volume.
      expect(u.backup.testData).toBe('volume uploads of app');
      expect(u.secrets.map((x) => [x.key, x.modifiers])).toEqual([
        ['api_key', 'length=48'],
        ['db_password', ''],
        ['secret_key_base', 'length=128'],
      ]);
      expect(u.upgradeBase).toMatchObject({ tag: '1.1.0+1.35.0' });
      // The base made two secrets; the head's new one is generated beside them, alone.
      expect(s.log).toMatch(/generated 2 secret\(s\): db_password, secret_key_base/);
      expect(s.log).toMatch(/generated secret api_key v1, which head [0-9a-f]{8} adds/);
      expect(s.tiers.upgrade?.reason).toMatch(/data written before it survived \(marker file \/srv\/uploads\/\.ccci-marker/);
      expect(s.tiers.backup?.reason).toMatch(/in 2 volume\(s\), holds the test data$/);
      expect(s.tiers.restore?.reason).toMatch(/the data is back/);
      // The run keeps a listing of the snapshot, never the archive (which abra may fill with secrets).
      const backup = join(s.dir, 'evidence', 'backup');
      const listings = readdirSync(backup);
      expect(listings).toHaveLength(1);
      expect(listings[0]).toMatch(/^snapshot-[0-9a-f]{8}\.txt$/);
      const listing = readFileSync(join(backup, listings[0]!), 'utf8');
      expect(listing).toMatch(/_uploads\.tar!.*\.ccci-marker/);
      expect(listing).toMatch(/_db-data\.tar!.*backup\.sql/);
      expect(listing).not.toMatch(/\.json/);
      expect(existsSync(join(s.dir, 'work'))).toBe(false);
    },
    FULL,
  );

  it(
    'multicompose with a database image without bash: backup-bot-two cannot run the dump hook, and backup fails saying so',
    async () => {
      const s = await run('multicompose', 'hook-fails', { tiers: 'install,backup' });
      expect(s.result).toBe('failed');
      expect(tiers(s)).toEqual({ install: 'pass', backup: 'fail' });
      expect(s.tiers.backup?.reason).toMatch(
        /^the backup ran, but a backup hook failed .*\/dbctl\.sh dump.*_db \(backup pre-hook\).*"bash": executable file not found/,
      );
    },
    FULL,
  );

  it(
    'multicompose with ENABLE_BACKUPS=false in the app env: backupbot.backup interpolates to false, backup is n/a',
    async () => {
      const layer = join(t.dir, 'operator-no-backups');
      mkdirSync(join(layer, 'multicompose'), { recursive: true });
      writeFileSync(join(layer, 'multicompose', 'settings.yaml'), 'extraEnv:\n  ENABLE_BACKUPS: "false"\n');
      const config = join(t.dir, 'config-no-backups.yaml');
      writeFileSync(config, readFileSync(t.configFile, 'utf8') + `recipesDir: ${layer}\n`);
      const s = await run('multicompose', 'main', { tiers: 'install,backup', env: { CCCI_CONFIG: config } });
      expect(s.result, s.reason).toBe('passed');
      expect(tiers(s)).toEqual({ install: 'pass', backup: 'n/a' });
      expect(s.tiers.backup?.reason).toBe("backupbot.backup is not true on app, db with this app's env");
    },
    FULL,
  );

  it(
    'hotline (llamenos: web on `web`, backupbot on a service without a volume, DOMAIN not <recipe>.example.com): passes',
    async () => {
      const s = await run('hotline');
      expect(s.result, s.reason).toBe('passed');
      expect(tiers(s)).toEqual({ install: 'pass', upgrade: 'n/a', backup: 'pass', restore: 'pass', custom: 'pass' });
      const u = s.understanding;
      expect(u.web).toMatchObject({ service: 'web', port: 8080 });
      expect(u.composeFiles).toEqual(['compose.yml']);
      // app carries backupbot.backup but no volume: the test data goes where a backup can hold it.
      expect(u.backup.services).toEqual(['app', 'db', 'store']);
      expect(u.backup.testData).toBe('volume store-data of store');
      expect(u.secrets.find((x) => x.key === 'hmac_key')?.modifiers).toBe('length=64 charset=hex');
      expect(s.tiers.restore?.reason).toMatch(/the data is back \(marker file \/data\/\.ccci-marker in volume hotl-[0-9a-f]{6}_ci_localhost_store-data\)/);
      // The recipe's own check: the page names the domain cc-ci deployed it as, not helpline.example.com.
      expect(s.tiers.custom?.reason).toBe('1 functional check passed');
      expect(s.log).toMatch(/the page names hotl-[0-9a-f]{6}\.ci\.localhost/);
      // What cc-ci understood is in the log before anything deploys, and in `describe run`.
      expect(s.log.indexOf('understood: web: web on port 8080')).toBeLessThan(s.log.indexOf('abra app new'));
      const described = await cli(t, ['describe', 'run', s.name]);
      expect(described.stdout).toMatch(
        /^Understood:\n {2}compose files: compose\.yml \(version 3\.8\)\n {2}services: app, db, store, web\n {2}web: web on port 8080: Traefik router "\$\{STACK_NAME\}" \(Host\(`\$\{DOMAIN\}`\)\) → port 8080\n/m,
      );
      expect(described.stdout).toContain('  secrets: db_password v1 (length=32); hmac_key v1 (length=64 charset=hex)');
      expect(described.stdout).toContain('  upgrade base: none: no release tag below main');
    },
    FULL,
  );

  it(
    'rollout (compose 3.7, start-first with rollback, v-prefixed tags, two routers): passes, cc-ci saying what it changed',
    async () => {
      const s = await run('rollout');
      expect(s.result, s.reason).toBe('passed');
      expect(tiers(s)).toEqual({ install: 'pass', upgrade: 'pass', backup: 'pass', restore: 'pass', custom: 'n/a' });
      expect(s.understanding.composeVersion).toBe('3.7');
      expect(s.understanding.upgradeBase).toMatchObject({ tag: 'v1.1.0' });
      expect(s.understanding.web).toMatchObject({ service: 'app', port: 8787 });
      expect(s.understanding.backup.testData).toBe('volume data of app');
      expect(s.log).toContain("app's update/rollback order start-first changed to stop-first (a host-mode port cannot be held by two tasks at once)");
      expect(s.log).not.toMatch(/version mismatched/);
      expect(s.tiers.upgrade?.reason).toMatch(/^v1\.1\.0 → head [0-9a-f]{8} in place .* survived/);
    },
    FULL,
  );

  it(
    "oldtags (lightweight release tags): the upgrade fails with abra's own refusal and what to do about it",
    async () => {
      const s = await run('oldtags');
      expect(s.result).toBe('failed');
      expect(tiers(s)).toEqual({ install: 'pass', upgrade: 'fail', backup: 'skipped', restore: 'skipped', custom: 'skipped' });
      expect(s.tiers.upgrade?.reason).toMatch(
        /^abra app deploy failed: .*R014.* — an operator cannot install release v2\.4\.8: it is a lightweight tag; publish releases as annotated tags/,
      );
      expect((s.understanding.upgradeBase as { why: string }).why).toMatch(/lightweight tag/);
    },
    FULL,
  );

  it(
    "noversion (bore: no version key, several routers on app): overlays carry no version; the main router's port; passes",
    async () => {
      const s = await run('noversion');
      expect(s.result, s.reason).toBe('passed');
      expect(tiers(s)).toEqual({ install: 'pass', upgrade: 'pass', backup: 'n/a', restore: 'n/a', custom: 'n/a' });
      expect(s.understanding.composeVersion).toBeNull();
      expect(s.understanding.web).toMatchObject({ service: 'app', port: 8080 });
      expect((s.understanding.web as { why: string }).why).toMatch(/the main one of 2 routes on app/);
    },
    FULL,
  );

  it(
    'noversion with a head that breaks its healthcheck: install fails with the task error',
    async () => {
      const s = await run('noversion', 'unhealthy', { tiers: 'install' });
      expect(s.result).toBe('failed');
      expect(tiers(s)).toEqual({ install: 'fail' });
      expect(s.tiers.install?.reason).toMatch(/^head [0-9a-f]{8} did not converge within 30s: nove-[0-9a-f]{6}_ci_localhost_app 0\/1.*unhealthy/);
    },
    FULL,
  );

  it(
    'socketproxy (abramon: DOCKER_HOST in .env.sample, a service scaled to 0): the deploy is not sent elsewhere; passes',
    async () => {
      const s = await run('socketproxy');
      expect(s.result, s.reason).toBe('passed');
      expect(tiers(s)).toEqual({ install: 'pass', upgrade: 'n/a', backup: 'n/a', restore: 'n/a', custom: 'n/a' });
      expect(s.understanding.services).toContainEqual(expect.objectContaining({ name: 'cleanup', replicas: 0 }));
      expect(s.tiers.install?.reason).toMatch(/3 service\(s\) converged/);
    },
    FULL,
  );
});
