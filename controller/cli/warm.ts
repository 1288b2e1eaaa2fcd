import { existsSync } from 'node:fs';
import { withoutCredentials } from '../model/redact.js';
import { warmRows, type WarmRow } from '../views/warm-view.js';
import { EXIT, UsageError, ago, loadEnv, openStore, out, table, type GlobalOptions } from './common.js';

/** The warm app rows of the state directory (none before the store exists). */
function rows(o: GlobalOptions): WarmRow[] {
  const env = loadEnv(o);
  const store = existsSync(env.paths.db) ? openStore(env.paths) : null;
  try {
    return warmRows(store, env.paths);
  } finally {
    store?.close();
  }
}

const short = (sha: string | null): string => (sha ? sha.slice(0, 12) : '-');

/** `cc-ci get warm [-o json]`. */
export function getWarmCommand(o: GlobalOptions & { output?: string }): number {
  const list = rows(o);
  if (o.output === 'json') {
    out(JSON.stringify({ warm: list }, null, 2));
    return EXIT.passed;
  }
  if (list.length === 0) {
    out('No warm apps. Configure one with `cc-ci apply -f warm.yaml` (docs/warm.md).');
    return EXIT.passed;
  }
  out(
    table([
      ['RECIPE', 'PROMOTED', 'HEAD', 'HEALTH', 'HOLDER', 'RECONCILED', 'INFO'],
      ...list.map((w) => [
        w.recipe,
        short(w.promotedCommit),
        short(w.head),
        w.health,
        w.holder ?? '-',
        w.lastReconcileAt ? ago(w.lastReconcileAt) : '-',
        w.healthReason ?? '',
      ]),
    ]),
  );
  return EXIT.passed;
}

/** `cc-ci describe warm RECIPE`. */
export function describeWarmCommand(recipe: string, o: GlobalOptions): number {
  const w = rows(o).find((r) => r.recipe === recipe);
  if (!w) throw new UsageError(`no Warm object for ${recipe}`);
  out(`Recipe:     ${w.recipe}`);
  out(`Source:     ${w.source ? `${withoutCredentials(w.source.repo)} branch ${w.source.branch}` : '-'}`);
  out(`File:       ${w.file ?? '-'}`);
  out(`Head:       ${w.head ?? '-'}${w.headError ? ` (cannot read: ${w.headError})` : ''}`);
  out(`Promoted:   ${w.promotedCommit ?? '-'}${w.promotedRun ? ` by ${w.promotedRun}` : ''}${w.promotedAt ? `, ${new Date(w.promotedAt).toISOString()}` : ''}`);
  out(`Candidate:  ${w.candidateRun ?? '-'}`);
  out(`Health:     ${w.health}${w.healthReason ? `: ${w.healthReason}` : ''}`);
  out(`Holder:     ${w.holder ?? '-'}`);
  out(`Reconciled: ${w.lastReconcileAt ? new Date(w.lastReconcileAt).toISOString() : '-'}`);
  return EXIT.passed;
}
