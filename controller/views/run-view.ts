import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Store } from '../../state/store.js';
import type { AppRecord, RunRecord, SpecFileRecord, StepRecord, TierRecord } from '../../state/types.js';
import { runDir, type StatePaths } from '../model/paths.js';
import { type RunSpec, acceptedSpec } from '../model/spec.js';

/**
 * What a person (CLI) or a page (HTTP) is shown of runs: one place computes queue position,
 * waiting reasons and evidence, so every view says the same thing.
 */

export interface RunRow {
  name: string;
  recipe: string;
  ref: string;
  lane: string;
  phase: string;
  result: string | null;
  reason: string | null;
  /** For a Pending run: its place in the queue (1 = next) and why it waits. */
  queuePosition: number | null;
  waiting: string | null;
  attempt: number;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  durationMs: number | null;
  domains: string[];
}

export interface InvalidSpecRow {
  file: string;
  name: string | null;
  error: string;
}

export function listRunRows(store: Store): RunRow[] {
  const runs = store.listRuns();
  const pending = runs.filter((r) => r.phase === 'Pending' && !r.cancelRequested);
  return runs.map((r) => toRow(store, r, pending));
}

function toRow(store: Store, r: RunRecord, pending: RunRecord[]): RunRow {
  const spec = acceptedSpec(r);
  const pos = pending.findIndex((p) => p.name === r.name);
  const end = r.finishedAt ?? (r.phase === 'Done' ? r.updatedAt : null);
  return {
    name: r.name,
    recipe: r.recipe,
    ref: spec.spec.source.ref,
    lane: r.lane,
    phase: r.phase,
    result: r.result,
    reason: r.reason,
    queuePosition: pos >= 0 ? pos + 1 : null,
    waiting: pos >= 0 ? (r.waitingReason ?? 'waiting for the controller to admit it') : null,
    attempt: r.attempt,
    createdAt: r.createdAt,
    startedAt: r.startedAt,
    finishedAt: r.finishedAt,
    durationMs: r.startedAt ? (end ?? Date.now()) - r.startedAt : null,
    domains: store.appsOfRun(r.name).map((a) => a.domain),
  };
}

export function invalidSpecs(store: Store): InvalidSpecRow[] {
  return store
    .listSpecFiles()
    .filter((f: SpecFileRecord) => f.status === 'invalid')
    .map((f) => ({ file: f.path, name: f.name, error: f.error ?? 'invalid' }));
}

export interface RunDetail {
  row: RunRow;
  run: RunRecord;
  spec: RunSpec;
  tiers: TierRecord[];
  apps: AppRecord[];
  steps: StepRecord[];
  evidence: { path: string; bytes: number }[];
  dir: string;
}

export function runDetail(store: Store, paths: StatePaths, name: string): RunDetail | undefined {
  const run = store.getRun(name);
  if (!run) return undefined;
  const pending = store.listRuns({ phases: ['Pending'] }).filter((p) => !p.cancelRequested);
  const dir = runDir(paths, name);
  return {
    row: toRow(store, run, pending),
    run,
    spec: acceptedSpec(run),
    tiers: store.getTiers(name),
    apps: store.appsOfRun(name),
    steps: store.getSteps(name),
    evidence: listFiles(dir),
    dir,
  };
}

function listFiles(root: string): { path: string; bytes: number }[] {
  const outFiles: { path: string; bytes: number }[] = [];
  if (!existsSync(root)) return outFiles;
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      // The run's ABRA_DIRs (its own, its apps': abra-<purpose>) hold recipe clones: workspace, not evidence.
      if (e.isDirectory() && !(d === root && (e.name === 'abra' || e.name.startsWith('abra-')))) walk(p);
      else if (e.isFile()) outFiles.push({ path: relative(root, p), bytes: statSync(p).size });
    }
  };
  walk(root);
  return outFiles.sort((a, b) => a.path.localeCompare(b.path));
}
