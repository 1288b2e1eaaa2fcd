import { existsSync } from 'node:fs';
import type { Store } from '../../state/store.js';
import { TIER_NAMES, type RunRecord, type TierName } from '../../state/types.js';
import { acceptedSpec, isName, validateSpec, type RunSpec } from '../model/spec.js';
import { specFilePath, writeSpecFile } from '../model/spec-files.js';
import type { StatePaths } from '../model/paths.js';
import { supersedeKey, newerThan } from '../../reconcilers/supersede.js';
import { RunHistory } from '../../state/history.js';

/**
 * What a person or a script may do to a run besides starting one (docs/architecture.md,
 * "Actions"): cancel it, rerun it, or rerun the tiers that failed. The CLI and the HTTP server
 * both act through here, so the rules and the words are the same everywhere. Every action is
 * recorded in the run's log with who took it before anything happens.
 */

export type ActionOutcome = { ok: true; message: string; run: string } | { ok: false; status: 404 | 409; message: string };

/** A run's cancel, recorded; `stop` (the serving controller's, when in this process) stops its step at once. */
export function cancelRun(store: Store, name: string, by: string, stop?: (name: string, reason: string) => void): ActionOutcome {
  const run = isName(name) ? store.getRun(name) : undefined;
  if (!run) return { ok: false, status: 404, message: `no run named ${name}` };
  if (run.phase === 'Done') return { ok: false, status: 409, message: `run ${name} has finished (${run.result ?? 'no result'}): there is nothing to cancel` };
  if (run.cancelRequested) return { ok: true, run: name, message: `run ${name} is being cancelled already (${run.cancelReason ?? 'cancel requested'})` };
  const reason = `cancelled by ${by}`;
  if (stop) stop(name, reason);
  else {
    store.updateRun(name, { cancelRequested: true, cancelReason: reason });
    store.appendEvent(name, 'warn', `cancel requested: ${reason}`);
  }
  return { ok: true, run: name, message: `run ${name}: cancel requested; it is torn down, then reported cancelled` };
}

export interface RerunPlan {
  tiers: TierName[];
  /** Said to the person asking and in the new run's log. */
  why: string;
}

/** The tiers a run asked for, in ladder order. */
function plannedTiers(spec: RunSpec): TierName[] {
  return spec.spec.tiers ? TIER_NAMES.filter((t) => spec.spec.tiers!.includes(t)) : [...TIER_NAMES];
}

/**
 * The tiers a rerun climbs. `failed`: from the first tier that did not pass (nor was n/a) up:
 * each tier deploys what it needs itself (upgrade installs its base release, restore takes its
 * own backup), so the ladder can start anywhere; the tiers below passed and are not run again.
 */
export function rerunPlan(store: Store, run: RunRecord, failed: boolean): RerunPlan | string {
  const planned = plannedTiers(acceptedSpec(run));
  if (!failed) return { tiers: planned, why: `reruns every tier: ${planned.join(', ')}` };
  if (run.phase !== 'Done') return `run ${run.name} has not finished: cancel it, or wait for its verdict, before rerunning what failed`;
  if (run.result === 'passed') return `every tier of ${run.name} passed: nothing failed to rerun (rerun it whole instead)`;
  const tiers = store.getTiers(run.name);
  if (tiers.length === 0)
    return { tiers: planned, why: `no tier of ${run.name} ran (${run.reason ?? 'it ended before the ladder'}): reruns every tier: ${planned.join(', ')}` };
  const first = tiers.find((t) => t.result !== 'pass' && t.result !== 'n/a');
  if (!first) return { tiers: planned, why: `every tier of ${run.name} passed, but the run ended ${run.result} (${run.reason ?? ''}): reruns every tier` };
  const from = planned.indexOf(first.tier);
  const rerun = planned.slice(from < 0 ? 0 : from);
  const kept = planned.slice(0, from < 0 ? 0 : from);
  return {
    tiers: rerun,
    why: `reruns ${rerun.join(', ')} from ${first.tier}, the first tier that did not pass${kept.length ? ` (${kept.join(', ')} passed in ${run.name} and are not run again)` : ''}`,
  };
}

/** A name for the `n`th rerun of `name` within the 63 characters a name may have. */
function rerunName(name: string, n: number): string {
  const suffix = `-r${n}`;
  return `${name
    .replace(/-r\d+$/, '')
    .slice(0, 63 - suffix.length)
    .replace(/-+$/, '')}${suffix}`;
}

/** Writes the spec of a rerun of `name` (same repository and commit, same lane and trigger) and returns its name. */
export function rerunRun(store: Store, paths: StatePaths, name: string, o: { failed: boolean; by: string }): ActionOutcome {
  const run = isName(name) ? store.getRun(name) : undefined;
  if (!run) return { ok: false, status: 404, message: `no run named ${name}` };
  // A pull request's newer run answers the same question about a newer commit: rerunning the
  // older one would only be superseded by it (reconcilers/supersede.ts).
  const key = supersedeKey(run);
  const pr = acceptedSpec(run).spec.trigger?.forge;
  if (key && pr) {
    const history = new RunHistory(store);
    const filter = { recipe: run.recipe, lane: run.lane, pr: pr.pr, repo: `${pr.owner}/${pr.repo}` };
    const newer = [...history.unfinished(filter, 50), ...history.finished(filter, null, 50)].find(
      (r) => r.name !== run.name && supersedeKey(r) === key && newerThan(r, run) && acceptedSpec(r).spec.rerun?.of !== run.name,
    );
    if (newer) return { ok: false, status: 409, message: `run ${name} was followed by ${newer.name} on the same pull request and lane: rerun that one` };
  }
  const plan = rerunPlan(store, run, o.failed);
  if (typeof plan === 'string') return { ok: false, status: 409, message: plan };
  const spec = acceptedSpec(run);
  let n = 1;
  let next = rerunName(name, n);
  while (store.getRun(next) || existsSync(specFilePath(paths, next))) next = rerunName(name, ++n);
  const doc = {
    ...spec,
    metadata: { ...spec.metadata, name: next },
    spec: {
      ...spec.spec,
      // The same commit: a rerun asks the question again of what was tested, not of a moved branch.
      source: { ...spec.spec.source, ref: run.commitSha ?? spec.spec.source.ref },
      tiers: plan.tiers,
      rerun: { of: run.name, tiers: o.failed ? 'failed' : 'all', by: o.by },
    },
  };
  const parsed = validateSpec(doc);
  if (!parsed.ok) return { ok: false, status: 409, message: `cannot rerun ${name}: ${parsed.error}` };
  store.appendEvent(run.name, 'info', `rerun requested by ${o.by}: ${next} ${plan.why}`);
  writeSpecFile(paths, parsed.spec);
  return { ok: true, run: next, message: `run ${next} ${plan.why}` };
}
