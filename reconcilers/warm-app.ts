import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { probe } from '../controller/clients/http-probe.js';
import type { ChildTracker } from '../controller/clients/process.js';
import { pickFreePort } from '../controller/clients/ports.js';
import type { Config } from '../controller/model/config.js';
import type { Logger } from '../controller/model/log.js';
import type { Redactor } from '../controller/model/redact.js';
import { stackName } from '../controller/model/naming.js';
import { warmAppDir, type StatePaths } from '../controller/model/paths.js';
import { runSpecSchema, type RunSpec } from '../controller/model/spec.js';
import type { WarmSpec } from '../controller/model/warm.js';
import type { Store } from '../state/store.js';
import type { AppRecord, EventKind, Phase, RunRecord } from '../state/types.js';
import { WarmStore, type WarmGate, type WarmPatch, type WarmRecord, type WarmSnapshot } from '../state/warm-store.js';
import { appFacts } from './app-env.js';
import type { AppsApi } from './apps.js';
import { RunContext, type RunContextOptions } from './context.js';
import { WARM_PURPOSE, type ReadyApp } from './deploy.js';
import { callFault } from './errors.js';
import { backupStep } from './tiers/backup.js';
import { checkMarker, newMarker, seedMarker } from './tiers/data-marker.js';
import { prepareWorkspace } from './workspace.js';
import { converged } from './app-state.js';

/**
 * A recipe's warm canonical app (docs/warm.md): one long-lived deployment at `warm-<recipe>.<base>`,
 * at the version last promoted and gated, with a data marker written once and a last-known-good
 * snapshot of its data. Its upkeep — create, upgrade to a new promote, repair, return to
 * canonical after a quick run, remove — is one tracked unit the warm reconciler starts and
 * observes; it deploys through the app controller with the same deploy step machine a run uses,
 * under a lease the Warm object keeps (the janitor never sees it: its domain cannot look like a
 * test app's). Every upkeep ends with the health gate: converged, serving, every service there,
 * and the data marker present.
 */

/** The warm app's domain: fixed and recognisable. */
export function warmDomain(recipe: string, base: string): string {
  return `warm-${recipe}.${base}`;
}

/** The name the warm app's upkeep works under: its marker in the app's env, its hooks' CCCI_RUN. */
export function upkeepName(recipe: string): string {
  return `warm-${recipe}`.slice(0, 63).replace(/-+$/, '');
}

/** What one upkeep is to do. */
export type UpkeepPlan =
  | { kind: 'create'; commit: string }
  | { kind: 'upgrade'; commit: string; from: string }
  | { kind: 'repair'; commit: string; why: string }
  | { kind: 'return'; commit: string; after: string };

export function describePlan(p: UpkeepPlan): string {
  const c = p.commit.slice(0, 12);
  switch (p.kind) {
    case 'create':
      return `creating at ${c}`;
    case 'upgrade':
      return `upgrading ${p.from.slice(0, 12)} → ${c}`;
    case 'repair':
      return `repairing at ${c}: ${p.why}`;
    case 'return':
      return `returning to canonical ${c} after ${p.after}`;
  }
}

/** What an upkeep ended with: the status to record (health and why, canonical version, …). */
export type UpkeepOutcome = WarmPatch & { health: 'healthy' | 'unhealthy'; healthReason: string };

export interface WarmAppDeps {
  store: Store;
  config: Config;
  paths: StatePaths;
  logger: Logger;
  tracker: ChildTracker;
  apps: AppsApi;
}

/**
 * The context the upkeep works in: a RunContext (the deploy step machine, the marker and backup
 * helpers take one) whose journal is the warm app's own log file, not a run's events: the warm app
 * is no run. Steps are written to that log before they are taken. Its ABRA_DIR lasts as long as
 * the app: where abra keeps its backup snapshots is not known for certain (backup-bot-two's
 * repository on the server, or beside the client's recipes — docs/abra-double.md), and either way
 * the snapshot the last upkeep took is there for the next.
 */
