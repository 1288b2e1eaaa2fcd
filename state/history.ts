import type Database from 'better-sqlite3';
import type { Store } from './store.js';
import { toRun } from './store.js';
import { numOrNull, str, strOrNull, type Row } from './rows.js';
import { PHASES, type Phase, type RunRecord, type RunResult } from './types.js';

/**
 * The runs as history (migration 7): pages of runs newest first, by filter, through indexes; the
 * queue; and each recipe's aggregates. Every query here touches the rows it returns (or a page
 * of them), never the whole table, so the pages and badges cost the same at 10 or 100,000 runs.
 */

/** What the runs list can be narrowed to; every field is an exact match. */
export interface RunFilter {
  recipe?: string;
  result?: RunResult;
  lane?: string;
  pr?: number;
  /** `owner/name` of the pull request's repository (any case). */
  repo?: string;
}

/** Where a page of finished runs starts: just older than this run (created_at, then name). */
export interface Cursor {
  createdAt: number;
  name: string;
}

/** Every phase but Done: the runs a list shows on top, and the only ones the controller looks at again. */
export const UNFINISHED: readonly Phase[] = PHASES.filter((p) => p !== 'Done');

export interface RecipeStats {
  recipe: string;
  lane: string;
  passed: number;
  failed: number;
  error: number;
  cancelled: number;
  /** The newest run of this recipe and lane that reached Done, by creation. */
  lastRun: string | null;
  lastResult: RunResult | null;
  lastCreatedAt: number | null;
}

/** A run as a list of a recipe's latest runs shows it. */
export interface DayVerdicts {
  /** The day's start, UTC, in ms. */
  day: number;
  passed: number;
  /** Failed or ended in error (a cancelled run says nothing of the recipe). */
  failed: number;
  total: number;
}

export interface RunBrief {
  name: string;
  phase: string;
  result: RunResult | null;
  createdAt: number;
}

/** The filter as SQL terms. `byPhase`: the query goes through the phase index (unfinished runs are
 *  few), so the filter's columns are written `+col`, which keeps SQLite from using their indexes. */
function where(filter: RunFilter, byPhase = false): { sql: string; params: (string | number)[] } {
  const terms: string[] = [];
  const params: (string | number)[] = [];
  const col = (c: string) => (byPhase ? `+${c}` : c);
  const term = (c: string, v: string | number | undefined): void => {
    if (v === undefined) return;
    terms.push(`${col(c)} = ?`);
    params.push(v);
  };
  term('recipe', filter.recipe);
  term('result', filter.result);
  term('lane', filter.lane);
  term('pr', filter.pr);
  term('pr_repo', filter.repo?.toLowerCase());
  return { sql: terms.map((t) => ` AND ${t}`).join(''), params };
}

/** Prepared statements by SQL text, per database: a page's queries are compiled once, not per request
 *  (the texts are few: one per combination of filters). */
const statements = new WeakMap<Database.Database, Map<string, Database.Statement>>();

const toStats = (r: Row): RecipeStats => ({
  recipe: str(r.recipe),
  lane: str(r.lane),
  passed: Number(r.passed),
  failed: Number(r.failed),
  error: Number(r.error),
  cancelled: Number(r.cancelled),
  lastRun: strOrNull(r.last_run),
  lastResult: strOrNull(r.last_result) as RunResult | null,
  lastCreatedAt: numOrNull(r.last_created_at),
});

export class RunHistory {
  constructor(private readonly store: Store) {}

  private get db() {
    return this.store.db;
  }

  private prepare(sql: string): Database.Statement {
    let cache = statements.get(this.db);
    if (!cache) statements.set(this.db, (cache = new Map<string, Database.Statement>()));
    let st = cache.get(sql);
    if (!st) cache.set(sql, (st = this.db.prepare(sql)));
    return st;
  }

  /** Finished runs, newest first, older than `before` when given: one page of keyset pagination. */
  finished(filter: RunFilter, before: Cursor | null, limit: number): RunRecord[] {
    const w = where(filter);
    const after = before ? ' AND (created_at, name) < (?, ?)' : '';
    const params = [...w.params, ...(before ? [before.createdAt, before.name] : []), limit];
    // `+phase`: not through the phase index, which would sort every finished run; the order's own index pages instead.
    const q = `SELECT * FROM runs WHERE +phase = 'Done'${w.sql}${after} ORDER BY created_at DESC, name DESC LIMIT ?`;
    return (this.prepare(q).all(...params) as Row[]).map(toRun);
  }

  /** Runs not Done yet (queued, running, tearing down, reporting), newest first, at most `limit`. */
  unfinished(filter: RunFilter, limit: number): RunRecord[] {
    const w = where(filter, true);
    const q = `SELECT * FROM runs WHERE phase IN (${UNFINISHED.map(() => '?').join(',')})${w.sql} ORDER BY created_at DESC, name DESC LIMIT ?`;
    return (this.prepare(q).all(...UNFINISHED, ...w.params, limit) as Row[]).map(toRun);
  }

