import type { Store } from './store.js';
import { numOrNull, strOrNull, type Row } from './rows.js';

/**
 * The warm lane's part of the state store (migration 4): per recipe, what the warm reconciler
 * last saw and did (reconcilers/warm.ts). The Warm file is the desired state; this is status.
 */

/** unknown: not looked at yet; healthy / unhealthy: the last health gate; absent: no warm app (none promoted yet, or removed). */
export type WarmHealth = 'unknown' | 'healthy' | 'unhealthy' | 'absent';

export interface WarmRecord {
  recipe: string;
  specJson: string;
  specPath: string | null;
  /** The default branch's head when last looked at, and when; or why it could not be read. */
  headCommit: string | null;
  headCheckedAt: number | null;
  headError: string | null;
  /** The cold run submitted to promote a head: once per commit, so a failing head is not retried. */
  candidateCommit: string | null;
  candidateRun: string | null;
  /** The canonical version: the commit of the last passing cold run of the default branch's head. */
  promotedCommit: string | null;
  promotedRun: string | null;
  promotedAt: number | null;
  health: WarmHealth;
  healthReason: string | null;
  /** The quick run that holds the warm app, if one does. */
  holder: string | null;
  lastReconcileAt: number | null;
  createdAt: number;
  updatedAt: number;
}

export type WarmPatch = Partial<Omit<WarmRecord, 'recipe' | 'createdAt' | 'updatedAt'>>;

const COLUMNS: Record<keyof WarmPatch, string> = {
  specJson: 'spec_json',
  specPath: 'spec_path',
  headCommit: 'head_commit',
  headCheckedAt: 'head_checked_at',
  headError: 'head_error',
  candidateCommit: 'candidate_commit',
  candidateRun: 'candidate_run',
  promotedCommit: 'promoted_commit',
  promotedRun: 'promoted_run',
  promotedAt: 'promoted_at',
  health: 'health',
  healthReason: 'health_reason',
  holder: 'holder',
  lastReconcileAt: 'last_reconcile_at',
};

function toWarm(r: Row): WarmRecord {
  return {
    recipe: String(r.recipe),
    specJson: String(r.spec_json),
    specPath: strOrNull(r.spec_path),
    headCommit: strOrNull(r.head_commit),
    headCheckedAt: numOrNull(r.head_checked_at),
    headError: strOrNull(r.head_error),
    candidateCommit: strOrNull(r.candidate_commit),
    candidateRun: strOrNull(r.candidate_run),
    promotedCommit: strOrNull(r.promoted_commit),
    promotedRun: strOrNull(r.promoted_run),
    promotedAt: numOrNull(r.promoted_at),
    health: (strOrNull(r.health) ?? 'unknown') as WarmHealth,
    healthReason: strOrNull(r.health_reason),
    holder: strOrNull(r.holder),
    lastReconcileAt: numOrNull(r.last_reconcile_at),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

export class WarmStore {
  constructor(private readonly store: Store) {}

  get(recipe: string): WarmRecord | undefined {
    const r = this.store.db.prepare('SELECT * FROM warm WHERE recipe = ?').get(recipe) as Row | undefined;
    return r ? toWarm(r) : undefined;
  }

  list(): WarmRecord[] {
    return (this.store.db.prepare('SELECT * FROM warm ORDER BY recipe').all() as Row[]).map(toWarm);
  }

  insert(recipe: string, specJson: string, specPath: string): void {
    const now = Date.now();
    this.store.db
      .prepare('INSERT INTO warm (recipe, spec_json, spec_path, created_at, updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT(recipe) DO NOTHING')
      .run(recipe, specJson, specPath, now, now);
  }

  update(recipe: string, patch: WarmPatch): void {
    const keys = (Object.keys(patch) as (keyof WarmPatch)[]).filter((k) => patch[k] !== undefined);
    if (keys.length === 0) return;
    const sets = keys.map((k) => `${COLUMNS[k]} = ?`).join(', ');
    this.store.db.prepare(`UPDATE warm SET ${sets}, updated_at = ? WHERE recipe = ?`).run(...keys.map((k) => patch[k] ?? null), Date.now(), recipe);
  }

  delete(recipe: string): void {
    this.store.db.prepare('DELETE FROM warm WHERE recipe = ?').run(recipe);
  }
}
