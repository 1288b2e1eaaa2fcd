import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../model/config.js';
import { describeFailure, ok, runInTerminal, runProcess, type ChildTracker, type ProcessResult, type Stream } from './process.js';

/**
 * The abra client: every call is `abra … -n` (never prompt), with `ABRA_DIR` set to the run's
 * own directory, `LANG=C` so messages match, a timeout, and output streamed into the run's log.
 * Which binary: `CCCI_ABRA`, else config, else `abra` on PATH (resolved in config.ts).
 */

export interface AbraOptions {
  bin: string;
  abraDir: string;
  server: string;
  callTimeoutMs: number;
  signal?: AbortSignal;
  tracker?: ChildTracker;
  onLine?: (stream: Stream, line: string) => void;
  /** Instead of onLine: the lines of each chunk of output at once (one log write per chunk). */
  onLines?: (stream: Stream, lines: readonly string[]) => void;
}

export class AbraError extends Error {
  constructor(
    readonly operation: string,
    readonly result: ProcessResult,
  ) {
    super(`abra ${operation} failed: ${describeFailure(result)}`);
  }

  /** The `FATA …` message abra printed, if any. */
  get fatal(): string | null {
    const line = this.result.stderr
      .split('\n')
      .reverse()
      .find((l) => l.startsWith('FATA'));
    return line ? line.replace(/^FATA\s*/, '') : null;
  }
}

export interface DeployFlags {
  version?: string;
  chaos?: boolean;
  force?: boolean;
  noConvergeChecks?: boolean;
  noDomainChecks?: boolean;
  offline?: boolean;
}

export interface BackupSnapshot {
  id: string;
  time: string | null;
}

/**
 * Flags cc-ci passes where the pinned abra has them (`--chaos` and `--offline` on commands that
 * touch the recipe, `--volumes` on backup download): whether a command has one is read from its
 * `--help`, once per binary and command, so cc-ci works whether or not a given abra version
 * offers it (docs/abra-double.md, "flags by help"). `cc-ci doctor` reports which are missing.
 */
const helpCache = new Map<string, Promise<string | null>>();

export class Abra {
  constructor(private readonly options: AbraOptions) {}

  /** The abra of cc-ci's config (binary, server, call timeout); `abraDir` defaults to the canonical one. */
  static fromConfig(
    config: Pick<Config, 'abra'>,
    o: Partial<Pick<AbraOptions, 'abraDir'>> & Pick<AbraOptions, 'signal' | 'tracker' | 'onLine' | 'onLines'> = {},
  ): Abra {
    const { abraDir = config.abra.dir, ...rest } = o;
    return new Abra({ bin: config.abra.bin, abraDir, server: config.abra.server, callTimeoutMs: config.abra.callTimeoutSeconds * 1000, ...rest });
  }

  /** Whether `abra <path…> --help` lists `flag` (cached per binary and command). */
  async supports(path: readonly string[], flag: string): Promise<boolean> {
    const key = `${this.options.bin}\0${path.join(' ')}`;
    let help = helpCache.get(key);
    if (!help) {
      help = this.help(path).catch(() => null);
      helpCache.set(key, help);
    }
    const text = await help;
    return text !== null && new RegExp(`(^|[\\s,])${flag}([\\s=,]|$)`, 'm').test(text);
  }

  /** `--chaos` and `--offline` for a recipe-touching command, where the command has them: abra
   *  then neither checks out another version nor fetches (docs/abra-double.md, The contract). */
  private async recipeFlags(path: readonly string[]): Promise<string[]> {
    const flags: string[] = [];
    if (await this.supports(path, '--chaos')) flags.push('--chaos');
    if (await this.supports(path, '--offline')) flags.push('--offline');
    return flags;
  }

  private async call(
    operation: string,
    args: string[],
    extra: { sensitive?: boolean; timeoutMs?: number; quiet?: boolean; terminal?: boolean; cwd?: string } = {},
  ): Promise<ProcessResult> {
    const r = await (extra.terminal ? runInTerminal : runProcess)({
      ...(extra.cwd ? { cwd: extra.cwd } : {}),
      cmd: this.options.bin,
      args: [...args, '-n'],
      timeoutMs: extra.timeoutMs ?? this.options.callTimeoutMs,
      env: { ABRA_DIR: this.options.abraDir, LANG: 'C', LC_ALL: 'C', NO_COLOR: '1', TERM: 'dumb' },
      ...(this.options.signal ? { signal: this.options.signal } : {}),
      ...(this.options.tracker ? { tracker: this.options.tracker } : {}),
      ...(this.options.onLine && !extra.quiet ? { onLine: this.options.onLine } : {}),
      ...(this.options.onLines && !extra.quiet ? { onLines: this.options.onLines } : {}),
      sensitive: extra.sensitive ?? false,
    });
    // abra reports every error through its fatal logger: non-zero exit and a FATA line.
    // A failed sensitive call keeps no stdout: an error object travels into logs.
    if (!ok(r) || /^FATA/m.test(r.stderr)) throw new AbraError(operation, extra.sensitive ? { ...r, stdout: '' } : r);
    return r;
  }

