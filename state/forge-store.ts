import type { Store } from './store.js';
import { numOrNull, strOrNull, type Row } from './rows.js';

/**
 * The forge's part of the state store (tables of migration 2): deliveries and comments already
 * seen by the intake, poll checkpoints, and what was last reported per run. All queries are
 * synchronous, so each check-then-write below is atomic within the process.
 */

/** Deliveries are kept this long; a replay older than that is still caught by the comment id. */
const DELIVERY_RETENTION_MS = 30 * 24 * 3600 * 1000;

export type CommentDecision = 'run' | 'help' | 'denied' | 'closed' | 'ignored' | 'error';
export type ReplyState = 'pending' | 'posted' | 'failed';

export interface CommentRecord {
  commentId: number;
  owner: string;
  repo: string;
  pr: number;
  via: string;
  eventJson: string;
  decision: CommentDecision | null;
  detail: string | null;
  run: string | null;
  replyState: ReplyState | null;
  replyCommentId: number | null;
  attempts: number;
  lastError: string | null;
  createdAt: number;
  updatedAt: number;
}

/** The 👀 reaction: not yet, on the comment, or refused by the forge for good (a 4xx). */
export type ReactionState = 'pending' | 'done' | 'given-up';

const REACTION_CODES: Record<ReactionState, number> = { pending: 0, done: 1, 'given-up': 2 };
const REACTION_OF_CODE = new Map((Object.entries(REACTION_CODES) as [ReactionState, number][]).map(([state, code]) => [code, state]));

/** What intake writes before it answers the webhook: the comment, not yet decided. */
export type CommentClaim = Pick<CommentRecord, 'commentId' | 'owner' | 'repo' | 'pr' | 'via' | 'eventJson'>;

export interface ReportRecord {
  run: string;
  reaction: ReactionState;
  commentId: number | null;
  commentHash: string | null;
  commentStage: string | null;
  statusKey: string | null;
  final: boolean;
  failed: boolean;
  attempts: number;
  lastError: string | null;
  updatedAt: number;
}

export type ReportPatch = Partial<Omit<ReportRecord, 'run' | 'updatedAt'>>;

const REPORT_COLUMNS: Record<keyof ReportPatch, string> = {
  reaction: 'reacted',
  commentId: 'comment_id',
  commentHash: 'comment_hash',
  commentStage: 'comment_stage',
  statusKey: 'status_key',
  final: 'final',
  failed: 'failed',
  attempts: 'attempts',
  lastError: 'last_error',
};

