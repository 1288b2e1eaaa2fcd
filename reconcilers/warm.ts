import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { remoteBranchHead } from '../controller/clients/git.js';
import type { ChildTracker } from '../controller/clients/process.js';
import type { ReconcileResult } from '../controller/engine/controller.js';
import { Operations } from '../controller/engine/ops.js';
import type { Config } from '../controller/model/config.js';
import type { Logger } from '../controller/model/log.js';
import type { StatePaths } from '../controller/model/paths.js';
import { MAX_SPEC_CHARS, runSpecSchema, type RunSpecInput } from '../controller/model/spec.js';
import { parseWarmText, type WarmSpec, recipeOfWarmFile } from '../controller/model/warm.js';
import { writeSpecFile } from '../controller/model/spec-files.js';
import type { Store } from '../state/store.js';
import { WarmStore, type WarmRecord } from '../state/warm-store.js';

/**
 * The warm reconciler: one key per recipe, reconciled toward its Warm file (docs/warm.md). Each
 * pass observes the file, the default branch's head (read with `git ls-remote` as an operation,
 * every `warm.headCheckSeconds`) and the cold run it submitted, and takes one step: record the
 * head; submit a cold run of a head that is not promoted — once per commit, trigger `schedule`;
 * promote the head when that run passed. Only that run promotes: a quick run, a pull request's
 * run or a failed run never does. What it saw is its status (state/warm-store.ts).
 */

export interface WarmReconcilerDeps {
  store: Store;
  config: Config;
  paths: StatePaths;
  logger: Logger;
  tracker: ChildTracker;
  /** Looks at a recipe again (the warm controller's queue): an operation of it has finished. */
  enqueue(recipe: string): void;
}

/** The label a promotion run carries: which Warm object submitted it. */
export const WARM_LABEL = 'cc-ci/warm';

/** How often a submitted run is looked at while it is unfinished. */
const CANDIDATE_LOOK_MS = 5_000;

type Desired = { kind: 'absent' } | { kind: 'invalid'; path: string; error: string } | { kind: 'present'; path: string; spec: WarmSpec };

/** The Warm file of a recipe, read afresh each pass (it is a few lines). */
export function readWarmFile(paths: StatePaths, recipe: string): Desired {
  for (const ext of ['.yaml', '.yml', '.json']) {
    const path = join(paths.warm, `${recipe}${ext}`);
    if (!existsSync(path)) continue;
    try {
      if (statSync(path).size > MAX_SPEC_CHARS)
        return { kind: 'invalid', path, error: `larger than ${MAX_SPEC_CHARS / 1024} KiB; a Warm object is a few lines` };
      const parsed = parseWarmText(readFileSync(path, 'utf8'));
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
  private readonly ops: Operations;
  private readonly warm: WarmStore;
  /** The invalid-file reason last logged per recipe, so a bad file is said once, not every pass. */
  private readonly said = new Map<string, string>();

  constructor(private readonly deps: WarmReconcilerDeps) {
    this.ops = new Operations((recipe) => deps.enqueue(recipe));
    this.warm = new WarmStore(deps.store);
  }

  /** Whether an operation of `recipe` is in flight (reading the head). */
  busy(recipe: string): boolean {
    return this.ops.running(recipe) !== null;
  }

  async stop(reason: Error): Promise<void> {
    await this.ops.stopAll(reason);
  }

  reconcile(recipe: string): ReconcileResult {
    const { config } = this.deps;
    const log = this.deps.logger.child({ reconciler: 'warm', recipe });
    const desired = readWarmFile(this.deps.paths, recipe);
    let rec = this.warm.get(recipe);

    if (desired.kind === 'absent') {
      if (rec) {
        this.ops.abort(recipe, new Error('the Warm object was deleted'));
        this.warm.delete(recipe);
        log.info('Warm object deleted: its status is forgotten');
      }
      return {};
    }
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
    const invalid = desired.kind === 'invalid' ? desired.error : null;
    this.warm.update(recipe, { lastReconcileAt: Date.now(), ...healthOf(this.warm.get(recipe)!, spec, invalid) });
    const untilHeadCheck = Math.max(0, rec.headCheckedAt + interval - Date.now());
    return { requeueAfterMs: step === 'waiting' ? Math.min(CANDIDATE_LOOK_MS, untilHeadCheck) : untilHeadCheck };
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

/** What the status says of the warm app. Deploying it is not built yet: until then it is absent. */
function healthOf(rec: WarmRecord, spec: WarmSpec, invalidFile: string | null): Pick<WarmRecord, 'health' | 'healthReason'> {
  if (invalidFile) return { health: rec.health, healthReason: `the Warm file is invalid (the last valid one applies): ${invalidFile}` };
  if (!rec.promotedCommit) {
    const why = rec.headError
      ? `cannot read ${spec.spec.source.branch}: ${rec.headError}`
      : rec.candidateRun
        ? `nothing promoted yet: ${rec.candidateRun} is testing ${spec.spec.source.branch}'s head`
        : `nothing promoted yet: waiting for a passing cold run of ${spec.spec.source.branch}'s head`;
    return { health: 'absent', healthReason: why };
  }
  return { health: 'absent', healthReason: `promoted ${rec.promotedCommit.slice(0, 12)}; the warm app itself is not deployed by this version of cc-ci` };
}

/**
 * One warm pass outside `cc-ci serve` (`cc-ci warm reconcile` when no server runs): each recipe
 * is reconciled until it asks to be looked at later, its operations awaited in between. What
 * needs a Run controller (a promotion run) is left as a spec file for the next `cc-ci serve`.
 */
export async function warmOnce(deps: Omit<WarmReconcilerDeps, 'enqueue'>, recipes: string[], deadlineMs = 120_000): Promise<void> {
  let wake: (() => void) | null = null;
  const reconciler = new WarmReconciler({ ...deps, enqueue: () => wake?.() });
  const until = Date.now() + deadlineMs;
  for (const recipe of recipes) {
    for (let pass = 0; pass < 20 && Date.now() < until; pass++) {
      reconciler.reconcile(recipe);
      // Nothing in flight: the recipe has taken its step.
      if (!reconciler.busy(recipe)) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, Math.max(0, until - Date.now())).unref();
      });
    }
  }
  await reconciler.stop(new Error('warm pass over'));
}
