// Loading an app: its .env, recipe, stack name and the deploy environment.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EnvFile, parseAbraSh } from './envfile.js';
import { fatal } from './log.js';
import { listAppFiles, recipeDir, sanitiseAppName } from './paths.js';

export interface App {
  domain: string;
  server: string;
  envPath: string;
  env: EnvFile;
  recipe: string;
  /** Version pinned in `TYPE=<recipe>:<version>`, if any. */
  pinnedVersion: string | undefined;
  recipeDir: string;
  stack: string;
}

/** `TYPE=` (or `RECIPE=`) → [recipe, version?]. */
export function recipeOf(env: EnvFile): { key: 'TYPE' | 'RECIPE'; recipe: string; version: string | undefined } | undefined {
  for (const key of ['TYPE', 'RECIPE'] as const) {
    const v = env.get(key);
    if (v !== undefined && v !== '') {
      const idx = v.indexOf(':');
      return idx >= 0 ? { key, recipe: v.slice(0, idx), version: v.slice(idx + 1) || undefined } : { key, recipe: v, version: undefined };
    }
  }
  return undefined;
}

export function stackNameOf(domain: string, env: EnvFile): string {
  const explicit = env.get('STACK_NAME');
  return explicit !== undefined && explicit !== '' ? explicit : sanitiseAppName(domain);
}

export function loadApp(domain: string): App {
  const matches = listAppFiles().filter((a) => a.domain === domain);
  if (matches.length === 0) fatal(`cannot find app with name ${domain}`);
  if (matches.length > 1) fatal(`app ${domain} exists on more than one server: ${matches.map((m) => m.server).join(', ')}`);
  const m = matches[0];
  if (!m) fatal(`cannot find app with name ${domain}`);
  const env = EnvFile.parse(readFileSync(m.path, 'utf8'));
  const r = recipeOf(env);
  if (!r) fatal(`${m.path} has no TYPE= (or RECIPE=) line`);
  return {
    domain,
    server: m.server,
    envPath: m.path,
    env,
    recipe: r.recipe,
    pinnedVersion: r.version,
    recipeDir: recipeDir(r.recipe),
    stack: stackNameOf(domain, env),
  };
}

export function saveAppEnv(app: App): void {
  writeFileSync(app.envPath, app.env.toString());
}

/** Writes `TYPE=<recipe>:<version>` (or RECIPE= if the file uses that key), re-reading the file first. */
export function pinVersion(app: App, version: string): void {
  const fresh = EnvFile.parse(readFileSync(app.envPath, 'utf8'));
  const r = recipeOf(fresh);
  fresh.set(r?.key ?? 'TYPE', `${app.recipe}:${version}`);
  writeFileSync(app.envPath, fresh.toString());
  app.env = fresh;
}

export function abraShEnv(dir: string): Map<string, string> {
  const p = join(dir, 'abra.sh');
  return existsSync(p) ? parseAbraSh(readFileSync(p, 'utf8')) : new Map();
}

/**
 * The environment abra deploys with (docs/abra-double.md, The contract): the app .env, then the `export`
 * lines of the recipe's abra.sh, then STACK_NAME.
 */
export function deployEnv(app: App): Map<string, string> {
  const env = new Map(app.env.values());
  for (const [k, v] of abraShEnv(app.recipeDir)) env.set(k, v);
  env.set('STACK_NAME', app.stack);
  return env;
}

export function requireRecipeDir(app: App): void {
  if (!existsSync(app.recipeDir)) fatal(`recipe ${app.recipe} does not exist at ${app.recipeDir}; run "abra recipe fetch ${app.recipe}"`);
}
