import { createServer, type Server } from 'node:net';
import { existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify } from 'yaml';
import type { RecipeRepo } from '../../fixtures/recipe-repo.js';
import {
  CLI,
  ROOT,
  callsOf,
  cli,
  ensureSwarm,
  faultEnv,
  makeTestEnv,
  nothingOfRun,
  recipeRepo,
  removeEnvStacks,
  runDirOf,
  runLeftovers,
  waitFor,
  type TestEnv,
} from '../support/harness.js';

/**
 * The tier ladder on the real swarm: every tier passing on the bundled recipes, and each
 * failing for the right reason — an upgrade that loses data, a restore that does not bring it
 * back, a backup abra cannot make or a hook rejects, a settings file or a layer with a mistake —
 * with JUnit and diagnostics as evidence, and nothing left behind after any of them.
 */

interface JsonResult {
  name: string;
  result: string;
  reason: string;
  tiers: Record<string, { result: string; reason: string | null; durationMs: number | null }>;
  domains: string[];
}

interface StoredResult {
  customization: {
    layers: { source: string }[];
    settings: Record<string, unknown>;
    hooks: Record<string, { path: string; source: string }>;
    tests: { specs: { name: string; source: string }[]; functional: { name: string; source: string; path: string }[] };
  } | null;
}

let t: TestEnv;
let webnotes: RecipeRepo;
let plainpage: RecipeRepo;
let operatorDir: string;

beforeAll(async () => {
  await ensureSwarm();
  webnotes = await recipeRepo('webnotes');
  plainpage = await recipeRepo('plainpage');
  t = await makeTestEnv({ portRange: [21200, 21299], deploySeconds: 40, httpSeconds: 20 });
  operatorDir = join(t.dir, 'operator-recipes');
});

afterAll(async () => {
  await removeEnvStacks(t);
  t?.cleanup();
});

const FULL = 900_000;

function parseJson(stdout: string): JsonResult {
  return JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as JsonResult;
}

/** A finished run, its evidence, and the check that it left nothing: apps, ABRA_DIR, snapshots. */
async function finished(json: JsonResult) {
  expect(await runLeftovers(t, json.name, json.domains ?? [])).toEqual(nothingOfRun(json.domains ?? []));
  const dir = runDirOf(t, json.name);
  return {
    json,
    dir,
    log: () => readFileSync(join(dir, 'log.txt'), 'utf8'),
    evidence: (file: string) => readFileSync(join(dir, 'evidence', file), 'utf8'),
    stored: () => JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8')) as StoredResult,
  };
}

async function run(recipe: string, repo: string, ref: string, tiers: string, env: Record<string, string> = {}) {
  const r = await cli(t, ['run', recipe, '--repo', repo, '--ref', ref, '--tiers', tiers, '--json'], env);
  return { ...r, ...(await finished(parseJson(r.stdout))) };
}

/** An operator's recipesDir of its own (files relative to it; executable when the mode says),
 *  and the env that points the controller at it. */
function operatorLayer(name: string, files: Record<string, string | { content?: string; mode?: number; link?: string }>): Record<string, string> {
  const dir = join(t.dir, `operator-${name}`);
  for (const [rel, f] of Object.entries(files)) {
    const path = join(dir, rel);
    mkdirSync(join(path, '..'), { recursive: true });
    if (typeof f === 'string') writeFileSync(path, f);
    else if (f.link) symlinkSync(f.link, path);
    else writeFileSync(path, f.content ?? '', { mode: f.mode ?? 0o644 });
  }
  const configFile = join(t.dir, `config-${name}.yaml`);
  writeFileSync(configFile, readFileSync(t.configFile, 'utf8') + `recipesDir: ${dir}\n`);
  return { CCCI_CONFIG: configFile };
}

/** A branch of the webnotes repository with files added (mode 0755 where asked), one commit on main. */
async function webnotesBranch(branch: string, files: Record<string, { content: string; mode?: number }>): Promise<string> {
  const repo = join(t.dir, `webnotes-${branch}`);
  await execa('git', ['clone', '-q', webnotes.path, repo]);
  const git = (args: string[]) =>
    execa('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@example.org', ...args], { env: { GIT_CONFIG_GLOBAL: '/dev/null' } });
  await git(['checkout', '-q', '-b', branch, 'origin/main']);
  for (const [rel, f] of Object.entries(files)) {
    mkdirSync(join(repo, rel, '..'), { recursive: true });
    writeFileSync(join(repo, rel), f.content, { mode: f.mode ?? 0o644 });
  }
  await git(['add', '.']);
  await git(['commit', '-qm', `test: ${branch}`]);
  return repo;
}

