import { distance as levenshtein } from 'fastest-levenshtein';
import {
  accessSync,
  chmodSync,
  constants,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { readBoundedFile, tooDeep } from '../controller/model/bounded-read.js';
import { MAX_TIMER_SECONDS } from '../controller/model/config.js';
import { z } from 'zod';
import { projectRoot } from '../controller/model/project-root.js';
import { formatIssues } from '../controller/model/spec.js';
import { TIER_NAMES } from '../state/types.js';
import { discoverCustomTests, recipeLayerOf, staysInside, type CustomTests, type RecipeLayer } from './custom-tests.js';

/**
 * Per-recipe customisation (docs/testing.md, Customising: layers). Layers, lowest first:
 *   1. `recipes/_generic/`            the floor every recipe gets (bundled with cc-ci)
 *   2. `<recipe repo>/.cc-ci/`        what the recipe's maintainers ship in their repository
 *   3. `recipes/<recipe>/`            cc-ci's bundled customisation of that recipe
 *   4. `<config.recipesDir>/<recipe>/` the operator's own
 * Settings: scalars from a higher layer replace lower ones; maps (extraEnv, expectedNA) extend.
 * Hooks and the compose overlay: the highest layer that has the file wins, whole. A name a layer
 * does not know (`hooks/pre-seed`, `setting.yaml`) is an error, not ignored: a typo must not
 * silently test less. A run reads layer 2 from the copy of the head's `.cc-ci/` it took at
 * prepare, so the upgrade tier's checkout of the base release cannot change it.
 * docs/testing.md states the same rules for recipe maintainers; keep the two in step.
 */

const envKey = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name');

/** One settings file as written: every key optional, unknown keys an error. */
export const settingsFileSchema = z.strictObject({
  /** The path the HTTP probe asks for. */
  healthPath: z.string().startsWith('/', 'must start with "/"').optional(),
  /** HTTP statuses that count as serving. */
  healthStatuses: z.array(z.number().int().min(100).max(599)).min(1).optional(),
  /** How long the deploy may take to converge (all services N/N, update settled). */
  deployTimeoutSeconds: z.number().positive().max(MAX_TIMER_SECONDS, `must be at most ${MAX_TIMER_SECONDS}`).optional(),
  /**
   * How many ended tasks (exited non-zero, rejected, exited although it should run) of one service since
   * the deploy fail it at once instead of at the deadline; 0 waits for the deadline.
   */
  taskFailuresToFail: z.number().int().min(0).max(100).optional(),
  /** How long the app may take to answer the probe once converged. */
  httpTimeoutSeconds: z.number().positive().max(MAX_TIMER_SECONDS, `must be at most ${MAX_TIMER_SECONDS}`).optional(),
  /** How long a hook may run. */
  hookTimeoutSeconds: z.number().positive().max(MAX_TIMER_SECONDS, `must be at most ${MAX_TIMER_SECONDS}`).optional(),
  /** Extra variables written into the app's .env before the deploy. */
  extraEnv: z.record(envKey, z.string()).optional(),
  /** The release to upgrade from, instead of the highest release tag below the ref. */
  upgradeBase: z.string().min(1).optional(),
  /** Tiers that are known not to apply to this recipe, with the reason. */
  expectedNA: z.partialRecord(z.enum(TIER_NAMES), z.string().min(1)).optional(),
  /** The service that serves the web, when cc-ci cannot tell it from the Traefik labels. */
  webService: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'must be a compose service name')
    .optional(),
  /** The port that service serves HTTP on (its container port). */
  webPort: z.number().int().min(1).max(65535).optional(),
});

export type SettingsFile = z.infer<typeof settingsFileSchema>;

export interface Settings {
  healthPath: string;
  healthStatuses: number[];
  deployTimeoutSeconds: number;
  taskFailuresToFail: number;
  httpTimeoutSeconds: number;
  hookTimeoutSeconds: number;
  extraEnv: Record<string, string>;
  upgradeBase: string | null;
  expectedNA: Partial<Record<(typeof TIER_NAMES)[number], string>>;
  webService: string | null;
  webPort: number | null;
}

