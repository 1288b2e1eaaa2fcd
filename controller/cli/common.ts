import { existsSync } from 'node:fs';
import { Store } from '../../state/store.js';
import { ConfigError, loadConfig, type Config } from '../model/config.js';
import { createLogger, type Logger } from '../model/log.js';
import { defaultStateDir, ensureStateDirs, statePaths, type StatePaths } from '../model/paths.js';

/** Options every command takes. */
export interface GlobalOptions {
  stateDir?: string;
  config?: string;
}

export interface Env {
  paths: StatePaths;
  config: Config;
  logger: Logger;
}

/** Bad input to the CLI: printed as one line, exit status 2, nothing written. */
export class UsageError extends Error {}

export const EXIT = { passed: 0, failed: 1, error: 2 } as const;

/** `quiet`: the controller's own JSON log only from warnings up (interactive commands print
 *  the run's log instead); CCCI_LOG_LEVEL overrides either way. */
export function loadEnv(g: GlobalOptions, quiet = false): Env {
  const paths = statePaths(g.stateDir ?? defaultStateDir());
  let config: Config;
  try {
    config = loadConfig(g.config ?? process.env.CCCI_CONFIG);
  } catch (e) {
    if (e instanceof ConfigError) throw new UsageError(e.message);
    throw e;
  }
  const level = process.env.CCCI_LOG_LEVEL ?? (quiet ? 'warn' : config.log.level);
  return { paths, config, logger: createLogger(level) };
}

/** Opens the store of a state directory for reading (and the CLI's few writes). */
export function openStore(paths: StatePaths, create = false): Store {
  if (!create && !existsSync(paths.db)) {
    throw new UsageError(`no cc-ci state in ${paths.root} (nothing has run there yet)`);
  }
  ensureStateDirs(paths);
  return new Store(paths.db);
}

export function out(line = ''): void {
  process.stdout.write(`${line}\n`);
}

export function err(line: string): void {
  process.stderr.write(`${line}\n`);
}

export function ago(ms: number): string {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

export function duration(ms: number | null): string {
  if (ms === null) return '-';
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  return `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`;
}

/** Lines up columns like kubectl. */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('   ')).join('\n');
}
