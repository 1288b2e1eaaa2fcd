import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { projectRoot } from '../controller/project-root.js';
import { formatIssues } from '../controller/spec.js';
import { TIER_NAMES } from '../state/types.js';

/**
 * Per-recipe customisation. `recipes/_generic/` is the floor every recipe gets; a directory
 * named after the recipe layers on it. docs/testing.md states the precedence; this file is
 * where it is implemented.
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
  /** Extra variables written into the app's .env before the deploy. */
  extraEnv: z.record(envKey, z.string()).optional(),
  /** The release to upgrade from, instead of the highest release tag below the ref. */
  upgradeBase: z.string().optional(),
  /** Tiers that are known not to apply to this recipe, with the reason. */
  expectedNA: z.partialRecord(z.enum(TIER_NAMES), z.string().min(1)).optional(),
});

export type SettingsFile = z.infer<typeof settingsFileSchema>;

export interface Settings {
  healthPath: string;
  healthStatuses: number[];
  deployTimeoutSeconds: number;
  httpTimeoutSeconds: number;
  extraEnv: Record<string, string>;
  upgradeBase: string | null;
  expectedNA: Partial<Record<(typeof TIER_NAMES)[number], string>>;
}

/** What a run used, printed at its start and stored with its result. */
export interface Customization {
  recipe: string;
  layers: { source: string; path: string }[];
  settings: Settings;
}

export class SettingsError extends Error {}

function readLayer(path: string): SettingsFile {
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
  /** Defaults that come from the controller's config. */
  defaults: { deployTimeoutSeconds: number; httpTimeoutSeconds: number };
  /** An operator's directory of recipe customisations (config `recipesDir`), above the bundled one. */
  operatorDir?: string | undefined;
  /** The bundled recipes/ directory (default: the one shipped with cc-ci). */
  bundledDir?: string;
}

/** Loads `_generic`, then the bundled `<recipe>`, then the operator's `<recipe>`: later wins. */
export function loadCustomization(s: CustomizationSources): Customization {
  const bundled = s.bundledDir ?? join(projectRoot(), 'recipes');
  const candidates: { source: string; path: string }[] = [
    { source: 'generic', path: join(bundled, '_generic', 'settings.yaml') },
    { source: 'bundled', path: join(bundled, s.recipe, 'settings.yaml') },
  ];
  if (s.operatorDir) candidates.push({ source: 'operator', path: join(s.operatorDir, s.recipe, 'settings.yaml') });

  const settings: Settings = {
    healthPath: '/',
    healthStatuses: [200, 301, 302],
    deployTimeoutSeconds: s.defaults.deployTimeoutSeconds,
    httpTimeoutSeconds: s.defaults.httpTimeoutSeconds,
    extraEnv: {},
    upgradeBase: null,
    expectedNA: {},
  };
  const layers: Customization['layers'] = [];
  for (const c of candidates) {
    if (!existsSync(c.path)) continue;
    const f = readLayer(c.path);
    layers.push(c);
    if (f.healthPath !== undefined) settings.healthPath = f.healthPath;
    if (f.healthStatuses !== undefined) settings.healthStatuses = f.healthStatuses;
    if (f.deployTimeoutSeconds !== undefined) settings.deployTimeoutSeconds = f.deployTimeoutSeconds;
    if (f.httpTimeoutSeconds !== undefined) settings.httpTimeoutSeconds = f.httpTimeoutSeconds;
    if (f.upgradeBase !== undefined) settings.upgradeBase = f.upgradeBase;
    // Maps extend: a recipe adds env and n/a reasons to what the floor has.
    if (f.extraEnv) settings.extraEnv = { ...settings.extraEnv, ...f.extraEnv };
    if (f.expectedNA) settings.expectedNA = { ...settings.expectedNA, ...f.expectedNA };
  }
  return { recipe: s.recipe, layers, settings };
}