/** Hooks a layer may carry in its `hooks/` directory; each is an executable file. */
export const HOOK_NAMES = ['install-steps', 'seed', 'check', 'mutate', 'verify-backup'] as const;
export type HookName = (typeof HOOK_NAMES)[number];

/** The compose overlay a layer may carry; appended to COMPOSE_FILE (it makes every deploy chaos). */
export const OVERLAY_FILE = 'compose.ccci.yml';

export type LayerSource = 'generic' | 'recipe-repo' | 'bundled' | 'operator';

export interface FileFromLayer {
  path: string;
  source: LayerSource;
}

/** The names a layer's top directory may hold; anything else is a typo until proven otherwise.
 *  `README*` and dotfiles (`.gitkeep`) are allowed too. */
export const LAYER_ENTRIES = ['settings.yaml', 'hooks', OVERLAY_FILE, 'playwright', 'functional'] as const;

/** What a run used, printed at its start and stored with its result. */
export interface Customization {
  recipe: string;
  layers: { source: LayerSource; dir: string; settings: boolean }[];
  settings: Settings;
  hooks: Partial<Record<HookName, FileFromLayer>>;
  overlay: FileFromLayer | null;
  /** The custom tier's tests (recipes/custom-tests.ts): what runs, what was replaced or ignored. */
  tests: CustomTests;
  /** The operator layer's extraEnv values: they may be credentials, so runs mask them. */
  operatorValues: string[];
}

export class SettingsError extends Error {}

/** A settings file is a few lines; one from a pull request is read to this bound at most. */
const MAX_SETTINGS_BYTES = 256 * 1024;

