import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../controller/config.js';
import { DockerError } from '../controller/docker.js';
import type { Logger } from '../controller/log.js';
import { runDir, type StatePaths } from '../controller/paths.js';
import type { ChildTracker } from '../controller/process.js';
import { runSpecSchema, type RunSpec } from '../controller/spec.js';
import type { ReconcileResult } from '../controller/workqueue.js';
import { prepareWorkspace } from '../controller/workspace.js';
import { understandRecipe } from './understand.js';
import type { Store } from '../state/store.js';
import { TIER_NAMES, type RunRecord, type RunResult } from '../state/types.js';
import {
  callFault,
  CallKilledError,
  CallTimeoutError,
  CancelledError,
  DeadlineError,
  InputError,
  RunContext,
  ShutdownError,
  SwarmFaultError,
  TestFailure,
} from './context.js';
import { describeRemaining, reconcileTeardown } from './teardown.js';
import { reconcileTiers, verdict, writeTierJUnit } from './test.js';

/**
 * The Run reconciler: moves one run through its phases
 *   Pending → Preparing → Deploying ⇄ Testing → TearingDown → Reporting → Done
 * delegating the work of each phase to the deploy, test and teardown reconcilers. It is
 * level-triggered: every call reads the run's record and acts on the phase it finds there, so
 * a restart (even after kill -9) continues from the record.
 */

export interface RunReconcilerDeps {
  store: Store;
  config: Config;
  paths: StatePaths;
  logger: Logger;
  instanceId: string;
  trackerFor(run: string): ChildTracker;
  /** Told when a run leaves the active phases, so waiting runs can be admitted. */
  onCapacityFreed(): void;
  /** Reporters (forge, …) run in the Reporting phase; the run is Done when they have. */
  report?(run: RunRecord): Promise<void>;
}

export class RunReconciler {
  /** The abort handle of each run whose attempt is executing in this process. */
  private readonly inFlight = new Map<string, AbortController>();

  constructor(private readonly d: RunReconcilerDeps) {}

  /** Aborted when the controller stops: a teardown pass in flight is stopped too, and the next
   *  start continues it (teardown is idempotent), so SIGTERM never waits out a teardown. */
  private readonly shutdownController = new AbortController();

  /** The controller is stopping: stop every teardown pass in flight. */
  shutdown(reason: string): void {
    this.shutdownController.abort(new ShutdownError(reason));
  }

  /** Stops a run's current step (its abra child and process group) now. */
  abort(name: string, error: Error): boolean {
    const c = this.inFlight.get(name);
    if (!c) return false;
    c.abort(error);
    return true;
  }

  isExecuting(name: string): boolean {
    return this.inFlight.has(name);
  }

  async reconcile(name: string): Promise<ReconcileResult> {
    const run = this.d.store.getRun(name);
    if (!run) return {};
    switch (run.phase) {
      case 'Pending':
        return this.admit(run);
      case 'Preparing':
      case 'Deploying':
      case 'Testing':
        return this.execute(run);
      case 'TearingDown':
        return this.teardown(run);
      case 'Reporting':
        return this.report(run);
      case 'Done':
        return {};
    }
  }

  private log(run: string, kind: 'phase' | 'info' | 'warn' | 'error' | 'result', text: string): void {
    this.d.store.appendEvent(run, kind, text);
  }

  private admit(run: RunRecord): ReconcileResult {
    const { store, config } = this.d;
    if (run.cancelRequested) {
      store.updateRun(run.name, { phase: 'Done', result: 'cancelled', reason: run.cancelReason ?? 'cancelled', finishedAt: Date.now() });
      this.log(run.name, 'result', `cancelled before it started: ${run.cancelReason ?? ''}`);
      return {};
    }
    const admitted = store.atomically(() => {
      const active = store.countActiveRuns();
      const why = active >= config.capacity ? `capacity full (${active}/${config.capacity} runs active)` : this.leaseHeld();
      if (why) {
        if (run.waitingReason !== why) store.updateRun(run.name, { waitingReason: why });
        return false;
      }
      store.updateRun(run.name, {
        phase: 'Preparing',
        owner: this.d.instanceId,
        waitingReason: null,
        startedAt: run.startedAt ?? Date.now(),
      });
      return true;
    });
    if (!admitted) return { requeueAfterMs: 10_000 };
    this.log(run.name, 'phase', `Preparing (attempt ${run.attempt})`);
    return { requeueAfterMs: 0 };
  }

