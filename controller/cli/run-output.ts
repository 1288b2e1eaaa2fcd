import { basename } from 'node:path';
import { withoutCredentials } from '../model/redact.js';
import { PAGE_SIZE } from '../views/run-query.js';
import type { InvalidSpecRow, RunDescription, RunListJson } from '../views/run-view.js';
import { EXIT, ago, duration, out, table } from './common.js';

/**
 * What `cc-ci get runs` and `cc-ci describe run` print, from one data shape whether it was read
 * from the state directory or from a server's /api/v1 (remote.ts): the JSON the API sends is built
 * by the same views (controller/views/run-view.ts), so both ways print the same for the same state.
 */

export interface GetRunsOptions {
  output?: string;
  limit?: string;
  cursor?: string;
  recipe?: string;
  result?: string;
  lane?: string;
  pr?: string;
  repo?: string;
}

/** `cc-ci get runs [-o json|wide]`: the table (or the JSON) of a page of runs. `limit`: the page size asked for. */
export function printRunList(list: RunListJson, o: { output?: string | undefined; limit: number }): number {
  if (o.output === 'json') {
    out(JSON.stringify(list, null, 2));
    return EXIT.passed;
  }
  const wide = o.output === 'wide';
  const head = ['NAME', 'RECIPE', 'REF', 'LANE', 'PHASE', 'RESULT', 'AGE', 'DURATION', wide ? 'DOMAINS' : '', 'INFO'].filter(Boolean);
  const body = list.runs.map((r) => {
    const info = r.queuePosition ? `#${r.queuePosition} in queue: ${r.waiting}` : (r.reason ?? '');
    return [
      r.name,
      r.recipe,
      r.ref.length > 14 ? r.ref.slice(0, 12) + '…' : r.ref,
      r.lane,
      r.phase,
      r.result ?? '-',
      ago(r.createdAt),
      duration(r.durationMs),
      ...(wide ? [r.domains.join(',') || '-'] : []),
      wide ? info : info.slice(0, 100),
    ];
  });
  for (const i of list.invalidSpecs) {
    body.push([i.name ?? basename(i.file), '-', '-', '-', 'Invalid', 'error', '-', '-', ...(wide ? ['-'] : []), `${basename(i.file)}: ${i.error}`]);
  }
  out(body.length ? table([head, ...body]) : 'No runs.');
  // `runs` holds the unfinished runs (the first page only) before the finished ones.
  const unfinishedShown = list.runs.filter((r) => r.phase !== 'Done').length;
  if (list.unfinishedTotal > unfinishedShown) out(`(${list.unfinishedTotal - unfinishedShown} more unfinished runs not shown)`);
  if (list.invalidTotal > list.invalidSpecs.length) out(`(${list.invalidTotal - list.invalidSpecs.length} more invalid spec files not shown)`);
  if (list.next) out(`(older runs: --cursor ${list.next}${o.limit !== PAGE_SIZE ? ` --limit ${o.limit}` : ''})`);
  return EXIT.passed;
}

/** What `describe run` reads of a run: a part of RunDescription, so the API's answer (checked, remote.ts) is one too. */
export type DescribedRun = Pick<
  RunDescription,
  | 'name'
  | 'lane'
  | 'laneNote'
  | 'phase'
  | 'step'
  | 'result'
  | 'reason'
  | 'queuePosition'
  | 'waiting'
  | 'attempt'
  | 'createdAt'
  | 'durationMs'
  | 'commitSha'
  | 'cancelRequested'
  | 'cancelReason'
  | 'prunedAt'
  | 'understood'
  | 'dir'
  | 'apps'
> & {
  spec: { spec: { recipe: string; source: { repo: string; ref: string }; trigger?: unknown } };
  retries: { attempt: number; reason: string }[];
  customization?: unknown;
  tiers: { tier: string; result: string | null; durationMs: number | null; reason: string | null }[];
  evidence: { path: string; bytes: number }[];
  steps: { id: number; attempt: number; name: string; state: string; startedAt: number; finishedAt: number | null }[];
};

/** `cc-ci describe run NAME`. */
export function printRunDescription(d: DescribedRun): void {
  const { spec } = d;
  out(`Name:       ${d.name}`);
  out(`Recipe:     ${spec.spec.recipe}`);
  out(`Source:     ${withoutCredentials(spec.spec.source.repo)} @ ${spec.spec.source.ref}${d.commitSha ? ` (${d.commitSha})` : ''}`);
  out(`Lane:       ${d.lane}${d.laneNote ? ` (fell back to cold: ${d.laneNote})` : ''}`);
  out(`Trigger:    ${spec.spec.trigger ? JSON.stringify(spec.spec.trigger) : 'file'}`);
  out(`Phase:      ${d.phase}${d.step ? ` (step: ${d.step})` : ''}`);
  out(`Result:     ${d.result ?? '-'}`);
  out(`Reason:     ${d.reason ?? '-'}`);
  if (d.queuePosition) out(`Queue:      #${d.queuePosition}: ${d.waiting}`);
  out(`Attempt:    ${d.attempt}${d.retries.length ? ` (retried after: ${d.retries.map((r) => `#${r.attempt} ${r.reason}`).join('; ')})` : ''}`);
  out(`Created:    ${new Date(d.createdAt).toISOString()}`);
  out(`Duration:   ${duration(d.durationMs)}`);
  if (d.cancelRequested) out(`Cancel:     ${d.cancelReason ?? 'requested'}`);
  if (d.prunedAt !== null) out(`Pruned:     log, steps and files removed by retention on ${new Date(d.prunedAt).toISOString()}`);
  out('Tiers:');
  out(
    d.tiers.length
      ? table([['  TIER', 'RESULT', 'DURATION', 'REASON'], ...d.tiers.map((t) => [`  ${t.tier}`, t.result ?? '-', duration(t.durationMs), t.reason ?? ''])])
      : '  (not planned yet)',
  );
  out('Apps:');
  out(
    d.apps.length
      ? table([['  DOMAIN', 'PURPOSE', 'STATE', 'PORT'], ...d.apps.map((a) => [`  ${a.domain}`, a.purpose, a.state, a.port ? String(a.port) : '-'])])
      : '  (none)',
  );
  out('Understood:');
  out(d.understood ? d.understood.map((l) => `  ${l}`).join('\n') : '  (not read yet)');
  out('Customisation:');
  out(`  ${d.customization ? JSON.stringify(d.customization) : '(not loaded yet)'}`);
  out(`Evidence (${d.dir}):`);
  out(d.evidence.length ? d.evidence.map((e) => `  ${e.path} (${e.bytes} bytes)`).join('\n') : '  (none)');
  out('Steps:');
  out(
    table([
      ['  #', 'ATTEMPT', 'STEP', 'STATE', 'DURATION'],
      ...d.steps.slice(-40).map((s) => [`  ${s.id}`, String(s.attempt), s.name, s.state, duration(s.finishedAt ? s.finishedAt - s.startedAt : null)]),
    ]),
  );
}

/** Spec files of a name that could not be taken in: why `describe run` found no run. */
export function printInvalidSpecs(invalid: readonly InvalidSpecRow[]): number {
  for (const i of invalid) out(`${i.file}: invalid: ${i.error}`);
  return EXIT.error;
}
