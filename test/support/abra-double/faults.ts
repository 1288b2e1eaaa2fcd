// Fault injection for crash tests, and artificial latency.
//
//   ABRA_DOUBLE_FAULTS="app.deploy:2:fail,app.undeploy:1:hang,app.new:1:crash"
//   ABRA_DOUBLE_STATE=/some/dir         (required when ABRA_DOUBLE_FAULTS is set)
//   ABRA_DOUBLE_DELAY_MS=1500           (sleep this long at the start of every call)
//
// Calls are counted per command key (the canonical command path joined by ".", aliases folded:
// `app.rm`, `app.secret.generate`, `app.backup.create`, `app.restore`, ...) across processes in
// `$ABRA_DOUBLE_STATE/calls.json`, updated under a lock (`calls.json.lock`, created with O_EXCL).
// Every call is counted whenever ABRA_DOUBLE_STATE is set, faults or not; `--help` is not a call.
//
// At the Nth call of a key with a matching entry:
//   fail  → `FATA injected fault (<key> call N)`, exit 1, before doing anything
//   hang  → sleeps until killed, with a grandchild (`sleep 600`) in its process group
//   crash → does part of the work then SIGKILLs itself at the command's crash point (see
//           `crashPoint` callers; docs/abra-double.md has the table). Commands without a crash
//           point die at once.
import { spawn } from 'node:child_process';
import { mkdirSync, openSync, closeSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { fatal, log } from './log.js';

// (not proc.js's sleep: importing proc.js would load execa on every call, even for --help)
function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export type FaultMode = 'fail' | 'hang' | 'crash' | 'noop' | 'moves';

export interface FaultRule {
  key: string;
  call: number;
  mode: FaultMode;
}

export function parseFaults(spec: string): FaultRule[] {
  const rules: FaultRule[] = [];
  for (const part of spec
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')) {
    const m = /^([a-z][a-z.-]*):(\d+):(fail|hang|crash|noop|moves)$/.exec(part);
    if (!m) fatal(`invalid ABRA_DOUBLE_FAULTS entry "${part}" (want <command>:<n>:fail|hang|crash|noop|moves, e.g. app.deploy:1:fail)`);
    const call = Number.parseInt(m[2] ?? '0', 10);
    if (call < 1) fatal(`invalid ABRA_DOUBLE_FAULTS entry "${part}": call numbers start at 1`);
    rules.push({ key: m[1] ?? '', call, mode: (m[3] ?? 'fail') as FaultMode });
  }
  return rules;
}

const LOCK_STALE_MS = 30_000;

async function withLock<T>(dir: string, fn: () => T): Promise<T> {
  const lock = join(dir, 'calls.json.lock');
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      closeSync(openSync(lock, 'wx'));
      break;
    } catch {
      try {
        if (Date.now() - statSync(lock).mtimeMs > LOCK_STALE_MS) rmSync(lock, { force: true });
      } catch {
        // lock vanished meanwhile: retry
      }
      if (Date.now() > deadline) fatal(`could not lock ${lock}`);
      await sleep(10 + Math.floor(Math.random() * 20));
    }
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { force: true });
  }
}

/** Increments and returns the call number of `key`. */
export async function countCall(dir: string, key: string): Promise<number> {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'calls.json');
  return withLock(dir, () => {
    let counts: Record<string, number> = {};
    if (existsSync(file)) {
      const parsed = JSON.parse(readFileSync(file, 'utf8')) as unknown;
      if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
        for (const [k, v] of Object.entries(parsed)) if (typeof v === 'number') counts[k] = v;
      } else counts = {};
    }
    const n = (counts[key] ?? 0) + 1;
    counts[key] = n;
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(counts, null, 2)}\n`);
    renameSync(tmp, file);
    return n;
  });
}

let crashArmed = false;

/** Called by a command where a `crash` fault should strike (after part of its work). */
export function crashPoint(where: string): void {
  if (!crashArmed) return;
  log.debug(`injected crash: ${where}`);
  process.kill(process.pid, 'SIGKILL');
}

function hangForever(): Promise<never> {
  // Real abra hangs with children of its own (docker, git) in its process group: so does the
  // double, so tests can check that the whole group is stopped. The grandchild gives up after
  // ten minutes at the latest, should a test kill only the double itself.
  spawn('sleep', ['600'], { stdio: 'ignore' });
  return new Promise<never>(() => {
    setInterval(() => undefined, 1 << 30);
  });
}

/** Runs before every command: latency, counting, and the fault (if any) for this call. */
export async function beforeCommand(key: string, canonical: (key: string) => string | undefined): Promise<{ crash: boolean; moves?: boolean }> {
  const delay = Number.parseInt(process.env.ABRA_DOUBLE_DELAY_MS ?? '', 10);
  if (Number.isFinite(delay) && delay > 0) await sleep(delay);

  const spec = process.env.ABRA_DOUBLE_FAULTS ?? '';
  const state = process.env.ABRA_DOUBLE_STATE ?? '';
  const rules = (spec.trim() === '' ? [] : parseFaults(spec)).map((r) => {
    const c = canonical(r.key);
    if (c === undefined) fatal(`invalid ABRA_DOUBLE_FAULTS entry: unknown command ${r.key}`);
    return { ...r, key: c };
  });
  if (rules.length > 0 && state === '') fatal('ABRA_DOUBLE_STATE (a directory) must be set when ABRA_DOUBLE_FAULTS is set');
  if (state === '') return { crash: false };

  const n = await countCall(state, key);
  const rule = rules.find((r) => r.key === key && r.call === n);
  if (!rule) return { crash: false };
  switch (rule.mode) {
    case 'fail':
      fatal(`injected fault (${key} call ${n})`);
    // eslint-disable-next-line no-fallthrough
    case 'hang':
      log.debug(`injected hang (${key} call ${n})`);
      return hangForever();
    case 'crash':
      crashArmed = true;
      return { crash: true };
    case 'noop':
      // An abra that says it did the work and did nothing: cc-ci must notice from the swarm.
      log.info(`injected no-op (${key} call ${n}): nothing done`);
      process.exit(0);
    // eslint-disable-next-line no-fallthrough
    case 'moves':
      // Real abra's recipe check on a call without --chaos may check the latest release out in
      // place [R]: the caller does that before the command runs (main.ts).
      return { crash: false, moves: true };
  }
}
