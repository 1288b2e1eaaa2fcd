import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecipeRepo } from '../../fixtures/recipe-repo.js';
import {
  NOTHING,
  anyTestStacks,
  cli,
  ensureSwarm,
  forceRemoveStacks,
  removeEnvStacks,
  leftoversOf,
  makeTestEnv,
  recipeRepo,
  runDirOf,
  type TestEnv,
} from '../support/harness.js';

/**
 * The tier ladder on the real swarm: every tier passing on the bundled recipes, and each
 * failing for the right reason — an upgrade that loses data, a restore that does not bring it
 * back, a settings file with an unknown key — with nothing left behind after any of them.
 */

interface JsonResult {
  name: string;
  result: string;
  reason: string;
  tiers: Record<string, { result: string; reason: string | null; durationMs: number | null }>;
  domains: string[];
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

async function run(recipe: string, repo: string, ref: string, tiers: string, env: Record<string, string> = {}) {
  const r = await cli(t, ['run', recipe, '--repo', repo, '--ref', ref, '--tiers', tiers, '--json'], env);
  const json = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as JsonResult;
  for (const d of json.domains ?? []) expect(await leftoversOf(t, d)).toEqual(NOTHING);
  return { ...r, json, log: () => readFileSync(join(runDirOf(t, json.name), 'log.txt'), 'utf8') };
}

describe('the tier ladder', () => {
  it('webnotes at head passes install, upgrade, backup and restore, with JUnit evidence for each tier', async () => {
    const r = await run('webnotes', webnotes.path, 'main', 'install,upgrade,backup,restore');
    expect(r.exitCode, r.stderr).toBe(0);
    const { tiers } = r.json;
    expect(tiers.install?.result).toBe('pass');
    expect(tiers.upgrade?.result).toBe('pass');
    expect(tiers.upgrade?.reason).toMatch(/1\.1\.0\+1\.35\.0 → head [0-9a-f]{8} in place \(chaos-version [0-9a-f]{8}/);
    expect(tiers.upgrade?.reason).toMatch(/survived/);
    expect(tiers.backup?.result).toBe('pass');
    expect(tiers.backup?.reason).toMatch(/snapshot \w+: \d+ bytes/);
    expect(tiers.restore?.result).toBe('pass');
    expect(tiers.restore?.reason).toMatch(/the data is back/);
    // Two apps: install's, then the upgrade's (which backup and restore use).
    expect(r.json.domains).toHaveLength(2);
    const evidence = join(runDirOf(t, r.json.name), 'evidence');
    for (const tier of ['install', 'upgrade', 'backup', 'restore']) {
      const xml = readFileSync(join(evidence, `junit-${tier}.xml`), 'utf8');
      expect(xml).toContain(`<testsuite name="${tier}"`);
      expect(xml).toContain('failures="0"');
    }
    expect(readdirSync(join(evidence, 'backup')).some((f) => f.endsWith('.tar.gz'))).toBe(true);
    // The customisation used is printed and stored.
    expect(r.log()).toMatch(/customisation: layers: generic\+settings < bundled\+settings; hooks: seed \(bundled\), check \(bundled\)/);
    const described = await cli(t, ['describe', 'run', r.json.name]);
    expect(described.stdout).toMatch(/Customisation:\n .*"hooks"/);
  });

  it('an upgrade to a version that wipes its volume fails upgrade, and the tiers above are skipped', async () => {
    const r = await run('webnotes', webnotes.path, 'wipes-data', 'install,upgrade,backup,restore');
    expect(r.exitCode).toBe(1);
    expect(r.json.tiers.install?.result).toBe('pass');
    expect(r.json.tiers.upgrade?.result).toBe('fail');
    expect(r.json.tiers.upgrade?.reason).toMatch(/the upgrade from 1\.1\.0\+1\.35\.0 lost the data written before it .*note ccci-upgrade is missing/);
    expect(r.json.tiers.backup?.result).toBe('skipped');
    expect(r.json.tiers.restore?.result).toBe('skipped');
    const xml = readFileSync(join(runDirOf(t, r.json.name), 'evidence', 'junit-upgrade.xml'), 'utf8');
    expect(xml).toContain('<failure message="the upgrade from');
  });

  it('a restore that does not bring the data back fails restore', async () => {
    const r = await run('webnotes', webnotes.path, 'restore-loses', 'backup,restore');
    expect(r.exitCode).toBe(1);
    expect(r.json.tiers.backup?.result).toBe('pass');
    expect(r.json.tiers.restore?.result).toBe('fail');
    expect(r.json.tiers.restore?.reason).toMatch(/did not bring the data back/);
  });

  it('the generic floor (no hooks) checks data with a marker file inside the backed-up path', async () => {
    // The same repository under another recipe name has no bundled customisation at all.
    const r = await run('notes', webnotes.path, 'main', 'upgrade,backup,restore');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.json.tiers.upgrade?.reason).toMatch(/marker file \/data\/\.ccci-marker in volume/);
    expect(r.json.tiers.backup?.reason).toMatch(/holds the marker/);
    expect(r.json.tiers.restore?.reason).toMatch(/marker file \/data\/notes\/\.ccci-marker/);
  });

  it('a recipe without backupbot labels gets backup and restore n/a with the reason, and the climb goes on', async () => {
    const r = await run('plainpage', plainpage.path, 'main', 'install,upgrade,backup,restore');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.json.tiers.install?.result).toBe('pass');
    expect(r.json.tiers.upgrade?.result).toBe('pass');
    expect(r.json.tiers.upgrade?.reason).toMatch(/data not checked: no volume/);
    expect(r.json.tiers.backup).toMatchObject({ result: 'n/a', reason: 'no service carries backupbot.backup labels' });
    expect(r.json.tiers.restore?.result).toBe('n/a');
    expect(r.json.result).toBe('passed');
  });

  it('upgrade is n/a when no release lies below the ref', async () => {
    const r = await run('plainpage', plainpage.path, plainpage.tagCommits['0.1.0+1.35.0']!, 'install,upgrade');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.json.tiers.upgrade?.result).toBe('n/a');
    expect(r.json.tiers.upgrade?.reason).toMatch(/no release tag below/);
  });

