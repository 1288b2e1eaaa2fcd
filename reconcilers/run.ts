import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tierSeconds, type Config } from '../controller/model/config.js';
import { DockerError } from '../controller/clients/docker.js';
import type { Logger } from '../controller/model/log.js';
import { runDir, type StatePaths } from '../controller/model/paths.js';
import type { ChildTracker } from '../controller/clients/process.js';
import type { ReconcileResult } from '../controller/engine/controller.js';
import { Operations } from '../controller/engine/ops.js';
import { acceptedSpec } from '../controller/model/spec.js';
import { prepareWorkspace } from './workspace.js';
import type { Store } from '../state/store.js';
import { TIER_NAMES, type RunRecord, type RunResult } from '../state/types.js';
import { whyNotAdmitted } from './admission.js';
import type { Apps } from './apps.js';
import { RunContext } from './context.js';
import {
  callFault,
  CallKilledError,
  CallTimeoutError,
  CancelledError,
  DeadlineError,
  InputError,
  ShutdownError,
  SwarmFaultError,
  TestFailure,
} from './errors.js';
import { reconcileTiers, verdict, writeTierJUnit } from './test.js';
import { understandRecipe } from './understand.js';
import { WarmStore, type WarmRecord } from '../state/warm-store.js';
import { warmLease } from './warm-app.js';
import { forgetRunSecrets } from './run-secrets.js';

/**
 * The Run reconciler: moves one run through its phases
 *   Pending → Preparing → Deploying ⇄ Testing → TearingDown → Reporting → Done.
 * Level-triggered, and quick: every call reads the run's record and takes the next step for the
 * phase it finds. The attempt itself — preparing the workspace and climbing the tier ladder,
 * minutes of work — runs as an operation the reconciler starts, observes and, when the record
 * says so, stops: a cancel, or a deadline seen by comparing the recorded start with the limit
 * (Prow's plank with a pod). Teardown asks the app controller for each app to be gone and
 * looks again until they are. A restart (even after kill -9) continues from the record.
 */

export interface RunReconcilerDeps {
  store: Store;
  config: Config;
  paths: StatePaths;
  logger: Logger;
  instanceId: string;
  apps: Apps;
  trackerFor(run: string): ChildTracker;
  /** Looks at a run again (the Run controller's queue): an operation of it has finished. */
  enqueue(run: string): void;
  /** Told when a run leaves the active phases, so waiting runs can be admitted. */
  onCapacityFreed(): void;
  /** Told when a quick run hands its recipe's warm app back, to be returned to canonical. Absent:
   *  this controller keeps no warm apps (`cc-ci run`), so no quick run of it may hold one. */
  warmHandedBack?(recipe: string): void;
}

/** What an attempt ended with. */
type AttemptOutcome = { kind: 'outcome'; result: RunResult | null; reason: string; retry?: boolean } | { kind: 'shutdown' };

/** The attempt's handle: which tier it is climbing, to stop that tier alone at its deadline. */
interface Attempt {
  tier: { name: string; abort: AbortController } | null;
}

/** How long a quiet run waits between looks (a cancel or a deadline is seen within it). */
const LOOK_AGAIN_MS = 5_000;

export class RunReconciler {
  /** Each run's operation in flight: its attempt, or removing its ABRA_DIR. */
  private readonly ops: Operations;
  private readonly attempts = new Map<string, Attempt>();
  /** Aborted when the controller stops: every teardown and attempt in flight stops, recorded. */
  private readonly shutdownController = new AbortController();

  constructor(private readonly deps: RunReconcilerDeps) {
    this.ops = new Operations((name) => deps.enqueue(name));
  }