export class WarmContext extends RunContext {
  override readonly keepsAbraDir = true;

  constructor(
    private readonly recipe: string,
    options: RunContextOptions,
    redactor?: Redactor,
  ) {
    super(options, redactor);
  }

  protected override derive(options: RunContextOptions): RunContext {
    return new WarmContext(this.recipe, options, this.redactor);
  }

  /** The upkeep is no run: its lines stay in its own journal (log.txt, RunContext writes it), never
   *  the runs' log table; its warnings go to the operator's log. */
  protected override record(lines: readonly { kind: EventKind; text: string }[]): void {
    for (const line of lines) if (line.kind === 'warn' || line.kind === 'error') this.logger.warn({ recipe: this.recipe }, `warm-${this.recipe}: ${line.text}`);
  }

  override setPhase(_phase: Phase, note?: string): void {
    if (note) this.log('phase', note);
  }

  override where(): string {
    return 'warm upkeep';
  }

  override async step<T>(name: string, fn: () => Promise<T>, detail?: string): Promise<T> {
    this.throwIfCancelled();
    this.log('step', detail ? `${name}: ${detail}` : name);
    try {
      return await fn();
    } catch (e) {
      if (this.signal.aborted) this.throwIfCancelled();
      throw callFault(e, name, this.where()) ?? e;
    }
  }
}

/** The warm app's log: the last `lines` lines of its upkeep. */
export function warmLogTail(paths: StatePaths, recipe: string, lines = 20): string[] {
  try {
    return readFileSync(join(warmAppDir(paths, recipe), 'log.txt'), 'utf8')
      .trimEnd()
      .split('\n')
      .slice(-lines);
  } catch {
    return [];
  }
}

/** A run record that stands for the upkeep where the deploy machinery asks for one: never stored. */
function upkeepRecord(spec: RunSpec): RunRecord {
  const now = Date.now();
  return {
    name: spec.metadata.name,
    specJson: JSON.stringify(spec),
    specHash: '',
    specPath: null,
    recipe: spec.spec.recipe,
    lane: 'cold',
    phase: 'Deploying',
    result: null,
    reason: null,
    step: null,
    waitingReason: null,
    commitSha: spec.spec.source.ref,
    attempt: 1,
    retries: [],
    retryPending: false,
    teardownStartedAt: null,
    cancelRequested: false,
    cancelReason: null,
    owner: null,
    customization: null,
    understanding: null,
    laneNote: null,
    teardownProblem: null,
    createdAt: now,
    startedAt: now,
    finishedAt: null,
    updatedAt: now,
  };
}

/** The upkeep's context, at `commit` of the Warm object's source. */
export function warmContext(deps: WarmAppDeps, warm: WarmSpec, commit: string, signal: AbortSignal): WarmContext {
  const recipe = warm.spec.recipe;
  const spec = runSpecSchema.parse({
    apiVersion: 'cc-ci/v1',
    kind: 'Run',
    metadata: { name: upkeepName(recipe) },
    spec: { recipe, source: { repo: warm.spec.source.repo, ref: commit }, lane: 'cold', trigger: { kind: 'schedule' } },
  });
  const dir = warmAppDir(deps.paths, recipe);
  mkdirSync(dir, { recursive: true });
  return new WarmContext(recipe, {
    store: deps.store,
    apps: deps.apps,
    config: deps.config,
    paths: deps.paths,
    logger: deps.logger,
    run: upkeepRecord(spec),
    spec,
    signal,
    tracker: deps.tracker,
    dir,
    abraDir: join(dir, 'abra'),
  });
}

/**
 * The lease a warm app is deployed under, for its upkeep and for the quick run that holds it. Its
 * host port (local ingress) is picked once and recorded before anything is deployed on it.
 */
