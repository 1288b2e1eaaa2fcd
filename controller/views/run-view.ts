import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Store } from '../../state/store.js';
import { RunHistory } from '../../state/history.js';
import type { AppRecord, RetryRecord, RunRecord, StepRecord, TierRecord } from '../../state/types.js';
import { runDir, type StatePaths } from '../model/paths.js';
import { type RunSpec, acceptedSpec } from '../model/spec.js';
import { formatCursor, type RunQuery } from './run-query.js';
import { readJUnit, type JUnitFile } from './junit-view.js';
import { withoutCredentials } from '../model/redact.js';
import { describeUnderstanding, type Understanding } from '../../reconcilers/understand.js';

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
  /** For a run in Testing: the tier it is climbing. */
  tier: string | null;
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
  /** What started the run (comment, cli, file, schedule), and the pull request it tests when a forge comment did. */
  trigger: string;
  forge: { repo: string; pr: number; by: string | null } | null;
}

export interface InvalidSpecRow {
  file: string;
  name: string | null;
  error: string;
}

/** Where each queued run stands: name → place (1 = next). The one computation of queue positions. */
export function queuePositions(store: Store): Map<string, number> {
  return new Map(new RunHistory(store).queue().map((name, i) => [name, i + 1]));
}

/** Unfinished runs a list shows at most; past it, it says how many more there are. */
export const MAX_UNFINISHED = 200;
/** Invalid spec files a list shows at most. */
const MAX_INVALID = 100;

export interface RunList {
  /** On the first page only: runs not Done yet (queued first in line… running), newest first. */
  unfinished: RunRow[];
  /** How many unfinished runs match, of which `unfinished` shows at most MAX_UNFINISHED. */
  unfinishedTotal: number;
  /** A page of finished runs, newest first. */
  finished: RunRow[];
  /** The cursor of the next (older) page, or null at the end. */
  next: string | null;
  /** On the first page only: spec files that could not be taken in (at most MAX_INVALID), and how many. */
  invalidSpecs: InvalidSpecRow[];
  invalidTotal: number;
}

/** One page of the runs list: the unfinished runs on top of the first page, then finished ones by keyset. */
export function runList(store: Store, q: RunQuery): RunList {
  const history = new RunHistory(store);
  const first = q.before === null;
  const positions = queuePositions(store);
  const unfinished = first ? history.unfinished(q.filter, MAX_UNFINISHED) : [];
  const page = history.finished(q.filter, q.before, q.limit + 1);
  const shown = page.slice(0, q.limit);
  const last = shown.at(-1);
  const domains = history.domainsOf([...unfinished, ...shown].map((r) => r.name));
  const invalid = first && Object.keys(q.filter).length === 0 ? history.invalidSpecFiles(MAX_INVALID) : { rows: [], total: 0 };
  return {
    unfinished: unfinished.map((r) => toRow(r, positions, domains.get(r.name) ?? [], store.runningTier(r.name)?.tier ?? null)),
    unfinishedTotal: first ? (unfinished.length < MAX_UNFINISHED ? unfinished.length : history.countUnfinished(q.filter)) : 0,
    finished: shown.map((r) => toRow(r, positions, domains.get(r.name) ?? [])),
    next: page.length > q.limit && last ? formatCursor(last) : null,
    invalidSpecs: invalid.rows.map((f) => ({ file: f.path, name: f.name, error: f.error ?? 'invalid' })),
    invalidTotal: invalid.total,
  };
}

/**
 * The runs list as JSON (the API and `cc-ci get runs -o json`): `runs` holds the unfinished runs
 * (first page only) and then a page of finished ones, newest first; `next` is the cursor of the
 * next page, null at the end.
 */
export interface RunListJson {
  runs: RunRow[];
  unfinishedTotal: number;
  next: string | null;
  invalidSpecs: InvalidSpecRow[];
  invalidTotal: number;
}

export function runListJson(list: RunList): RunListJson {
  return {
    runs: [...list.unfinished, ...list.finished],
    unfinishedTotal: list.unfinishedTotal,
    next: list.next,
    invalidSpecs: list.invalidSpecs,
    invalidTotal: list.invalidTotal,
  };
}

/** Spec files of one run name that could not be taken in (`cc-ci describe run`). */
export function invalidSpecsOf(store: Store, name: string): InvalidSpecRow[] {
  return new RunHistory(store).invalidSpecFiles(MAX_INVALID, name).rows.map((f) => ({ file: f.path, name: f.name, error: f.error ?? 'invalid' }));
}

/** The row of one run as every list shows it (the live runs list sends changed rows). */
export function runRow(store: Store, name: string, positions: Map<string, number>): RunRow | undefined {
  const r = store.getRun(name);
  return r
    ? toRow(
        r,
        positions,
        store.appsOfRun(name).map((a) => a.domain),
        r.phase === 'Done' ? null : (store.runningTier(name)?.tier ?? null),
      )
    : undefined;
}

