// The only place that spawns processes. Argument arrays only (never a shell), a timeout on every
// call, stdout/stderr captured as strings. `-d/--debug` logs each command line.
import { execa } from 'execa';
import { log } from './log.js';

export interface RunOptions {
  cwd?: string;
  /** When given, the child sees exactly this environment (no inheritance). */
  env?: Record<string, string>;
  timeoutMs?: number;
  /** Text fed on stdin. */
  input?: string;
  /** Write the child's stdout to this file instead of capturing it. */
  stdoutFile?: string;
  /** Feed this file on stdin. */
  stdinFile?: string;
}

export interface RunResult {
  command: string;
  exitCode: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  ok: boolean;
}

export const DEFAULT_TIMEOUT_MS = 60_000;

function asText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value instanceof Uint8Array) return Buffer.from(value).toString('utf8');
  return '';
}

export async function run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const command = [file, ...args].join(' ');
  log.debug(`running: ${command}${opts.cwd ? ` (in ${opts.cwd})` : ''}`);
  const base = {
    cwd: opts.cwd,
    timeout: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    reject: false,
    stripFinalNewline: true,
    ...(opts.env ? { env: opts.env, extendEnv: false } : {}),
  } as const;
  const stdin =
    opts.stdinFile !== undefined ? { stdin: { file: opts.stdinFile } } : opts.input !== undefined ? { input: opts.input } : { stdin: 'ignore' as const };
  const stdout = opts.stdoutFile !== undefined ? { stdout: { file: opts.stdoutFile } } : {};
  const result = await execa(file, [...args], { ...base, ...stdin, ...stdout });
  const exitCode = typeof result.exitCode === 'number' ? result.exitCode : -1;
  const res: RunResult = {
    command,
    exitCode,
    stdout: asText(result.stdout),
    stderr: asText(result.stderr),
    timedOut: result.timedOut === true,
    ok: exitCode === 0 && result.timedOut !== true,
  };
  if (!res.ok) log.debug(`failed (${res.timedOut ? 'timed out' : `exit ${exitCode}`}): ${command}: ${res.stderr.trim()}`);
  return res;
}

/** One-line description of a failed command, for FATA messages. */
export function failure(res: RunResult): string {
  const why = res.timedOut ? 'timed out' : `exit ${res.exitCode}`;
  const detail = (res.stderr.trim() || res.stdout.trim()).split('\n').slice(-3).join(' / ');
  return `${res.command}: ${why}${detail ? `: ${detail}` : ''}`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
