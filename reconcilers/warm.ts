import { existsSync, readdirSync } from 'node:fs';
import { readBoundedFile } from '../controller/model/bounded-read.js';
import { join } from 'node:path';
import { remoteBranchHead } from '../controller/clients/git.js';
import type { ReconcileResult } from '../controller/engine/controller.js';
import { Operations } from '../controller/engine/ops.js';
import type { Logger } from '../controller/model/log.js';
import type { StatePaths } from '../controller/model/paths.js';
import { MAX_SPEC_CHARS, runSpecSchema, type RunSpecInput } from '../controller/model/spec.js';
import { parseWarmText, type WarmSpec, recipeOfWarmFile } from '../controller/model/warm.js';
import { writeSpecFile } from '../controller/model/spec-files.js';
import type { Store } from '../state/store.js';
import { WarmStore, type WarmRecord } from '../state/warm-store.js';
import { dockerFromConfig } from '../controller/clients/docker.js';
import { ShutdownError } from './errors.js';
import { describePlan, lookAtWarmApp, removeWarmApp, runUpkeep, type UpkeepOutcome, type UpkeepPlan, type WarmAppDeps, type WarmLook } from './warm-app.js';

/**
 * The warm reconciler: one key per recipe, reconciled toward its Warm file (docs/warm.md). Each
 * pass observes the file, the default branch's head (read with `git ls-remote` as an operation,
 * every `warm.headCheckSeconds`) and the cold run it submitted, and takes one step: record the
 * head; submit a cold run of a head that is not promoted — once per commit, trigger `schedule`;
 * promote the head when that run passed. Only that run promotes: a quick run, a pull request's
 * run or a failed run never does. What it saw is its status (state/warm-store.ts).
 */

/** What the warm app's upkeep needs (store, config, paths, logger, child tracker, the app
 *  controller it deploys through), and the warm controller's own queue. */
export interface WarmReconcilerDeps extends WarmAppDeps {
  /** Looks at a recipe again (the warm controller's queue): an operation of it has finished. */
  enqueue(recipe: string): void;
  /** Told when a warm app has passed its gate: quick runs waiting for it are looked at now. */
  warmReady?(recipe: string): void;
}

/** The label a promotion run carries: which Warm object submitted it. */
export const WARM_LABEL = 'cc-ci/warm';

/** How often a submitted run, or the quick run holding the warm app, is looked at while unfinished. */
const CANDIDATE_LOOK_MS = 5_000;
/** How long after a failed upkeep the next one is tried. */
const UPKEEP_RETRY_MS = 30_000;

/** What a warm app operation ended with. */
type AppOpResult = { kind: 'look'; look: WarmLook } | { kind: 'upkeep'; plan: string; outcome: UpkeepOutcome } | { kind: 'removed' };

type Desired = { kind: 'absent' } | { kind: 'invalid'; path: string; error: string } | { kind: 'present'; path: string; spec: WarmSpec };

/** The Warm file of a recipe, read afresh each pass (it is a few lines). */
export function readWarmFile(paths: StatePaths, recipe: string): Desired {
  for (const ext of ['.yaml', '.yml', '.json']) {
    const path = join(paths.warm, `${recipe}${ext}`);
    if (!existsSync(path)) continue;
    try {
      const parsed = parseWarmText(readBoundedFile(path, MAX_SPEC_CHARS * 4));
      if (!parsed.ok) return { kind: 'invalid', path, error: parsed.error };
      if (parsed.spec.metadata.name !== recipe)
        return { kind: 'invalid', path, error: `names ${parsed.spec.metadata.name}; the file must be named after its recipe` };
      return { kind: 'present', path, spec: parsed.spec };
    } catch (e) {
      return { kind: 'invalid', path, error: `cannot read: ${(e as Error).message}` };
    }
  }
  return { kind: 'absent' };
}

/** The recipes with a Warm file or a status row: every key the warm controller has. */
export function warmKeys(paths: StatePaths, store: Store): string[] {
  let files: string[];
  try {
    files = readdirSync(paths.warm);
  } catch {
    files = [];
  }
  const fromFiles = files.map(recipeOfWarmFile).filter((r): r is string => r !== null);
  return [...new Set([...fromFiles, ...new WarmStore(store).list().map((w) => w.recipe)])].sort();
}

/** The name of the cold run that promotes `commit`: recognisable, and the same every time for one commit. */
export function promotionRunName(recipe: string, commit: string): string {
  return `${recipe.slice(0, 40).replace(/-+$/, '')}-promote-${commit.slice(0, 12)}`;
}