function toRow(r: RunRecord, positions: Map<string, number>, domains: string[], tier: string | null = null): RunRow {
  const spec = acceptedSpec(r);
  const pos = positions.get(r.name) ?? null;
  const end = r.finishedAt ?? (r.phase === 'Done' ? r.updatedAt : null);
  const trigger = spec.spec.trigger;
  const forge = trigger?.forge;
  return {
    name: r.name,
    recipe: r.recipe,
    ref: spec.spec.source.ref,
    lane: r.lane,
    phase: r.phase,
    tier,
    result: r.result,
    reason: r.reason,
    queuePosition: pos,
    waiting: pos !== null ? (r.waitingReason ?? 'waiting for the controller to admit it') : null,
    attempt: r.attempt,
    createdAt: r.createdAt,
    startedAt: r.startedAt,
    finishedAt: r.finishedAt,
    durationMs: r.startedAt ? (end ?? Date.now()) - r.startedAt : null,
    domains,
    trigger: trigger?.kind ?? 'file',
    forge: forge ? { repo: `${forge.owner}/${forge.repo}`, pr: forge.pr, by: forge.by ?? null } : null,
  };
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
  /** When retention removed the run's log, steps and files (its summary stays), or null. */
  prunedAt: number | null;
  /** The JUnit files among the evidence, read (junit-view.ts). */
  junit: JUnitFile[];
}

export function runDetail(store: Store, paths: StatePaths, name: string): RunDetail | undefined {
  const run = store.getRun(name);
  if (!run) return undefined;
  const dir = runDir(paths, name);
  const evidence = listFiles(dir);
  return {
    row: toRow(
      run,
      queuePositions(store),
      store.appsOfRun(name).map((a) => a.domain),
    ),
    run,
    spec: acceptedSpec(run),
    tiers: store.getTiers(name),
    apps: store.appsOfRun(name),
    steps: store.getSteps(name),
    evidence,
    dir,
    prunedAt: new RunHistory(store).prunedAt(name),
    junit: evidence.filter((e) => /^evidence\/(.*\/)?junit[^/]*\.xml$/.test(e.path)).map((e) => readJUnit(join(dir, e.path), e.path.slice('evidence/'.length))),
  };
}

/**
 * One run in detail as data (GET /api/v1/runs/:name, and what `cc-ci describe run` prints, from
 * the state directory or from that route alike): the run's row, then what only the detail has.
 * The repository is named without credentials; the server hides its own paths on the way out
 * (http/api.ts, withoutHostPaths).
 */
export interface RunDescription extends RunRow {
  spec: RunSpec;
  commitSha: string | null;
  /** A quick run that fell back to the cold ladder says why. */
  laneNote: string | null;
  prunedAt: number | null;
  step: string | null;
  cancelRequested: boolean;
  cancelReason: string | null;
  retries: RetryRecord[];
  /** What cc-ci understood of the recipe before deploying it, in words (null: not read yet). */
  understood: string[] | null;
  customization: unknown;
  tiers: TierRecord[];
  apps: { domain: string; purpose: string; state: string; port: number | null }[];
  steps: StepRecord[];
  /** The run's directory, where its evidence is. */
  dir: string;
  /** Each file of the run's directory; `url` serves it when it is evidence. */
  evidence: { path: string; bytes: number; url: string | null }[];
}

export function runDescription(d: RunDetail): RunDescription {
  const name = d.run.name;
  const spec = { ...d.spec, spec: { ...d.spec.spec, source: { ...d.spec.spec.source, repo: withoutCredentials(d.spec.spec.source.repo) } } };
  return {
    ...d.row,
    spec,
    commitSha: d.run.commitSha,
    laneNote: d.run.laneNote,
    prunedAt: d.prunedAt,
    step: d.run.step,
    cancelRequested: d.run.cancelRequested,
    cancelReason: d.run.cancelReason,
    retries: d.run.retries,
    // Recorded by reconcilers/understand.ts as an Understanding; said in words here so every reader says the same.
    understood: d.run.understanding ? describeUnderstanding(d.run.understanding as Understanding) : null,
    customization: d.run.customization,
    tiers: d.tiers,
    apps: d.apps.map((a) => ({ domain: a.domain, purpose: a.purpose, state: a.state, port: a.port })),
    steps: d.steps,
    dir: d.dir,
    evidence: d.evidence.map((e) => ({
      ...e,
      url: e.path.startsWith('evidence/') ? `/runs/${name}/artifacts/${e.path.slice('evidence/'.length).split('/').map(encodeURIComponent).join('/')}` : null,
    })),
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