  async version(): Promise<string> {
    const r = await this.call('--version', ['--version'], { timeoutMs: 15_000, quiet: true });
    return r.stdout.trim() || r.stderr.trim();
  }

  /** `abra <path…> --help`, for the self-check of the flags cc-ci relies on. */
  async help(path: readonly string[]): Promise<string> {
    const r = await this.call(`${path.join(' ')} --help`, [...path, '--help'], { timeoutMs: 15_000, quiet: true });
    return `${r.stdout}\n${r.stderr}`;
  }

  async appNew(recipe: string, domain: string, f: { version?: string; chaos?: boolean; offline?: boolean } = {}): Promise<void> {
    const args = ['app', 'new', recipe];
    if (f.version) args.push(f.version);
    args.push('--server', this.options.server, '--domain', domain);
    if (f.chaos) args.push('--chaos');
    if (f.offline) args.push('--offline');
    await this.call('app new', args);
  }

  async appDeploy(domain: string, f: DeployFlags = {}, timeoutMs?: number): Promise<void> {
    const args = ['app', 'deploy', domain];
    if (f.version) args.push(f.version);
    if (f.chaos) args.push('--chaos');
    if (f.force) args.push('--force');
    if (f.noConvergeChecks) args.push('--no-converge-checks');
    if (f.noDomainChecks) args.push('--no-domain-checks');
    if (f.offline) args.push('--offline');
    await this.call('app deploy', args, timeoutMs ? { timeoutMs } : {});
  }

  async appUndeploy(domain: string, timeoutMs?: number): Promise<void> {
    await this.call('app undeploy', ['app', 'undeploy', domain, ...(await this.offline(['app', 'undeploy']))], timeoutMs ? { timeoutMs } : {});
  }

  async appRemove(domain: string): Promise<void> {
    await this.call('app rm', ['app', 'rm', domain, '--force', ...(await this.offline(['app', 'remove']))]);
  }

  private async offline(path: readonly string[]): Promise<string[]> {
    return (await this.supports(path, '--offline')) ? ['--offline'] : [];
  }

  /**
   * Generates every secret the app declares. The machine-readable output carries the generated
   * values, so it never reaches a log: the caller gets the values only to redact them.
   */
  async secretGenerateAll(domain: string): Promise<{ names: string[]; values: string[] }> {
    const path = ['app', 'secret', 'generate'];
    const r = await this.call('app secret generate', [...path, domain, '--all', '--machine', ...(await this.recipeFlags(path))], {
      sensitive: true,
    });
    return parseGeneratedSecrets(r.stdout);
  }

  /** Generates one secret at one version (`abra app secret generate <domain> <secret> <version>`):
   *  how a secret a newer commit adds is made beside the ones that exist. */
  async secretGenerate(domain: string, key: string, version: string): Promise<{ names: string[]; values: string[] }> {
    const path = ['app', 'secret', 'generate'];
    const r = await this.call('app secret generate', [...path, domain, key, version, '--machine', ...(await this.recipeFlags(path))], {
      sensitive: true,
    });
    return parseGeneratedSecrets(r.stdout);
  }

  async secretRemoveAll(domain: string): Promise<void> {
    await this.call('app secret rm', ['app', 'secret', 'rm', domain, '--all', ...(await this.offline(['app', 'secret', 'remove']))]);
  }

  /** Backups exec into the backup bot's container with a TTY: every backup command runs under a
   *  pseudo-terminal (docs/abra-double.md, The contract). */
  /** Returns what abra printed: backup-bot-two reports a hook that failed there and carries on. */
  async backupCreate(domain: string, timeoutMs?: number): Promise<string> {
    const path = ['app', 'backup', 'create'];
    const r = await this.call('app backup create', [...path, domain, ...(await this.recipeFlags(path))], {
      terminal: true,
      ...(timeoutMs ? { timeoutMs } : {}),
    });
    return r.stdout;
  }

  async restore(domain: string, snapshot?: string, timeoutMs?: number): Promise<string> {
    const path = ['app', 'restore'];
    const args = [...path, domain];
    if (snapshot) args.push('--snapshot', snapshot);
    const r = await this.call('app restore', [...args, ...(await this.recipeFlags(path))], { terminal: true, ...(timeoutMs ? { timeoutMs } : {}) });
    return r.stdout;
  }