export class WarmReconciler {
  /** Reading the default branch head, per recipe. */
  private readonly ops: Operations;
  /** The warm app's upkeep, a look at it, or its removal, per recipe. */
  private readonly appOps: Operations;
  private readonly warm: WarmStore;
  /** The invalid-file reason last logged per recipe, so a bad file is said once, not every pass. */
  private readonly said = new Map<string, string>();
  /** When each warm app was last looked at, and what the look found wrong (to repair). */
  private readonly lookedAt = new Map<string, number>();
  private readonly problems = new Map<string, string>();

  constructor(private readonly deps: WarmReconcilerDeps) {
    this.ops = new Operations((recipe) => deps.enqueue(recipe));
    this.appOps = new Operations((recipe) => deps.enqueue(recipe));
    this.warm = new WarmStore(deps.store);
  }

  /** Whether an operation of `recipe` is in flight (reading the head, the warm app's upkeep). */
  busy(recipe: string): boolean {
    return this.ops.running(recipe) !== null || this.appOps.running(recipe) !== null;
  }

  async stop(reason: Error): Promise<void> {
    await Promise.all([this.ops.stopAll(reason), this.appOps.stopAll(reason)]);
  }

  reconcile(recipe: string): ReconcileResult {
    const { config } = this.deps;
    const log = this.deps.logger.child({ reconciler: 'warm', recipe });
    const desired = readWarmFile(this.deps.paths, recipe);
    let rec = this.warm.get(recipe);

    if (desired.kind === 'absent') return rec ? this.removal(rec, log) : {};
    if (desired.kind === 'invalid') {
      if (this.said.get(recipe) !== desired.error)
        log.warn({ file: desired.path, error: desired.error }, 'invalid Warm file (left in place; the last valid one still applies)');
      this.said.set(recipe, desired.error);
      if (!rec) return { requeueAfterMs: config.resyncSeconds * 1000 };
    } else {
      this.said.delete(recipe);
      const specJson = JSON.stringify(desired.spec);
      if (!rec) {
        this.warm.insert(recipe, specJson, desired.path);
        log.info({ file: desired.path }, 'Warm object accepted');
      } else if (rec.specJson !== specJson) {
        // A new source or branch: what was read of the old one says nothing about the new.
        this.ops.abort(recipe, new Error('the Warm object changed'));
        this.warm.update(recipe, { specJson, specPath: desired.path, headCheckedAt: null, headCommit: null, headError: null });
      }
      rec = this.warm.get(recipe)!;
    }
    const spec = JSON.parse(rec.specJson) as WarmSpec;

    // The head read by the last operation, if it has finished.
    if (this.ops.running(recipe)) return {};
    const read = this.ops.take<string>(recipe);
    if (read) {
      const now = Date.now();
      if (read.ok) {
        if (read.value !== rec.headCommit) log.info({ head: read.value, branch: spec.spec.source.branch }, 'default branch head');
        this.warm.update(recipe, { headCommit: read.value, headCheckedAt: now, headError: null });
      } else {
        const error = read.error instanceof Error ? read.error.message : String(read.error);
        log.warn({ error }, 'could not read the default branch head; will look again');
        this.warm.update(recipe, { headCheckedAt: now, headError: error });
      }
      rec = this.warm.get(recipe)!;
    }
    const interval = config.warm.headCheckSeconds * 1000;
    if (rec.headCheckedAt === null || Date.now() - rec.headCheckedAt >= interval) {
      const { repo, branch } = spec.spec.source;
      this.ops.start(recipe, 'read the default branch head', (signal) =>
        remoteBranchHead(repo, branch, { timeoutMs: config.timeouts.gitSeconds * 1000, signal, tracker: this.deps.tracker }),
      );
      return {};
    }

    const step = this.promotionStep(rec, spec, log);
    const appAgainMs = this.appStep(this.warm.get(recipe)!, spec, log);
    const invalid = desired.kind === 'invalid' ? desired.error : null;
    this.warm.update(recipe, { lastReconcileAt: Date.now(), ...healthOf(this.warm.get(recipe)!, spec, invalid) });
    const untilHeadCheck = Math.max(0, rec.headCheckedAt + interval - Date.now());
    const again = [untilHeadCheck, ...(step === 'waiting' ? [CANDIDATE_LOOK_MS] : []), ...(appAgainMs === null ? [] : [appAgainMs])];
    return { requeueAfterMs: Math.min(...again) };
  }

