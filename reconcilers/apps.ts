import type { Config } from '../controller/model/config.js';
import type { ReconcileResult } from '../controller/engine/controller.js';
import { Operations } from '../controller/engine/ops.js';
import { describeLeftovers } from '../controller/clients/docker.js';
import type { Store } from '../state/store.js';
import type { AppRecord } from '../state/types.js';
import { leaseFor, newDeployMemo, nextDeployStep, type AppStep, type DeployMemo, type DesiredApp, type ReadyApp } from './deploy.js';
import { type RunContext } from './context.js';
import { ShutdownError } from './errors.js';
import { newTeardownMemo, nextTeardownStep, type AppRef, type TeardownMemo, type TeardownStep, type TeardownTools } from './teardown.js';

/**
 * The app controller: one key per app (its domain), reconciled toward what its owner wants of
 * it — deployed at a commit and serving (deploy.ts), or gone (teardown.ts). An attempt asks
 * (`ensure`, `release`) and awaits the answer; the controller takes one step per pass, running
 * each external call as an operation and returning at once, and a pass that finds "not yet"
 * asks to be looked at again: only the work queue waits. An app whose owner's attempt is
 * cancelled or times out stops where it is; a teardown asked of it later finishes the job.
 */

type Want =
  | { kind: 'ready'; want: DesiredApp; ctx: RunContext; memo: DeployMemo }
  | { kind: 'absent'; tools: TeardownTools; memo: TeardownMemo; orphan: boolean }
  | { kind: 'idle' };

interface Waiter {
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

interface Entry {
  ref: AppRef;
  /** The run that owns the app, told when the app is gone; null for an orphan the janitor reaps. */
  run: string | null;
  want: Want;
  /** The lease the app is deployed under when it is not a run's own (a warm app: state/warm-store.ts). */
  lease: AppRecord | null;
  waiter: Waiter | null;
  /** Whether the operation in flight only looked (its outcome keeps the last look). */
  observing: boolean;
  /** The want the operation in flight serves: an outcome of an abandoned want is not the new one's. */
  opFor: Want | null;
}

export interface AppsDeps {
  store: Store;
  config: Config;
  /** Looks at an app again (its controller's queue). */
  enqueue(domain: string): void;
  /** Told when an app of a run is gone, or failed to go. */
  released(run: string): void;
}

export interface AppsApi {
  ensure(ctx: RunContext, want: DesiredApp, lease?: AppRecord): Promise<ReadyApp>;
  release(tools: TeardownTools, app: AppRef & { run: string | null }): Promise<void>;
}

export class Apps implements AppsApi {
  private readonly entries = new Map<string, Entry>();
  readonly ops: Operations;

  constructor(private readonly deps: AppsDeps) {
    this.ops = new Operations((domain) => deps.enqueue(domain));
  }

  /** The app of `want.purpose` in the attempt of `ctx`, leased if it has none, deployed at
   *  `want.commit`, converged and serving. Rejects with the step's failure. `fixed`: the app is
   *  not the run's to lease — a warm app, deployed in place under the lease its Warm object keeps. */
  async ensure(ctx: RunContext, want: DesiredApp, fixed?: AppRecord): Promise<ReadyApp> {
    const lease = fixed ?? (await leaseFor(ctx, want.purpose));
    const entry = this.entry(lease, fixed ? null : ctx.name);
    entry.lease = fixed ?? null;
    // A run's app deploys from its own checkout (deploy.ts leaseFor); a warm app from the holder's.
    const appCtx = fixed ? ctx : ctx.forAbraDir(lease.abraDir);
    return this.ask(
      entry,
      { kind: 'ready', want, ctx: appCtx, memo: entry.want.kind === 'ready' ? entry.want.memo : newDeployMemo() },
      ctx.signal,
    ) as Promise<ReadyApp>;
  }

  /** Nothing of the app left. Resolves when that is so; a pass that leaves something starts over. */
  async release(tools: TeardownTools, app: AppRef & { run: string | null }): Promise<void> {
    const entry = this.entry(app, app.run);
    if (entry.want.kind === 'absent') {
      await this.waitFor(entry);
      return;
    }
    if (app.run) this.deps.store.setAppState(app.domain, 'tearing-down');
    await this.ask(entry, { kind: 'absent', tools, memo: newTeardownMemo(), orphan: app.run === null }, null);
  }

  /** Gives up on an app for now: its operation is stopped and whoever waits hears `reason`.
   *  (A teardown out of time: the janitor reaps what is left.) */
  abandon(domain: string, reason: Error): void {
    const e = this.entries.get(domain);
    if (!e) return;
    this.ops.abort(domain, reason);
    e.want = { kind: 'idle' };
    this.settle(e, { error: reason });
    this.entries.delete(domain);
  }

  /** Being torn down, or done: a run's teardown asks once per app. */
  releasing(domain: string): boolean {
    return this.entries.get(domain)?.want.kind === 'absent';
  }

  /** What the teardown of an app could not remove yet: the last pass's account, else the last look. */
  remaining(domain: string): string | null {
    const w = this.entries.get(domain)?.want;
    if (w?.kind !== 'absent') return null;
    if (w.memo.remaining) return w.memo.remaining;
    const seen = w.memo.seen ?? w.memo.lastSeen;
    return seen ? describeLeftovers(seen.left) + (seen.envExists ? '; its .env' : '') : null;
  }