function stackOf(domain: string): string {
  return domain.replace(/\./g, '_').slice(0, 45);
}

/** The diagnostics file of an app, checked for what every one must say of each service. */
function diagnostics(r: { dir: string }, domain: string): string {
  const file = join(r.dir, 'evidence', `diagnostics-${stackOf(domain)}.txt`);
  expect(existsSync(file), `${file} exists`).toBe(true);
  const text = readFileSync(file, 'utf8');
  expect(text).toMatch(/^== \S+_app \d+\/\d+ update=/m);
  expect(text).toMatch(/^last task error: \S/m);
  expect(text).toMatch(/^-- log tail \(last 20 lines\)$/m);
  return text;
}

/** The log lines of one service's section in a diagnostics file. */
function logTail(text: string, service: string): string[] {
  const section = text.split(/^== /m).find((s) => s.startsWith(`${service} `)) ?? '';
  return section.split('-- log tail (last 20 lines)\n')[1]?.split('\n').filter(Boolean) ?? [];
}

const hook = (name: string) => readFileSync(join(ROOT, 'recipes', 'webnotes', 'hooks', name), 'utf8');

describe('the tier ladder', () => {
  it(
    'webnotes climbs all five tiers in one run: two apps, three deploys, every tier passing in measurable time, with JUnit for each',
    async () => {
      const counted = faultEnv(t, '');
      const r = await run('webnotes', webnotes.path, 'main', 'install,upgrade,backup,restore,custom', counted);
      expect(r.exitCode, r.stderr.slice(-3000)).toBe(0);
      const { tiers } = r.json;
      for (const tier of ['install', 'upgrade', 'backup', 'restore', 'custom']) {
        expect(tiers[tier]?.result, `${tier}: ${tiers[tier]?.reason}`).toBe('pass');
        expect(tiers[tier]?.durationMs).toBeGreaterThan(0);
      }
      const head = webnotes.head.slice(0, 8);
      // The chaos-version label of the upgraded stack is the head's own commit.
      expect(tiers.upgrade?.reason).toContain(`1.1.0+1.35.0 → head ${head} in place (chaos-version ${head}`);
      expect(tiers.upgrade?.reason).toMatch(/survived/);
      expect(tiers.backup?.reason).toMatch(/^snapshot [0-9a-f]{8}: \d+ bytes, \d+ file\(s\) in 1 volume\(s\), verify-backup hook passed$/);
      expect(tiers.restore?.reason).toMatch(/the data is back/);
      expect(tiers.custom?.reason).toBe('2 Playwright tests and 1 functional check passed');
      // What docs/testing.md promises: two apps, three deploys (install, the base, the upgrade).
      expect(r.json.domains).toHaveLength(2);
      expect(callsOf(counted, 'app.new')).toBe(2);
      expect(callsOf(counted, 'app.deploy')).toBe(3);
      expect(callsOf(counted, 'app.backup.create')).toBe(1);
      expect(callsOf(counted, 'app.restore')).toBe(1);

      for (const tier of ['install', 'upgrade', 'backup', 'restore', 'custom']) {
        const xml = r.evidence(`junit-${tier}.xml`);
        expect(xml).toContain(`<testsuite name="${tier}"`);
        expect(xml).toContain('failures="0" errors="0"');
      }
      // A listing of the snapshot is kept, never the archive (abra may put the app's secrets in it).
      const kept = readdirSync(join(r.dir, 'evidence', 'backup'));
      expect(kept.some((f) => /^snapshot-[0-9a-f]{8}\.txt$/.test(f))).toBe(true);
      expect(kept.some((f) => f.endsWith('.tar.gz'))).toBe(false);
      const log = r.log();
      // The base release was installed beside install, not after it (overlapBaseInstall): its
      // deploy began before install passed, from a checkout of its own.
      const [installApp, upgradeApp] = r.json.domains as [string, string];
      expect(log).toMatch(/upgrade base 1\.1\.0\+1\.35\.0: installing it now, beside install/);
      const baseDeploy = log.indexOf(`abra app deploy: ${upgradeApp} at release 1.1.0+1.35.0`);
      expect(baseDeploy).toBeGreaterThan(0);
      expect(baseDeploy).toBeLessThan(log.indexOf('install: pass in'));
      expect(log).toContain(`make app ABRA_DIR: ${join(r.dir, 'abra-upgrade')}`);
      // Install's app was asked to go when upgrade began, and was verified gone before the run ended.
      expect(log.indexOf('upgrade: started')).toBeLessThan(log.indexOf(`${installApp}: nothing left`));
      expect(existsSync(join(r.dir, 'abra-upgrade'))).toBe(false);
      // The bundled mutate and verify-backup hooks did the work.
      expect(log).toMatch(/verify-backup: \S+notes\/ccci-backup holds the note written before the backup/);
      expect(log).toMatch(/mutate: POST \/cgi-bin\/notes\?key=ccci-backup -> 200/);
      expect(log).toContain('data changed before the restore (mutate hook)');
      // The customisation used is printed and stored, the custom tests with it.
      expect(log).toMatch(
        /customisation: layers: generic\+settings < bundled\+settings; hooks: seed \(bundled\), check \(bundled\), mutate \(bundled\), verify-backup \(bundled\); overlay: none; custom tests: 1 Playwright spec\(s\), 1 functional check\(s\)/,
      );
      const stored = r.stored().customization!;
      expect(Object.keys(stored.hooks)).toEqual(['seed', 'check', 'mutate', 'verify-backup']);
      expect(stored.tests.specs.map((f) => [f.name, f.source])).toEqual([['notes.spec.ts', 'bundled']]);
      expect(stored.tests.functional.map((f) => [f.name, f.source])).toEqual([['health.sh', 'bundled']]);
      const described = await cli(t, ['describe', 'run', r.json.name]);
      expect(described.stdout).toMatch(/Customisation:\n .*"hooks".*"tests":\{.*"name":"notes\.spec\.ts"/);
    },
    FULL,
  );

  it(
    'an upgrade to a version that wipes its volume fails upgrade, with diagnostics of the app; the tiers above are skipped',
    async () => {
      const r = await run('webnotes', webnotes.path, 'wipes-data', 'install,upgrade,backup,restore');
      expect(r.exitCode).toBe(1);
      expect(r.json.tiers.install?.result).toBe('pass');
      expect(r.json.tiers.upgrade?.result).toBe('fail');
      expect(r.json.tiers.upgrade?.reason).toMatch(/the upgrade from 1\.1\.0\+1\.35\.0 lost the data written before it .*note ccci-upgrade is missing/);
      expect(r.json.tiers.backup?.result).toBe('skipped');
      expect(r.json.tiers.restore?.result).toBe('skipped');
      expect(r.evidence('junit-upgrade.xml')).toContain('<failure message="the upgrade from');
      expect(r.evidence('junit-backup.xml')).toContain('<skipped message="skipped: not run: upgrade failed"/>');
      // The upgrade's app (the second) was standing when the tier failed: its state is evidence.
      const text = diagnostics(r, r.json.domains[1]!);
      expect(text).toMatch(/: 2 service\(s\), 0 not converged/);
      expect(logTail(text, `${stackOf(r.json.domains[1]!)}_app`).length).toBeGreaterThan(0);
      expect(r.log()).toContain(`diagnostics of ${stackOf(r.json.domains[1]!)}: evidence/diagnostics-${stackOf(r.json.domains[1]!)}.txt`);
    },
    FULL,
  );

  it(
    'an upgrade abra reports as done but that never moved the stack fails upgrade, naming the commit still running',
    async () => {
      // Deploys: install's head (1), the base (2), the base → head in place (3), which does nothing.
      const faults = faultEnv(t, 'app.deploy:3:noop');
      const r = await run('webnotes', webnotes.path, 'main', 'install,upgrade,backup', faults);
      expect(r.exitCode).toBe(1);
      expect(r.json.tiers.install?.result).toBe('pass');
      expect(r.json.tiers.upgrade?.result).toBe('fail');
      expect(r.json.tiers.upgrade?.reason).toMatch(
        /abra app deploy of head [0-9a-f]{8} reported success, but the stack did not move: it shows no chaos-version label on webn-[0-9a-f]{6}_ci_localhost_app \(version 1\.1\.0\+1\.35\.0\)/,
      );
      expect(r.json.tiers.backup?.result).toBe('skipped');
      expect(callsOf(faults, 'app.deploy')).toBe(3);
    },
    FULL,
  );

  it(
    'abra checking another version out behind cc-ci (its recipe check, without --chaos) is undone before the deploy',
    async () => {
      // The first secret generate moves the run's checkout to the latest release, as abra's recipe
      // check may on a call that is not chaos: the head must be what deploys all the same.
      const faults = faultEnv(t, 'app.secret.generate:1:moves');
      const r = await run('webnotes', webnotes.path, 'main', 'install', faults);
      expect(r.exitCode, r.json.reason).toBe(0);
      expect(r.log()).toMatch(new RegExp(`the recipe checkout is at [0-9a-f]{12}, not ${webnotes.head.slice(0, 12)} \\(abra moved it\\): checking out again`));
      expect(r.log()).toMatch(new RegExp(`converged at chaos-version ${webnotes.head.slice(0, 8)}:`));
      expect(callsOf(faults, 'app.deploy')).toBe(1);
    },
    FULL,
  );

  it(
    'a restore that does not bring the data back fails restore, with diagnostics',
    async () => {
      const r = await run('webnotes', webnotes.path, 'restore-loses', 'backup,restore');
      expect(r.exitCode).toBe(1);
      expect(r.json.tiers.backup?.result).toBe('pass');
      expect(r.json.tiers.restore?.result).toBe('fail');
      expect(r.json.tiers.restore?.reason).toMatch(/did not bring the data back/);
      diagnostics(r, r.json.domains[0]!);
    },
    FULL,
  );

  it(
    'the generic floor (no hooks) checks data with a marker file inside the backed-up path',
    async () => {
      // The same repository under another recipe name has no bundled customisation at all.
      const r = await run('notes', webnotes.path, 'main', 'upgrade,backup,restore');
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.json.tiers.upgrade?.reason).toMatch(/marker file \/data\/\.ccci-marker in volume/);
      expect(r.json.tiers.backup?.reason).toMatch(/holds the test data/);
      expect(r.json.tiers.restore?.reason).toMatch(/marker file \/data\/notes\/\.ccci-marker/);
    },
    FULL,
  );

  it(
    'a recipe without backupbot labels gets backup and restore n/a with the reason, and the climb goes on to custom',
    async () => {
      const r = await run('plainpage', plainpage.path, 'main', 'install,upgrade,backup,restore,custom');
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.json.tiers.install?.result).toBe('pass');
      expect(r.json.tiers.upgrade?.result).toBe('pass');
      expect(r.json.tiers.upgrade?.reason).toMatch(/data not checked: no volume/);
      expect(r.json.tiers.backup).toMatchObject({ result: 'n/a', reason: 'no service carries backupbot.backup labels' });
      expect(r.json.tiers.restore?.result).toBe('n/a');
      // The tier after two n/a ones still ran, against the upgraded app.
      expect(r.json.tiers.custom).toMatchObject({ result: 'pass', reason: '1 functional check passed' });
      expect(r.json.result).toBe('passed');
      expect(r.json.reason).toBe('passed: install, upgrade, custom; n/a: backup, restore');
      const log = r.log();
      expect(log.indexOf('restore: n/a')).toBeLessThan(log.indexOf('custom: started'));
      expect(log).toMatch(/page\.sh: GET http:\/\/127\.0\.0\.1:\d+\/: the page and its title are there \(Version: head\)/);
      expect(r.evidence('junit-backup.xml')).toContain('<skipped message="n/a: no service carries backupbot.backup labels"/>');
    },
    FULL,
  );

  it('upgrade is n/a when no release lies below the ref', async () => {
    const r = await run('plainpage', plainpage.path, plainpage.tagCommits['0.1.0+1.35.0']!, 'install,upgrade');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.json.tiers.upgrade?.result).toBe('n/a');
    expect(r.json.tiers.upgrade?.reason).toMatch(/no release tag below/);
  });

  it(
    'an operator layer adds an install-steps hook, a compose overlay and a functional check',
    async () => {
      const layer = join(operatorDir, 'notes');
      mkdirSync(join(layer, 'hooks'), { recursive: true });
      mkdirSync(join(layer, 'functional'), { recursive: true });
      writeFileSync(
        join(layer, 'hooks', 'install-steps'),
        '#!/bin/sh\nset -e\ngrep -q "^CCCI_RUN=" "$ABRA_DIR/servers/default/$DOMAIN.env"\necho "install-steps: $DOMAIN has its .env, before the first deploy"\n',
        { mode: 0o755 },
      );
      writeFileSync(join(layer, 'compose.ccci.yml'), 'version: "3.8"\nservices:\n  app:\n    environment:\n      - NOTES_TITLE=Set by the CI overlay\n');
      writeFileSync(
        join(layer, 'functional', 'title.sh'),
        '#!/bin/sh\nbusybox wget -q -O - "$BASE_URL/" | grep -q "Set by the CI overlay" || { echo "the overlay title is not on the page" >&2; exit 1; }\n',
        { mode: 0o755 },
      );
      const configFile = join(t.dir, 'config-layer.yaml');
      writeFileSync(configFile, readFileSync(t.configFile, 'utf8') + `recipesDir: ${operatorDir}\n`);
      const r = await run('notes', webnotes.path, 'main', 'install,custom', { CCCI_CONFIG: configFile });
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.json.tiers.custom?.reason).toMatch(/1 functional check passed/);
      const log = r.log();
      expect(log).toMatch(/hooks: install-steps \(operator\); overlay: compose\.ccci\.yml \(operator\)/);
      expect(log).toMatch(/install-steps: note-[0-9a-f]{6}\.ci\.localhost has its \.env, before the first deploy/);
      expect(log.indexOf('hook install-steps')).toBeLessThan(log.indexOf('step  abra app deploy'));
    },
    FULL,
  );

  it(
    'a service scaled to 0 on purpose counts as converged; the rest of the stack must still run',
    async () => {
      const env = operatorLayer('spare', {
        'notes-spare/compose.ccci.yml':
          'version: "3.8"\nservices:\n  spare:\n    image: ccci/busybox:1.35.0\n    command: ["sleep", "3600"]\n    deploy:\n      replicas: 0\n',
      });
      const r = await run('notes-spare', webnotes.path, 'main', 'install', env);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.log()).toMatch(/converged at chaos-version [0-9a-f]{8}.*_spare 0\/0/);
    },
    FULL,
  );

  it('a failing install-steps hook fails install with its last words, before any deploy', async () => {
    const layer = join(operatorDir, 'notes2');
    mkdirSync(join(layer, 'hooks'), { recursive: true });
    writeFileSync(join(layer, 'hooks', 'install-steps'), '#!/bin/sh\necho "no OIDC client for $DOMAIN" >&2\nexit 3\n', { mode: 0o755 });
    const configFile = join(t.dir, 'config-layer2.yaml');
    writeFileSync(configFile, readFileSync(t.configFile, 'utf8') + `recipesDir: ${operatorDir}\n`);
    const r = await run('notes2', webnotes.path, 'main', 'install', { CCCI_CONFIG: configFile });
    expect(r.exitCode).toBe(1);
    expect(r.json.tiers.install?.reason).toMatch(/the install-steps hook failed: .*no OIDC client for note-[0-9a-f]{6}/);
    expect(r.log()).not.toMatch(/step {2}abra app deploy/);
  });

  it('a settings file with an unknown key is a clear error before anything is deployed', async () => {
    const env = operatorLayer('unknown-key', { 'webnotes/settings.yaml': 'healthPath: /health\nhelthPath: /oops\n' });
    const r = await run('webnotes', webnotes.path, 'main', 'install', env);
    expect(r.exitCode).toBe(2);
    expect(r.json.result).toBe('error');
    expect(r.json.reason).toMatch(/settings\.yaml: unknown field "helthPath"/);
    expect(r.json.domains).toEqual([]);
    expect(r.log()).not.toMatch(/abra app new/);
  });
});

