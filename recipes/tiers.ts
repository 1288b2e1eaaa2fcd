import type { RunContext } from '../reconcilers/context.js';
import type { TierName } from '../state/types.js';
import { customTier } from './_generic/custom.js';
import { backupTier } from './_generic/backup.js';
import { installTier } from './_generic/install.js';
import { restoreTier } from './_generic/restore.js';
import { upgradeTier } from './_generic/upgrade.js';

/**
 * A tier runner: the operations and assertions of one rung of the ladder. It says whether it
 * applies to the recipe (`n/a` with a reason does not stop the climb) and, when run, either
 * returns `pass` with what it saw or throws TestFailure with a reason a maintainer can act on.
 */
export interface TierRunner {
  name: TierName;
  applies(ctx: RunContext): Promise<{ applies: true } | { applies: false; reason: string }>;
  run(ctx: RunContext): Promise<{ reason: string }>;
}

export const TIER_RUNNERS: Record<TierName, TierRunner> = {
  install: installTier,
  upgrade: upgradeTier,
  backup: backupTier,
  restore: restoreTier,
  custom: customTier,
};
