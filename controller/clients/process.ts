import { readdirSync, readFileSync } from 'node:fs';
import { execa } from 'execa';
import { DEFAULT_KEEP_CHARS, LineSplitter, OutputTail } from './output-tail.js';

/**
 * Runs external programs (abra, docker, git): always an argument array, never a shell; always
 * a wall-clock timeout; output streamed line by line and kept only as a bounded tail
 * (output-tail.ts); the whole process group killed on timeout or cancel, because abra starts
 * docker and git children of its own.
 */

export type Stream = 'out' | 'err';

/** Told about every child that starts and ends, so a restart after kill -9 can find orphans. */
export interface ChildTracker {
  started(pid: number, command: string): void;
  ended(pid: number): void;
}

export interface RunOptions {
  cmd: string;
  args: readonly string[];
  timeoutMs: number;
  env?: Record<string, string | undefined>;
  cwd?: string;
  signal?: AbortSignal;
  /** Fed to stdin (text, or bytes such as a tar stream). */
  input?: string | Uint8Array;
  /** Keep stdout as raw bytes (`stdoutBytes`) instead of lines, e.g. a tar stream. */
  binaryStdout?: boolean;
  /** Start from `env` alone, not the controller's own environment (git's small, explicit one). */
  cleanEnv?: boolean;
  /** Receives each output line. Not called for sensitive calls. */
  onLine?: (stream: Stream, line: string) => void;
  /** Receives the lines of each chunk of output at once (instead of onLine): one log write per chunk. */
  onLines?: (stream: Stream, lines: readonly string[]) => void;
  /** How much of each stream's last lines the result keeps (default 8 MiB; output_tail.ts). */
  keepChars?: number;
  /** The output carries secrets: keep it out of every log; the caller parses it. */
  sensitive?: boolean;
  tracker?: ChildTracker;
  /** Grace between SIGTERM and SIGKILL when stopping the group. */
  killGraceMs?: number;
}

export interface ProcessResult {
  command: string;
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  /** The raw stdout, when the call asked for `binaryStdout`. */
  stdoutBytes?: Buffer;
  stderr: string;
  timedOut: boolean;
  /** The call's own time limit, for messages that name it. */
  timeoutMs?: number;
  aborted: boolean;
  durationMs: number;
  /** The spawn itself failed (e.g. the binary does not exist). */
  spawnError: string | null;
}

export function ok(r: ProcessResult): boolean {
  return r.exitCode === 0 && !r.timedOut && !r.aborted && r.spawnError === null;
}

/** A one-line description of how a call ended, for errors and logs. */
export function describeFailure(r: ProcessResult): string {
  if (r.spawnError) return `${r.command}: could not start: ${r.spawnError}`;
  if (r.aborted) return `${r.command}: stopped (cancelled)`;
  if (r.timedOut) return `${r.command}: timed out after ${Math.round(r.durationMs / 1000)}s and was killed`;
  const fata = lastMatching(r.stderr, /^FATA/) ?? lastMatching(r.stderr, /\S/) ?? lastMatching(r.stdout, /\S/);
  const how = r.signal ? `killed by ${r.signal}` : `exit ${r.exitCode}`;
  return `${r.command}: ${how}${fata ? `: ${fata.trim()}` : ''}`;
}

function lastMatching(text: string, re: RegExp): string | undefined {
  const lines = text.split('\n').filter((l) => re.test(l));
  return lines[lines.length - 1];
}

function procStat(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces: count fields from its closing paren.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** The process's start time in clock ticks since boot (Linux), to tell a pid from its reuse. */
export function processStartTicks(pid: number): string | null {
  return procStat(pid)?.[19] ?? null;
}

/** Running, and the same process (not a reuse of its pid); a zombie is not alive. */
export function isAlive(pid: number, startTicks: string | null): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const stat = procStat(pid);
  if (stat === null) return true;
  if (stat[0] === 'Z' || stat[0] === 'X') return false;
  return startTicks === null || stat[19] === startTicks;
}

/** The pids of every process in process group `pgid` (Linux /proc), the leader included if alive. */
export function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return members;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const stat = procStat(Number(e));
    // Field 5 of /proc/<pid>/stat is the process group; a zombie holds nothing.
    if (stat && stat[2] === String(pgid) && stat[0] !== 'Z') members.push(Number(e));
  }
  return members;
}

