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
  /** The quick run that holds the warm app, if one does, and since when. */
  holder: string | null;
  heldSince: number | null;
  /** The host port the warm app publishes its web port on (local ingress); kept for its life. */
  appPort: number | null;
  /** The version the warm app is at and last passed the health gate: what a quick run starts from. */
  canonicalCommit: string | null;
  /** The version abra labels the canonical app with (the recipe's release at or below the commit). */
  canonicalVersion: string | null;
  /** A promoted commit whose health gate failed: rolled back from, not tried again until the next promote. */
  failedCommit: string | null;
  /** The data the canonical app holds (its marker), and the last-known-good snapshot of it. */
  marker: string | null;
  snapshot: WarmSnapshot | null;
  /** The upkeep in progress, recorded before it starts (create, upgrade, repair, return, remove). */
  upkeep: string | null;
  upkeepStartedAt: number | null;
  /** A quick run whose hold ended: the app is to be returned to canonical (redeploy, restore, gate). */
  returnPending: string | null;
  lastGateAt: number | null;
  gate: WarmGate | null;
  lastReconcileAt: number | null;
  createdAt: number;
  updatedAt: number;
}

/** The last-known-good data of a warm app: an abra backup snapshot, or tar copies of its volumes. */
export type WarmSnapshot =
  | { kind: 'abra'; id: string; commit: string; at: number }
  | { kind: 'volumes'; dir: string; volumes: { service: string; volume: string; destination: string; file: string }[]; commit: string; at: number }
  | { kind: 'none'; why: string; commit: string; at: number };

/** What the last passing health gate saw: the services a look expects, and how it probes. */
export interface WarmGate {
  services: string[];
  healthPath: string;
  healthStatuses: number[];
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
  heldSince: 'held_since',
  appPort: 'app_port',
  canonicalCommit: 'canonical_commit',
  canonicalVersion: 'canonical_version',
  failedCommit: 'failed_commit',
  marker: 'marker',
  snapshot: 'snapshot_json',
  upkeep: 'upkeep',
  upkeepStartedAt: 'upkeep_started_at',
  returnPending: 'return_pending',
  lastGateAt: 'last_gate_at',
  gate: 'gate_json',
  lastReconcileAt: 'last_reconcile_at',
};

function jsonOrNull<T>(v: unknown): T | null {
  const s = strOrNull(v);
  return s ? (JSON.parse(s) as T) : null;
}

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
    heldSince: numOrNull(r.held_since),
    appPort: numOrNull(r.app_port),
    canonicalCommit: strOrNull(r.canonical_commit),
    canonicalVersion: strOrNull(r.canonical_version),
    failedCommit: strOrNull(r.failed_commit),
    marker: strOrNull(r.marker),
    snapshot: jsonOrNull<WarmSnapshot>(r.snapshot_json),
    upkeep: strOrNull(r.upkeep),
    upkeepStartedAt: numOrNull(r.upkeep_started_at),
    returnPending: strOrNull(r.return_pending),
    lastGateAt: numOrNull(r.last_gate_at),
    gate: jsonOrNull<WarmGate>(r.gate_json),
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
    const value = (k: keyof WarmPatch): unknown => (k === 'snapshot' || k === 'gate' ? (patch[k] ? JSON.stringify(patch[k]) : null) : (patch[k] ?? null));
    this.store.db.prepare(`UPDATE warm SET ${sets}, updated_at = ? WHERE recipe = ?`).run(...keys.map(value), Date.now(), recipe);
  }

  /**
   * Takes the warm app for a quick run, if it is healthy and nobody holds it or is repairing it —
   * in the transaction that admits the run, so two runs never hold it at once. Otherwise why not.
   */
  tryHold(recipe: string, run: string): { held: true } | { held: false; wait: boolean; why: string } {
    const w = this.get(recipe);
    if (!w) return { held: false, wait: false, why: `${recipe} has no Warm object` };
    if (w.holder === run) return { held: true };
    const app = `warm-${recipe}`;
    if (w.holder) return { held: false, wait: true, why: `waiting for ${app} (held by ${w.holder})` };
    if (w.returnPending) return { held: false, wait: true, why: `waiting for ${app} (being returned to canonical after ${w.returnPending})` };
    if (w.upkeep && w.canonicalCommit) return { held: false, wait: true, why: `waiting for ${app} (${w.upkeep})` };
    if (w.health !== 'healthy' || !w.canonicalCommit) {
      return { held: false, wait: false, why: `${app} is ${w.health}${w.healthReason ? ` (${w.healthReason})` : ''}` };
    }
    this.update(recipe, { holder: run, heldSince: Date.now() });
    return { held: true };
  }

  /** A hold ends: recorded before anything is undone, so the next pass returns the app to canonical. */
  endHold(recipe: string, run: string): boolean {
    const info = this.store.db
      .prepare('UPDATE warm SET holder = NULL, held_since = NULL, return_pending = ?, updated_at = ? WHERE recipe = ? AND holder = ?')
      .run(run, Date.now(), recipe, run);
    return info.changes > 0;
  }

  /** The warm app a run holds, if any. */
  heldBy(run: string): WarmRecord | undefined {
    const r = this.store.db.prepare('SELECT * FROM warm WHERE holder = ?').get(run) as Row | undefined;
    return r ? toWarm(r) : undefined;
  }

  delete(recipe: string): void {
    this.store.db.prepare('DELETE FROM warm WHERE recipe = ?').run(recipe);
  }
}
