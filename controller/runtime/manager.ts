import { watch, type FSWatcher } from 'chokidar';
import { Apps } from '../../reconcilers/apps.js';
import { CancelledError, ShutdownError } from '../../reconcilers/errors.js';
import { Janitor } from '../../reconcilers/janitor.js';
import { Retention } from '../../reconcilers/retention.js';
import { RunReconciler } from '../../reconcilers/run.js';
import { Store } from '../../state/store.js';
import type { InstanceRecord, RunRecord } from '../../state/types.js';
import type { Config } from '../model/config.js';
import { Docker } from '../clients/docker.js';
import { resolveIngressMode } from './ingress.js';
import { acquireInstance } from '../../state/instance.js';
import type { Logger } from '../model/log.js';
import { ensureStateDirs, type StatePaths } from '../model/paths.js';
import { ACTIVE_PHASES } from '../../state/types.js';
import { UNFINISHED } from '../../state/history.js';
import { processStartTicks, stopRecordedGroup, type ChildTracker } from '../clients/process.js';
import { Controller } from '../engine/controller.js';
import { RuntimeMetrics } from '../engine/metrics.js';
import { aborted, every, RunGroup, type Runnable } from '../engine/runnable.js';
import { SpecSync } from './spec-sync.js';
import { watchDir } from './dir-watch.js';
import { warmKeys, WarmReconciler } from '../../reconcilers/warm.js';
import { basename } from 'node:path';
import { isName } from '../model/spec.js';
import { superseded } from '../../reconcilers/supersede.js';
import { recipeOfWarmFile } from '../model/warm.js';

/**
 * The manager: one per state directory (controller-runtime's Manager). It claims the directory,
 * then starts every loop of the controller as a Runnable, in one declared order — the app and Run
 * controllers, the spec watcher and its resync, the heartbeat, the janitor and retention (serve), and whatever
 * the caller adds (the forge, the HTTP server) — and stops them in the reverse order on SIGTERM:
 * no new work, the operations in flight stopped and recorded.
 */

export interface ManagerOptions {
  paths: StatePaths;
  config: Config;
  logger: Logger;
  mode: 'serve' | 'run';
  /** Reconcile only this run (the embedded controller of `cc-ci run`). */
  only?: string;
  /** Keep the warm apps too (`cc-ci serve`, and `cc-ci warm reconcile` with no server running). */
  warm?: boolean;
}

const HEARTBEAT_MS = 5_000;

export class Manager {
  readonly store: Store;
  readonly metrics = new RuntimeMetrics();
  private instance: InstanceRecord | null = null;
  private runs: Controller | null = null;
  private warm: Controller | null = null;
  private warmReconciler: WarmReconciler | null = null;
  private apps: Controller | null = null;
  private reconciler: RunReconciler | null = null;
  private specSync: SpecSync | null = null;
  private readonly group: RunGroup;
  private stopping: Promise<void> | null = null;

  constructor(private readonly options: ManagerOptions) {
    ensureStateDirs(options.paths);
    this.store = new Store(options.paths.db);
    this.group = new RunGroup(options.logger);
  }

