import Database from 'better-sqlite3';
import { numOrNull, str, strOrNull, type Row } from './rows.js';
import { EventEmitter } from 'node:events';
import { chmodSync, closeSync, openSync } from 'node:fs';
import { migrations } from './migrations.js';
import type {
  AppRecord,
  AppState,
  ChildRecord,
  EventKind,
  InstanceRecord,
  Phase,
  RetryRecord,
  RunEvent,
  RunRecord,
  RunResult,
  SpecFileRecord,
  StepRecord,
  TierName,
  TierRecord,
  TierResult,
} from './types.js';
import { ACTIVE_PHASES, PHASES } from './types.js';

export function toRun(r: Row): RunRecord {
  return {
    name: str(r.name),
    specJson: str(r.spec_json),
    specHash: str(r.spec_hash),
    specPath: strOrNull(r.spec_path),
    recipe: str(r.recipe),
    lane: str(r.lane),
    phase: str(r.phase) as Phase,
    result: strOrNull(r.result) as RunResult | null,
    reason: strOrNull(r.reason),
    step: strOrNull(r.step),
    waitingReason: strOrNull(r.waiting_reason),
    commitSha: strOrNull(r.commit_sha),
    attempt: Number(r.attempt),
    retries: JSON.parse(str(r.retries_json)) as RetryRecord[],
    retryPending: Number(r.retry_pending) === 1,
    teardownStartedAt: numOrNull(r.teardown_started_at),
    cancelRequested: Number(r.cancel_requested) === 1,
    cancelReason: strOrNull(r.cancel_reason),
    owner: strOrNull(r.owner),
    customization: r.customization_json ? (JSON.parse(str(r.customization_json)) as unknown) : null,
    understanding: r.understanding_json ? (JSON.parse(str(r.understanding_json)) as unknown) : null,
    laneNote: strOrNull(r.lane_note),
    teardownProblem: strOrNull(r.teardown_problem),
    createdAt: Number(r.created_at),
    startedAt: numOrNull(r.started_at),
    finishedAt: numOrNull(r.finished_at),
    updatedAt: Number(r.updated_at),
  };
}

function toTier(r: Row): TierRecord {
  return {
    tier: str(r.tier) as TierName,
    position: Number(r.position),
    result: strOrNull(r.result) as TierResult | null,
    reason: strOrNull(r.reason),
    startedAt: numOrNull(r.started_at),
    finishedAt: numOrNull(r.finished_at),
    durationMs: numOrNull(r.duration_ms),
  };
}

function toApp(r: Row): AppRecord {
  return {
    domain: str(r.domain),
    run: str(r.run),
    attempt: Number(r.attempt),
    purpose: str(r.purpose),
    stack: str(r.stack),
    server: str(r.server),
    abraDir: str(r.abra_dir),
    port: numOrNull(r.port),
    state: str(r.state) as AppState,
    leasedAt: Number(r.leased_at),
    releasedAt: numOrNull(r.released_at),
  };
}

/** Fields of a run the controller may change; everything else is fixed at admission. */
export type RunPatch = Partial<
  Pick<
    RunRecord,
    | 'phase'
    | 'result'
    | 'reason'
    | 'step'
    | 'waitingReason'
    | 'commitSha'
    | 'attempt'
    | 'retries'
    | 'retryPending'
    | 'teardownStartedAt'
    | 'cancelRequested'
    | 'cancelReason'
    | 'owner'
    | 'customization'
    | 'understanding'
    | 'laneNote'
    | 'teardownProblem'
    | 'startedAt'
    | 'finishedAt'
    | 'specPath'
  >
>;

const PATCH_COLUMNS: Record<keyof RunPatch, string> = {
  phase: 'phase',
  result: 'result',
  reason: 'reason',
  step: 'step',
  waitingReason: 'waiting_reason',
  commitSha: 'commit_sha',
  attempt: 'attempt',
  retries: 'retries_json',
  retryPending: 'retry_pending',
  teardownStartedAt: 'teardown_started_at',
  cancelRequested: 'cancel_requested',
  cancelReason: 'cancel_reason',
  owner: 'owner',
  customization: 'customization_json',
  understanding: 'understanding_json',
  laneNote: 'lane_note',
  teardownProblem: 'teardown_problem',
  startedAt: 'started_at',
  finishedAt: 'finished_at',
  specPath: 'spec_path',
};