function readSettings(path: string): SettingsFile {
  let doc: unknown;
  let text: string;
  try {
    text = readBoundedFile(path, MAX_SETTINGS_BYTES);
  } catch (e) {
    throw new SettingsError(`${path}: cannot be read: ${(e as Error).message}`);
  }
  const deep = tooDeep(text);
  if (deep) throw new SettingsError(`${path}: ${deep}`);
  try {
    // logLevel error: yaml's warnings would go to the controller's stderr, written by a pull request.
    doc = parseYaml(text, { logLevel: 'error' }) ?? {};
  } catch (e) {
    throw new SettingsError(`${path}: not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  const r = settingsFileSchema.safeParse(doc);
  if (!r.success) throw new SettingsError(`${path}: ${formatIssues(r.error)}`);
  return r.data;
}

export interface CustomizationSources {
  recipe: string;
  /** The recipe's checkout (its `.cc-ci/` is a layer, unless recipeLayer names another place). */
  recipeDir?: string;
  /** The recipe repository's layer when it is not `<recipeDir>/.cc-ci`: a run's copy of the head's. */
  recipeLayer?: RecipeLayer;
  /** Defaults that come from the controller's config. */
  defaults: { deployTimeoutSeconds: number; httpTimeoutSeconds: number };
  /** The operator's directory of recipe customisations (config `recipesDir`). */
  operatorDir?: string | undefined;
  /** The bundled recipes/ directory (default: the one shipped with cc-ci). */
  bundledDir?: string;
}

/**
 * Copies the recipe repository's `.cc-ci/` out of the checkout (at the head, at prepare), so
 * every hook, overlay and test the run uses is the head's even while the upgrade tier has the
 * base release checked out. A link that stays inside the repository is copied as what it points
 * at; one that leaves it (or leads nowhere) is kept as a link to the same place, so the loaders
 * refuse or ignore it with the reason they give in a checkout. Returns the copy as a layer, or
 * null when the repository has no `.cc-ci/`.
 */
export function snapshotRecipeLayer(recipeDir: string, dest: string): RecipeLayer | null {
  rmSync(dest, { recursive: true, force: true });
  const src = join(recipeDir, '.cc-ci');
  if (!existsSync(src) || !statSync(src).isDirectory()) return null;
  const root = realpathSync(recipeDir);
  copyTree(src, dest, root, 0);
  return { dir: dest, root: dest };
}

function copyTree(src: string, dest: string, root: string, depth: number): void {
  // Links inside the repository may form a loop; no real .cc-ci/ is this deep.
  if (depth > 16) throw new SettingsError(`${src}: .cc-ci/ is nested too deep (a loop of links?)`);
  mkdirSync(dest, { recursive: true });
  for (const name of readdirSync(src)) {
    const from = join(src, name);
    const to = join(dest, name);
    const l = lstatSync(from);
    if (l.isSymbolicLink()) {
      if (!staysInside(from, root)) {
        let target: string;
        try {
          target = realpathSync(from);
        } catch {
          target = resolve(dirname(from), readlinkSync(from));
        }
        symlinkSync(target, to);
        continue;
      }
    }
    const st = statSync(from);
    if (st.isDirectory()) copyTree(from, to, root, depth + 1);
    else if (st.isFile()) {
      copyFileSync(from, to);
      chmodSync(to, st.mode & 0o777);
    }
  }
}

/** The layer directories that exist, lowest first. */
export function layerDirs(s: CustomizationSources): { source: LayerSource; dir: string }[] {
  const bundled = s.bundledDir ?? join(projectRoot(), 'recipes');
  const own = recipeLayerOf(s);
  const candidates: { source: LayerSource; dir: string }[] = [
    { source: 'generic', dir: join(bundled, '_generic') },
    ...(own ? [{ source: 'recipe-repo' as const, dir: own.dir }] : []),
    { source: 'bundled', dir: join(bundled, s.recipe) },
    ...(s.operatorDir ? [{ source: 'operator' as const, dir: join(s.operatorDir, s.recipe) }] : []),
  ];
  return candidates.filter((c) => existsSync(c.dir) && statSync(c.dir).isDirectory());
}

export function loadCustomization(s: CustomizationSources): Customization {
  const own = recipeLayerOf(s);
  try {
    return load(s);
  } catch (e) {
    // A mistake in the recipe repository is named as its maintainers know it: `.cc-ci/…`.
    if (e instanceof SettingsError && own) throw new SettingsError(e.message.split(`${own.dir}/`).join('.cc-ci/'));
    throw e;
  }
}

function load(s: CustomizationSources): Customization {
  const settings: Settings = {
    healthPath: '/',
    healthStatuses: [200, 301, 302],
    deployTimeoutSeconds: s.defaults.deployTimeoutSeconds,
    taskFailuresToFail: 3,
    httpTimeoutSeconds: s.defaults.httpTimeoutSeconds,
    hookTimeoutSeconds: 300,
    extraEnv: {},
    upgradeBase: null,
    expectedNA: {},
    webService: null,
    webPort: null,
  };
  const tests = discoverCustomTests({
    recipe: s.recipe,
    recipeDir: s.recipeDir,
    recipeLayer: s.recipeLayer,
    operatorDir: s.operatorDir,
    bundledDir: s.bundledDir,
  });
  const c: Customization = { recipe: s.recipe, layers: [], settings, hooks: {}, overlay: null, tests, operatorValues: [] };
  const ownRoot = recipeLayerOf(s)?.root;
  for (const layer of layerDirs(s)) {
    // The generic floor is cc-ci's own directory (it holds the tier runners too).
    if (layer.source !== 'generic') checkNames(layer.dir, LAYER_ENTRIES, 'file or directory');
    const settingsPath = join(layer.dir, 'settings.yaml');
    const hasSettings = existsSync(settingsPath);
    c.layers.push({ ...layer, settings: hasSettings });
    if (hasSettings) {
      const read = readSettings(settingsPath);
      apply(settings, read);
      if (layer.source === 'operator') c.operatorValues.push(...Object.values(read.extraEnv ?? {}));
    }
    const hooksDir = join(layer.dir, 'hooks');
    if (existsSync(hooksDir)) checkNames(hooksDir, HOOK_NAMES, 'hook');
    for (const hook of HOOK_NAMES) {
      const path = join(hooksDir, hook);
      if (!existsSync(path)) continue;
      if (layer.source === 'recipe-repo' && ownRoot && !staysInside(path, ownRoot)) {
        throw new SettingsError(`${path}: a hook in the recipe repository must not be a link that leaves it`);
      }
      try {
        if (!statSync(path).isFile()) throw new Error('not a file');
        accessSync(path, constants.X_OK);
      } catch {
        throw new SettingsError(`${path}: a hook must be an executable file (chmod +x, with a #! line)`);
      }
      c.hooks[hook] = { path, source: layer.source };
    }
    const overlay = join(layer.dir, OVERLAY_FILE);
    if (existsSync(overlay)) c.overlay = { path: overlay, source: layer.source };
  }
  if (c.hooks.seed && !c.hooks.check) {
    throw new SettingsError(`a seed hook (${c.hooks.seed.path}) needs a check hook to verify what it wrote`);
  }
  return c;
}