  /** Claims the state directory and starts the controller's own runnables, then `extra` in order. */
  async start(extra: Runnable[] = []): Promise<void> {
    const { store, options: o } = this;
    this.instance = acquireInstance(store, o.mode);
    const log = o.logger.child({ instance: this.instance.id.slice(0, 8) });
    log.info({ stateDir: o.paths.root, capacity: o.config.capacity, mode: o.mode }, 'controller starting');
    await resolveIngressMode(o.config, new Docker({ timeoutMs: 15_000 }), log);
    this.stopOrphans(log);

    const apps = new Apps({
      store,
      config: o.config,
      enqueue: (domain) => this.apps?.enqueue(domain),
      released: (run) => this.enqueue(run),
    });
    this.apps = new Controller({ name: 'app', concurrency: 8, logger: log, metrics: this.metrics, reconcile: (domain) => apps.reconcile(domain) });
    this.reconciler = new RunReconciler({
      store,
      config: o.config,
      paths: o.paths,
      logger: log,
      instanceId: this.instance.id,
      apps,
      trackerFor: (run) => this.tracker(run),
      enqueue: (name) => this.enqueue(name),
      onCapacityFreed: () => this.enqueueWaiting(),
      ...(o.mode === 'serve' || o.warm === true ? { warmHandedBack: (recipe: string) => this.warm?.enqueue(recipe) } : {}),
    });
    const reconciler = this.reconciler;
    // Reconciles are quick (an attempt is an operation, not a wait): a few workers serve many runs.
    this.runs = new Controller({
      name: 'run',
      concurrency: 4,
      logger: log,
      metrics: this.metrics,
      reconcile: async (key) => (this.inScope(key) ? reconciler.reconcile(key) : {}),
    });
    // Warm canonical apps are kept by `cc-ci serve`, or by `cc-ci warm reconcile` when none runs (docs/warm.md).
    const warmReconciler =
      o.mode === 'serve' || o.warm === true
        ? new WarmReconciler({
            store,
            config: o.config,
            paths: o.paths,
            logger: log,
            tracker: this.tracker(null),
            apps,
            enqueue: (recipe) => this.warm?.enqueue(recipe),
            warmReady: () => this.enqueueWaiting(),
          })
        : null;
    this.warmReconciler = warmReconciler;
    this.warm = warmReconciler
      ? new Controller({ name: 'warm', concurrency: 2, logger: log, metrics: this.metrics, reconcile: async (recipe) => warmReconciler.reconcile(recipe) })
      : null;
    this.specSync = new SpecSync(store, o.paths.specs, log, {
      enqueue: (name) => this.enqueue(name),
      accepted: (name) => this.supersedeOlder(name),
      cancel: (name, reason) => this.cancel(name, reason),
    });

    const runnables: Runnable[] = [
      // The app controller outlives the Run controller's stop: teardowns in flight stop last.
      stopping(this.apps, () => apps.stop(new ShutdownError('controller stopping'))),
      stopping(this.runs, () => reconciler.shutdown('controller stopping')),
      ...(this.warm && warmReconciler ? [stopping(this.warm, () => warmReconciler.stop(new ShutdownError('controller stopping')))] : []),
      this.specWatcher(log),
      every('resync', o.config.resyncSeconds * 1000, () => this.resync()),
      every('heartbeat', HEARTBEAT_MS, () => this.instance && store.heartbeat(this.instance.id)),
      ...(o.mode === 'serve'
        ? [
            new Janitor({ store, config: o.config, paths: o.paths, logger: log, tracker: this.tracker(null), apps, metrics: this.metrics }),
            new Retention({ store, config: o.config, paths: o.paths, logger: log, metrics: this.metrics }),
          ]
        : []),
      ...extra,
    ];
    for (const r of runnables) await this.group.start(r);
    for (const run of store.listRuns({ phases: UNFINISHED })) this.enqueue(run.name);
    if (this.warm) for (const recipe of warmKeys(o.paths, store)) this.warm.enqueue(recipe);
  }

  /** The spec directory's watcher: events are hints; the periodic resync is the truth. */
  private specWatcher(log: Logger): Runnable {
    return {
      name: 'spec watcher',
      start: async (signal, ready) => {
        this.specSync?.resync();
        // One watch on the directory: a file added, changed or removed is looked at (syncFile
        // tells which from the file itself; a vanished one is `removed`).
        const watcher = watchDir(this.options.paths.specs, {
          settleMs: 150,
          changed: (p) => this.specSync?.syncFile(p),
          overflow: () => this.specSync?.resync(),
          error: (err) => log.error({ err }, 'spec watcher error; the periodic resync still runs'),
        });
        // Warm files: any event of the directory is a hint to look at that recipe.
        const warmWatcher: FSWatcher | null = this.warm ? watch(this.options.paths.warm, { ignoreInitial: true, depth: 0 }) : null;
        warmWatcher?.on('all', (_event, p) => {
          const recipe = recipeOfWarmFile(basename(p));
          if (recipe && isName(recipe)) this.warm?.enqueue(recipe);
        });
        warmWatcher?.on('error', (err) => log.error({ err }, 'warm watcher error; the periodic resync still runs'));
        ready();
        await aborted(signal);
        watcher.close();
        await warmWatcher?.close();
      },
    };
  }

  /**
   * Which runs this controller reconciles. `cc-ci serve`: all. The embedded controller of
   * `cc-ci run` (only = its run): its own run, and every run that holds swarm resources of a
   * controller that is gone — it claimed the state directory, so nobody else will, and left
   * alone such a run would count against capacity forever. It tears them down; their retry
   * (back to Pending) is left to the next `cc-ci serve`.
   */
  private inScope(name: string): boolean {
    if (!this.options.only || name === this.options.only) return true;
    const run = this.store.getRun(name);
    return !!run && ACTIVE_PHASES.includes(run.phase) && run.owner !== this.instance?.id;
  }

  /** Level-triggered safety net: re-read every spec file and look at every unfinished run. */
  resync(): void {
    if (this.stopping || !this.specSync) return;
    this.specSync.resync();
    for (const run of this.store.listRuns({ phases: UNFINISHED })) this.enqueue(run.name);
    if (this.warm) for (const recipe of warmKeys(this.options.paths, this.store)) this.warm.enqueue(recipe);
  }

