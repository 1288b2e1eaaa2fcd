import type { TierName } from '../../state/types.js';
import type { TierRunner } from './runner.js';
import { customTier } from './custom.js';
import { backupTier } from './backup.js';
import { installTier } from './install.js';
import { restoreTier } from './restore.js';
import { upgradeTier } from './upgrade.js';

export const TIER_RUNNERS: Record<TierName, TierRunner> = {
  install: installTier,
  upgrade: upgradeTier,
  backup: backupTier,
  restore: restoreTier,
  custom: customTier,
};
