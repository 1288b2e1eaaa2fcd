import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { releaseBelow } from '../../controller/clients/git.js';
import { describeCustomization, loadCustomization, SettingsError, snapshotRecipeLayer, type CustomizationSources } from '../../recipes/customization.js';

/**
 * The customisation layers (recipes/customization.ts) on real directories: which layer wins a
 * setting, a hook, the overlay; what is refused before anything is deployed; the copy of the
 * head's `.cc-ci/` a run takes; and which tag the upgrade tier starts from.
 */

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ccci-customization-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function put(path: string, content: string, mode = 0o644): void {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, content);
  chmodSync(path, mode);
}

const HOOK = '#!/bin/sh\nexit 0\n';
const DEFAULTS = { deployTimeoutSeconds: 600, httpTimeoutSeconds: 300 };

/** A bundled recipes/ directory with a generic floor, and the recipe's other layers. */
function layout(name: string): { root: string; bundled: string; repo: string; operator: string; sources: CustomizationSources } {
  const root = join(dir, name);
  const bundled = join(root, 'bundled');
  const repo = join(root, 'repo');
  const operator = join(root, 'operator');
  put(join(bundled, '_generic', 'settings.yaml'), 'healthPath: /\nhealthStatuses: [200, 301, 302]\n');
  // The generic floor is cc-ci's own directory: its other files are not a layer's typos.
  put(join(bundled, '_generic', 'backup.ts'), '// a tier runner');
  mkdirSync(repo, { recursive: true });
  return { root, bundled, repo, operator, sources: { recipe: 'app', recipeDir: repo, bundledDir: bundled, operatorDir: operator, defaults: DEFAULTS } };
}