  /** Whether the warm controller has something of `recipe` in flight (an upkeep, a look, a head read). */
  warmBusy(recipe: string): boolean {
    return this.warmReconciler?.busy(recipe) ?? false;
  }

  /** Looks at a recipe's warm app now (a quick run handed it back). */
  enqueueWarm(recipe: string): void {
    this.warm?.enqueue(recipe);
  }

  enqueue(name: string): void {
    if (!this.inScope(name)) return;
    this.runs?.enqueue(name);
  }

  /**
   * A new run for the same recipe, pull request and lane cancels the older ones, queued or
   * running (Prow's trigger aborts presubmits on a new push; Zuul's dequeue-on-new-patchset).
   */
  supersedeOlder(name: string): void {
    for (const s of superseded(this.store, name)) this.cancel(s.name, `superseded by ${s.by}`);
  }

  private enqueueWaiting(): void {
    for (const r of this.store.listRuns({ phases: ['Pending'] })) this.enqueue(r.name);
  }

  /** Cancels a run: recorded first, then its running step is stopped; teardown follows. */
  cancel(name: string, reason: string): void {
    const run = this.store.getRun(name);
    if (!run || run.phase === 'Done') return;
    if (!run.cancelRequested) {
      this.store.updateRun(name, { cancelRequested: true, cancelReason: reason });
      this.store.appendEvent(name, 'warn', `cancel requested: ${reason}`);
    }
    this.reconciler?.abort(name, new CancelledError(reason));
    this.enqueue(name);
  }

  /** Resolves when the given run is Done. */
  waitForRun(name: string): Promise<RunRecord> {
    return new Promise((resolve) => {
      const check = () => {
        const r = this.store.getRun(name);
        if (r?.phase === 'Done') {
          this.store.changes.off('run', onChange);
          clearInterval(poll);
          resolve(r);
        }
      };
      const onChange = (changed: string) => changed === name && check();
      this.store.changes.on('run', onChange);
      const poll = setInterval(check, 1000);
      check();
    });
  }

  /** Graceful stop: every runnable, the last started first; then the claim is released. */
  stop(reason = 'controller stopping'): Promise<void> {
    this.stopping ??= (async () => {
      for (const run of this.store.listRuns({ phases: UNFINISHED })) {
        if (this.reconciler?.isExecuting(run.name)) {
          this.store.appendEvent(run.name, 'warn', `${reason}: stopping the current step; the run resumes on the next start`);
        }
      }
      await this.group.stop(new ShutdownError(reason));
      if (this.instance) this.store.stopInstance(this.instance.id);
      const longest = Object.fromEntries([...this.metrics.longest].map(([c, v]) => [c, `${Math.round(v.ms)} ms (${v.key})`]));
      this.options.logger.info({ longestReconcile: longest }, 'controller stopped');
      this.store.close();
    })();
    return this.stopping;
  }

  private tracker(run: string | null): ChildTracker {
    return {
      started: (pid, command) => this.store.addChild({ pid, run, startTicks: processStartTicks(pid), command, startedAt: Date.now() }),
      ended: (pid) => this.store.removeChild(pid),
    };
  }

  /** Children of a controller that died (kill -9) may still be running abra: stop them before
   *  anything is torn down, or they would keep building what teardown removes. */
  private stopOrphans(log: Logger): void {
    for (const c of this.store.listChildren()) {
      // Every recorded child ran in its own process group: kill the group whether or not its
      // leader still lives — a dead abra's docker and git children are still in it.
      const stopped = stopRecordedGroup(c.pid, c.startTicks);
      if (stopped === null) {
        log.info({ pid: c.pid, command: c.command }, 'a recorded child is long gone (its pid now names another process)');
      } else if (stopped > 0) {
        log.warn({ pid: c.pid, run: c.run, command: c.command, processes: stopped }, 'stopped the process group of an orphaned child of a previous controller');
        if (c.run) {
          this.store.appendEvent(c.run, 'warn', `stopped orphaned process group ${c.pid} (${c.command}; ${stopped} process(es)) left by a previous controller`);
        }
      }
      this.store.removeChild(c.pid);
    }
  }
}

/** A controller whose in-flight work must be stopped before its queue is. */
function stopping(controller: Controller, beforeStop: () => Promise<void>): Runnable {
  return {
    name: controller.name,
    start: async (signal, ready) => {
      const inner = new AbortController();
      const done = controller.start(inner.signal, ready);
      await aborted(signal);
      await beforeStop();
      inner.abort(signal.reason);
      await done;
    },
  };
}
