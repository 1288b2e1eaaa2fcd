import type { Store } from './store.js';
import { str, strOrNull, type Row } from './rows.js';

/**
 * Retention's part of the store (reconcilers/retention.ts). Two horizons: past the first a
 * finished run's bulky things go — its log (events), steps, run directory and spec file — and its
 * summary stays (the run row with result, reason, tiers and times); past the second the summary
 * goes too, while the recipe's aggregates (recipe_stats) keep counting it.
 *
 * Only a run that is Done and that nothing holds is ever touched: no lease not released (a
 * teardown that failed keeps its apps on record), no child process on record, no warm app that
 * names it (promoted, candidate, holder, to be returned after). A run's summary also stays while
 * it is the newest Done run of its recipe and lane: the badge and the recipe page link to it.
 */

const HELD = `
  NOT EXISTS (SELECT 1 FROM apps a WHERE a.run = r.name AND a.state != 'released')
  AND NOT EXISTS (SELECT 1 FROM children c WHERE c.run = r.name)
  AND NOT EXISTS (SELECT 1 FROM warm w WHERE r.name IN (w.promoted_run, w.candidate_run, w.holder, w.return_pending))`;

/** Not pruned yet, and free to be. */
const PRUNABLE = `r.phase = 'Done' AND r.pruned_at IS NULL AND ${HELD}`;

/** Pruned and done with, free to be forgotten. */
const FORGETTABLE = `r.phase = 'Done' AND r.pruned_at IS NOT NULL AND r.files_pending = 0 AND ${HELD}
  AND NOT EXISTS (SELECT 1 FROM recipe_stats s WHERE s.last_run = r.name)`;

export interface Horizon {
  /** Runs that finished before this (ms since the epoch) are past it. */
  before: number;
  /** Runs past the newest this many Done runs of their recipe are past it. */
  keepPerRecipe: number;
}

export interface PendingRun {
  name: string;
  specPath: string | null;
}

export class RetentionStore {
  constructor(private readonly store: Store) {}

  private get db() {
    return this.store.db;
  }

  private recipes(): string[] {
    return (this.db.prepare('SELECT DISTINCT recipe FROM recipe_stats').all() as Row[]).map((r) => str(r.recipe));
  }

  /** Runs past `h` that `condition` admits, oldest first, at most `limit`. */
  private pastHorizon(h: Horizon, condition: string, limit: number): string[] {
    const found = new Set<string>();
    // Age: a run finishes after it is created, so the creation index narrows the scan first.
    const byAge = this.db.prepare(
      `SELECT name FROM runs r WHERE r.created_at < ? AND COALESCE(r.finished_at, r.updated_at) < ? AND ${condition} ORDER BY r.created_at, r.name LIMIT ?`,
    );
    for (const row of byAge.all(h.before, h.before, limit) as Row[]) found.add(str(row.name));
    // Count: beyond the newest keepPerRecipe Done runs of each recipe.
    const byCount = this.db.prepare(
      `SELECT name FROM runs r WHERE r.name IN (
         SELECT name FROM runs WHERE recipe = ? AND phase = 'Done' ORDER BY created_at DESC, name DESC LIMIT -1 OFFSET ?)
       AND ${condition} ORDER BY r.created_at, r.name LIMIT ?`,
    );
    for (const recipe of this.recipes()) {
      if (found.size >= limit) break;
      for (const row of byCount.all(recipe, h.keepPerRecipe, limit - found.size) as Row[]) found.add(str(row.name));
    }
    return [...found].slice(0, limit);
  }

  /** Runs to prune: past the logs horizon, Done, not pruned yet, held by nothing. */
  toPrune(h: Horizon, limit: number): string[] {
    return this.pastHorizon(h, PRUNABLE, limit);
  }

  /** Runs whose summary is to go: past the summaries horizon, pruned, not the newest of their recipe and lane. */
  toForget(h: Horizon, limit: number): string[] {
    return this.pastHorizon(h, FORGETTABLE, limit);
  }

  /**
   * Records that the run's log and files are to go — before anything goes, so a restart finishes
   * it. Looked at again in the same statement: a run something took hold of since is left alone.
   */
  markPruned(name: string, at: number): boolean {
    return this.db.prepare(`UPDATE runs AS r SET pruned_at = ?, files_pending = 1 WHERE r.name = ? AND ${PRUNABLE}`).run(at, name).changes === 1;
  }

  /** Marked runs whose log or files are still to be removed (a pass, or a crash, left them). */
  pending(limit: number): PendingRun[] {
    const rows = this.db.prepare('SELECT name, spec_path FROM runs WHERE files_pending = 1 ORDER BY name LIMIT ?').all(limit) as Row[];
    return rows.map((r) => ({ name: str(r.name), specPath: strOrNull(r.spec_path) }));
  }

  /** Deletes up to `chunk` lines of a marked run's log; how many went (0: none left). */
  deleteEvents(name: string, chunk: number): number {
    return this.db.prepare('DELETE FROM events WHERE run = ? AND seq IN (SELECT seq FROM events WHERE run = ? ORDER BY seq LIMIT ?)').run(name, name, chunk)
      .changes;
  }

  deleteSteps(name: string): number {
    return this.db.prepare('DELETE FROM steps WHERE run = ?').run(name).changes;
  }

  /** The spec files recorded valid for the run (normally one: its spec_path). */
  specFiles(name: string): string[] {
    return (this.db.prepare("SELECT path FROM spec_files WHERE name = ? AND status = 'valid'").all(name) as Row[]).map((r) => str(r.path));
  }

  /** The run's files are gone: its spec files are forgotten and the mark cleared. */
  filesRemoved(name: string, specFiles: readonly string[]): void {
    this.store.atomically(() => {
      const forget = this.db.prepare('DELETE FROM spec_files WHERE path = ?');
      for (const p of specFiles) forget.run(p);
      this.db.prepare('UPDATE runs SET spec_path = NULL, files_pending = 0 WHERE name = ?').run(name);
    });
  }

  /** Removes the run's summary (tiers, forge report state cascade) and its released leases; checked again first. */
  forget(name: string): boolean {
    return this.store.atomically(() => {
      if (!this.db.prepare(`SELECT 1 FROM runs r WHERE r.name = ? AND ${FORGETTABLE}`).get(name)) return false;
      this.db.prepare("DELETE FROM apps WHERE run = ? AND state = 'released'").run(name);
      this.db.prepare('DELETE FROM runs WHERE name = ?').run(name);
      return true;
    });
  }
}
