import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { projectRoot } from '../controller/project-root.js';
import { formatIssues } from '../controller/spec.js';
import { TIER_NAMES } from '../state/types.js';

/**
 * Per-recipe customisation (design §5). Layers, lowest first:
 *   1. `recipes/_generic/`            the floor every recipe gets (bundled with cc-ci)
 *   2. `<recipe repo>/.cc-ci/`        what the recipe's maintainers ship in their repository
 *   3. `recipes/<recipe>/`            cc-ci's bundled customisation of that recipe
 *   4. `<config.recipesDir>/<recipe>/` the operator's own
 * Settings: scalars from a higher layer replace lower ones; maps (extraEnv, expectedNA) extend.
 * Hooks and the compose overlay: the highest layer that has the file wins, whole.
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
  deployTimeoutSeconds: z.number().positive().optional(),
  /** How long the app may take to answer the probe once converged. */
  httpTimeoutSeconds: z.number().positive().optional(),
  /** How long a hook may run. */
  hookTimeoutSeconds: z.number().positive().optional(),
  /** Extra variables written into the app's .env before the deploy. */
  extraEnv: z.record(envKey, z.string()).optional(),
  /** The release to upgrade from, instead of the highest release tag below the ref. */
  upgradeBase: z.string().min(1).optional(),
  /** Tiers that are known not to apply to this recipe, with the reason. */
  expectedNA: z.partialRecord(z.enum(TIER_NAMES), z.string().min(1)).optional(),
});

export type SettingsFile = z.infer<typeof settingsFileSchema>;

export interface Settings {
  healthPath: string;
  healthStatuses: number[];
  deployTimeoutSeconds: number;
  httpTimeoutSeconds: number;
  hookTimeoutSeconds: number;
  extraEnv: Record<string, string>;
  upgradeBase: string | null;
  expectedNA: Partial<Record<(typeof TIER_NAMES)[number], string>>;
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

/** What a run used, printed at its start and stored with its result. */
export interface Customization {
  recipe: string;
  layers: { source: LayerSource; dir: string; settings: boolean }[];
  settings: Settings;
  hooks: Partial<Record<HookName, FileFromLayer>>;
  overlay: FileFromLayer | null;
}

export class SettingsError extends Error {}

function readSettings(path: string): SettingsFile {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8')) ?? {};
  } catch (e) {
    throw new SettingsError(`${path}: not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  const r = settingsFileSchema.safeParse(doc);
  if (!r.success) throw new SettingsError(`${path}: ${formatIssues(r.error)}`);
  return r.data;
}

export interface CustomizationSources {
  recipe: string;
  /** The run's checkout of the recipe (its `.cc-ci/` is a layer). */
  recipeDir?: string;
  /** Defaults that come from the controller's config. */
  defaults: { deployTimeoutSeconds: number; httpTimeoutSeconds: number };
  /** The operator's directory of recipe customisations (config `recipesDir`). */
  operatorDir?: string | undefined;
  /** The bundled recipes/ directory (default: the one shipped with cc-ci). */
  bundledDir?: string;
}

/** The layer directories that exist, lowest first. */
export function layerDirs(s: CustomizationSources): { source: LayerSource; dir: string }[] {
  const bundled = s.bundledDir ?? join(projectRoot(), 'recipes');
  const candidates: { source: LayerSource; dir: string }[] = [
    { source: 'generic', dir: join(bundled, '_generic') },
    ...(s.recipeDir ? [{ source: 'recipe-repo' as const, dir: join(s.recipeDir, '.cc-ci') }] : []),
    { source: 'bundled', dir: join(bundled, s.recipe) },
    ...(s.operatorDir ? [{ source: 'operator' as const, dir: join(s.operatorDir, s.recipe) }] : []),
  ];
  return candidates.filter((c) => existsSync(c.dir) && statSync(c.dir).isDirectory());
}

export function loadCustomization(s: CustomizationSources): Customization {
  const settings: Settings = {
    healthPath: '/',
    healthStatuses: [200, 301, 302],
    deployTimeoutSeconds: s.defaults.deployTimeoutSeconds,
    httpTimeoutSeconds: s.defaults.httpTimeoutSeconds,
    hookTimeoutSeconds: 300,
    extraEnv: {},
    upgradeBase: null,
    expectedNA: {},
  };
  const c: Customization = { recipe: s.recipe, layers: [], settings, hooks: {}, overlay: null };
  for (const layer of layerDirs(s)) {
    const settingsPath = join(layer.dir, 'settings.yaml');
    const hasSettings = existsSync(settingsPath);
    c.layers.push({ ...layer, settings: hasSettings });
    if (hasSettings) apply(settings, readSettings(settingsPath));
    for (const hook of HOOK_NAMES) {
      const path = join(layer.dir, 'hooks', hook);
      if (!existsSync(path)) continue;
      try {
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

function apply(settings: Settings, f: SettingsFile): void {
  if (f.healthPath !== undefined) settings.healthPath = f.healthPath;
  if (f.healthStatuses !== undefined) settings.healthStatuses = f.healthStatuses;
  if (f.deployTimeoutSeconds !== undefined) settings.deployTimeoutSeconds = f.deployTimeoutSeconds;
  if (f.httpTimeoutSeconds !== undefined) settings.httpTimeoutSeconds = f.httpTimeoutSeconds;
  if (f.hookTimeoutSeconds !== undefined) settings.hookTimeoutSeconds = f.hookTimeoutSeconds;
  if (f.upgradeBase !== undefined) settings.upgradeBase = f.upgradeBase;
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
    `settings: ${JSON.stringify(c.settings)}`,
  ].join('; ');
}
