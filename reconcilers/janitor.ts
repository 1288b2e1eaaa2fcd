import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Abra } from '../controller/clients/abra.js';
import type { Config } from '../controller/model/config.js';
import { Docker, dockerFromConfig } from '../controller/clients/docker.js';
import { instanceAlive } from '../state/instance.js';
import type { Logger } from '../controller/model/log.js';
import { escapeRegExp, stackName, TEST_APP_LABEL, testAppPattern } from '../controller/model/naming.js';
import { runAbraDir, type StatePaths, abraServerDir } from '../controller/model/paths.js';
import type { ChildTracker } from '../controller/clients/process.js';
import type { Store } from '../state/store.js';
import type { AppRecord, EventKind } from '../state/types.js';
import { Controller, type ReconcileResult } from '../controller/engine/controller.js';
import { RuntimeMetrics } from '../controller/engine/metrics.js';
import { Operations } from '../controller/engine/ops.js';
import type { Runnable } from '../controller/engine/runnable.js';
import { Apps, type AppsApi } from './apps.js';
import type { TeardownTools } from './teardown.js';

/**
 * The janitor (Prow's sinker, Boskos' reaper). Desired: no test app on the swarm that no live
 * run owns. Observed: the swarm (stacks, volumes, secrets, configs by cc-ci's strict domain
 * pattern), the app .env files, and the active-run registry (apps → run → owner instance,
 * pid and heartbeat). Owner alive → never touched; owner dead, or the run finished → reaped now;
 * no owner on record → reaped once older than `unknownOwnerAgeSeconds`. Candidates are looked at
 * again after a grace period before anything is deleted, and only apps whose domain matches
 * cc-ci's pattern are ever candidates: warm and infrastructure apps cannot match it.
 */

export type Verdict = { action: 'keep'; why: string } | { action: 'reap'; why: string } | { action: 'wait'; why: string };

export interface JanitorFinding {
  domain: string;
  stack: string;
  verdict: Verdict;
  /** After the grace period: what was done. */
  outcome?: 'reaped' | 'dry-run' | 'changed' | 'failed';
  detail?: string;
}

export interface JanitorDeps {
  store: Store;
  config: Config;
  paths: StatePaths;
  logger: Logger;
  /** Records the janitor's abra and docker children, as a run's are (crash recovery). */
  tracker?: ChildTracker;
}

export interface JanitorOptions {
  dryRun?: boolean;
  signal?: AbortSignal;
  /** Overrides config janitor.graceSeconds (tests, the CLI). */
  graceMs?: number;
}

interface Candidate {
  domain: string;
  stack: string;
  createdAt: number | null;
}

/** Every test app that exists anywhere — swarm objects or an .env — by cc-ci's domain pattern. */
async function observe(docker: Docker, config: Config): Promise<Candidate[]> {
  const pattern = testAppPattern(config.domain.base);
  const found = new Map<string, Candidate>();
  const stackOf = new Map<string, string>();
  const note = (domain: string, createdAt: number | null) => {
    const c = found.get(domain) ?? { domain, stack: stackName(domain), createdAt: null };
    if (createdAt !== null && (c.createdAt === null || createdAt < c.createdAt)) c.createdAt = createdAt;
    found.set(domain, c);
  };
  const envDir = abraServerDir(config);
  if (existsSync(envDir)) {
    for (const f of readdirSync(envDir)) {
      const domain = f.replace(/\.env$/, '');
      if (f.endsWith('.env') && pattern.test(domain)) {
        note(domain, statSync(join(envDir, f)).mtimeMs);
        stackOf.set(stackName(domain), domain);
      }
    }
  }
  // Swarm objects are named `<stack>_…`; the stack is the domain with dots as underscores.
  const basePart = config.domain.base.replace(/\./g, '_');
  const stackPattern = new RegExp(`^(${TEST_APP_LABEL})_${escapeRegExp(basePart)}_`);
  const objects = await docker.namedObjects();
  for (const o of objects) {
    const m = stackPattern.exec(o.name);
    if (!m?.[1]) continue;
    const domain = `${m[1]}.${config.domain.base}`;
    if (pattern.test(domain)) note(domain, o.createdAt);
  }
  return [...found.values()];
}

function judge(store: Store, config: Config, c: Candidate, now: number): Verdict {
  const lease: AppRecord | undefined = store.getApp(c.domain);
  if (lease) {
    const run = store.getRun(lease.run);
    if (!run) return { action: 'reap', why: `its run ${lease.run} no longer exists` };
    if (run.phase === 'Done') return { action: 'reap', why: `its run ${run.name} is done (${run.result}) but the app was left behind` };
    if (lease.attempt < run.attempt)
      return { action: 'reap', why: `it belongs to attempt ${lease.attempt} of ${run.name}, which is on attempt ${run.attempt}` };
    const owner = run.owner ? store.listLiveInstances().find((i) => i.id === run.owner) : undefined;
    if (owner && instanceAlive(owner)) return { action: 'keep', why: `owned by ${run.name}, run by live controller pid ${owner.pid}` };
    // The run's own recovery tears it down when its controller comes back; the janitor does not
    // race it while a controller serves this state directory.
    if (store.listLiveInstances().some(instanceAlive)) {
      return { action: 'keep', why: `owned by ${run.name}, whose controller died; the serving controller recovers it` };
    }
    return { action: 'reap', why: `owned by ${run.name}, whose controller is gone` };
  }
  const ageS = c.createdAt === null ? null : (now - c.createdAt) / 1000;
  const limit = config.janitor.unknownOwnerAgeSeconds;
  if (ageS !== null && ageS >= limit)
    return { action: 'reap', why: `no run owns it and it is ${Math.round(ageS / 60)} min old (limit ${Math.round(limit / 60)} min)` };
  return { action: 'wait', why: `no run owns it; reaped once ${Math.round(limit / 60)} min old${ageS === null ? '' : ` (now ${Math.round(ageS / 60)} min)`}` };
}