  /**
   * Every backup command execs into the backup bot's container (docs/abra-double.md, The contract): under a
   * pseudo-terminal too, whose one stream also carries abra's WARN/INFO lines. Real abra prints
   * backup-bot-two's own listing, one `<time> <id>` line per snapshot, oldest first [R]; a JSON
   * list is read too (parseSnapshots), so either answer works.
   */
  async backupSnapshots(domain: string, timeoutMs?: number): Promise<BackupSnapshot[]> {
    const path = ['app', 'backup', 'snapshots'];
    const r = await this.call('app backup snapshots', [...path, domain, ...(await this.recipeFlags(path))], {
      quiet: true,
      terminal: true,
      ...(timeoutMs ? { timeoutMs } : {}),
    });
    return parseSnapshots(r.stdout);
  }

  /**
   * Downloads a snapshot's archive into `dir` (abra writes it to its working directory) and
   * returns the file it wrote. With `--volumes` where abra has it: by default the archive also
   * holds a `<domain>.json` with the app's secrets [R], which cc-ci never wants.
   */
  async backupDownload(domain: string, snapshot: string, dir: string): Promise<{ file: string; volumesOnly: boolean }> {
    const path = ['app', 'backup', 'download'];
    const before = new Set(readdirSync(dir));
    const volumesOnly = await this.supports(path, '--volumes');
    const args = [...path, domain, '--snapshot', snapshot, ...(volumesOnly ? ['--volumes'] : []), ...(await this.recipeFlags(path))];
    const r = await this.call('app backup download', args, { cwd: dir, terminal: true, quiet: true });
    const said = r.stdout
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.startsWith('/') && existsSync(l))
      .pop();
    if (said) return { file: said, volumesOnly };
    const fresh = readdirSync(dir).filter((f) => !before.has(f));
    if (fresh.length === 1 && fresh[0]) return { file: join(dir, fresh[0]), volumesOnly };
    throw new Error(`abra app backup download left ${fresh.length} new file(s) in ${dir}; expected one archive`);
  }

  async volumeRemoveAll(domain: string): Promise<void> {
    await this.call('app volume rm', ['app', 'volume', 'rm', domain, '--force', ...(await this.offline(['app', 'volume', 'remove']))]);
  }
}

/**
 * Snapshots from `abra app backup snapshots`: a JSON list of `{id, time}` objects, or text lines
 * that name an id (8 or more hex digits) with an optional time before it, as backup-bot-two
 * prints them (`2026-05-01 12:00:00 1a2b3c4d`). Other lines (abra's INFO/WARN) are skipped.
 */
export function parseSnapshots(stdout: string): BackupSnapshot[] {
  const json = jsonPart(stdout);
  if (/^\s*\[/.test(json)) {
    try {
      const doc: unknown = JSON.parse(json);
      if (Array.isArray(doc)) {
        return doc
          .filter((s): s is Record<string, unknown> => !!s && typeof s === 'object' && typeof (s as { id?: unknown }).id === 'string')
          .map((s) => ({ id: String(s.id), time: typeof s.time === 'string' ? s.time : null }));
      }
    } catch {
      /* not JSON after all: read it as text */
    }
  }
  const out: BackupSnapshot[] = [];
  for (const raw of stdout.split('\n')) {
    // eslint-free ANSI strip: a terminal may colour the level prefixes.
    const line = raw.replace(/\x1b\[[0-9;]*m/g, '').trim();
    if (!line || /^(INFO|WARN|DEBU|FATA|ERRO)\b/.test(line)) continue;
    const words = line.split(/\s+/);
    const idAt = words.findIndex((w) => /^[0-9a-f]{8,64}$/.test(w));
    if (idAt < 0) continue;
    const time = words.slice(0, idAt).join(' ');
    out.push({ id: words[idAt] as string, time: time || null });
  }
  return out;
}

/** The JSON document in a terminal's output: from the first line that opens one to the last
 *  line that closes one (log lines may come before and after). */
export function jsonPart(text: string): string {
  const lines = text.split('\n');
  const first = lines.findIndex((l) => /^\s*[[{]/.test(l));
  let last = -1;
  for (let i = lines.length - 1; i >= 0; i--) {
    if (/[\]}]\s*$/.test(lines[i] ?? '')) {
      last = i;
      break;
    }
  }
  return first >= 0 && last >= first ? lines.slice(first, last + 1).join('\n') : text;
}

/** Reads `secret generate -m` output: a list of objects naming each secret and its value. */
export function parseGeneratedSecrets(stdout: string): { names: string[]; values: string[] } {
  const names: string[] = [];
  const values: string[] = [];
  let doc: unknown;
  try {
    doc = JSON.parse(stdout);
  } catch {
    return { names, values };
  }
  const items = Array.isArray(doc) ? doc : doc && typeof doc === 'object' ? Object.values(doc) : [];
  for (const item of items) {
    if (!item || typeof item !== 'object') continue;
    const o = item as Record<string, unknown>;
    const name = o.name ?? o['secret-name'] ?? o.remoteName;
    const value = o.value ?? o.password ?? o.secret;
    if (typeof name === 'string') names.push(name);
    if (typeof value === 'string' && value.length > 0) values.push(value);
  }
  return { names, values };
}