  /**
   * Why a run cannot get what it will lease, if it cannot: in the local ingress mode every app
   * holds a host port, so a run is admitted only while a port of the range is left for it — one
   * for each live app, and one for each admitted run that has not leased its app yet. (A port
   * something else on the host listens on is found only at lease time.)
   */
  private leaseHeld(): string | null {
    const { store, config } = this.d;
    if (config.ingress.mode === 'traefik') return null;
    const [lo, hi] = config.ingress.portRange;
    const held = [...store.livePorts()].filter((p) => p >= lo && p <= hi).length;
    const leasing = store
      .listRuns({ phases: ['Preparing', 'Deploying', 'Testing'] })
      .filter((r) => !store.appsOfRun(r.name).some((a) => a.state !== 'released' && a.port !== null)).length;
    const used = held + leasing;
    return used >= hi - lo + 1 ? `lease held: no free ingress port in ${lo}-${hi} (${used} apps hold them)` : null;
  }

  private specOf(run: RunRecord): RunSpec {
    return runSpecSchema.parse(JSON.parse(run.specJson));
  }

  private context(run: RunRecord, signal: AbortSignal): RunContext {
    return new RunContext({
      store: this.d.store,
      config: this.d.config,
      paths: this.d.paths,
      logger: this.d.logger,
      run,
      spec: this.specOf(run),
      signal,
      tracker: this.d.trackerFor(run.name),
    });
  }

  /** Prepare and climb the tier ladder; whatever happens, the run ends up in TearingDown. */
  private async execute(run: RunRecord): Promise<ReconcileResult> {
    const { store, config } = this.d;
    if (run.owner !== this.d.instanceId) {
      // The attempt belonged to a controller that is gone: what it was doing is unknown, so
      // nothing of it is trusted. Tear down what the record knows of, then start again.
      return this.toTeardown(run, {
        result: null,
        reason: `interrupted: the controller stopped while the run was ${run.phase}`,
        retry: true,
      });
    }
    if (run.cancelRequested) return this.toTeardown(run, { result: 'cancelled', reason: run.cancelReason ?? 'cancelled' });

    const abort = new AbortController();
    this.inFlight.set(run.name, abort);
    const runLimitMs = (run.startedAt ?? Date.now()) + config.timeouts.runSeconds * 1000 - Date.now();
    const timer = setTimeout(() => {
      const tier = store.runningTier(run.name)?.tier;
      const step = store.getRun(run.name)?.step;
      abort.abort(new DeadlineError(`run timed out in ${tier ?? 'preparation'} after ${config.timeouts.runSeconds}s (step: ${step ?? run.phase})`));
    }, Math.max(0, runLimitMs));
    const ctx = this.context(run, abort.signal);
    try {
      if (ctx.spec.spec.lane === 'quick') {
        ctx.log('warn', 'quick lane: cc-ci keeps no warm canonical apps yet, so this run climbs the full ladder on fresh apps, as the cold lane does');
      }
      await prepareWorkspace(ctx);
      await understandRecipe(ctx);
      if (store.getTiers(run.name).length === 0) {
        const tiers = ctx.spec.spec.tiers ?? [...TIER_NAMES];
        store.planTiers(run.name, tiers);
        ctx.log('info', `tiers: ${tiers.join(' → ')}`);
      }
      await reconcileTiers(ctx);
      const v = verdict(store.getTiers(run.name));
      return this.toTeardown(run, { result: v.result, reason: v.reason });
    } catch (e) {
      if (abort.signal.reason instanceof ShutdownError) {
        // Leave the record as it is: the next controller sees an attempt it does not own.
        ctx.log('warn', `interrupted by shutdown in ${store.getRun(run.name)?.step ?? run.phase}`);
        return {};
      }
      const outcome = classify(e, ctx);
      if (outcome.failTier) {
        const tier = store.runningTier(run.name);
        if (tier) store.finishTier(run.name, tier.tier, 'fail', outcome.reason);
      }
      return this.toTeardown(run, outcome);
    } finally {
      clearTimeout(timer);
      this.inFlight.delete(run.name);
    }
  }

  private toTeardown(run: RunRecord, o: { result: RunResult | null; reason: string; retry?: boolean }): ReconcileResult {
    if (!o.retry) this.skipRemainingTiers(run, o.result, o.reason);
    this.d.store.updateRun(run.name, {
      phase: 'TearingDown',
      result: o.result,
      reason: o.reason,
      retryPending: o.retry === true,
      teardownStartedAt: Date.now(),
    });
    const kind = o.result === 'passed' ? 'info' : o.retry ? 'warn' : 'error';
    this.log(run.name, kind, o.result ? `verdict: ${o.result} — ${o.reason}` : o.reason);
    this.log(run.name, 'phase', 'TearingDown');
    return { requeueAfterMs: 0 };
  }