function tools(deps: JanitorDeps, signal?: AbortSignal): TeardownTools {
  const log = deps.logger.child({ reconciler: 'janitor' });
  return {
    abra: Abra.fromConfig(deps.config, { signal, tracker: deps.tracker, onLine: (stream, line) => log.info({ stream }, line) }),
    docker: dockerFromConfig(deps.config, { signal, tracker: deps.tracker }),
    config: deps.config,
    log: (kind: EventKind, text: string) => (kind === 'warn' || kind === 'error' ? log.warn(text) : log.info(text)),
    step: async (name, fn, detail) => {
      log.info({ detail }, name);
      return fn();
    },
    withSignal: (s) => tools(deps, s),
  };
}

/**
 * One janitor pass, as a reconcile over one key: look, and when something is to be reaped, look
 * again after the grace period (a requeue, not a sleep) — a lease recorded in between, a
 * controller that came back, must win over a stale first look — then ask the app controller for
 * each orphan to be gone, and report what happened.
 */
export class JanitorPass {
  private stage: 'first' | 'grace' | 'second' | 'reaping' | 'done' = 'first';
  private findings: JanitorFinding[] = [];
  private firstLookAt = 0;
  private reaping = 0;
  private readonly ops: Operations;
  private readonly t: TeardownTools;
  readonly finished: Promise<JanitorFinding[]>;
  private finish!: (f: JanitorFinding[]) => void;
  private fail!: (e: unknown) => void;

  constructor(
    private readonly deps: JanitorDeps & { apps: AppsApi },
    private readonly options: JanitorOptions & { enqueue(): void },
  ) {
    this.ops = new Operations(() => options.enqueue());
    this.t = tools(deps, options.signal);
    this.finished = new Promise((resolve, reject) => {
      this.finish = resolve;
      this.fail = reject;
    });
  }

  async reconcile(): Promise<ReconcileResult> {
    if (this.ops.running('pass')) return {};
    const done = this.ops.take<Candidate[]>('pass');
    if (done && !done.ok) {
      this.stage = 'done';
      this.fail(done.error);
      return {};
    }
    const { deps, options: o } = this;
    switch (this.stage) {
      case 'first':
        if (!done) return this.look();
        this.findings = done.value.map((c) => ({ domain: c.domain, stack: c.stack, verdict: judge(deps.store, deps.config, c, Date.now()) }));
        if (!this.findings.some((f) => f.verdict.action === 'reap')) return this.end();
        this.firstLookAt = Date.now();
        this.stage = 'grace';
        deps.logger.info(
          { candidates: this.toReap().map((f) => f.domain), graceMs: this.graceMs() },
          'janitor: looking again after the grace period before deleting',
        );
        return { requeueAfterMs: this.graceMs() };
      case 'grace':
        // Stopping (the controller shuts down): delete nothing on a first look alone.
        if (o.signal?.aborted) return this.end(false);
        if (Date.now() < this.firstLookAt + this.graceMs()) return { requeueAfterMs: this.firstLookAt + this.graceMs() - Date.now() };
        this.stage = 'second';
        return this.look();
      case 'second': {
        if (!done) return this.look();
        const again = new Map(done.value.map((c) => [c.domain, c]));
        this.stage = 'reaping';
        for (const f of this.toReap()) {
          const c = again.get(f.domain);
          const now = c ? judge(deps.store, deps.config, c, Date.now()) : null;
          if (!c || now?.action !== 'reap') {
            f.outcome = 'changed';
            f.detail = c ? `on a second look: ${now?.why}` : 'gone on a second look';
            continue;
          }
          if (o.dryRun) {
            f.outcome = 'dry-run';
            continue;
          }
          deps.logger.warn({ domain: f.domain, why: f.verdict.why }, 'janitor reaping an orphaned test app');
          this.reaping++;
          deps.apps
            .release(this.t, { domain: f.domain, stack: f.stack, server: deps.config.abra.server, run: null })
            .then(
              () => {
                f.outcome = 'reaped';
                const lease = deps.store.getApp(f.domain);
                if (lease) {
                  deps.store.setAppState(f.domain, 'released');
                  deps.store.appendEvent(lease.run, 'warn', `janitor reaped ${f.domain}: ${f.verdict.why}`);
                }
              },
              (e: unknown) => {
                f.outcome = 'failed';
                f.detail = `could not remove: ${(e as Error).message}`;
              },
            )
            .finally(() => {
              this.reaping--;
              o.enqueue();
            });
        }
        return this.reaping === 0 ? this.end() : {};
      }
      case 'reaping':
        return this.reaping === 0 ? this.end() : {};
      case 'done':
        return {};
    }
  }