  countUnfinished(filter: RunFilter): number {
    const w = where(filter, true);
    const q = `SELECT COUNT(*) AS n FROM runs WHERE phase IN (${UNFINISHED.map(() => '?').join(',')})${w.sql}`;
    return Number((this.prepare(q).get(...UNFINISHED, ...w.params) as Row).n);
  }

  /** The queue in the order of arrival: Pending runs nobody cancelled (first = next to be admitted). */
  queue(): string[] {
    const rows = this.prepare("SELECT name FROM runs WHERE phase = 'Pending' AND cancel_requested = 0 ORDER BY created_at, name").all() as Row[];
    return rows.map((r) => str(r.name));
  }

  /** Names of runs whose record changed at or after `since` (ms). */
  changedSince(since: number, limit: number): string[] {
    return (this.prepare('SELECT name FROM runs WHERE updated_at >= ? ORDER BY updated_at LIMIT ?').all(since, limit) as Row[]).map((r) => str(r.name));
  }

  /** Every recipe's aggregates, one row per recipe and lane, by recipe. */
  allStats(): RecipeStats[] {
    return (this.prepare('SELECT * FROM recipe_stats ORDER BY recipe, lane').all() as Row[]).map(toStats);
  }

  stats(recipe: string): RecipeStats[] {
    return (this.prepare('SELECT * FROM recipe_stats WHERE recipe = ? ORDER BY lane').all(recipe) as Row[]).map(toStats);
  }

  /** Unfinished runs per recipe (few: they hold the queue and the swarm). */
  unfinishedByRecipe(): Map<string, number> {
    const q = `SELECT recipe, COUNT(*) AS n FROM runs WHERE phase IN (${UNFINISHED.map(() => '?').join(',')}) GROUP BY recipe`;
    return new Map((this.prepare(q).all(...UNFINISHED) as Row[]).map((r) => [str(r.recipe), Number(r.n)]));
  }

  /** Verdicts of a recipe's finished runs per UTC day since `since` (the runs retention kept; an index range of one recipe). */
  dailyVerdicts(recipe: string, since: number): DayVerdicts[] {
    const rows = this.prepare(
      `SELECT created_at / 86400000 AS day, SUM(result IS 'passed') AS passed, SUM(result IN ('failed', 'error')) AS failed, COUNT(*) AS total
       FROM runs WHERE recipe = ? AND created_at >= ? AND phase = 'Done' AND result IS NOT 'cancelled' GROUP BY day ORDER BY day`,
    ).all(recipe, since) as Row[];
    return rows.map((r) => ({ day: Number(r.day) * 86_400_000, passed: Number(r.passed), failed: Number(r.failed), total: Number(r.total) }));
  }

  /** The newest `n` runs of a recipe, any phase. */
  latest(recipe: string, n: number): RunBrief[] {
    const rows = this.prepare('SELECT name, phase, result, created_at FROM runs WHERE recipe = ? ORDER BY created_at DESC, name DESC LIMIT ?').all(
      recipe,
      n,
    ) as Row[];
    return rows.map((r) => ({ name: str(r.name), phase: str(r.phase), result: strOrNull(r.result) as RunResult | null, createdAt: Number(r.created_at) }));
  }

  /** The domains each of `runs` leased, in one query (a page of runs, not one query per run). */
  domainsOf(runs: readonly string[]): Map<string, string[]> {
    const found = new Map<string, string[]>(runs.map((r) => [r, []]));
    if (runs.length === 0) return found;
    const rows = this.prepare('SELECT run, domain FROM apps WHERE run IN (SELECT value FROM json_each(?)) ORDER BY leased_at').all(
      JSON.stringify(runs),
    ) as Row[];
    for (const r of rows) found.get(str(r.run))?.push(str(r.domain));
    return found;
  }

  /** When retention removed the run's log, steps and files, or null. */
  prunedAt(name: string): number | null {
    const r = this.prepare('SELECT pruned_at FROM runs WHERE name = ?').get(name) as Row | undefined;
    return r ? numOrNull(r.pruned_at) : null;
  }

  /** Spec files recorded invalid, by path, at most `limit`, and how many there are; `of`: only
   *  those naming that run, or named after it (`<name>.yaml`). */
  invalidSpecFiles(limit: number, of?: string): { rows: { path: string; name: string | null; error: string | null }[]; total: number } {
    const only = of === undefined ? '' : " AND (name = ? OR path LIKE '%/' || ? || '.%')";
    const params = of === undefined ? [] : [of, of];
    const rows = this.prepare(`SELECT path, name, error FROM spec_files WHERE status = 'invalid'${only} ORDER BY path LIMIT ?`).all(...params, limit) as Row[];
    const total =
      rows.length < limit
        ? rows.length
        : Number((this.prepare(`SELECT COUNT(*) AS n FROM spec_files WHERE status = 'invalid'${only}`).get(...params) as Row).n);
    return { rows: rows.map((r) => ({ path: str(r.path), name: strOrNull(r.name), error: strOrNull(r.error) })), total };
  }
}