function patchValue(key: keyof RunPatch, value: unknown): unknown {
  if (key === 'retries' || key === 'customization' || key === 'understanding') return value === null ? null : JSON.stringify(value);
  if (key === 'cancelRequested' || key === 'retryPending') return value ? 1 : 0;
  return value;
}

/**
 * The state store: one SQLite file per state directory (WAL, so `cc-ci logs -f` and
 * `cc-ci get` read while the controller writes). All access is synchronous (better-sqlite3),
 * which makes every read-compare-write below atomic within the process.
 */
/**
 * The database holds run logs with what was masked and what was not, forge deliveries and
 * comments: it is created 0600 (SQLite creates its -wal and -shm with the database's mode), and
 * an older install's files are tightened.
 */
function privateFiles(file: string): void {
  closeSync(openSync(file, 'a', 0o600));
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    try {
      chmodSync(f, 0o600);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
}

export class Store {
  readonly db: Database.Database;
  /** In-process notifications: 'event' (run, RunEvent) and 'run' (name) after changes. */
  readonly changes = new EventEmitter();

  constructor(file: string) {
    if (file !== ':memory:') privateFiles(file);
    this.db = new Database(file, { timeout: 10_000 });
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
    this.changes.setMaxListeners(0);
    this.migrate();
  }

  close(): void {
    this.db.close();
  }

  private migrate(): void {
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT, applied_at INTEGER)');
    const isApplied = this.db.prepare('SELECT 1 FROM schema_migrations WHERE version = ?');
    const known = Math.max(...migrations.map((m) => m.version));
    const newest = this.schemaVersion();
    if (newest > known) {
      this.db.close();
      throw new Error(
        `the state database ${this.db.name} has schema version ${newest}, newer than this cc-ci knows (${known}); run the newer cc-ci, or use another state directory`,
      );
    }
    // An up-to-date database (every open but the first) takes no write lock here.
    for (const m of migrations.filter((x) => !isApplied.get(x.version))) {
      // Looked at again under the write lock: two processes opening a new database at once must
      // not both apply a migration (the second would fail with "table already exists").
      this.db
        .transaction(() => {
          if (isApplied.get(m.version)) return;
          this.db.exec(m.sql);
          this.db.prepare('INSERT INTO schema_migrations VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
        })
        .immediate();
    }
  }

  schemaVersion(): number {
    const r = this.db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as Row;
    return Number(r.v ?? 0);
  }

  /** Runs a function in an IMMEDIATE transaction: the write lock is taken before reading. */
  atomically<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  // ---- runs -------------------------------------------------------------------------------

  insertRun(r: { name: string; specJson: string; specHash: string; specPath: string | null; recipe: string; lane: string; phase?: Phase }): void {
    const now = Date.now();
    this.db
      .prepare(
        `INSERT INTO runs (name, spec_json, spec_hash, spec_path, recipe, lane, phase, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(r.name, r.specJson, r.specHash, r.specPath, r.recipe, r.lane, r.phase ?? 'Pending', now, now);
    this.changes.emit('run', r.name);
  }

  getRun(name: string): RunRecord | undefined {
    const r = this.db.prepare('SELECT * FROM runs WHERE name = ?').get(name) as Row | undefined;
    return r ? toRun(r) : undefined;
  }

  listRuns(opts: { phases?: readonly Phase[] } = {}): RunRecord[] {
    if (opts.phases) {
      const q = `SELECT * FROM runs WHERE phase IN (${opts.phases.map(() => '?').join(',')}) ORDER BY created_at, name`;
      return (this.db.prepare(q).all(...opts.phases) as Row[]).map(toRun);
    }
    return (this.db.prepare('SELECT * FROM runs ORDER BY created_at, name').all() as Row[]).map(toRun);
  }

  /** Runs created at or after `createdAt`, oldest first (an index range: the newest few). */
  runsCreatedSince(createdAt: number): RunRecord[] {
    return (this.db.prepare('SELECT * FROM runs WHERE created_at >= ? ORDER BY created_at, name').all(createdAt) as Row[]).map(toRun);
  }

  /** Finished runs whose teardown ran out of time: the only ones whose ABRA_DIRs can outlive them. */
  runsWithTeardownProblems(): RunRecord[] {
    return (this.db.prepare("SELECT * FROM runs WHERE phase = 'Done' AND teardown_problem IS NOT NULL ORDER BY created_at, name").all() as Row[]).map(toRun);
  }

  countActiveRuns(): number {
    const q = `SELECT COUNT(*) AS n FROM runs WHERE phase IN (${ACTIVE_PHASES.map(() => '?').join(',')})`;
    return Number((this.db.prepare(q).get(...ACTIVE_PHASES) as Row).n);
  }

  updateRun(name: string, patch: RunPatch): void {
    const keys = Object.keys(patch) as (keyof RunPatch)[];
    if (keys.length === 0) return;
    const sets = keys.map((k) => `${PATCH_COLUMNS[k]} = ?`).join(', ');
    const values = keys.map((k) => patchValue(k, patch[k]));
    this.db.prepare(`UPDATE runs SET ${sets}, updated_at = ? WHERE name = ?`).run(...values, Date.now(), name);
    this.changes.emit('run', name);
  }

  // ---- tiers ------------------------------------------------------------------------------

  planTiers(run: string, tiers: readonly TierName[]): void {
    this.atomically(() => {
      this.db.prepare('DELETE FROM tiers WHERE run = ?').run(run);
      const ins = this.db.prepare('INSERT INTO tiers (run, tier, position) VALUES (?, ?, ?)');
      tiers.forEach((t, i) => ins.run(run, t, i));
    });
  }

  getTiers(run: string): TierRecord[] {
    return (this.db.prepare('SELECT * FROM tiers WHERE run = ? ORDER BY position').all(run) as Row[]).map(toTier);
  }

  /** The tier that has started and not finished, if one has. */
  runningTier(run: string): TierRecord | undefined {
    return this.getTiers(run).find((t) => t.startedAt !== null && t.result === null);
  }

  startTier(run: string, tier: TierName): void {
    this.db.prepare('UPDATE tiers SET started_at = ? WHERE run = ? AND tier = ?').run(Date.now(), run, tier);
  }

  finishTier(run: string, tier: TierName, result: TierResult, reason: string | null): void {
    const now = Date.now();
    this.db
      .prepare(
        `UPDATE tiers SET result = ?, reason = ?, finished_at = ?,
           duration_ms = CASE WHEN started_at IS NULL THEN NULL ELSE ? - started_at END
         WHERE run = ? AND tier = ?`,
      )
      .run(result, reason, now, now, run, tier);
    this.changes.emit('run', run);
  }

  // ---- events (the run's log) ---------------------------------------------------------------

  /** Appends to the run's log. The seq is computed in the INSERT so a second writer (the CLI
   *  recording a cancel) can never collide with the controller's numbering. */
  appendEvent(run: string, kind: EventKind, text: string): RunEvent {
    return this.appendEvents(run, [{ kind, text }])[0]!;
  }

  /** Appends several lines in one transaction (a chunk of a program's output): one commit, not one per line. */
  appendEvents(run: string, lines: readonly { kind: EventKind; text: string }[]): RunEvent[] {
    if (lines.length === 0) return [];
    const insert = this.db.prepare(
      `INSERT INTO events (run, seq, ts, kind, text)
       SELECT ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ? FROM events WHERE run = ? RETURNING seq`,
    );
    const ts = Date.now();
    const events = this.db.transaction(() =>
      lines.map((l) => ({ seq: Number((insert.get(run, ts, l.kind, l.text, run) as Row).seq), ts, kind: l.kind, text: l.text })),
    )();
    for (const ev of events) this.changes.emit('event', run, ev);
    return events;
  }

  /** The sequence number of the run's last log line (0: none yet). */
  lastEventSeq(run: string): number {
    const r = this.db.prepare('SELECT COALESCE(MAX(seq), 0) AS n FROM events WHERE run = ?').get(run) as Row;
    return Number(r.n);
  }

  /** How many bytes of program output (abra, docker, hooks) a run's log holds, and whether it was
   *  cut already (the line saying so, reconcilers/context.ts, starts with `marker`). */
  outputBytes(run: string): number {
    const r = this.db.prepare("SELECT COALESCE(SUM(length(CAST(text AS BLOB))), 0) AS n FROM events WHERE run = ? AND kind IN ('out', 'err')").get(run) as Row;
    return Number(r.n);
  }

  outputCut(run: string, marker: string): boolean {
    return (
      this.db.prepare("SELECT 1 FROM events WHERE run = ? AND kind = 'warn' AND substr(text, 1, ?) = ? LIMIT 1").get(run, marker.length, marker) !== undefined
    );
  }

  eventsSince(run: string, afterSeq: number, limit = 1000): RunEvent[] {
    return (this.db.prepare('SELECT seq, ts, kind, text FROM events WHERE run = ? AND seq > ? ORDER BY seq LIMIT ?').all(run, afterSeq, limit) as Row[]).map(
      (r) => ({ seq: Number(r.seq), ts: Number(r.ts), kind: str(r.kind) as EventKind, text: str(r.text) }),
    );
  }

  // ---- step journal -----------------------------------------------------------------------

  beginStep(run: string, attempt: number, name: string, detail?: string): number {
    const info = this.db
      .prepare("INSERT INTO steps (run, attempt, name, state, detail, started_at) VALUES (?, ?, ?, 'started', ?, ?)")
      .run(run, attempt, name, detail ?? null, Date.now());
    this.db.prepare('UPDATE runs SET step = ?, updated_at = ? WHERE name = ?').run(name, Date.now(), run);
    return Number(info.lastInsertRowid);
  }

  endStep(id: number, state: 'done' | 'failed', detail?: string): void {
    this.db.prepare('UPDATE steps SET state = ?, finished_at = ?, detail = COALESCE(?, detail) WHERE id = ?').run(state, Date.now(), detail ?? null, id);
  }

  getSteps(run: string): StepRecord[] {
    return (this.db.prepare('SELECT * FROM steps WHERE run = ? ORDER BY id').all(run) as Row[]).map((r) => ({
      id: Number(r.id),
      attempt: Number(r.attempt),
      name: str(r.name),
      state: str(r.state) as StepRecord['state'],
      detail: strOrNull(r.detail),
      startedAt: Number(r.started_at),
      finishedAt: numOrNull(r.finished_at),
    }));
  }

  // ---- apps: leases and the active-run registry ---------------------------------------------

  /** Leases a domain for a run. Returns false if the domain (or port) is already held. */
  leaseApp(a: Omit<AppRecord, 'state' | 'leasedAt' | 'releasedAt'>): boolean {
    try {
      this.db
        .prepare(
          `INSERT INTO apps (domain, run, attempt, purpose, stack, server, abra_dir, port, state, leased_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'leased', ?)`,
        )
        .run(a.domain, a.run, a.attempt, a.purpose, a.stack, a.server, a.abraDir, a.port, Date.now());
      return true;
    } catch (e) {
      if (e instanceof Error && 'code' in e && String((e as { code: unknown }).code).startsWith('SQLITE_CONSTRAINT')) {
        return false;
      }
      throw e;
    }
  }

  setAppState(domain: string, state: AppState): void {
    this.db
      .prepare("UPDATE apps SET state = ?, released_at = CASE WHEN ? = 'released' THEN ? ELSE released_at END WHERE domain = ?")
      .run(state, state, Date.now(), domain);
  }

  getApp(domain: string): AppRecord | undefined {
    const r = this.db.prepare('SELECT * FROM apps WHERE domain = ?').get(domain) as Row | undefined;
    return r ? toApp(r) : undefined;
  }

  /** A run's apps in the order its ladder uses them: attempt by attempt, install's first (the
   *  upgrade's base may be leased before it, to install beside it), then as leased. */
  appsOfRun(run: string): AppRecord[] {
    return (this.db.prepare("SELECT * FROM apps WHERE run = ? ORDER BY attempt, purpose <> 'install', leased_at").all(run) as Row[]).map(toApp);
  }

  livePorts(): Set<number> {
    // A warm app keeps its port for its life (state/warm-store.ts).
    const rows = this.db
      .prepare("SELECT port FROM apps WHERE state != 'released' AND port IS NOT NULL UNION SELECT app_port FROM warm WHERE app_port IS NOT NULL")
      .all() as Row[];
    return new Set(rows.map((r) => Number(r.port)));
  }

  // ---- children ---------------------------------------------------------------------------

  addChild(c: ChildRecord): void {
    this.db
      .prepare('INSERT OR REPLACE INTO children (pid, run, start_ticks, command, started_at) VALUES (?, ?, ?, ?, ?)')
      .run(c.pid, c.run, c.startTicks, c.command, c.startedAt);
  }

  removeChild(pid: number): void {
    this.db.prepare('DELETE FROM children WHERE pid = ?').run(pid);
  }

  listChildren(): ChildRecord[] {
    return (this.db.prepare('SELECT * FROM children').all() as Row[]).map((r) => ({
      pid: Number(r.pid),
      run: strOrNull(r.run),
      startTicks: strOrNull(r.start_ticks),
      command: str(r.command),
      startedAt: Number(r.started_at),
    }));
  }

  // ---- instances --------------------------------------------------------------------------

  listLiveInstances(): InstanceRecord[] {
    return (this.db.prepare('SELECT * FROM instances WHERE stopped_at IS NULL').all() as Row[]).map((r) => ({
      id: str(r.id),
      pid: Number(r.pid),
      pidStart: strOrNull(r.pid_start),
      host: str(r.host),
      mode: str(r.mode),
      startedAt: Number(r.started_at),
      heartbeatAt: Number(r.heartbeat_at),
      stoppedAt: numOrNull(r.stopped_at),
    }));
  }

  insertInstance(i: Omit<InstanceRecord, 'stoppedAt'>): void {
    this.db
      .prepare('INSERT INTO instances (id, pid, pid_start, host, mode, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(i.id, i.pid, i.pidStart, i.host, i.mode, i.startedAt, i.heartbeatAt);
  }

  heartbeat(id: string): void {
    this.db.prepare('UPDATE instances SET heartbeat_at = ? WHERE id = ?').run(Date.now(), id);
  }

  stopInstance(id: string): void {
    this.db.prepare('UPDATE instances SET stopped_at = ? WHERE id = ? AND stopped_at IS NULL').run(Date.now(), id);
  }

  // ---- spec files -------------------------------------------------------------------------

  /** `statKey`: the file's fingerprint when it was read (spec-sync.ts); a resync that finds it
   *  unchanged does not read the file again. None: read it again next time. */
  recordSpecFile(f: Omit<SpecFileRecord, 'seenAt'>, statKey: string | null = null): void {
    this.db
      .prepare(
        `INSERT INTO spec_files (path, name, status, error, hash, seen_at, stat_key) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(path) DO UPDATE SET name = excluded.name, status = excluded.status, error = excluded.error,
           hash = excluded.hash, seen_at = excluded.seen_at, stat_key = excluded.stat_key`,
      )
      .run(f.path, f.name, f.status, f.error, f.hash, Date.now(), statKey);
  }

  setSpecFileStat(path: string, statKey: string | null): void {
    this.db.prepare('UPDATE spec_files SET stat_key = ? WHERE path = ?').run(statKey, path);
  }

  /** Every recorded spec file's fingerprint, by path: what a resync compares before reading. */
  specFileStats(): Map<string, string | null> {
    return new Map(this.db.prepare('SELECT path, stat_key FROM spec_files').raw().all() as [string, string | null][]);
  }

  /** The recorded spec files whose content still matters — invalid ones, those of unfinished runs — with their fingerprints. */
  unsettledSpecFiles(): [string, string | null][] {
    const q = `SELECT path, stat_key FROM spec_files WHERE status = 'invalid'
      UNION ALL SELECT f.path, f.stat_key FROM runs r JOIN spec_files f ON f.name = r.name AND f.status = 'valid'
      WHERE r.phase IN (${PHASES.filter((p) => p !== 'Done')
        .map((p) => `'${p}'`)
        .join(',')})`;
    return this.db.prepare(q).raw().all() as [string, string | null][];
  }

  /** Another valid file that names the run `name`, if one does. */
  specFileNamed(name: string, except: string): string | undefined {
    const r = this.db.prepare("SELECT path FROM spec_files WHERE name = ? AND path != ? AND status = 'valid' LIMIT 1").get(name, except) as Row | undefined;
    return r ? str(r.path) : undefined;
  }

  forgetSpecFile(path: string): void {
    this.db.prepare('DELETE FROM spec_files WHERE path = ?').run(path);
  }

  getSpecFile(path: string): SpecFileRecord | undefined {
    const r = this.db.prepare('SELECT * FROM spec_files WHERE path = ?').get(path) as Row | undefined;
    return r ? toSpecFile(r) : undefined;
  }

  listSpecFiles(): SpecFileRecord[] {
    return (this.db.prepare('SELECT * FROM spec_files ORDER BY path').all() as Row[]).map(toSpecFile);
  }
}

function toSpecFile(r: Row): SpecFileRecord {
  return {
    path: str(r.path),
    name: strOrNull(r.name),
    status: str(r.status) as SpecFileRecord['status'],
    error: strOrNull(r.error),
    hash: strOrNull(r.hash),
    seenAt: Number(r.seen_at),
  };
}