/**
 * Stops what is left of a recorded child's process group after the controller that started it
 * died. The group is killed even when its leader is gone: a dead abra's docker and git children
 * keep its group. Linux never hands out a pid while a process group of that number exists, so
 * the only way the number can name someone else's group is that the pid was reused — a live
 * process with that pid but another start time — and then the old group is known to be gone.
 * Returns how many processes were signalled, or null when the pid was reused.
 */
export function stopRecordedGroup(pid: number, startTicks: string | null): number | null {
  const now = processStartTicks(pid);
  if (now !== null && startTicks !== null && now !== startTicks) return null;
  const members = groupMembers(pid);
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    /* no such group (any more) */
  }
  return members.length;
}

/** Signals a whole process group; the group leader's pid names it. */
export function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      /* already gone */
    }
  }
}

/**
 * Watches a child's process group for its deadline and its cancel signal: on either, SIGTERM to
 * the group, then SIGKILL after the grace. `finish()` ends the watch and, when the child was
 * stopped, kills what may remain of its group (abra's own children can outlive it).
 */
function superviseGroup(pid: number | undefined, o: RunOptions): { state: { timedOut: boolean; aborted: boolean }; finish(): void } {
  const state = { timedOut: false, aborted: false };
  let killTimer: NodeJS.Timeout | undefined;
  const stop = () => {
    if (pid === undefined || killTimer) return;
    killGroup(pid, 'SIGTERM');
    killTimer = setTimeout(() => killGroup(pid, 'SIGKILL'), o.killGraceMs ?? 5_000);
    killTimer.unref();
  };
  const timer = setTimeout(() => {
    state.timedOut = true;
    stop();
  }, o.timeoutMs);
  const onAbort = () => {
    state.aborted = true;
    stop();
  };
  o.signal?.addEventListener('abort', onAbort, { once: true });
  return {
    state,
    finish() {
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      o.signal?.removeEventListener('abort', onAbort);
      if ((state.timedOut || state.aborted) && pid !== undefined) killGroup(pid, 'SIGKILL');
    },
  };
}

/**
 * One batch of a child's lines: kept in the result's tail, then handed to the caller (never for a
 * sensitive call). Runs inside a stream's event, so a listener that throws (a log whose store has
 * closed) must not become an uncaught exception that ends the controller: the result keeps the lines.
 */
function deliver(o: Pick<RunOptions, 'sensitive' | 'onLine' | 'onLines'>, tail: OutputTail, stream: Stream, lines: string[]): void {
  if (lines.length === 0) return;
  tail.push(lines);
  if (o.sensitive) return;
  try {
    if (o.onLines) o.onLines(stream, lines);
    else if (o.onLine) for (const line of lines) o.onLine(stream, line);
  } catch {
    /* the lines stay in the result's tail */
  }
}

