import { rmSync, unlinkSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Config } from '../controller/model/config.js';
import type { Logger } from '../controller/model/log.js';
import { runDir, type StatePaths } from '../controller/model/paths.js';
import { Controller, type ReconcileResult } from '../controller/engine/controller.js';
import type { RuntimeMetrics } from '../controller/engine/metrics.js';
import type { Runnable } from '../controller/engine/runnable.js';
import { RetentionStore, type PendingRun } from '../state/retention-store.js';
import type { Store } from '../state/store.js';

/**
 * Retention (docs/runbook.md, State directory growth): keeps the state directory bounded. Past
 * `retention.logs` (an age, or beyond the newest N finished runs of a recipe) a finished run's
 * log, steps, run directory and spec file are removed and its summary stays, so the history and
 * pass rate survive; past `retention.summaries` the summary goes too, the recipe's aggregates
 * still counting it. What it may touch is decided by state/retention-store.ts: only Done runs
 * nothing holds.
 *
 * Recorded before acted on: a run is marked pruned in the store first (one statement that looks
 * at it again), then its log is deleted in chunks and its files removed, then the mark is
 * cleared. A restart finds the marks and finishes them. Deleting a finished run's spec file is
 * only forgetting it: spec sync's `removed` cancels only unfinished runs, and a file of a pruned
 * run that comes back is refused, not run again (controller/runtime/spec-sync.ts).
 *
 * Bounded work: a pass marks at most `runsPerPass` runs and forgets at most as many summaries; it
 * works in slices of SLICE_MS, giving the event loop back between them; and it logs what it removed.
 */

/** One slice of a pass works this long at most, then yields to the event loop. */
const SLICE_MS = 25;
/** Log lines deleted per statement. */
const EVENT_CHUNK = 2_000;
/** Runs looked up per query. */
const BATCH = 50;

export interface RetentionDeps {
  store: Store;
  config: Config;
  paths: StatePaths;
  logger: Logger;
  metrics: RuntimeMetrics;
}

/** What one pass did. */
export interface RetentionReport {
  /** Runs whose log, steps and files were removed this pass (marked by it or by an earlier one). */
  pruned: string[];
  /** Of those, runs an earlier pass (or a process that died) had marked. */
  resumed: number;
  /** Runs whose summary was removed. */
  forgotten: string[];
  logLines: number;
  steps: number;
}

interface Pass extends RetentionReport {
  marked: number;
  looked: number;
  markedHere: Set<string>;
  /** Runs whose files could not be removed this pass: tried again by the next. */
  failed: Set<string>;
}

export class Retention implements Runnable {
  readonly name = 'retention';
  private readonly rs: RetentionStore;
  private readonly controller: Controller;
  private current: Pass | null = null;
  private signal: AbortSignal | null = null;

  constructor(private readonly deps: RetentionDeps) {
    this.rs = new RetentionStore(deps.store);
    this.controller = new Controller({
      name: 'retention',
      concurrency: 1,
      logger: deps.logger,
      metrics: deps.metrics,
      reconcile: async () => this.reconcile(),
    });
  }

  async start(signal: AbortSignal, ready: () => void): Promise<void> {
    this.signal = signal;
    // A pass at the start: marks a crash left are finished without waiting an interval.
    this.controller.enqueue('pass');
    await this.controller.start(signal, ready);
  }

  /** One whole pass now, slice by slice (tests, and what a slow controller would do in steps). */
  async runOnce(): Promise<RetentionReport> {
    for (;;) {
      const done = this.slice();
      if (done) return done;
      await new Promise((r) => setImmediate(r));
    }
  }