  /** The controller is stopping: stop every attempt and teardown in flight (the next start
   *  continues from the record). */
  async shutdown(reason: string): Promise<void> {
    const error = new ShutdownError(reason);
    for (const run of this.deps.store.listRuns({ phases: ['TearingDown'] })) {
      if (this.deps.store.appsOfRun(run.name).some((a) => this.deps.apps.releasing(a.domain))) {
        this.context(run, this.shutdownController.signal).log('warn', 'teardown paused by the controller stopping; it continues on the next start');
      }
    }
    this.shutdownController.abort(error);
    await this.ops.stopAll(error);
  }

  /** Stops a run's attempt (its abra child and process group) now. */
  abort(name: string, error: Error): boolean {
    return this.ops.abort(name, error);
  }

  isExecuting(name: string): boolean {
    return this.ops.running(name)?.label === 'attempt';
  }

  async reconcile(name: string): Promise<ReconcileResult> {
    const run = this.deps.store.getRun(name);
    if (!run) return {};
    switch (run.phase) {
      case 'Pending':
        return this.admit(run);
      case 'Preparing':
      case 'Deploying':
      case 'Testing':
        return this.attempt(run);
      case 'TearingDown':
        return this.teardown(run);
      case 'Reporting':
        return this.report(run);
      case 'Done':
        return {};
    }
  }

  private log(run: string, kind: 'phase' | 'info' | 'warn' | 'error' | 'result', text: string): void {
    this.deps.store.appendEvent(run, kind, text);
  }