  it('an operator layer adds an install-steps hook, a compose overlay and a functional check', async () => {
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
  });

  it('a failing install-steps hook fails install with its last words, before any deploy', async () => {
    const layer = join(operatorDir, 'notes2');
    mkdirSync(join(layer, 'hooks'), { recursive: true });
    writeFileSync(join(layer, 'hooks', 'install-steps'), '#!/bin/sh\necho "no OIDC client for $DOMAIN" >&2\nexit 3\n', { mode: 0o755 });
    const configFile = join(t.dir, 'config-layer2.yaml');
    writeFileSync(configFile, readFileSync(t.configFile, 'utf8') + `recipesDir: ${operatorDir}\n`);
    const r = await run('notes2', webnotes.path, 'main', 'install', { CCCI_CONFIG: configFile });
    expect(r.exitCode).toBe(1);
    expect(r.json.tiers.install?.reason).toMatch(/the install-steps hook failed: .*no OIDC client for note-[0-9a-f]{6}/);
    expect(r.log()).not.toMatch(/step  abra app deploy/);
  });

  it('a settings file with an unknown key is a clear error before anything is deployed', async () => {
    mkdirSync(join(operatorDir, 'webnotes'), { recursive: true });
    writeFileSync(join(operatorDir, 'webnotes', 'settings.yaml'), 'healthPath: /health\nhelthPath: /oops\n');
    const config = readFileSync(t.configFile, 'utf8') + `recipesDir: ${operatorDir}\n`;
    const configFile = join(t.dir, 'config-operator.yaml');
    writeFileSync(configFile, config);
    try {
      const r = await run('webnotes', webnotes.path, 'main', 'install', { CCCI_CONFIG: configFile });
      expect(r.exitCode).toBe(2);
      expect(r.json.result).toBe('error');
      expect(r.json.reason).toMatch(/settings\.yaml: unknown field "helthPath"/);
      expect(r.json.domains).toEqual([]);
      expect(r.log()).not.toMatch(/abra app new/);
    } finally {
      writeFileSync(join(operatorDir, 'webnotes', 'settings.yaml'), '');
      expect(existsSync(configFile)).toBe(true);
    }
  });
});