  /** The tiers the run did not finish are `skipped`, each with its reason and its JUnit file. */
  private skipRemainingTiers(run: RunRecord, result: RunResult | null, reason: string): void {
    for (const t of this.d.store.getTiers(run.name)) {
      if (t.result !== null) continue;
      const why = t.startedAt ? `interrupted: the run ended ${result ?? 'early'} while this tier ran` : `not run: the run ended ${result ?? 'early'}`;
      this.d.store.finishTier(run.name, t.tier, 'skipped', why);
      writeTierJUnit(runDir(this.d.paths, run.name), run.recipe, t.tier, { skipped: `${why}: ${reason}` }, 0);
    }
  }

  private async teardown(run: RunRecord): Promise<ReconcileResult> {
    const { store, config } = this.d;
    const limitMs = config.timeouts.teardownSeconds * 1000;
    const startedAt = run.teardownStartedAt ?? Date.now();
    // Teardown is never cancelled: only its own deadline stops a pass. A pass gets what is left
    // of the deadline, but always a little, so a restart after a long downtime still tries once.
    const passMs = Math.max(startedAt + limitMs - Date.now(), Math.min(limitMs, 30_000));
    // One controller for both ends of a pass, its deadline and the controller stopping. (Not
    // AbortSignal.any over AbortSignal.timeout: on Node 20 the timeout signal can be collected
    // and then never fires.)
    const pass = new AbortController();
    const deadline = setTimeout(() => pass.abort(new DOMException(`teardown pass deadline (${passMs} ms)`, 'TimeoutError')), passMs);
    const onShutdown = () => pass.abort(this.shutdownController.signal.reason);
    this.shutdownController.signal.addEventListener('abort', onShutdown, { once: true });
    const ctx = this.context(run, pass.signal);
    let outcome: { done: boolean; remaining: string | null };
    try {
      outcome = await reconcileTeardown(ctx);
    } catch (e) {
      if (this.shutdownController.signal.aborted) {
        ctx.log('warn', 'teardown paused by the controller stopping; it continues on the next start');
        return {};
      }
      // A pass that hung (abra or docker killed at the deadline) or failed outright (docker
      // gone) is not the end of teardown: say what happened and look again, within the limit.
      const why = e instanceof Error ? (e.name === 'TimeoutError' ? `a pass ran out of time after ${Math.round(passMs / 1000)}s` : e.message) : String(e);
      const left = await describeRemaining(ctx.withSignal(AbortSignal.timeout(config.timeouts.dockerSeconds * 1000)));
      outcome = { done: false, remaining: `${left} (${ctx.redactor.apply(why)})` };
    } finally {
      clearTimeout(deadline);
      this.shutdownController.signal.removeEventListener('abort', onShutdown);
    }
    if (!outcome.done) {
      if (Date.now() - startedAt < limitMs) {
        ctx.log('warn', `teardown incomplete, looking again: ${outcome.remaining}`);
        return { requeueAfterMs: 5_000 };
      }
      // Out of time: say exactly what is left and stop holding capacity; the janitor reaps it
      // once the run is done (its leases are still on record).
      const what = `timed out in teardown after ${config.timeouts.teardownSeconds}s: could not remove ${outcome.remaining}`;
      const fresh = store.getRun(run.name) ?? run;
      store.updateRun(run.name, {
        phase: 'Reporting',
        result: 'error',
        reason: `${fresh.reason ?? ''}${fresh.reason ? '; ' : ''}${what}`,
        retryPending: false,
      });
      ctx.log('error', what);
      this.d.onCapacityFreed();
      return { requeueAfterMs: 0 };
    }
    ctx.log('info', 'teardown verified: nothing of the run is left on the swarm or on disk');
    this.d.onCapacityFreed();

    const fresh = store.getRun(run.name) ?? run;
    if (fresh.retryPending) {
      if (fresh.attempt < config.maxAttempts && !fresh.cancelRequested) {
        const retries = [...fresh.retries, { attempt: fresh.attempt, reason: fresh.reason ?? 'interrupted', at: Date.now() }];
        store.updateRun(run.name, {
          phase: 'Pending',
          attempt: fresh.attempt + 1,
          retries,
          retryPending: false,
          result: null,
          reason: null,
          owner: null,
          step: null,
          teardownStartedAt: null,
        });
        store.planTiers(run.name, []);
        ctx.log('warn', `retrying from a clean slate (attempt ${fresh.attempt + 1} of ${config.maxAttempts}) after: ${fresh.reason}`);
        return { requeueAfterMs: 0 };
      }
      this.skipRemainingTiers(fresh, fresh.cancelRequested ? 'cancelled' : 'error', fresh.reason ?? 'interrupted');
      store.updateRun(run.name, {
        result: fresh.cancelRequested ? 'cancelled' : 'error',
        reason: fresh.cancelRequested
          ? (fresh.cancelReason ?? 'cancelled')
          : `${fresh.reason} (no attempts left: ${fresh.attempt} of ${config.maxAttempts})`,
        retryPending: false,
      });
    }
    store.updateRun(run.name, { phase: 'Reporting' });
    return { requeueAfterMs: 0 };
  }