  private entry(app: AppRef, run: string | null): Entry {
    let e = this.entries.get(app.domain);
    if (!e) {
      e = {
        ref: { domain: app.domain, stack: app.stack, server: app.server },
        run,
        want: { kind: 'idle' },
        lease: null,
        waiter: null,
        observing: false,
        opFor: null,
      };
      this.entries.set(app.domain, e);
    }
    return e;
  }

  private ask(e: Entry, want: Want, signal: AbortSignal | null): Promise<unknown> {
    // A new want replaces the old: its waiter hears it was overtaken, its operation goes on
    // (every step is safe to finish) and the next pass works for the new want.
    e.waiter?.reject(new Error(`superseded: ${e.ref.domain} is now wanted ${want.kind}`));
    e.want = want;
    const p = this.waitFor(e);
    if (signal) {
      const onAbort = () => {
        if (e.want !== want) return;
        const reason: unknown = signal.reason;
        e.want = { kind: 'idle' };
        this.ops.abort(e.ref.domain, reason instanceof Error ? reason : new Error(String(reason)));
        this.settle(e, { error: reason });
      };
      if (signal.aborted) onAbort();
      else {
        signal.addEventListener('abort', onAbort, { once: true });
        // A long-lived signal (a warm app's upkeep, a run's attempt) asks many times: let go of each.
        const forget = () => signal.removeEventListener('abort', onAbort);
        p.then(forget, forget);
      }
    }
    this.deps.enqueue(e.ref.domain);
    return p;
  }

  private waitFor(e: Entry): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const prev = e.waiter;
      e.waiter = {
        resolve: (v) => {
          prev?.resolve(v);
          resolve(v);
        },
        reject: (err) => {
          prev?.reject(err);
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      };
    });
  }

  private settle(e: Entry, o: { value?: unknown; error?: unknown }): void {
    const w = e.waiter;
    e.waiter = null;
    if (!w) return;
    if ('error' in o) w.reject(o.error);
    else w.resolve(o.value);
  }

  /** One pass for one app. Quick: it reads what it holds and starts at most one operation. */
  async reconcile(domain: string): Promise<ReconcileResult> {
    const e = this.entries.get(domain);
    if (!e) return {};
    if (this.ops.running(domain)) return {};
    const done = this.ops.take(domain);
    const want = e.want;
    if (done) {
      const stale = e.opFor !== want;
      e.opFor = null;
      if (!done.ok && !stale) return this.failed(e, done.error);
      if ((stale || !e.observing) && want.kind !== 'idle') want.memo.seen = null;
    }
    if (want.kind === 'idle') return {};
    if (want.kind === 'ready') return this.deployStep(e, want, nextDeployStep(want.ctx, want.want, this.lease(e), want.memo));
    return this.teardownStep(e, want, nextTeardownStep(this.deps.config, e.ref, want.memo));
  }

  private lease(e: Entry): AppRecord {
    const lease = e.lease ?? this.deps.store.getApp(e.ref.domain);
    if (!lease) throw new Error(`no lease on record for ${e.ref.domain}`);
    return lease;
  }

  private deployStep(e: Entry, want: Extract<Want, { kind: 'ready' }>, step: AppStep): ReconcileResult {
    switch (step.kind) {
      case 'op':
        e.observing = step.observes === true;
        e.opFor = want;
        this.ops.start(e.ref.domain, step.label, (signal) => step.run(want.ctx.withSignal(signal)), want.ctx.signal);
        return {};
      case 'wait':
        want.memo.seen = null;
        return { requeueAfterMs: step.ms };
      case 'ready':
        e.want = { kind: 'idle' };
        this.settle(e, { value: step.app });
        return {};
      case 'fail':
        return this.failed(e, step.error);
    }
  }

  private teardownStep(e: Entry, want: Extract<Want, { kind: 'absent' }>, step: TeardownStep): ReconcileResult {
    switch (step.kind) {
      case 'op':
        e.observing = step.observes === true;
        e.opFor = want;
        this.ops.start(e.ref.domain, step.label, (signal) => step.run(want.tools.withSignal(signal)));
        return {};
      case 'wait':
        want.memo.seen = null;
        if (want.memo.remaining && e.run) this.deps.released(e.run);
        return { requeueAfterMs: step.ms };
      case 'gone':
        if (e.run && this.deps.store.getApp(e.ref.domain)) {
          this.deps.store.setAppState(e.ref.domain, 'released');
          want.tools.log('info', `${e.ref.domain}: nothing left (services, containers, volumes, secrets, configs, networks: 0; .env gone)`);
        }
        this.entries.delete(e.ref.domain);
        this.settle(e, { value: undefined });
        if (e.run) this.deps.released(e.run);
        return {};
    }
  }

  /** A step failed: the attempt waiting for the app hears why. A teardown goes on trying,
   *  unless the controller is stopping (the next start continues it). */
  private failed(e: Entry, error: unknown): ReconcileResult {
    const want = e.want;
    if (want.kind === 'absent') {
      const msg = error instanceof Error ? error.message : String(error);
      want.memo.remaining = `a teardown step failed: ${msg}`;
      if (error instanceof ShutdownError) return {};
      want.tools.log('warn', `teardown of ${e.ref.domain} incomplete, looking again: ${msg}`);
      Object.assign(want.memo, newTeardownMemo(), { remaining: want.memo.remaining });
      if (e.run) this.deps.released(e.run);
      return { requeueAfterMs: 5_000 };
    }
    e.want = { kind: 'idle' };
    this.settle(e, { error });
    return {};
  }

  /** The controller stops: every operation is stopped and recorded as such. */
  async stop(reason: Error): Promise<void> {
    await this.ops.stopAll(reason);
  }
}