  private toReap(): JanitorFinding[] {
    return this.findings.filter((f) => f.verdict.action === 'reap');
  }

  private graceMs(): number {
    return this.options.graceMs ?? this.deps.config.janitor.graceSeconds * 1000;
  }

  private look(): ReconcileResult {
    this.ops.start('pass', 'look', () => observe(this.t.docker, this.deps.config), this.options.signal);
    return {};
  }

  private end(sweep = true): ReconcileResult {
    this.stage = 'done';
    if (sweep && !this.options.dryRun) sweepRunDirs(this.deps);
    this.finish(this.findings);
    return {};
  }
}

/**
 * The janitor of `cc-ci serve` (Prow's sinker, one more runnable): a pass at the start — what a
 * crash or an outage left behind should not wait an interval — and one every
 * `janitor.intervalSeconds`, never two at once.
 */
export class Janitor implements Runnable {
  readonly name = 'janitor';
  private pass: JanitorPass | null = null;
  private readonly controller: Controller;

  constructor(private readonly deps: JanitorDeps & { apps: AppsApi; metrics: RuntimeMetrics }) {
    this.controller = new Controller({
      name: 'janitor',
      concurrency: 1,
      logger: deps.logger,
      metrics: deps.metrics,
      reconcile: async () => this.reconcile(),
    });
  }

  private signal: AbortSignal | null = null;

  private async reconcile(): Promise<ReconcileResult> {
    if (!this.signal || this.signal.aborted) return {};
    if (!this.pass) {
      const pass = new JanitorPass(this.deps, { signal: this.signal, enqueue: () => this.controller.enqueue('pass') });
      this.pass = pass;
      pass.finished
        .then(
          (findings) => {
            const reaped = findings.filter((f) => f.outcome === 'reaped');
            if (reaped.length) this.deps.logger.warn({ reaped: reaped.map((f) => `${f.domain}: ${f.verdict.why}`) }, 'janitor reaped orphaned test apps');
            this.deps.logger.info({ testApps: findings.length, reaped: reaped.length }, 'janitor pass done');
          },
          (err: unknown) => this.deps.logger.error({ error: (err as Error).message }, 'janitor pass failed'),
        )
        .finally(() => {
          this.pass = null;
          this.controller.enqueueAfter('pass', this.deps.config.janitor.intervalSeconds * 1000);
        });
    }
    return this.pass.reconcile();
  }

  async start(signal: AbortSignal, ready: () => void): Promise<void> {
    this.signal = signal;
    this.controller.enqueue('pass');
    await this.controller.start(signal, ready);
  }
}

/** One janitor pass now (`cc-ci janitor`): its own app controller, driven until the pass ends. */
export async function janitorOnce(deps: JanitorDeps, o: JanitorOptions = {}): Promise<JanitorFinding[]> {
  const metrics = new RuntimeMetrics();
  const stop = new AbortController();
  let appsController: Controller | null = null;
  const apps = new Apps({ store: deps.store, config: deps.config, enqueue: (d) => appsController?.enqueue(d), released: () => undefined });
  appsController = new Controller({ name: 'app', concurrency: 4, logger: deps.logger, metrics, reconcile: (d) => apps.reconcile(d) });
  let passController: Controller | null = null;
  const pass = new JanitorPass({ ...deps, apps }, { ...o, signal: o.signal ?? stop.signal, enqueue: () => passController?.enqueue('pass') });
  passController = new Controller({ name: 'janitor', concurrency: 1, logger: deps.logger, metrics, reconcile: () => pass.reconcile() });
  const running = [appsController.start(stop.signal, () => undefined), passController.start(stop.signal, () => undefined)];
  passController.enqueue('pass');
  // The queues' timers do not keep a process alive (a stopped controller must be free to exit):
  // this one command does, until its pass is over.
  const keepAlive = setInterval(() => undefined, 60_000);
  try {
    return await pass.finished;
  } finally {
    clearInterval(keepAlive);
    stop.abort(new Error('janitor pass done'));
    await apps.stop(new Error('janitor pass done'));
    await Promise.all(running);
  }
}

/**
 * A finished run keeps its log and evidence, never its ABRA_DIRs (whole recipe clones: its own and
 * its apps'). Teardown removes them; only a teardown that ran out of time leaves them behind, for
 * the janitor once the apps are reaped.
 */
function sweepRunDirs(deps: JanitorDeps): void {
  for (const run of deps.store.runsWithTeardownProblems()) {
    const apps = deps.store.appsOfRun(run.name);
    if (!apps.every((a) => a.state === 'released')) continue;
    const own = runAbraDir(deps.paths, run.name);
    for (const dir of new Set([own, ...apps.map((a) => a.abraDir).filter((d) => d.startsWith(`${own}-`))])) {
      if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
    }
  }
}