  /**
   * The warm app toward the promoted version: create it, upgrade it to a new promote, return it to
   * canonical after a quick run's hold, repair what a periodic look finds wrong — one upkeep at a
   * time, recorded before it starts, never while a quick run holds the app. Returns when to look
   * again (null: when the operation in flight ends).
   */
  private appStep(rec: WarmRecord, spec: WarmSpec, log: Logger): number | null {
    const { store, config } = this.deps;
    const recipe = rec.recipe;
    if (this.appOps.running(recipe)) return null;
    const done = this.appOps.take<AppOpResult>(recipe);
    if (done) {
      if (!done.ok) {
        const error = done.error instanceof Error ? done.error.message : String(done.error);
        if (done.error instanceof ShutdownError) return null;
        log.warn({ error, op: done.label }, 'warm app operation failed');
        this.warm.update(recipe, {
          health: 'unhealthy',
          healthReason: `${rec.upkeep ?? done.label} failed: ${error}`,
          upkeep: null,
          upkeepStartedAt: null,
          lastGateAt: Date.now(),
        });
      } else if (done.value.kind === 'look') {
        this.lookedAt.set(recipe, Date.now());
        const look = done.value.look;
        if (look.problem === null) {
          // Nothing wrong to see, but the last gate did not pass: only the gate says healthy.
          if (rec.health === 'healthy') this.problems.delete(recipe);
          else this.problems.set(recipe, `not healthy since: ${rec.healthReason ?? 'unknown'}`);
        } else if (look.repairNow) this.problems.set(recipe, look.problem);
        else {
          this.problems.delete(recipe);
          this.warm.update(recipe, { health: 'unhealthy', healthReason: look.problem });
        }
      } else if (done.value.kind === 'upkeep') {
        const o = done.value.outcome;
        this.warm.update(recipe, { ...o, upkeep: null, upkeepStartedAt: null });
        this.problems.delete(recipe);
        this.lookedAt.set(recipe, Date.now());
        if (o.health === 'healthy') {
          log.info({ reason: o.healthReason }, `warm app healthy: ${done.value.plan}`);
          this.deps.warmReady?.(recipe);
        } else log.warn({ reason: o.healthReason }, `warm app unhealthy after ${done.value.plan}`);
      }
      rec = this.warm.get(recipe)!;
    }
    if (!rec.promotedCommit) return null;

    if (rec.holder) {
      const run = store.getRun(rec.holder);
      if (run && run.phase !== 'Done') return CANDIDATE_LOOK_MS;
      // The holder is gone without handing the app back (deleted, or finished by a crashed server).
      this.warm.endHold(recipe, rec.holder);
      log.warn({ run: rec.holder }, 'the quick run holding the warm app is gone: returning the app to canonical');
      rec = this.warm.get(recipe)!;
    }
    const now = Date.now();
    if (rec.health === 'unhealthy' && rec.lastGateAt && now - rec.lastGateAt < UPKEEP_RETRY_MS) return rec.lastGateAt + UPKEEP_RETRY_MS - now;

    const canonical = rec.canonicalCommit;
    const promoted = rec.promotedCommit;
    if (!promoted) return null;
    const problem = this.problems.get(recipe);
    let plan: UpkeepPlan | null = null;
    if (rec.returnPending) plan = { kind: 'return', commit: canonical ?? promoted, after: rec.returnPending };
    else if (!canonical) plan = { kind: 'create', commit: promoted };
    else if (promoted !== canonical && promoted !== rec.failedCommit) plan = { kind: 'upgrade', commit: promoted, from: canonical };
    else if (problem) plan = { kind: 'repair', commit: canonical, why: problem };
    if (plan) {
      const what = describePlan(plan);
      // Recorded before it starts: a restart finds the app mid-upkeep and no quick run takes it.
      this.warm.update(recipe, {
        upkeep: what,
        upkeepStartedAt: now,
        ...(plan.kind === 'repair' ? { health: 'unhealthy' as const, healthReason: problem ?? null } : {}),
      });
      log.info({ plan: what }, 'warm app upkeep');
      const chosen = plan;
      const fixed = rec;
      this.appOps.start(recipe, what, async (signal) => ({
        kind: 'upkeep' as const,
        plan: what,
        outcome: await runUpkeep(this.deps, fixed, spec, chosen, signal),
      }));
      return null;
    }
    const checkMs = config.warm.checkSeconds * 1000;
    const last = this.lookedAt.get(recipe) ?? 0;
    if (now - last < checkMs) return last + checkMs - now;
    this.appOps.start(recipe, 'look at the warm app', async (signal) => ({
      kind: 'look' as const,
      look: await lookAtWarmApp(this.deps, rec, dockerFromConfig(config, { signal, tracker: this.deps.tracker })),
    }));
    return null;
  }

