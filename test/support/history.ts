import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSpecFile } from '../../controller/model/spec-files.js';
import { ensureStateDirs, statePaths, type StatePaths } from '../../controller/model/paths.js';
import { validateSpec } from '../../controller/model/spec.js';
import { Store } from '../../state/store.js';
import type { Phase, RunResult } from '../../state/types.js';

/**
 * Runs as the history tests need them: a real spec (a file in specs/ when `paths` is given),
 * created at a chosen time, in a chosen phase and with a chosen result, a few log lines and
 * steps, and tiers — through the store's own methods, so its triggers see what a real run does.
 */
export interface HistoryRun {
  name: string;
  recipe?: string;
  lane?: 'cold' | 'quick';
  phase?: Phase;
  result?: RunResult | null;
  createdAt: number;
  finishedAt?: number;
  pr?: { owner: string; repo: string; pr: number };
}

export function addHistoryRun(store: Store, r: HistoryRun, paths?: StatePaths): void {
  const recipe = r.recipe ?? 'webnotes';
  const v = validateSpec({
    apiVersion: 'cc-ci/v1',
    kind: 'Run',
    metadata: { name: r.name },
    spec: {
      recipe,
      source: { repo: `https://git.example.org/recipes/${recipe}.git`, ref: 'a'.repeat(40) },
      lane: r.lane ?? 'cold',
      ...(r.pr ? { trigger: { kind: 'comment', forge: { ...r.pr, comment: 1, by: 'alice' } } } : {}),
    },
  });
  if (!v.ok) throw new Error(v.error);
  const file = paths ? writeSpecFile(paths, v.spec) : null;
  store.insertRun({ name: r.name, specJson: JSON.stringify(v.spec), specHash: v.hash, specPath: file, recipe, lane: v.spec.spec.lane });
  if (file) store.recordSpecFile({ path: file, name: r.name, status: 'valid', error: null, hash: null });
  store.db.prepare('UPDATE runs SET created_at = ? WHERE name = ?').run(r.createdAt, r.name);
  store.planTiers(r.name, ['install']);
  store.appendEvents(r.name, [
    { kind: 'info', text: 'accepted' },
    { kind: 'out', text: 'abra app deploy' },
  ]);
  store.endStep(store.beginStep(r.name, 1, 'prepare'), 'done');
  const phase = r.phase ?? 'Done';
  const result = r.result === undefined ? (phase === 'Done' ? 'passed' : null) : r.result;
  if (phase === 'Done') store.finishTier(r.name, 'install', result === 'passed' ? 'pass' : 'fail', null);
  store.updateRun(r.name, {
    phase,
    result,
    reason: result ? `${result}: install` : null,
    startedAt: r.createdAt + 1_000,
    finishedAt: phase === 'Done' ? (r.finishedAt ?? r.createdAt + 60_000) : null,
  });
}

/** A fresh state directory with its store, as a test's `beforeEach` makes one. */
export function tempState(prefix: string): { dir: string; paths: StatePaths; store: Store } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const paths = statePaths(dir);
  ensureStateDirs(paths);
  return { dir, paths, store: new Store(paths.db) };
}

/** What `tempState` made, closed and removed. */
export function removeTempState(t: { dir: string; store: Store }): void {
  t.store.close();
  rmSync(t.dir, { recursive: true, force: true });
}