  private async reconcile(): Promise<ReconcileResult> {
    if (this.signal?.aborted) return {};
    const done = this.slice();
    if (!done) return { requeueAfterMs: 1 };
    if (done.pruned.length || done.forgotten.length) {
      this.deps.logger.info(
        {
          pruned: done.pruned.length,
          resumed: done.resumed,
          forgotten: done.forgotten.length,
          logLines: done.logLines,
          steps: done.steps,
          runs: [...done.pruned, ...done.forgotten].slice(0, 20),
        },
        `retention: removed the log and files of ${done.pruned.length} finished run(s) and the summary of ${done.forgotten.length}`,
      );
    }
    return { requeueAfterMs: this.deps.config.retention.intervalSeconds * 1000 };
  }

  /** Works until the slice's time is up; the pass's report once it is over, else null. */
  private slice(): RetentionReport | null {
    const until = performance.now() + SLICE_MS;
    const r = this.deps.config.retention;
    const now = Date.now();
    const pass = (this.current ??= {
      pruned: [],
      resumed: 0,
      forgotten: [],
      logLines: 0,
      steps: 0,
      marked: 0,
      looked: 0,
      markedHere: new Set(),
      failed: new Set(),
    });
    // 1. Finish what is marked: this pass's marks, and any a crash left.
    for (;;) {
      const pending = this.rs.pending(BATCH + pass.failed.size).filter((p) => !pass.failed.has(p.name));
      if (pending.length === 0) break;
      for (const p of pending) {
        if (!this.removeFiles(p, pass, until)) return null;
        if (performance.now() > until) return null;
      }
    }
    // 2. Mark more, up to the pass's bound.
    if (r.enabled && pass.marked < r.runsPerPass) {
      const logs = { before: now - r.logs.maxAgeSeconds * 1000, keepPerRecipe: r.logs.keepPerRecipe };
      const names = this.rs.toPrune(logs, Math.min(BATCH, r.runsPerPass - pass.marked));
      pass.marked += names.length;
      for (const name of names) if (this.rs.markPruned(name, now)) pass.markedHere.add(name);
      if (names.length) return null; // step 1 removes them, in the next slice
    }
    // 3. Forget summaries past the second horizon, up to the pass's bound.
    if (r.enabled && pass.looked < r.runsPerPass) {
      const summaries = { before: now - r.summaries.maxAgeSeconds * 1000, keepPerRecipe: r.summaries.keepPerRecipe };
      const names = this.rs.toForget(summaries, Math.min(BATCH, r.runsPerPass - pass.looked));
      pass.looked += names.length;
      for (const name of names) if (this.rs.forget(name)) pass.forgotten.push(name);
      if (names.length) return null;
    }
    this.current = null;
    const { pruned, resumed, forgotten, logLines, steps } = pass;
    return { pruned, resumed, forgotten, logLines, steps };
  }

  /** Removes a marked run's log, steps, directory and spec file; false when the slice ran out first. */
  private removeFiles(p: PendingRun, pass: Pass, until: number): boolean {
    for (;;) {
      const n = this.rs.deleteEvents(p.name, EVENT_CHUNK);
      pass.logLines += n;
      if (n < EVENT_CHUNK) break;
      if (performance.now() > until) return false;
    }
    pass.steps += this.rs.deleteSteps(p.name);
    // Only a file directly in specs/ is the run's spec; a path recorded elsewhere is never deleted.
    const specs = resolve(this.deps.paths.specs);
    const files = [...new Set([p.specPath, ...this.rs.specFiles(p.name)])].filter((f): f is string => f !== null && dirname(resolve(f)) === specs);
    try {
      rmSync(runDir(this.deps.paths, p.name), { recursive: true, force: true });
      for (const f of files) {
        try {
          unlinkSync(f);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        }
      }
    } catch (e) {
      // Still marked: the next pass tries again; this one goes on with the others.
      this.deps.logger.warn({ run: p.name, error: (e as Error).message }, 'retention could not remove the files of a run; the next pass tries again');
      pass.failed.add(p.name);
      return true;
    }
    this.rs.filesRemoved(p.name, files);
    pass.pruned.push(p.name);
    if (!pass.markedHere.has(p.name)) pass.resumed++;
    return true;
  }
}