function toComment(r: Row): CommentRecord {
  return {
    commentId: Number(r.comment_id),
    owner: String(r.owner),
    repo: String(r.repo),
    pr: Number(r.pr),
    via: String(r.via),
    eventJson: String(r.event_json),
    decision: strOrNull(r.decision) as CommentDecision | null,
    detail: strOrNull(r.detail),
    run: strOrNull(r.run),
    replyState: strOrNull(r.reply_state) as ReplyState | null,
    replyCommentId: numOrNull(r.reply_comment_id),
    attempts: Number(r.attempts),
    lastError: strOrNull(r.last_error),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

function toReport(r: Row): ReportRecord {
  return {
    run: String(r.run),
    reaction: REACTION_OF_CODE.get(Number(r.reacted)) ?? 'pending',
    commentId: numOrNull(r.comment_id),
    commentHash: strOrNull(r.comment_hash),
    commentStage: strOrNull(r.comment_stage),
    statusKey: strOrNull(r.status_key),
    final: Number(r.final) === 1,
    failed: Number(r.failed) === 1,
    attempts: Number(r.attempts),
    lastError: strOrNull(r.last_error),
    updatedAt: Number(r.updated_at),
  };
}

export class ForgeStore {
  constructor(private readonly store: Store) {}

  private get db() {
    return this.store.db;
  }

  // ---- deliveries ---------------------------------------------------------------------------

  /** Records a delivery id; false when it was seen before (a replay or a redelivery). */
  recordDelivery(delivery: string, commentId: number | null): boolean {
    const now = Date.now();
    return this.store.atomically(() => {
      this.db.prepare('DELETE FROM forge_deliveries WHERE received_at < ?').run(now - DELIVERY_RETENTION_MS);
      const info = this.db.prepare('INSERT OR IGNORE INTO forge_deliveries (delivery, comment_id, received_at) VALUES (?, ?, ?)').run(delivery, commentId, now);
      return info.changes === 1;
    });
  }

  /**
   * A webhook delivery accepted in one transaction: its id (false, and nothing written, when the
   * id was seen before) and, when given, the comment's row with no decision yet.
   */
  acceptDelivery(delivery: string | null, commentId: number, claim: CommentClaim | null): boolean {
    return this.store.atomically(() => {
      if (delivery !== null && !this.recordDelivery(delivery, commentId)) return false;
      if (claim) this.claimComment(claim);
      return true;
    });
  }

  // ---- comments -----------------------------------------------------------------------------

  getComment(commentId: number): CommentRecord | undefined {
    const r = this.db.prepare('SELECT * FROM forge_comments WHERE comment_id = ?').get(commentId) as Row | undefined;
    return r ? toComment(r) : undefined;
  }

  /** Writes the comment's row if it has none; returns the row as it now is and whether it is new. */
  claimComment(c: CommentClaim): {
    record: CommentRecord;
    created: boolean;
  } {
    const now = Date.now();
    return this.store.atomically(() => {
      const info = this.db
        .prepare(
          `INSERT OR IGNORE INTO forge_comments (comment_id, owner, repo, pr, via, event_json, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(c.commentId, c.owner, c.repo, c.pr, c.via, c.eventJson, now, now);
      const record = this.getComment(c.commentId);
      if (!record) throw new Error(`forge comment ${c.commentId} vanished while being claimed`);
      return { record, created: info.changes === 1 };
    });
  }

  decideComment(commentId: number, d: { decision: CommentDecision; detail: string; run?: string; reply?: boolean }): void {
    this.db
      .prepare('UPDATE forge_comments SET decision = ?, detail = ?, run = ?, reply_state = ?, attempts = 0, updated_at = ? WHERE comment_id = ?')
      .run(d.decision, d.detail, d.run ?? null, d.reply ? 'pending' : null, Date.now(), commentId);
  }

  /** The forge could not be asked: count the attempt; the intake tries again later. */
  noteCommentFailure(commentId: number, error: string): void {
    this.db.prepare('UPDATE forge_comments SET attempts = attempts + 1, last_error = ?, updated_at = ? WHERE comment_id = ?').run(error, Date.now(), commentId);
  }

  setReply(commentId: number, state: ReplyState, replyCommentId: number | null = null): void {
    this.db
      .prepare('UPDATE forge_comments SET reply_state = ?, reply_comment_id = COALESCE(?, reply_comment_id), updated_at = ? WHERE comment_id = ?')
      .run(state, replyCommentId, Date.now(), commentId);
  }

  /** Comments still waiting for a decision or for their reply to be posted. */
  listUnfinishedComments(): CommentRecord[] {
    return (this.db.prepare("SELECT * FROM forge_comments WHERE decision IS NULL OR reply_state = 'pending' ORDER BY created_at").all() as Row[]).map(
      toComment,
    );
  }

  // ---- poll checkpoints ---------------------------------------------------------------------

  getCheckpoint(repo: string): string | null {
    const r = this.db.prepare('SELECT since FROM forge_poll WHERE repo = ?').get(repo) as Row | undefined;
    return r ? String(r.since) : null;
  }

  setCheckpoint(repo: string, since: string): void {
    this.db
      .prepare(
        `INSERT INTO forge_poll (repo, since, polled_at) VALUES (?, ?, ?)
         ON CONFLICT(repo) DO UPDATE SET since = excluded.since, polled_at = excluded.polled_at`,
      )
      .run(repo, since, Date.now());
  }

  // ---- reports ------------------------------------------------------------------------------

  getReport(run: string): ReportRecord | undefined {
    const r = this.db.prepare('SELECT * FROM forge_reports WHERE run = ?').get(run) as Row | undefined;
    return r ? toReport(r) : undefined;
  }

  /** The run's report row, created empty the first time (the run must exist). */
  ensureReport(run: string): ReportRecord {
    this.db.prepare('INSERT OR IGNORE INTO forge_reports (run, updated_at) VALUES (?, ?)').run(run, Date.now());
    const r = this.getReport(run);
    if (!r) throw new Error(`no report row for ${run}`);
    return r;
  }

  updateReport(run: string, patch: ReportPatch): void {
    const keys = Object.keys(patch) as (keyof ReportPatch)[];
    if (keys.length === 0) return;
    const sets = keys.map((k) => `${REPORT_COLUMNS[k]} = ?`).join(', ');
    const values = keys.map((k) => {
      const v = patch[k];
      if (k === 'reaction') return REACTION_CODES[v as ReactionState];
      return typeof v === 'boolean' ? (v ? 1 : 0) : (v ?? null);
    });
    this.db.prepare(`UPDATE forge_reports SET ${sets}, updated_at = ? WHERE run = ?`).run(...values, Date.now(), run);
  }

  /**
   * Runs started from a forge comment whose final state is not reported yet. Runs that finished
   * longer ago than `maxAgeMs` are given up on: a verdict that late helps nobody.
   */
  runsToReport(maxAgeMs: number): string[] {
    const rows = this.db
      .prepare(
        `SELECT r.name FROM runs r LEFT JOIN forge_reports f ON f.run = r.name
         WHERE (r.finished_at IS NULL OR r.finished_at > ?)
           AND (f.final IS NULL OR f.final = 0)
           -- Last: the JSON is read only for the few rows the cheap tests let through (every resync).
           AND json_extract(r.spec_json, '$.spec.trigger.kind') = 'comment'
           AND json_extract(r.spec_json, '$.spec.trigger.forge.owner') IS NOT NULL
         -- +: sorted after the lookup by finished_at (unfinished and recent runs are few), not by
         -- walking every run in creation order.
         ORDER BY +r.created_at`,
      )
      .all(Date.now() - maxAgeMs) as Row[];
    return rows.map((r) => String(r.name));
  }
}