  /** The Warm file is gone: the warm app is removed (once no quick run holds it), then its status. */
  private removal(rec: WarmRecord, log: Logger): ReconcileResult {
    const recipe = rec.recipe;
    this.ops.abort(recipe, new Error('the Warm object was deleted'));
    if (this.appOps.running(recipe)) {
      if (this.appOps.running(recipe)?.label !== 'remove') this.appOps.abort(recipe, new Error('the Warm object was deleted'));
      return {};
    }
    const done = this.appOps.take<AppOpResult>(recipe);
    if (done?.label === 'remove') {
      if (done.ok) {
        this.warm.delete(recipe);
        log.info('Warm object deleted: its warm app is removed and its status forgotten');
        return {};
      }
      log.warn({ error: done.error instanceof Error ? done.error.message : String(done.error) }, 'removing the warm app failed; trying again');
      return { requeueAfterMs: UPKEEP_RETRY_MS };
    }
    if (rec.holder) {
      const run = this.deps.store.getRun(rec.holder);
      if (run && run.phase !== 'Done') {
        this.warm.update(recipe, { upkeep: `to be removed once ${rec.holder} hands it back` });
        return { requeueAfterMs: CANDIDATE_LOOK_MS };
      }
    }
    if (rec.appPort === null && rec.canonicalCommit === null && rec.upkeep === null) {
      this.warm.delete(recipe);
      log.info('Warm object deleted: its status is forgotten');
      return {};
    }
    this.warm.update(recipe, { upkeep: 'removing: the Warm object was deleted', upkeepStartedAt: Date.now() });
    const spec = JSON.parse(rec.specJson) as WarmSpec;
    this.appOps.start(recipe, 'remove', async (signal) => {
      await removeWarmApp(this.deps, spec, signal);
      return { kind: 'removed' as const };
    });
    return {};
  }

  /** Observes the submitted cold run, promotes on its pass, and submits one for a new head. */
  private promotionStep(rec: WarmRecord, spec: WarmSpec, log: Logger): 'waiting' | 'idle' {
    const { store } = this.deps;
    const recipe = rec.recipe;
    if (rec.candidateRun) {
      const run = store.getRun(rec.candidateRun);
      if (run && run.phase !== 'Done') return 'waiting';
      if (run?.result === 'passed' && run.lane === 'cold' && run.commitSha === rec.candidateCommit) {
        this.warm.update(recipe, { promotedCommit: run.commitSha, promotedRun: run.name, promotedAt: Date.now(), candidateRun: null });
        log.info({ commit: run.commitSha, run: run.name }, 'promoted: a cold run of the default branch head passed');
      } else {
        this.warm.update(recipe, { candidateRun: null });
        log.warn(
          { commit: rec.candidateCommit, run: rec.candidateRun, result: run?.result ?? 'gone' },
          'not promoted: the cold run of the head did not pass; the next head is tried',
        );
      }
      return 'idle';
    }
    const head = rec.headCommit;
    if (!head || head === rec.promotedCommit || head === rec.candidateCommit) return 'idle';
    const name = promotionRunName(recipe, head);
    const input: RunSpecInput = {
      apiVersion: 'cc-ci/v1',
      kind: 'Run',
      metadata: { name, labels: { [WARM_LABEL]: recipe } },
      spec: { recipe, source: { repo: spec.spec.source.repo, ref: head }, lane: 'cold', trigger: { kind: 'schedule' } },
    };
    // Recorded before the file is written: a crash in between leaves a candidate with no run,
    // which the next pass sees as gone and does not submit again for this commit.
    this.warm.update(recipe, { candidateCommit: head, candidateRun: name });
    if (!store.getRun(name)) writeSpecFile(this.deps.paths, runSpecSchema.parse(input));
    log.info({ run: name, commit: head }, 'submitted a cold run of the default branch head, to promote it');
    return 'waiting';
  }
}

/** What the status says of the warm app before it has one, or while its Warm file is invalid. */
function healthOf(rec: WarmRecord, spec: WarmSpec, invalidFile: string | null): Partial<Pick<WarmRecord, 'health' | 'healthReason'>> {
  if (invalidFile) return { health: rec.health, healthReason: `the Warm file is invalid (the last valid one applies): ${invalidFile}` };
  if (!rec.promotedCommit) {
    const why = rec.headError
      ? `cannot read ${spec.spec.source.branch}: ${rec.headError}`
      : rec.candidateRun
        ? `nothing promoted yet: ${rec.candidateRun} is testing ${spec.spec.source.branch}'s head`
        : `nothing promoted yet: waiting for a passing cold run of ${spec.spec.source.branch}'s head`;
    return { health: 'absent', healthReason: why };
  }
  if (rec.health === 'absent' || rec.health === 'unknown') {
    return { health: 'absent', healthReason: rec.upkeep ? `${rec.upkeep}` : `promoted ${rec.promotedCommit.slice(0, 12)}; not deployed yet` };
  }
  return {};
}