describe('loading the customisation layers', () => {
  it('gives the defaults when no layer but the floor exists', () => {
    const l = layout('defaults');
    const c = loadCustomization(l.sources);
    expect(c.layers.map((x) => x.source)).toEqual(['generic']);
    expect(c.settings).toEqual({
      healthPath: '/',
      healthStatuses: [200, 301, 302],
      deployTimeoutSeconds: 600,
      taskFailuresToFail: 3,
      httpTimeoutSeconds: 300,
      hookTimeoutSeconds: 300,
      extraEnv: {},
      upgradeBase: null,
      expectedNA: {},
      webService: null,
      webPort: null,
    });
    expect(c.hooks).toEqual({});
    expect(c.overlay).toBeNull();
    expect(c.tests.specs.length + c.tests.functional.length).toBe(0);
  });

  it("layers generic < recipe repo < bundled < operator: scalars replace, extraEnv and expectedNA extend, a hook or overlay is the highest layer's whole", () => {
    const l = layout('layered');
    put(join(l.bundled, '_generic', 'settings.yaml'), 'healthPath: /\nhealthStatuses: [200]\nextraEnv: { A: g, B: g }\nexpectedNA: { backup: generic says }\n');
    put(
      join(l.repo, '.cc-ci', 'settings.yaml'),
      'healthPath: /from-repo\ndeployTimeoutSeconds: 10\ntaskFailuresToFail: 0\nextraEnv: { B: repo }\nwebPort: 8081\n',
    );
    put(join(l.repo, '.cc-ci', 'hooks', 'seed'), HOOK, 0o755);
    put(join(l.repo, '.cc-ci', 'hooks', 'check'), HOOK, 0o755);
    put(join(l.repo, '.cc-ci', 'compose.ccci.yml'), 'version: "3.8"\n');
    put(join(l.repo, '.cc-ci', 'functional', 'repo.sh'), HOOK, 0o755);
    put(join(l.repo, '.cc-ci', 'README.md'), 'what these are');
    put(join(l.bundled, 'app', 'settings.yaml'), 'healthStatuses: [204]\nupgradeBase: 1.0.0+1\nhookTimeoutSeconds: 5\nexpectedNA: { restore: bundled says }\n');
    put(join(l.bundled, 'app', 'hooks', 'check'), HOOK, 0o755);
    put(join(l.bundled, 'app', 'hooks', '.gitkeep'), '');
    put(join(l.operator, 'app', 'settings.yaml'), 'httpTimeoutSeconds: 7\nextraEnv: { C: op }\nexpectedNA: { backup: operator says }\nwebService: front\n');
    put(join(l.operator, 'app', 'compose.ccci.yml'), 'version: "3.8"\n');
    put(join(l.operator, 'app', 'functional', 'op.sh'), HOOK, 0o755);

    const c = loadCustomization(l.sources);
    expect(c.layers).toEqual([
      { source: 'generic', dir: join(l.bundled, '_generic'), settings: true },
      { source: 'recipe-repo', dir: join(l.repo, '.cc-ci'), settings: true },
      { source: 'bundled', dir: join(l.bundled, 'app'), settings: true },
      { source: 'operator', dir: join(l.operator, 'app'), settings: true },
    ]);
    expect(c.settings).toEqual({
      healthPath: '/from-repo',
      healthStatuses: [204],
      deployTimeoutSeconds: 10,
      taskFailuresToFail: 0,
      httpTimeoutSeconds: 7,
      hookTimeoutSeconds: 5,
      extraEnv: { A: 'g', B: 'repo', C: 'op' },
      upgradeBase: '1.0.0+1',
      expectedNA: { backup: 'operator says', restore: 'bundled says' },
      webService: 'front',
      webPort: 8081,
    });
    expect(c.hooks).toEqual({
      seed: { path: join(l.repo, '.cc-ci', 'hooks', 'seed'), source: 'recipe-repo' },
      check: { path: join(l.bundled, 'app', 'hooks', 'check'), source: 'bundled' },
    });
    expect(c.overlay).toEqual({ path: join(l.operator, 'app', 'compose.ccci.yml'), source: 'operator' });
    // The custom tests are part of what the run used, stored with it.
    expect(c.tests.functional.map((f) => [f.name, f.source])).toEqual([
      ['op.sh', 'operator'],
      ['repo.sh', 'recipe-repo'],
    ]);
    const line = describeCustomization(c);
    expect(line).toContain('layers: generic+settings < recipe-repo+settings < bundled+settings < operator+settings');
    expect(line).toContain('hooks: seed (recipe-repo), check (bundled)');
    expect(line).toContain('overlay: compose.ccci.yml (operator)');
    expect(line).toContain('custom tests: 0 Playwright spec(s), 2 functional check(s)');
  });

  it('refuses an unknown settings key, and a value of the wrong kind, naming the file', () => {
    const l = layout('bad-keys');
    put(join(l.operator, 'app', 'settings.yaml'), 'healthPath: /x\nhelthPath: /oops\n');
    expect(() => loadCustomization(l.sources)).toThrow(SettingsError);
    expect(() => loadCustomization(l.sources)).toThrow(/operator\/app\/settings\.yaml: unknown field "helthPath"/);
    put(join(l.operator, 'app', 'settings.yaml'), 'healthStatuses: [200, "ok"]\n');
    expect(() => loadCustomization(l.sources)).toThrow(/operator\/app\/settings\.yaml: healthStatuses/);
    put(join(l.operator, 'app', 'settings.yaml'), 'expectedNA: { backups: typo of a tier }\n');
    expect(() => loadCustomization(l.sources)).toThrow(/expectedNA/);
    put(join(l.operator, 'app', 'settings.yaml'), 'extraEnv: { "not a name": x }\n');
    expect(() => loadCustomization(l.sources)).toThrow(/settings\.yaml: extraEnv\.not a name: Invalid key/);
  });

  it.each([
    ['hooks/pre-seed', /hooks\/pre-seed: unknown hook "pre-seed"; known: install-steps, seed, check, mutate, verify-backup/],
    ['hooks/verify_backup', /unknown hook "verify_backup" \(did you mean "verify-backup"\?\)/],
    ['setting.yaml', /\.cc-ci\/setting\.yaml: unknown file or directory "setting\.yaml" \(did you mean "settings\.yaml"\?\)/],
    ['compose.ci.yml', /unknown file or directory "compose\.ci\.yml" \(did you mean "compose\.ccci\.yml"\?\)/],
    ['playwrite/a.spec.ts', /unknown file or directory "playwrite" \(did you mean "playwright"\?\)/],
  ])('refuses the misnamed %s in a layer instead of ignoring it', (file, message) => {
    const l = layout(`typo-${file.replace(/\W/g, '-')}`);
    put(join(l.repo, '.cc-ci', file), HOOK, 0o755);
    expect(() => loadCustomization(l.sources)).toThrow(message);
  });

  it('refuses a seed hook without a check hook, and a hook that is not executable', () => {
    const l = layout('hook-rules');
    put(join(l.operator, 'app', 'hooks', 'seed'), HOOK, 0o755);
    expect(() => loadCustomization(l.sources)).toThrow(/a seed hook \(.*operator\/app\/hooks\/seed\) needs a check hook to verify what it wrote/);
    // A check in a lower layer pairs with it.
    put(join(l.bundled, 'app', 'hooks', 'check'), HOOK, 0o644);
    expect(() => loadCustomization(l.sources)).toThrow(/bundled\/app\/hooks\/check: a hook must be an executable file \(chmod \+x, with a #! line\)/);
    chmodSync(join(l.bundled, 'app', 'hooks', 'check'), 0o755);
    expect(loadCustomization(l.sources).hooks.check?.source).toBe('bundled');
  });
});

describe("the run's copy of the head's .cc-ci/", () => {
  it('keeps hooks, overlay and tests usable after the checkout has moved on, with links inside the repository copied as what they point at', () => {
    const l = layout('snapshot');
    put(join(l.repo, 'scripts', 'check.sh'), '#!/bin/sh\necho shared\n', 0o755);
    put(join(l.repo, '.cc-ci', 'hooks', 'seed'), HOOK, 0o755);
    mkdirSync(join(l.repo, '.cc-ci', 'functional'), { recursive: true });
    symlinkSync('../../scripts/check.sh', join(l.repo, '.cc-ci', 'hooks', 'check'));
    symlinkSync('../../scripts/check.sh', join(l.repo, '.cc-ci', 'functional', 'shared.sh'));
    put(join(l.root, 'outside.spec.ts'), "// not the repository's");
    mkdirSync(join(l.repo, '.cc-ci', 'playwright'), { recursive: true });
    symlinkSync(join(l.root, 'outside.spec.ts'), join(l.repo, '.cc-ci', 'playwright', 'escape.spec.ts'));
    put(join(l.repo, '.cc-ci', 'compose.ccci.yml'), 'version: "3.8"\n');

    const copy = join(l.root, 'run', 'recipe-cc-ci');
    const layer = snapshotRecipeLayer(l.repo, copy);
    expect(layer).toEqual({ dir: copy, root: copy });
    // What the upgrade tier's checkout of a base release without .cc-ci/ does to the tree.
    rmSync(join(l.repo, '.cc-ci'), { recursive: true });
    rmSync(join(l.repo, 'scripts'), { recursive: true });

    const c = loadCustomization({ ...l.sources, recipeLayer: layer! });
    expect(c.hooks.seed).toEqual({ path: join(copy, 'hooks', 'seed'), source: 'recipe-repo' });
    expect(c.hooks.check?.path).toBe(join(copy, 'hooks', 'check'));
    expect(readFileSync(c.hooks.check!.path, 'utf8')).toContain('echo shared');
    expect(c.overlay?.path).toBe(join(copy, 'compose.ccci.yml'));
    expect(c.tests.functional.map((f) => f.path)).toEqual([join(copy, 'functional', 'shared.sh')]);
    expect(c.tests.specs).toEqual([]);
    expect(c.tests.ignored.map((i) => [i.path, i.why])).toEqual([[join(copy, 'playwright', 'escape.spec.ts'), 'a link that leaves the recipe repository']]);
  });

  it('refuses a hook that is a link leaving the recipe repository', () => {
    const l = layout('snapshot-escape');
    put(join(l.root, 'elsewhere'), HOOK, 0o755);
    mkdirSync(join(l.repo, '.cc-ci', 'hooks'), { recursive: true });
    symlinkSync(join(l.root, 'elsewhere'), join(l.repo, '.cc-ci', 'hooks', 'install-steps'));
    const layer = snapshotRecipeLayer(l.repo, join(l.root, 'copy'));
    expect(() => loadCustomization({ ...l.sources, recipeLayer: layer! })).toThrow(
      /hooks\/install-steps: a hook in the recipe repository must not be a link that leaves it/,
    );
  });

  it('is nothing when the repository has no .cc-ci/, and leaves no stale copy behind', () => {
    const l = layout('snapshot-none');
    const copy = join(l.root, 'copy');
    put(join(copy, 'hooks', 'seed'), HOOK, 0o755);
    expect(snapshotRecipeLayer(l.repo, copy)).toBeNull();
    expect(existsSync(copy)).toBe(false);
  });
});

describe('the upgrade base', () => {
  it('is the highest release below the ref; a prerelease tag is not a release', async () => {
    const repo = join(dir, 'tags');
    mkdirSync(repo, { recursive: true });
    const env = { GIT_CONFIG_GLOBAL: '/dev/null', GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x' };
    const git = async (...args: string[]) => (await execa('git', ['-C', repo, ...args], { env })).stdout.trim();
    await git('init', '-q', '-b', 'main');
    const commit = async (msg: string, tag?: string) => {
      await git('commit', '-q', '--allow-empty', '-m', msg);
      if (tag) await git('tag', '-a', tag, '-m', `chore: publish ${tag} release`);
      return git('rev-parse', 'HEAD');
    };
    const first = await commit('one', '1.0.0+1.2');
    await commit('two', '1.1.0-rc.1+1.2');
    const head = await commit('head');
    const o = { timeoutMs: 30_000 };
    expect(await releaseBelow(repo, head, o)).toEqual({ tag: '1.0.0+1.2', commit: first });
    const released = await commit('three', '1.1.0+1.2');
    const head2 = await commit('head 2');
    expect(await releaseBelow(repo, head2, o)).toEqual({ tag: '1.1.0+1.2', commit: released });
    // The release commit itself is not below itself.
    expect(await releaseBelow(repo, released, o)).toEqual({ tag: '1.0.0+1.2', commit: first });
  });
});