describe('settings on the swarm', () => {
  it(
    'upgradeBase, extraEnv, expectedNA and the timeouts of a layer are what the run uses; declared n/a tiers do not stop the climb',
    async () => {
      const env = operatorLayer('settings', {
        'memo/settings.yaml': stringify({
          healthPath: '/health',
          healthStatuses: [200],
          deployTimeoutSeconds: 45,
          httpTimeoutSeconds: 15,
          upgradeBase: '1.0.0+1.35.0',
          extraEnv: { NOTES_TITLE: 'Title from extraEnv' },
          expectedNA: { backup: 'this layer checks backups elsewhere', restore: 'restores go with backups' },
        }),
        'memo/hooks/seed': { content: hook('seed'), mode: 0o755 },
        'memo/hooks/check': { content: hook('check'), mode: 0o755 },
        'memo/functional/title.sh': {
          content:
            '#!/bin/sh\ncurl -fsS -H "Host: $APP_HOST" "$BASE_URL/" | grep -q "<h1 id=\\"notes-title\\">Title from extraEnv</h1>" || { echo "the extraEnv title is not on the page" >&2; exit 1; }\necho "the page has the extraEnv title"\n',
          mode: 0o755,
        },
      });
      const r = await run('memo', webnotes.path, 'main', 'install,upgrade,backup,restore,custom', env);
      expect(r.exitCode, r.stderr.slice(-3000)).toBe(0);
      const { tiers } = r.json;
      expect(tiers.install?.result).toBe('pass');
      expect(tiers.install?.reason).toMatch(/GET \/health answered/);
      expect(tiers.upgrade?.result).toBe('pass');
      expect(tiers.upgrade?.reason).toMatch(/^1\.0\.0\+1\.35\.0 → head [0-9a-f]{8} in place .*survived \(seed hook \(operator\)\)/);
      expect(tiers.backup).toMatchObject({ result: 'n/a', reason: "this layer checks backups elsewhere (declared by the recipe's settings)" });
      expect(tiers.restore).toMatchObject({ result: 'n/a', reason: "restores go with backups (declared by the recipe's settings)" });
      expect(tiers.custom).toMatchObject({ result: 'pass', reason: '1 functional check passed' });
      const log = r.log();
      expect(log).toMatch(/upgrade base: 1\.0\.0\+1\.35\.0 \([0-9a-f]{8}\) from settings/);
      expect(log).toContain('app env: LETS_ENCRYPT_ENV= TIMEOUT=45 extra: NOTES_TITLE');
      expect(log).toContain('serving: GET /health → 200');
      expect(log).toContain('title.sh: the page has the extraEnv title');
      expect(r.stored().customization!.settings).toMatchObject({
        deployTimeoutSeconds: 45,
        httpTimeoutSeconds: 15,
        upgradeBase: '1.0.0+1.35.0',
        extraEnv: { NOTES_TITLE: 'Title from extraEnv' },
      });
    },
    FULL,
  );

  it(
    'deployTimeoutSeconds bounds the wait for a version that never becomes healthy; diagnostics name the task error and the log tail',
    async () => {
      const env = operatorLayer('unhealthy', { 'webnotes/settings.yaml': 'deployTimeoutSeconds: 20\n' });
      const r = await run('webnotes', webnotes.path, 'unhealthy', 'install,upgrade', env);
      expect(r.exitCode, r.stderr.slice(-3000)).toBe(1);
      const reason = r.json.tiers.install?.reason ?? '';
      expect(r.json.tiers.install?.result).toBe('fail');
      expect(reason).toMatch(/did not converge within 20s: \S+_app 0\/1/);
      expect(reason).toMatch(/, log tail: \S/);
      expect(r.json.tiers.upgrade?.result).toBe('skipped');
      const text = diagnostics(r, r.json.domains[0]!);
      expect(text).toMatch(/^== \S+_app 0\/1 update=\S+ NOT CONVERGED$/m);
      expect(logTail(text, `${stackOf(r.json.domains[0]!)}_app`).length).toBeGreaterThan(0);
    },
    FULL,
  );

  it(
    'healthStatuses and httpTimeoutSeconds decide when a converged app counts as serving',
    async () => {
      const env = operatorLayer('statuses', { 'page/settings.yaml': 'healthStatuses: [418]\nhttpTimeoutSeconds: 3\n' });
      const r = await run('page', plainpage.path, 'main', 'install', env);
      expect(r.exitCode, r.stderr.slice(-3000)).toBe(1);
      expect(r.json.tiers.install?.reason).toBe('converged but not serving: GET / → HTTP 200 for 3s (accepted: 418)');
      // Converged, not serving: the diagnostics still show each service and what it logged.
      const text = diagnostics(r, r.json.domains[0]!);
      expect(text).toMatch(/: 1 service\(s\), 0 not converged/);
      expect(logTail(text, `${stackOf(r.json.domains[0]!)}_app`).length).toBeGreaterThan(0);
    },
    FULL,
  );

  it(
    'hookTimeoutSeconds stops a hook that hangs, and the tier fails saying so',
    async () => {
      const env = operatorLayer('hook-timeout', {
        'slow/settings.yaml': 'hookTimeoutSeconds: 2\n',
        'slow/hooks/install-steps': { content: '#!/bin/sh\necho "waiting for an OIDC provider that never answers"\nexec sleep 120\n', mode: 0o755 },
      });
      const r = await run('slow', plainpage.path, 'main', 'install', env);
      expect(r.exitCode, r.stderr.slice(-3000)).toBe(1);
      expect(r.json.tiers.install?.reason).toBe('the install-steps hook failed: timed out after 2s (hookTimeoutSeconds) and was stopped');
      expect(r.log()).not.toMatch(/step {2}abra app deploy/);
    },
    FULL,
  );

  it('an upgradeBase that is not a tag of the repository is a clear error before anything is deployed', async () => {
    const env = operatorLayer('bad-base', { 'memo/settings.yaml': 'upgradeBase: 9.9.9+nope\n' });
    const r = await run('memo', webnotes.path, 'main', 'install,upgrade', env);
    expect(r.exitCode).toBe(2);
    expect(r.json.result).toBe('error');
    expect(r.json.reason).toBe(`recipe customisation: upgradeBase "9.9.9+nope" is not a tag of the recipe repository ${webnotes.path}`);
    expect(r.json.domains).toEqual([]);
    expect(r.log()).not.toMatch(/abra app new/);
  });
});

