import { chmodSync, mkdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { expandHome, type Config } from './config.js';

/** Where everything lives under one state directory. `cc-ci` needs nothing but this directory. */
export interface StatePaths {
  root: string;
  db: string;
  specs: string;
  /** Warm objects, one file per recipe (controller/model/warm.ts). */
  warm: string;
  runs: string;
  /** Each warm app's own ABRA_DIR, upkeep log and last-known-good data snapshot (reconcilers/warm-app.ts). */
  warmApps: string;
}

/** `--state-dir`, else CCCI_STATE_DIR, else the user's state directory (XDG_STATE_HOME). */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CCCI_STATE_DIR) return env.CCCI_STATE_DIR;
  const xdg = env.XDG_STATE_HOME || join(homedir(), '.local', 'state');
  return join(xdg, 'cc-ci');
}

export function statePaths(dir: string): StatePaths {
  const root = resolve(expandHome(dir));
  return {
    root,
    db: join(root, 'cc-ci.db'),
    specs: join(root, 'specs'),
    warm: join(root, 'warm'),
    runs: join(root, 'runs'),
    warmApps: join(root, 'warm-apps'),
  };
}

export function ensureStateDirs(p: StatePaths): void {
  for (const d of [p.root, p.specs, p.warm, p.runs, p.warmApps]) mkdirSync(d, { recursive: true, mode: 0o700 });
  // mkdir's mode applies only to a directory it creates: an existing state directory is tightened.
  // (Someone else's directory cannot be: `cc-ci doctor` shows its mode then.)
  try {
    if ((statSync(p.root).mode & 0o077) !== 0) chmodSync(p.root, 0o700);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') throw e;
  }
}

/** A run's directory: its log, evidence, and its own ABRA_DIR (removed at teardown). */
export function runDir(p: StatePaths, run: string): string {
  return join(p.runs, run);
}

/** Where abra keeps a server's app `.env` files: ABRA_DIR/servers/<server> (the canonical ABRA_DIR;
 *  a run's own ABRA_DIR links its `servers/` here). */
export function abraServerDir(config: Pick<Config, 'abra'>, server = config.abra.server): string {
  return join(config.abra.dir, 'servers', server);
}

/** An app's `.env` file, named by its domain. */
export function appEnvPath(config: Pick<Config, 'abra'>, server: string, domain: string): string {
  return join(abraServerDir(config, server), `${domain}.env`);
}

export function runAbraDir(p: StatePaths, run: string): string {
  return join(p.runs, run, 'abra');
}

/** A warm app's directory: its upkeep log, its ABRA_DIR and its data snapshot. */
export function warmAppDir(p: StatePaths, recipe: string): string {
  return join(p.warmApps, recipe);
}