export async function warmLease(store: Store, config: Config, recipe: string, holder: string): Promise<AppRecord> {
  const warm = new WarmStore(store);
  const domain = warmDomain(recipe, config.domain.base);
  let port = warm.get(recipe)?.appPort ?? null;
  if (port === null && config.ingress.mode !== 'traefik') {
    port = await pickFreePort(config.ingress.portRange, store.livePorts());
    warm.update(recipe, { appPort: port });
  }
  return {
    domain,
    run: holder,
    attempt: 1,
    purpose: WARM_PURPOSE,
    stack: stackName(domain),
    server: config.abra.server,
    abraDir: '',
    port,
    state: 'deployed',
    leasedAt: Date.now(),
    releasedAt: null,
  };
}

/**
 * One upkeep, start to gate. Deploys the plan's commit (in place, forced when repairing or
 * returning), restores the snapshot when returning (or when a repair finds the data gone), checks
 * the data, writes the marker and takes the snapshot the first time and after every promote. An
 * upgrade whose gate fails rolls back to the canonical version and its data.
 */
export async function runUpkeep(deps: WarmAppDeps, rec: WarmRecord, warm: WarmSpec, plan: UpkeepPlan, signal: AbortSignal): Promise<UpkeepOutcome> {
  const ctx = warmContext(deps, warm, plan.commit, signal);
  ctx.log('phase', describePlan(plan));
  try {
    const gate = await converge(deps, ctx, rec, plan);
    ctx.log('info', `healthy at ${plan.commit.slice(0, 12)}: ${gate.summary}`);
    return {
      health: 'healthy',
      healthReason: `${plan.kind === 'create' ? 'created' : plan.kind === 'upgrade' ? 'upgraded' : plan.kind === 'repair' ? 'repaired' : 'returned to canonical'} at ${plan.commit.slice(0, 12)}: ${gate.summary}`,
      canonicalCommit: plan.commit,
      canonicalVersion: gate.version,
      gate: gate.gate,
      lastGateAt: Date.now(),
      ...(plan.kind === 'return' ? { returnPending: null } : {}),
    };
  } catch (e) {
    const why = ctx.redactor.apply(e instanceof Error ? e.message : String(e));
    ctx.log('error', `health gate failed: ${why}`);
    if (signal.aborted) throw e;
    if (plan.kind === 'upgrade') {
      // The last good version and its data come back; the promoted commit is not tried again
      // until the next promote.
      ctx.log('warn', `rolling back to ${plan.from.slice(0, 12)} and its data`);
      const now = new WarmStore(deps.store).get(rec.recipe) ?? rec;
      const back = await runUpkeep(deps, now, warm, { kind: 'return', commit: plan.from, after: `the failed upgrade to ${plan.commit.slice(0, 12)}` }, signal);
      return {
        ...back,
        failedCommit: plan.commit,
        returnPending: rec.returnPending,
        healthReason: `promoted ${plan.commit.slice(0, 12)} failed the health gate (${why}); ${back.health === 'healthy' ? 'rolled back to' : 'and the rollback failed at'} ${plan.from.slice(0, 12)}: ${back.healthReason}`,
      };
    }
    return { health: 'unhealthy', healthReason: `${describePlan(plan)} failed: ${why}`, lastGateAt: Date.now() };
  }
}