/** Refuses names a directory of a layer does not know, naming the closest known one. */
function checkNames(dir: string, known: readonly string[], what: string): void {
  let entries: string[];
  try {
    if (!statSync(dir).isDirectory()) return;
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of entries.sort()) {
    if (known.includes(name) || name.startsWith('.') || /^README/i.test(name)) continue;
    const near = closest(name, known);
    throw new SettingsError(`${join(dir, name)}: unknown ${what} "${name}"${near ? ` (did you mean "${near}"?)` : ''}; known: ${known.join(', ')}`);
  }
}

/** The known name within a small edit distance of a typo, if any. */
function closest(name: string, known: readonly string[]): string | null {
  let best: { name: string; d: number } | null = null;
  for (const k of known) {
    const d = levenshtein(name.toLowerCase(), k);
    if (d <= Math.max(2, Math.floor(k.length / 3)) && (!best || d < best.d)) best = { name: k, d };
  }
  return best?.name ?? null;
}

function apply(settings: Settings, f: SettingsFile): void {
  if (f.healthPath !== undefined) settings.healthPath = f.healthPath;
  if (f.healthStatuses !== undefined) settings.healthStatuses = f.healthStatuses;
  if (f.deployTimeoutSeconds !== undefined) settings.deployTimeoutSeconds = f.deployTimeoutSeconds;
  if (f.taskFailuresToFail !== undefined) settings.taskFailuresToFail = f.taskFailuresToFail;
  if (f.httpTimeoutSeconds !== undefined) settings.httpTimeoutSeconds = f.httpTimeoutSeconds;
  if (f.hookTimeoutSeconds !== undefined) settings.hookTimeoutSeconds = f.hookTimeoutSeconds;
  if (f.upgradeBase !== undefined) settings.upgradeBase = f.upgradeBase;
  if (f.webService !== undefined) settings.webService = f.webService;
  if (f.webPort !== undefined) settings.webPort = f.webPort;
  if (f.extraEnv) settings.extraEnv = { ...settings.extraEnv, ...f.extraEnv };
  if (f.expectedNA) settings.expectedNA = { ...settings.expectedNA, ...f.expectedNA };
}

/** A one-line manifest of what a run uses, for its log. */
export function describeCustomization(c: Customization): string {
  const layers = c.layers.map((l) => `${l.source}${l.settings ? '+settings' : ''}`).join(' < ');
  const hooks = Object.entries(c.hooks).map(([h, f]) => `${h} (${f.source})`);
  return [
    `layers: ${layers || 'none'}`,
    `hooks: ${hooks.length ? hooks.join(', ') : 'none (generic markers)'}`,
    `overlay: ${c.overlay ? `${OVERLAY_FILE} (${c.overlay.source})` : 'none'}`,
    `custom tests: ${c.tests.specs.length} Playwright spec(s), ${c.tests.functional.length} functional check(s)`,
    `settings: ${JSON.stringify(c.settings)}`,
  ].join('; ');
}