  private admit(run: RunRecord): ReconcileResult {
    const { store, config } = this.deps;
    if (run.cancelRequested) {
      store.updateRun(run.name, { phase: 'Done', result: 'cancelled', reason: run.cancelReason ?? 'cancelled', finishedAt: Date.now() });
      this.log(run.name, 'result', `cancelled before it started: ${run.cancelReason ?? ''}`);
      return {};
    }
    const admitted = store.atomically(() => {
      const why = whyNotAdmitted(store, config) ?? this.warmHold(run);
      if (why) {
        if (run.waitingReason !== why) store.updateRun(run.name, { waitingReason: why });
        return false;
      }
      store.updateRun(run.name, {
        phase: 'Preparing',
        owner: this.deps.instanceId,
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
   * A quick run takes its recipe's warm app at admission, in the admitting transaction (one holder
   * at a time). Held by another run or being returned to canonical: it waits, saying for what, up
   * to `warm.leaseWaitSeconds`. No healthy warm app: it falls back to the cold ladder, recorded
   * now (docs/warm.md). Returns why it waits, or null.
   */
  private warmHold(run: RunRecord): string | null {
    const { store, config } = this.deps;
    if (run.lane !== 'quick' || run.laneNote) return null;
    if (!this.deps.warmHandedBack) {
      store.updateRun(run.name, {
        laneNote:
          'this controller (cc-ci run) keeps no warm apps, so nothing would return one to canonical; cc-ci serve does — so this run climbs the cold ladder on fresh apps',
      });
      return null;
    }
    const asked = acceptedSpec(run).spec.tiers ?? [...TIER_NAMES];
    if (!asked.some((t) => t !== 'install')) {
      store.updateRun(run.name, {
        laneNote:
          'the quick lane runs upgrade, backup, restore and custom on the warm app, and this run asks only for install — so it climbs the cold ladder on fresh apps',
      });
      return null;
    }
    const hold = new WarmStore(store).tryHold(run.recipe, run.name);
    if (hold.held) return null;
    const waitedS = (Date.now() - run.createdAt) / 1000;
    if (hold.wait && waitedS < config.warm.leaseWaitSeconds) return hold.why;
    const note = hold.wait
      ? `${hold.why.replace(/^waiting for /, 'no warm app within ' + config.warm.leaseWaitSeconds + 's — ')} — so this run climbs the cold ladder on fresh apps`
      : quickFallback(new WarmStore(store).get(run.recipe), run.recipe);
    store.updateRun(run.name, { laneNote: note });
    return null;
  }

  private context(run: RunRecord, signal: AbortSignal): RunContext {
    return new RunContext({
      store: this.deps.store,
      apps: this.deps.apps,
      config: this.deps.config,
      paths: this.deps.paths,
      logger: this.deps.logger,
      run,
      spec: acceptedSpec(run),
      signal,
      tracker: this.deps.trackerFor(run.name),
    });
  }

  /**
   * The attempt's phases: start the attempt if it is not running, stop it when the record says
   * so — a cancel, the run's or the tier's deadline passed — and, once it has ended, move the run
   * to teardown with its verdict.
   */
  private attempt(run: RunRecord): ReconcileResult {
    const { store, config } = this.deps;
    if (run.owner !== this.deps.instanceId) {
      // The attempt belonged to a controller that is gone: what it was doing is unknown, so
      // nothing of it is trusted. Tear down what the record knows of, then start again.
      return this.toTeardown(run, {
        result: null,
        reason: `interrupted: the controller stopped while the run was ${run.phase}`,
        retry: true,
      });
    }
    const running = this.ops.running(run.name);
    if (!running) {
      const ended = this.ops.take<AttemptOutcome>(run.name);
      if (ended) {
        this.attempts.delete(run.name);
        const outcome: AttemptOutcome = ended.ok
          ? ended.value
          : { kind: 'outcome', result: 'error', reason: `infrastructure: ${(ended.error as Error).message}` };
        if (outcome.kind === 'shutdown') return {};
        return this.toTeardown(store.getRun(run.name) ?? run, outcome);
      }
      if (run.cancelRequested) return this.toTeardown(run, { result: 'cancelled', reason: run.cancelReason ?? 'cancelled' });
      const attempt: Attempt = { tier: null };
      this.attempts.set(run.name, attempt);
      this.ops.start(run.name, 'attempt', (signal) => this.runAttempt(this.context(run, signal), attempt), this.shutdownController.signal);
      return { requeueAfterMs: this.untilDeadline(run) };
    }
    // Observed, not timed: the record's timestamps against the limits.
    const now = Date.now();
    const attempt = this.attempts.get(run.name);
    const tier = store.runningTier(run.name);
    const runLimit = (run.startedAt ?? now) + config.timeouts.runSeconds * 1000;
    if (run.cancelRequested) {
      this.ops.abort(run.name, new CancelledError(run.cancelReason ?? 'cancelled'));
    } else if (now >= runLimit) {
      const step = store.getRun(run.name)?.step;
      this.ops.abort(
        run.name,
        new DeadlineError(`run timed out in ${tier?.tier ?? 'preparation'} after ${config.timeouts.runSeconds}s (step: ${step ?? run.phase})`),
      );
    } else if (tier?.startedAt && attempt?.tier?.name === tier.tier) {
      const limitS = tierSeconds(config, tier.tier);
      if (now >= tier.startedAt + limitS * 1000) attempt.tier.abort.abort(new DeadlineError(`timed out in ${tier.tier} after ${limitS}s`));
    }
    return { requeueAfterMs: this.untilDeadline(run) };
  }

  /** How long until the run's or its tier's deadline, at most LOOK_AGAIN_MS. */
  private untilDeadline(run: RunRecord): number {
    const { store, config } = this.deps;
    const now = Date.now();
    const limits = [(run.startedAt ?? now) + config.timeouts.runSeconds * 1000];
    const tier = store.runningTier(run.name);
    if (tier?.startedAt) limits.push(tier.startedAt + tierSeconds(config, tier.tier) * 1000);
    return Math.max(0, Math.min(LOOK_AGAIN_MS, ...limits.map((t) => t - now + 10)));
  }

  /** The attempt (an operation): prepare, then climb the ladder. Always ends with an outcome. */
  private async runAttempt(ctx: RunContext, attempt: Attempt): Promise<AttemptOutcome> {
    const { store } = this.deps;
    ctx.onTier = (name, abort) => {
      attempt.tier = name && abort ? { name, abort } : null;
      if (name) this.deps.enqueue(ctx.name); // look at its deadline
    };
    try {
      const held = ctx.spec.spec.lane === 'quick' ? new WarmStore(store).heldBy(ctx.name) : undefined;
      if (held) {
        ctx.warmApp = await warmLease(store, this.deps.config, held.recipe, ctx.name);
        ctx.log(
          'info',
          `quick lane (lower confidence): on ${ctx.warmApp.domain}, the warm app at canonical ${held.canonicalCommit?.slice(0, 12) ?? '?'}, upgraded in place to the head; it is returned to canonical afterwards`,
        );
      } else if (ctx.spec.spec.lane === 'quick') {
        const note = store.getRun(ctx.name)?.laneNote ?? quickFallback(new WarmStore(store).get(ctx.spec.spec.recipe), ctx.spec.spec.recipe);
        // Recorded before the climb: the report and the run page say how the lane was served.
        store.updateRun(ctx.name, { laneNote: note });
        ctx.log('warn', `quick lane: ${note}`);
      }
      await prepareWorkspace(ctx);
      await understandRecipe(ctx);
      if (store.getTiers(ctx.name).length === 0) {
        const tiers = ctx.spec.spec.tiers ?? [...TIER_NAMES];
        store.planTiers(ctx.name, tiers);
        ctx.log('info', `tiers: ${tiers.join(' → ')}`);
      }
      if (ctx.warmApp && store.getTiers(ctx.name).some((t) => t.tier === 'install' && t.result === null)) {
        const why = 'quick lane: the warm app is installed already; install from scratch is what the cold lane tests';
        store.finishTier(ctx.name, 'install', 'n/a', why);
        ctx.log('tier', `install: n/a (${why})`);
        writeTierJUnit(ctx.dir, ctx.spec.spec.recipe, 'install', { skipped: `n/a: ${why}` }, 0);
      }
      await reconcileTiers(ctx);
      const v = verdict(store.getTiers(ctx.name));
      return { kind: 'outcome', result: v.result, reason: v.reason };
    } catch (e) {
      if (ctx.signal.reason instanceof ShutdownError) {
        // Leave the record as it is: the next controller sees an attempt it does not own.
        ctx.log('warn', `interrupted by shutdown in ${store.getRun(ctx.name)?.step ?? ctx.run.phase}`);
        return { kind: 'shutdown' };
      }
      const outcome = classify(e, ctx);
      if (outcome.failTier) {
        const tier = store.runningTier(ctx.name);
        if (tier) store.finishTier(ctx.name, tier.tier, 'fail', outcome.reason);
      }
      return { kind: 'outcome', ...outcome };
    }
  }

  private toTeardown(run: RunRecord, o: { result: RunResult | null; reason: string; retry?: boolean }): ReconcileResult {
    if (!o.retry) this.skipRemainingTiers(run, o.result, o.reason);
    this.deps.store.updateRun(run.name, {
      phase: 'TearingDown',
      result: o.result,
      reason: o.reason,
      retryPending: o.retry === true,
      teardownStartedAt: Date.now(),
    });
    const kind = o.result === 'passed' ? 'info' : o.retry ? 'warn' : 'error';
    this.log(run.name, kind, o.result ? `verdict: ${o.result} — ${o.reason}` : o.reason);
    // The verdict is out from here (the reporters read it at TearingDown): teardown no longer delays it.
    this.log(run.name, 'phase', o.retry ? 'TearingDown' : 'TearingDown: cleaning up; the verdict above is final');
    return { requeueAfterMs: 0 };
  }

  /** The tiers the run did not finish are `skipped`, each with its reason and its JUnit file. */
  private skipRemainingTiers(run: RunRecord, result: RunResult | null, reason: string): void {
    for (const t of this.deps.store.getTiers(run.name)) {
      if (t.result !== null) continue;
      const why = t.startedAt ? `interrupted: the run ended ${result ?? 'early'} while this tier ran` : `not run: the run ended ${result ?? 'early'}`;
      this.deps.store.finishTier(run.name, t.tier, 'skipped', why);
      writeTierJUnit(runDir(this.deps.paths, run.name), run.recipe, t.tier, { skipped: `${why}: ${reason}` }, 0);
    }
  }

  /**
   * Teardown: every app of the run gone (the app controller's work, asked once per app), then the
   * run's ABRA_DIR. A teardown that outlasts `teardownSeconds` ends the run `error`, naming what is
   * left; its apps stay on record for the janitor.
   */
  private teardown(run: RunRecord): ReconcileResult {
    const { store, config } = this.deps;
    const limitMs = config.timeouts.teardownSeconds * 1000;
    const startedAt = run.teardownStartedAt ?? Date.now();
    if (this.shutdownController.signal.aborted) return {};
    const ctx = this.context(run, this.shutdownController.signal);
    const left = store.appsOfRun(run.name).filter((a) => a.state !== 'released');
    if (left.length > 0) {
      for (const app of left) {
        if (!this.deps.apps.releasing(app.domain)) {
          this.deps.apps.release(ctx, { domain: app.domain, stack: app.stack, server: app.server, run: run.name }).catch(() => undefined);
        }
      }
      if (Date.now() - startedAt < limitMs) return { requeueAfterMs: Math.min(LOOK_AGAIN_MS, startedAt + limitMs - Date.now() + 10) };
      // Out of time: say exactly what is left and stop holding capacity; the janitor reaps it
      // once the run is done (its leases are still on record).
      const remaining = left.map((a) => `${a.domain}: ${this.deps.apps.remaining(a.domain) ?? 'not looked at yet'}`).join('; ');
      for (const app of left) this.deps.apps.abandon(app.domain, new DeadlineError(`teardown of ${app.domain} ran out of time`));
      return this.teardownTimedOut(run, ctx, remaining);
    }

    if (this.ops.running(run.name)) return {};
    const removed = this.ops.take(run.name);
    // The run's ABRA_DIR and its apps' own (deploy.ts leaseFor), never a directory outside the run's.
    const abraDirs = [ctx.abraDir, ...store.appsOfRun(run.name).map((a) => a.abraDir)].filter(
      (d, i, all) => all.indexOf(d) === i && d.startsWith(`${ctx.dir}/`),
    );
    if (removed && !removed.ok) ctx.log('warn', `could not remove ${abraDirs.join(', ')}: ${(removed.error as Error).message}; looking again`);
    const dirsLeft = abraDirs.filter((d) => existsSync(d));
    if (dirsLeft.length > 0) {
      if (Date.now() - startedAt >= limitMs) {
        return this.teardownTimedOut(run, ctx, dirsLeft.join(', '));
      }
      this.ops.start(run.name, 'remove ABRA_DIR', (signal) =>
        ctx.withSignal(signal).step(
          'remove ABRA_DIR',
          async () => {
            for (const d of dirsLeft) await rm(d, { recursive: true, force: true });
            // The run's masks go with its apps; this context keeps masking in memory for the
            // lines it still writes.
            forgetRunSecrets(ctx.dir);
          },
          dirsLeft.join(' '),
        ),
      );
      return {};
    }
    // A quick run's warm app is handed back, not torn down: recorded first, then the warm
    // reconciler returns it to canonical (redeploy, restore the snapshot, the health gate).
    const warm = new WarmStore(store).heldBy(run.name);
    if (warm && new WarmStore(store).endHold(warm.recipe, run.name)) {
      ctx.log('info', `warm-${warm.recipe} handed back: the warm reconciler returns it to canonical ${warm.canonicalCommit?.slice(0, 12) ?? ''}`);
      this.deps.warmHandedBack?.(warm.recipe);
    }
    ctx.log('info', 'teardown verified: nothing of the run is left on the swarm or on disk');
    this.deps.onCapacityFreed();

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
        reason: fresh.cancelRequested ? (fresh.cancelReason ?? 'cancelled') : `${fresh.reason} (no attempts left: ${fresh.attempt} of ${config.maxAttempts})`,
        retryPending: false,
      });
    }
    store.updateRun(run.name, { phase: 'Reporting' });
    return { requeueAfterMs: 0 };
  }

  /**
   * Teardown ran out of time: the run stops holding capacity and the janitor reaps what is left.
   * A verdict reported when the last tier ended stands — leftovers are the server's problem, not
   * the recipe's — and the problem is recorded beside it (run page, PR comment, /metrics) and
   * told to the operator. A run that was to be retried had no verdict yet: it ends `error`.
   */
  private teardownTimedOut(run: RunRecord, ctx: RunContext, left: string): ReconcileResult {
    const { store, config } = this.deps;
    const what = `timed out in teardown after ${config.timeouts.teardownSeconds}s: could not remove ${left}`;
    const fresh = store.getRun(run.name) ?? run;
    if (fresh.retryPending || fresh.result === null) {
      store.updateRun(run.name, {
        phase: 'Reporting',
        result: 'error',
        reason: `${fresh.reason ?? ''}${fresh.reason ? '; ' : ''}${what}`,
        retryPending: false,
        teardownProblem: what,
      });
    } else {
      store.updateRun(run.name, { phase: 'Reporting', teardownProblem: what });
    }
    ctx.log(
      'error',
      `${what} — a problem of this server, not of the recipe${fresh.retryPending ? '' : `; the verdict (${fresh.result ?? 'error'}) stands`}; the janitor reaps what is left`,
    );
    this.deps.logger.error(
      { run: run.name, left, verdict: fresh.retryPending ? null : fresh.result },
      'teardown failed after the verdict: apps or volumes may be left on the swarm (docs/runbook.md, Leaked apps)',
    );
    this.deps.onCapacityFreed();
    return { requeueAfterMs: 0 };
  }

  /** Reporting: the run's result is written down and the run is Done. Reporters (the forge's)
   *  are controllers of their own, driven by the record: the run never waits for them. */

  private report(run: RunRecord): ReconcileResult {
    const { store, paths } = this.deps;
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
  /** From admission to the verdict: what a maintainer waits for (teardown runs after it). */
  verdictMs: number | null;
  /** A teardown that failed after the verdict (the verdict stands). */
  teardownProblem: string | null;
  customization: unknown;
  understanding: unknown;
}

export function runSummary(
  run: RunRecord,
  tiers: { tier: string; result: string | null; reason: string | null; durationMs: number | null }[],
  domains: string[] = [],
): RunSummary {
  const spec = acceptedSpec(run);
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
    tiers: Object.fromEntries(tiers.map((t) => [t.tier, { result: t.result ?? 'skipped', reason: t.reason, durationMs: t.durationMs }])),
    domains,
    durationMs: run.finishedAt && run.startedAt ? run.finishedAt - run.startedAt : null,
    verdictMs: run.teardownStartedAt && run.startedAt ? run.teardownStartedAt - run.startedAt : null,
    teardownProblem: run.teardownProblem,
    customization: run.customization,
    understanding: run.understanding,
  };
}

/**
 * A quick run borrows its recipe's healthy warm app; with none it falls back to the cold ladder on
 * fresh apps at once (docs/warm.md): waiting for a warm app that may never become healthy would be
 * a slow answer, and the cold answer is the more confident one.
 */
export function quickFallback(warm: WarmRecord | undefined, recipe: string): string {
  const why = warm ? `warm-${recipe} is ${warm.health}${warm.healthReason ? ` (${warm.healthReason})` : ''}` : `${recipe} has no Warm object`;
  return `no healthy warm app — ${why} — so this run climbs the cold ladder on fresh apps`;
}