async function converge(
  deps: WarmAppDeps,
  ctx: WarmContext,
  rec: WarmRecord,
  plan: UpkeepPlan,
): Promise<{ summary: string; gate: WarmGate; version: string | null }> {
  const warm = new WarmStore(deps.store);
  const recipe = rec.recipe;
  await prepareWorkspace(ctx);
  const lease = await warmLease(deps.store, deps.config, recipe, ctx.name);
  const forced = plan.kind === 'repair' || plan.kind === 'return';
  const want = { purpose: WARM_PURPOSE, commit: plan.commit, describe: `canonical ${plan.commit.slice(0, 8)}`, ...(forced ? { redeploy: true } : {}) };
  let app = await ctx.apps.ensure(ctx, want, lease);
  const settle = async () => (app = await ctx.apps.ensure(ctx, { ...want, redeploy: false }, lease));

  const facts = await appFacts(ctx, app);
  const capable = facts.backup.capable;
  let snapshot = warm.get(recipe)?.snapshot ?? rec.snapshot;
  let restored = false;
  if (plan.kind === 'return' && snapshot) {
    await restoreSnapshot(ctx, app, snapshot);
    await settle();
    restored = true;
  }

  let marker = warm.get(recipe)?.marker ?? null;
  let data: string;
  if (marker) {
    let check = await checkMarker(ctx, app, 'warm', marker, capable);
    if (!check.ok && !restored && snapshot && plan.kind !== 'upgrade') {
      ctx.log('warn', `the canonical data is not there (${check.found}): restoring the last-known-good snapshot`);
      await restoreSnapshot(ctx, app, snapshot);
      await settle();
      restored = true;
      check = await checkMarker(ctx, app, 'warm', marker, capable);
    }
    if (!check.ok) throw new Error(`the canonical data is not there: ${check.found}`);
    data = `the canonical data is there${restored ? ' (restored from the snapshot)' : ''}`;
  } else {
    marker = newMarker('warm');
    const place = await seedMarker(ctx, app, 'warm', marker, capable);
    if (place.how === 'none') {
      marker = null;
      data = `data not checked: ${place.describe}`;
    } else {
      data = `canonical data written (${place.describe})`;
    }
    warm.update(recipe, { marker });
    ctx.log('info', data);
  }

  const missing = facts.services.map((s) => `${app.stack}_${s.name}`).filter((n) => !app.services.some((s) => s.name === n));
  if (missing.length) throw new Error(`services missing after the deploy: ${missing.join(', ')}`);

  if (!snapshot || plan.kind === 'create' || plan.kind === 'upgrade' || snapshot.commit !== plan.commit) {
    snapshot = await takeSnapshot(ctx, app, capable);
    warm.update(recipe, { snapshot });
    ctx.log('info', `last-known-good snapshot: ${describeSnapshot(snapshot)}`);
  }
  const ws = ctx.workspace!;
  const labels = app.services.find((s) => s.name === `${app.stack}_app`)?.labels ?? {};
  return {
    version: labels[`coop-cloud.${app.stack}.version`] ?? null,
    summary: `${app.services.length} service(s) converged, serving, ${data}; snapshot ${describeSnapshot(snapshot)}`,
    gate: { services: app.services.map((s) => s.name), healthPath: ws.settings.healthPath, healthStatuses: ws.settings.healthStatuses },
  };
}

export function describeSnapshot(s: WarmSnapshot): string {
  switch (s.kind) {
    case 'abra':
      return `abra backup ${s.id} at ${s.commit.slice(0, 12)}`;
    case 'volumes':
      return `${s.volumes.length} volume(s) copied at ${s.commit.slice(0, 12)}`;
    case 'none':
      return `none (${s.why})`;
  }
}

/** The snapshot: abra's backup where the recipe has backupbot labels, else a tar copy of every volume. */
async function takeSnapshot(ctx: RunContext, app: ReadyApp, capable: boolean): Promise<WarmSnapshot> {
  const commit = app.commit;
  if (capable) {
    await backupStep(ctx, 'abra app backup create', () => ctx.abra.backupCreate(app.domain), app.domain);
    const list = await backupStep(ctx, 'abra app backup snapshots', () => ctx.abra.backupSnapshots(app.domain), app.domain);
    const last = list[list.length - 1];
    if (!last) throw new Error('abra app backup create reported success but lists no snapshot');
    return { kind: 'abra', id: last.id, commit, at: Date.now() };
  }
  const dir = join(ctx.dir, 'snapshot');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const volumes: Extract<WarmSnapshot, { kind: 'volumes' }>['volumes'] = [];
  for (const s of app.services) {
    const container = await ctx.docker.runningContainer(s.name);
    if (!container) continue;
    for (const m of await ctx.docker.volumeMounts(container)) {
      if (volumes.some((v) => v.volume === m.name)) continue;
      const tar = await ctx.step('copy volume', () => ctx.docker.copyOut(container, m.destination), `${m.name}:${m.destination}`);
      if (!tar) continue;
      const file = join(dir, `${m.name}.tar`);
      writeFileSync(file, tar);
      volumes.push({ service: s.name, volume: m.name, destination: m.destination, file });
    }
  }
  if (volumes.length === 0) return { kind: 'none', why: 'the app has no volume', commit, at: Date.now() };
  return { kind: 'volumes', dir, volumes, commit, at: Date.now() };
}