  private async report(run: RunRecord): Promise<ReconcileResult> {
    const { store, paths } = this.d;
    if (this.d.report) await this.d.report(run);
    const finishedAt = Date.now();
    store.updateRun(run.name, { phase: 'Done', finishedAt, step: null });
    const done = store.getRun(run.name) ?? run;
    const tiers = store.getTiers(run.name);
    const dir = runDir(paths, run.name);
    mkdirSync(dir, { recursive: true });
    const domains = store.appsOfRun(run.name).map((a) => a.domain);
    writeFileSync(join(dir, 'result.json'), `${JSON.stringify(runSummary(done, tiers, domains), null, 2)}\n`);
    this.log(run.name, 'result', `${done.result}: ${done.reason ?? ''}`);
    return {};
  }
}

/** How an attempt's failure maps to a run result. Only infrastructure faults are retried. */
function classify(e: unknown, ctx: RunContext): { result: RunResult | null; reason: string; retry?: boolean; failTier?: boolean } {
  const reason: unknown = ctx.signal.aborted ? ctx.signal.reason : undefined;
  if (reason instanceof CancelledError || e instanceof CancelledError) {
    return { result: 'cancelled', reason: (reason instanceof Error ? reason : (e as Error)).message };
  }
  if (reason instanceof DeadlineError) return { result: 'error', reason: reason.message };
  if (e instanceof InputError) return { result: 'error', reason: e.message };
  if (e instanceof TestFailure) return { result: 'failed', reason: e.message };
  if (e instanceof SwarmFaultError) return { result: null, reason: `infrastructure: ${ctx.redactor.apply(e.message)}`, retry: true };
  if (e instanceof DockerError && /Cannot connect to the Docker daemon|Is the docker daemon running|connection refused/i.test(e.message)) {
    return { result: null, reason: `infrastructure: the Docker daemon is unreachable (${e.message})`, retry: true };
  }
  // A call that hung past its own limit, or was killed from outside, outside a recorded step
  // (a docker observation) is named here; inside one, RunContext.step has named it already.
  const fault = callFault(e, null, ctx.where());
  if (fault instanceof CallTimeoutError) return { result: 'error', reason: ctx.redactor.apply(fault.message), failTier: true };
  if (fault instanceof CallKilledError) return { result: null, reason: ctx.redactor.apply(fault.message), retry: true };
  const message = ctx.redactor.apply(e instanceof Error ? e.message : String(e));
  ctx.logger.error({ error: message, stack: e instanceof Error ? ctx.redactor.apply(e.stack ?? '') : undefined }, 'run failed with an unexpected error');
  return { result: 'error', reason: `infrastructure: ${message}` };
}

export interface RunSummary {
  name: string;
  result: RunResult | null;
  reason: string | null;
  recipe: string;
  ref: string;
  commit: string | null;
  lane: string;
  attempt: number;
  retries: RunRecord['retries'];
  tiers: Record<string, { result: string; reason: string | null; durationMs: number | null }>;
  domains: string[];
  durationMs: number | null;
  customization: unknown;
  understanding: unknown;
}

export function runSummary(run: RunRecord, tiers: { tier: string; result: string | null; reason: string | null; durationMs: number | null }[], domains: string[] = []): RunSummary {
  const spec = JSON.parse(run.specJson) as RunSpec;
  return {
    name: run.name,
    result: run.result,
    reason: run.reason,
    recipe: run.recipe,
    ref: spec.spec.source.ref,
    commit: run.commitSha,
    lane: run.lane,
    attempt: run.attempt,
    retries: run.retries,
    tiers: Object.fromEntries(
      tiers.map((t) => [t.tier, { result: t.result ?? 'skipped', reason: t.reason, durationMs: t.durationMs }]),
    ),
    domains,
    durationMs: run.finishedAt && run.startedAt ? run.finishedAt - run.startedAt : null,
    customization: run.customization,
    understanding: run.understanding,
  };
}
