import { acceptedSpec, type RunSpec } from '../controller/model/spec.js';
import type { Store } from '../state/store.js';
import { UNFINISHED } from '../state/history.js';
import type { RunRecord } from '../state/types.js';

/**
 * Superseding: runs that answer the same question — one recipe, one pull request, one lane —
 * are one group, and only the newest of a group is worth finishing.
 */

/**
 * The unfinished runs of `name`'s group that are not its newest, each with the run that
 * supersedes it. The newest wins whichever was accepted last: after downtime the resync accepts
 * spec files in directory order, not in the order the comments were made.
 */
export function superseded(store: Store, name: string): { name: string; by: string }[] {
  const run = store.getRun(name);
  const key = run ? supersedeKey(run) : null;
  if (!run || !key) return [];
  const group = store.listRuns({ phases: UNFINISHED }).filter((r) => !r.cancelRequested && supersedeKey(r) === key);
  const newest = group.reduce((a, b) => (newerThan(b, a) ? b : a), run);
  return group.filter((r) => r.name !== newest.name).map((r) => ({ name: r.name, by: newest.name }));
}

/**
 * Whether run `a` is newer than run `b` of the same supersede group: by the forge comment that
 * triggered it (comment ids only grow on one forge), then by when cc-ci accepted it.
 */
export function newerThan(a: RunRecord, b: RunRecord): boolean {
  const ca = forgeTriggerOf(a)?.comment ?? null;
  const cb = forgeTriggerOf(b)?.comment ?? null;
  if (ca !== null && cb !== null && ca !== cb) return ca > cb;
  if (a.createdAt !== b.createdAt) return a.createdAt > b.createdAt;
  return a.name > b.name;
}

type ForgeTrigger = NonNullable<NonNullable<RunSpec['spec']['trigger']>['forge']>;

/** The pull request comment a run came from, if it came from the forge. */
function forgeTriggerOf(run: RunRecord): ForgeTrigger | null {
  return acceptedSpec(run).spec.trigger?.forge ?? null;
}

/** Runs that answer the same question: one recipe, one pull request, one lane. */
export function supersedeKey(run: RunRecord): string | null {
  const f = forgeTriggerOf(run);
  return f ? `${run.recipe}|${f.owner}/${f.repo}#${f.pr}|${run.lane}` : null;
}
