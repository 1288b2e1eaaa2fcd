import { existsSync } from 'node:fs';
import { readWarmFile, warmKeys } from '../../reconcilers/warm.js';
import { warmLogTail } from '../../reconcilers/warm-app.js';
import { AlreadyServingError, liveInstance } from '../../state/instance.js';
import { Manager } from '../runtime/manager.js';
import { WarmStore } from '../../state/warm-store.js';
import { writeWarmFile } from '../model/warm.js';
import { withoutCredentials } from '../model/redact.js';
import { warmRows, type WarmRow } from '../views/warm-view.js';
import { EXIT, UsageError, ago, loadEnv, openStore, out, table, type GlobalOptions } from './common.js';

/** The warm app rows of the state directory (none before the store exists). */
function rows(o: GlobalOptions): WarmRow[] {
  const env = loadEnv(o);
  const store = existsSync(env.paths.db) ? openStore(env.paths) : null;
  try {
    return warmRows(store, env.paths, env.config.domain.base);
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
      ['RECIPE', 'PROMOTED', 'CANONICAL', 'HEAD', 'HEALTH', 'HOLDER', 'RECONCILED', 'INFO'],
      ...list.map((w) => [
        w.recipe,
        short(w.promotedCommit),
        short(w.canonicalCommit),
        short(w.head),
        w.health,
        w.holder ?? '-',
        w.lastReconcileAt ? ago(w.lastReconcileAt) : '-',
        w.upkeep ?? w.healthReason ?? '',
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
  out(`App:        ${w.domain ?? '-'}`);
  out(
    `Canonical:  ${w.canonicalCommit ?? '-'}${w.canonicalVersion ? ` (version ${w.canonicalVersion})` : ''}${w.failedCommit ? ` (promoted ${w.failedCommit.slice(0, 12)} failed its health gate)` : ''}`,
  );
  out(`Health:     ${w.health}${w.healthReason ? `: ${w.healthReason}` : ''}`);
  out(`Upkeep:     ${w.upkeep ?? (w.returnPending ? `return to canonical after ${w.returnPending}` : '-')}`);
  out(`Snapshot:   ${w.snapshot ?? '-'}`);
  out(`Holder:     ${w.holder ?? '-'}`);
  out(`Reconciled: ${w.lastReconcileAt ? new Date(w.lastReconcileAt).toISOString() : '-'}`);
  const tail = warmLogTail(loadEnv(o).paths, recipe, 8);
  if (tail.length) {
    out('Upkeep log (last lines):');
    for (const l of tail) out(`  ${l}`);
  }
  return EXIT.passed;
}

/**
 * `cc-ci warm reconcile [RECIPE]`: one warm pass now — by the running `cc-ci serve` when there is
 * one (its Warm file is rewritten, a hint its watcher takes; the resync would take it anyway), else
 * here — then the status of each warm app. Exits 1 naming each warm app that is not healthy: what
 * the systemd timer of the NixOS module reports.
 */
export async function warmReconcileCommand(recipe: string | undefined, o: GlobalOptions & { waitSeconds?: string }): Promise<number> {
  const env = loadEnv(o, true);
  const store = openStore(env.paths, true);
  const waitMs = Number(o.waitSeconds ?? 120) * 1000;
  const started = Date.now();
  try {
    const recipes = warmKeys(env.paths, store).filter((r) => recipe === undefined || r === recipe);
    if (recipe !== undefined && recipes.length === 0) throw new UsageError(`no Warm object for ${recipe}`);
    const ws = new WarmStore(store);
    // Reconciled since the command started, and no upkeep left in progress (or the object is gone).
    const settled = (r: string, busy: boolean) =>
      readWarmFile(env.paths, r).kind === 'absent' || (!busy && (ws.get(r)?.lastReconcileAt ?? 0) >= started && !ws.get(r)?.upkeep);
    const server = liveInstance(store);
    let late: string[];
    if (server?.mode === 'serve') {
      for (const r of recipes) {
        const desired = readWarmFile(env.paths, r);
        if (desired.kind === 'present') writeWarmFile(env.paths, desired.spec);
      }
      while (!recipes.every((r) => settled(r, false)) && Date.now() - started < waitMs) await new Promise((r) => setTimeout(r, 250));
      late = recipes.filter((r) => !settled(r, false));
      if (late.length) throw new UsageError(`cc-ci serve (pid ${server.pid}) did not finish reconciling ${late.join(', ')} within ${waitMs / 1000}s`);
    } else {
      // No server: an embedded controller keeps the warm apps for one pass (its Run controller
      // takes no run of its own; a promotion run it submits waits for the next cc-ci serve).
      const manager = new Manager({ paths: env.paths, config: env.config, logger: env.logger, mode: 'run', only: '(warm reconcile)', warm: true });
      try {
        await manager.start();
      } catch (e) {
        manager.store.close();
        if (e instanceof AlreadyServingError) throw new UsageError(`another controller holds ${env.paths.root}: ${e.message}`);
        throw e;
      }
      const mine = new WarmStore(manager.store);
      const done = (r: string) =>
        readWarmFile(env.paths, r).kind === 'absent' || (!manager.warmBusy(r) && (mine.get(r)?.lastReconcileAt ?? 0) >= started && !mine.get(r)?.upkeep);
      try {
        while (!recipes.every(done) && Date.now() - started < waitMs) await new Promise((r) => setTimeout(r, 250));
        late = recipes.filter((r) => !done(r));
      } finally {
        await manager.stop('warm pass over');
      }
      if (late.length) throw new UsageError(`the warm pass did not finish ${late.join(', ')} within ${waitMs / 1000}s`);
    }
    const passed = warmRows(store, env.paths).filter((w) => recipes.includes(w.recipe));
    const unhealthy = passed.filter((w) => w.health !== 'healthy');
    for (const w of passed) out(`${w.recipe}: ${w.health}${w.healthReason ? `: ${w.healthReason}` : ''}`);
    return unhealthy.length ? EXIT.failed : EXIT.passed;
  } finally {
    store.close();
  }
}