export async function runProcess(o: RunOptions): Promise<ProcessResult> {
  const command = [o.cmd, ...o.args].join(' ');
  const started = Date.now();
  const stdout = new OutputTail(o.keepChars ?? DEFAULT_KEEP_CHARS);
  const stderr = new OutputTail(o.keepChars ?? DEFAULT_KEEP_CHARS);

  const base: ProcessResult = {
    command,
    exitCode: null,
    signal: null,
    stdout: '',
    stderr: '',
    timedOut: false,
    aborted: false,
    durationMs: 0,
    spawnError: null,
  };
  if (o.signal?.aborted) return { ...base, aborted: true };

  const child = execa(o.cmd, [...o.args], {
    env: o.env,
    extendEnv: o.cleanEnv !== true,
    cwd: o.cwd,
    // Its own process group, so a timeout or cancel stops abra and everything it started.
    detached: true,
    reject: false,
    buffer: false,
    input: o.input,
    stdin: o.input === undefined ? 'ignore' : 'pipe',
    stdout: 'pipe',
    stderr: 'pipe',
    cleanup: true,
  });

  const pid = child.pid;
  if (pid !== undefined) o.tracker?.started(pid, command);

  const collect = (stream: NodeJS.ReadableStream | null, into: OutputTail, name: Stream) => {
    if (!stream) return Promise.resolve();
    const split = new LineSplitter();
    const hand = (lines: string[]): void => deliver(o, into, name, lines);
    stream.on('data', (chunk: Buffer) => hand(split.push(chunk)));
    return new Promise<void>((res) => {
      let ended = false;
      const end = (): void => {
        if (ended) return;
        ended = true;
        hand(split.end());
        res();
      };
      stream.once('end', end);
      stream.once('close', end);
      stream.once('error', end);
    });
  };
  const bytes: Buffer[] = [];
  const collectBytes = (stream: NodeJS.ReadableStream | null) => {
    if (!stream) return Promise.resolve();
    stream.on('data', (chunk: Buffer) => bytes.push(chunk));
    return new Promise<void>((res) => {
      stream.once('end', () => res());
      stream.once('close', () => res());
      stream.once('error', () => res());
    });
  };
  const reading = Promise.all([o.binaryStdout ? collectBytes(child.stdout) : collect(child.stdout, stdout, 'out'), collect(child.stderr, stderr, 'err')]);

  const watch = superviseGroup(pid, o);

  try {
    const result = await child;
    await reading;
    watch.finish();
    const { timedOut, aborted } = watch.state;
    return {
      command,
      exitCode: result.exitCode ?? null,
      signal: result.signal ?? null,
      stdout: stdout.text(),
      ...(o.binaryStdout ? { stdoutBytes: Buffer.concat(bytes) } : {}),
      stderr: stderr.text(),
      timedOut,
      timeoutMs: o.timeoutMs,
      aborted,
      durationMs: Date.now() - started,
      spawnError:
        result.failed && result.exitCode === undefined && !result.signal && !timedOut && !aborted
          ? result.originalMessage || result.shortMessage || 'unknown error'
          : null,
    };
  } finally {
    watch.finish();
    if (pid !== undefined) o.tracker?.ended(pid);
  }
}

/**
 * Runs a program under a pseudo-terminal (node-pty), for abra commands that exec into a
 * container with a TTY — `abra app backup create` and `abra app restore` (docs/abra-double.md, The contract).
 * Same contract as runProcess: argument array, timeout, cancel, process group stopped, lines
 * streamed. A terminal merges stdout and stderr; both land in `stdout` and `stderr`.
 */
export async function runInTerminal(o: RunOptions): Promise<ProcessResult> {
  const { spawn } = await import('node-pty');
  const command = [o.cmd, ...o.args].join(' ');
  const started = Date.now();
  if (o.signal?.aborted) {
    return { command, exitCode: null, signal: null, stdout: '', stderr: '', timedOut: false, aborted: true, durationMs: 0, spawnError: null };
  }
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...o.env })) if (v !== undefined) env[k] = v;
  let term;
  try {
    term = spawn(o.cmd, [...o.args], { name: 'dumb', cols: 200, rows: 50, cwd: o.cwd ?? process.cwd(), env });
  } catch (e) {
    return { command, exitCode: null, signal: null, stdout: '', stderr: '', timedOut: false, aborted: false, durationMs: 0, spawnError: (e as Error).message };
  }
  const pid = term.pid;
  o.tracker?.started(pid, command);
  const lines = new OutputTail(o.keepChars ?? DEFAULT_KEEP_CHARS);
  const split = new LineSplitter();
  const hand = (raw: string[]): void =>
    deliver(
      o,
      lines,
      'out',
      raw.map((l) => l.replace(/\r/g, '').replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')),
    );
  // A terminal ends lines with \r\n, and redraws with a lone \r: both end a line here.
  term.onData((chunk: string) => hand(split.push(chunk.replace(/\r(?!\n)/g, '\n'))));
  const watch = superviseGroup(pid, o);
  try {
    const exit = await new Promise<{ exitCode: number; signal?: number }>((resolve) => term.onExit(resolve));
    hand(split.end());
    watch.finish();
    const { timedOut, aborted } = watch.state;
    const text = lines.text();
    return {
      command,
      exitCode: exit.signal ? null : exit.exitCode,
      signal: exit.signal ? `signal ${exit.signal}` : null,
      stdout: text,
      stderr: text,
      timedOut,
      timeoutMs: o.timeoutMs,
      aborted,
      durationMs: Date.now() - started,
      spawnError: null,
    };
  } finally {
    watch.finish();
    o.tracker?.ended(pid);
  }
}