describe("the recipe repository's own .cc-ci/", () => {
  it(
    "runs the head's hooks in the upgrade tier, though the base release is checked out and has none",
    async () => {
      const marked = (name: string) =>
        hook(name).replace(/^(#!.*\n)/, `$1console.log("${name} hook from the head's .cc-ci/, op " + (process.argv[2] ?? ''));\n`);
      const repo = await webnotesBranch('own-hooks', {
        '.cc-ci/hooks/seed': { content: marked('seed'), mode: 0o755 },
        '.cc-ci/hooks/check': { content: marked('check'), mode: 0o755 },
      });
      // A recipe name without a bundled layer: the repository's hooks are the ones that count.
      const r = await run('wnotes', repo, 'own-hooks', 'upgrade');
      expect(r.exitCode, r.stderr.slice(-3000)).toBe(0);
      expect(r.json.tiers.upgrade?.reason).toMatch(/survived \(seed hook \(recipe-repo\)\)/);
      const log = r.log();
      expect(log).toMatch(/hooks: seed \(recipe-repo\), check \(recipe-repo\)/);
      expect(log).toContain("seed hook from the head's .cc-ci/, op upgrade");
      expect(log).toContain("check hook from the head's .cc-ci/, op upgrade");
      // The seed ran while the base was checked out: after the base's checkout, before the head's.
      const base = webnotes.tagCommits['1.1.0+1.35.0']!.slice(0, 12);
      const seedAt = log.indexOf('hook seed: ');
      expect(log.indexOf(`step  check out: ${base}`)).toBeGreaterThan(0);
      expect(log.indexOf(`step  check out: ${base}`)).toBeLessThan(seedAt);
      expect(log.slice(seedAt)).toMatch(/^hook seed: \S+\/recipe-cc-ci\/hooks\/seed upgrade \(recipe-repo, sandboxed\)/);
    },
    FULL,
  );

  it.each([
    [
      'a misnamed hook',
      { '.cc-ci/hooks/pre-seed': { content: '#!/bin/sh\n', mode: 0o755 } },
      /^recipe customisation: \.cc-ci\/hooks\/pre-seed: unknown hook "pre-seed"; known: /,
    ],
    [
      'a misnamed overlay',
      { '.cc-ci/compose.ci.yml': { content: 'version: "3.8"\n' } },
      /^recipe customisation: \.cc-ci\/compose\.ci\.yml: unknown file or directory "compose\.ci\.yml" \(did you mean "compose\.ccci\.yml"\?\)/,
    ],
    [
      'a hook that is not executable',
      { '.cc-ci/hooks/seed': { content: '#!/bin/sh\n' }, '.cc-ci/hooks/check': { content: '#!/bin/sh\n', mode: 0o755 } },
      /^recipe customisation: \.cc-ci\/hooks\/seed: a hook must be an executable file/,
    ],
    [
      'a seed hook without a check',
      { '.cc-ci/hooks/seed': { content: '#!/bin/sh\n', mode: 0o755 } },
      /^recipe customisation: a seed hook \(\.cc-ci\/hooks\/seed\) needs a check hook/,
    ],
  ])('%s is a clear error before anything is deployed', async (what, files, reason) => {
    const branch = `mistake-${what.replace(/\W+/g, '-')}`;
    const repo = await webnotesBranch(branch, files);
    const r = await run('wnotes', repo, branch, 'install');
    expect(r.exitCode, r.stderr.slice(-2000)).toBe(2);
    expect(r.json.result).toBe('error');
    expect(r.json.reason).toMatch(reason);
    expect(r.json.domains).toEqual([]);
    expect(r.log()).not.toMatch(/abra app new/);
  });
});

describe('backup failures', () => {
  it(
    "an operator's verify-backup hook that rejects the archive fails backup with the hook's reason",
    async () => {
      const env = operatorLayer('verify', {
        'webnotes/hooks/verify-backup': {
          content: '#!/bin/sh\ntest -s "$CCCI_BACKUP_FILE" || exit 2\necho "$(basename "$CCCI_BACKUP_FILE") holds no database dump" >&2\nexit 1\n',
          mode: 0o755,
        },
      });
      const r = await run('webnotes', webnotes.path, 'main', 'backup,restore', env);
      expect(r.exitCode, r.stderr.slice(-3000)).toBe(1);
      expect(r.json.tiers.backup?.result).toBe('fail');
      expect(r.json.tiers.backup?.reason).toMatch(/^the verify-backup hook rejected snapshot ([0-9a-f]{8}): backup\.tar\.gz holds no database dump$/);
      expect(r.json.tiers.restore).toMatchObject({ result: 'skipped', reason: 'not run: backup failed' });
      expect(r.log()).toMatch(/hooks: seed \(bundled\), check \(bundled\), mutate \(bundled\), verify-backup \(operator\)/);
      diagnostics(r, r.json.domains[0]!);
    },
    FULL,
  );

  it(
    "a backup abra cannot make fails backup with abra's reason; restore is skipped and nothing is left",
    async () => {
      const faults = faultEnv(t, 'app.backup.create:1:fail');
      const r = await run('webnotes', webnotes.path, 'main', 'backup,restore', faults);
      expect(r.exitCode, r.stderr.slice(-3000)).toBe(1);
      expect(r.json.tiers.backup).toMatchObject({ result: 'fail', reason: 'abra app backup create failed: injected fault (app.backup.create call 1)' });
      expect(r.json.tiers.restore).toMatchObject({ result: 'skipped', reason: 'not run: backup failed' });
      expect(r.json.result).toBe('failed');
      expect(callsOf(faults, 'app.backup.create')).toBe(1);
      expect(callsOf(faults, 'app.restore')).toBe(0);
      expect(r.evidence('junit-backup.xml')).toContain('<failure message="abra app backup create failed: injected fault');
      expect(r.evidence('junit-restore.xml')).toContain('<skipped message="skipped: not run: backup failed"/>');
      diagnostics(r, r.json.domains[0]!);
    },
    FULL,
  );
});

describe('JUnit for tiers a run did not finish', () => {
  it(
    'a run cancelled during install has JUnit for the interrupted tier and for the one it never reached',
    async () => {
      const name = `tiers-cancel-${Date.now().toString(36)}`;
      const child = execa('node', [CLI, 'run', 'webnotes', '--repo', webnotes.path, '--ref', 'main', '--tiers', 'install,upgrade', '--json', '--name', name], {
        env: t.env,
        reject: false,
        timeout: 600_000,
      });
      const logFile = join(runDirOf(t, name), 'log.txt');
      await waitFor('install to be deploying', async () => existsSync(logFile) && /step {2}abra app new/.test(readFileSync(logFile, 'utf8')), 240_000, 200);
      child.kill('SIGINT');
      const out = await child;
      expect(out.exitCode, String(out.stderr).slice(-3000)).toBe(2);
      const r = await finished(parseJson(String(out.stdout)));
      expect(r.json.result).toBe('cancelled');
      expect(r.json.tiers.install?.reason).toBe('interrupted: the run ended cancelled while this tier ran');
      expect(r.evidence('junit-install.xml')).toContain('<error message="install interrupted — cancelled: interrupted from the terminal">');
      expect(r.evidence('junit-upgrade.xml')).toContain('<skipped message="not run: the run ended cancelled: interrupted from the terminal"/>');
    },
    FULL,
  );

  it('an infrastructure error in install leaves JUnit with the error, and the skipped tier above says why', async () => {
    // The only port of the ingress range is taken: the lease cannot get one (cc-ci's problem, not the recipe's).
    const blocker: Server = createServer();
    const port = await new Promise<number>((resolve) => blocker.listen(0, '0.0.0.0', () => resolve((blocker.address() as { port: number }).port)));
    try {
      const config = parseYaml(readFileSync(t.configFile, 'utf8')) as { ingress: { portRange: number[] } };
      config.ingress.portRange = [port, port];
      const configFile = join(t.dir, 'config-no-port.yaml');
      writeFileSync(configFile, stringify(config));
      const r = await run('webnotes', webnotes.path, 'main', 'install,upgrade', { CCCI_CONFIG: configFile });
      expect(r.exitCode).toBe(2);
      expect(r.json.result).toBe('error');
      expect(r.json.reason).toBe(`infrastructure: no free port left in the ingress range ${port}-${port}`);
      expect(r.evidence('junit-install.xml')).toContain(
        `<error message="install interrupted — error: no free port left in the ingress range ${port}-${port}">`,
      );
      expect(r.evidence('junit-install.xml')).toMatch(/errors="1"/);
      expect(r.evidence('junit-upgrade.xml')).toContain('<skipped message="not run: the run ended error: infrastructure: no free port left');
      expect(r.json.domains).toEqual([]);
    } finally {
      blocker.close();
    }
  });
});