async function restoreSnapshot(ctx: RunContext, app: ReadyApp, s: WarmSnapshot): Promise<void> {
  if (s.kind === 'none') return;
  if (s.kind === 'abra') {
    await backupStep(ctx, 'abra app restore', () => ctx.abra.restore(app.domain, s.id), `${app.domain} snapshot ${s.id}`);
    return;
  }
  for (const v of s.volumes) {
    const container = await ctx.docker.runningContainer(v.service);
    if (!container) throw new Error(`no running container of ${v.service} to restore ${v.volume} into`);
    const tar = readFileSync(v.file);
    await ctx.step('restore volume', () => ctx.docker.copyIn(container, dirname(v.destination), tar), `${v.volume}:${v.destination}`);
  }
}

/** What a look at a warm app found: nothing wrong, something to repair, or a removal still under way
 *  (a stack removed behind cc-ci's back goes on removing its networks and containers for a while,
 *  and a deploy into it then fails: the repair waits for the next look). */
export type WarmLook = { problem: null } | { problem: string; repairNow: boolean };

/** A look at a warm app nobody holds, against what the last gate left. */
export async function lookAtWarmApp(deps: Pick<WarmAppDeps, 'config' | 'store'>, rec: WarmRecord, docker: RunContext['docker']): Promise<WarmLook> {
  const stack = stackName(warmDomain(rec.recipe, deps.config.domain.base));
  const services = await docker.stackServices(stack);
  if (services.length === 0) {
    const left = await docker.stackLeftovers(stack);
    const going = [...left.containers, ...left.networks.filter((n) => n.startsWith(`${stack}_`))];
    if (going.length) return { problem: `its stack is gone, still being removed (${going.join(', ')})`, repairNow: false };
    return { problem: 'its stack is gone', repairNow: true };
  }
  const problem = await servicesProblem(deps, rec, services);
  return problem ? { problem, repairNow: true } : { problem: null };
}

async function servicesProblem(
  deps: Pick<WarmAppDeps, 'config'>,
  rec: WarmRecord,
  services: Awaited<ReturnType<RunContext['docker']['stackServices']>>,
): Promise<string | null> {
  const missing = (rec.gate?.services ?? []).filter((n) => !services.some((s) => s.name === n));
  if (missing.length) return `service(s) removed: ${missing.join(', ')}`;
  if (!converged(services)) return `not converged: ${services.map((s) => `${s.name} ${s.running}/${s.desired}`).join(', ')}`;
  if (rec.gate) {
    const local = deps.config.ingress.mode !== 'traefik';
    const domain = warmDomain(rec.recipe, deps.config.domain.base);
    const base = local ? `http://127.0.0.1:${rec.appPort}` : `https://${domain}`;
    const r = await probe({ url: `${base}${rec.gate.healthPath}`, host: domain, accept: rec.gate.healthStatuses, timeoutMs: 5000 });
    if (!r.ok) return `not serving: GET ${rec.gate.healthPath} → ${r.problem}`;
  }
  return null;
}

/** Removes the warm app: everything of it on the swarm, its .env, its directory. */
export async function removeWarmApp(deps: WarmAppDeps, warm: WarmSpec, signal: AbortSignal): Promise<void> {
  const recipe = warm.spec.recipe;
  const ctx = warmContext(deps, warm, 'HEAD', signal);
  const domain = warmDomain(recipe, deps.config.domain.base);
  ctx.log('phase', 'removing: the Warm object was deleted');
  await deps.apps.release(ctx, { domain, stack: stackName(domain), server: deps.config.abra.server, run: null });
  rmSync(warmAppDir(deps.paths, recipe), { recursive: true, force: true });
}
