import { readdirSync } from 'node:fs';
import type { StatePaths } from '../model/paths.js';
import { type WarmSpec, recipeOfWarmFile } from '../model/warm.js';
import type { Store } from '../../state/store.js';
import { WarmStore, type WarmHealth, type WarmSnapshot } from '../../state/warm-store.js';

function describeSnapshot(s: WarmSnapshot): string {
  const at = `at ${s.commit.slice(0, 12)}, ${new Date(s.at).toISOString()}`;
  if (s.kind === 'abra') return `abra backup snapshot ${s.id} ${at}`;
  if (s.kind === 'volumes') return `copies of ${s.volumes.length} volume(s) ${at}`;
  return `none: ${s.why}`;
}

/** What `cc-ci get warm`, `describe warm` and the recipe page show of a recipe's warm app. */
export interface WarmRow {
  recipe: string;
  source: { repo: string; branch: string } | null;
  file: string | null;
  head: string | null;
  headError: string | null;
  promotedCommit: string | null;
  promotedRun: string | null;
  promotedAt: number | null;
  candidateRun: string | null;
  health: WarmHealth | 'pending';
  healthReason: string | null;
  holder: string | null;
  lastReconcileAt: number | null;
  /** The warm app: its domain, the version it is at (last gated), its upkeep in progress, its data snapshot. */
  domain: string | null;
  canonicalCommit: string | null;
  canonicalVersion: string | null;
  failedCommit: string | null;
  upkeep: string | null;
  returnPending: string | null;
  snapshot: string | null;
  lastGateAt: number | null;
}

/** Every Warm object: those with a status row, and files the controller has not looked at yet. */
export function warmRows(store: Store | null, paths: StatePaths, domainBase: string | null = null): WarmRow[] {
  const rows = new Map<string, WarmRow>();
  for (const w of store ? new WarmStore(store).list() : []) {
    const spec = JSON.parse(w.specJson) as WarmSpec;
    rows.set(w.recipe, {
      recipe: w.recipe,
      source: spec.spec.source,
      file: w.specPath,
      head: w.headCommit,
      headError: w.headError,
      promotedCommit: w.promotedCommit,
      promotedRun: w.promotedRun,
      promotedAt: w.promotedAt,
      candidateRun: w.candidateRun,
      health: w.health,
      healthReason: w.healthReason,
      holder: w.holder,
      lastReconcileAt: w.lastReconcileAt,
      domain: domainBase ? `warm-${w.recipe}.${domainBase}` : null,
      canonicalCommit: w.canonicalCommit,
      canonicalVersion: w.canonicalVersion,
      failedCommit: w.failedCommit,
      upkeep: w.upkeep,
      returnPending: w.returnPending,
      snapshot: w.snapshot ? describeSnapshot(w.snapshot) : null,
      lastGateAt: w.lastGateAt,
    });
  }
  let files: string[];
  try {
    files = readdirSync(paths.warm);
  } catch {
    files = [];
  }
  for (const f of files) {
    const recipe = recipeOfWarmFile(f);
    if (!recipe || rows.has(recipe)) continue;
    rows.set(recipe, {
      recipe,
      source: null,
      file: `${paths.warm}/${f}`,
      head: null,
      headError: null,
      promotedCommit: null,
      promotedRun: null,
      promotedAt: null,
      candidateRun: null,
      health: 'pending',
      healthReason: 'not looked at yet: cc-ci serve reconciles warm apps',
      holder: null,
      lastReconcileAt: null,
      domain: domainBase ? `warm-${recipe}.${domainBase}` : null,
      canonicalCommit: null,
      canonicalVersion: null,
      failedCommit: null,
      upkeep: null,
      returnPending: null,
      snapshot: null,
      lastGateAt: null,
    });
  }
  return [...rows.values()].sort((a, b) => a.recipe.localeCompare(b.recipe));
}
