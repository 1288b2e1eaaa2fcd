import { TestFailure } from '../errors.js';
import { subjectApp } from '../deploy.js';
import type { TierRunner } from './runner.js';
import { backupApplies, backupStep, failedHooks, settle, takeBackup } from './backup.js';
import { checkMarker, mutateData } from './data-marker.js';

/**
 * restore: change the data the backup holds, `abra app restore` the snapshot (under a
 * pseudo-terminal), converge again, and the data written before the backup is back. Where no
 * test data could be written (no hooks, no backed-up volume that can hold it), the restore still
 * runs and the app must converge and serve after it, and the reason says the data was not checked.
 */
export const restoreTier: TierRunner = {
  name: 'restore',
  applies: async (ctx) => backupApplies(ctx),
  async run(ctx) {
    // Restore alone (tiers: [restore]) takes its own backup first.
    const taken = ctx.backup.current ?? (await takeBackup(ctx));
    const app = await subjectApp(ctx);

    if (taken.checked) {
      // The data in question is what was written before the backup: hooks see the op "backup".
      const how = await mutateData(ctx, app, 'backup', taken.marker);
      const changed = await checkMarker(ctx, app, 'backup', taken.marker, true);
      if (changed.ok) {
        throw new TestFailure(`changing the data before the restore did not change it (${how}); the restore could prove nothing`);
      }
      ctx.log('info', `data changed before the restore (${how}): ${changed.found}`);
    }

    const said = await backupStep(ctx, 'abra app restore', () => ctx.abra.restore(app.domain, taken.snapshot), `${app.domain} snapshot ${taken.snapshot}`);
    const hooks = failedHooks(said);
    if (hooks.length) throw new TestFailure(`the restore ran, but a restore hook failed (backup-bot-two carries on without it): ${hooks.join(' | ')}`);
    // Restores restart containers: converge and serve again before looking.
    const after = await settle(ctx, app);
    if (!taken.checked) {
      return { reason: `snapshot ${taken.snapshot} restored; converged and serving; data not checked: ${taken.where}` };
    }
    const back = await checkMarker(ctx, after, 'backup', taken.marker, true);
    if (!back.ok) {
      throw new TestFailure(`the restore of snapshot ${taken.snapshot} did not bring the data back (${taken.where}): ${back.found}`);
    }
    return { reason: `snapshot ${taken.snapshot} restored over changed data; converged, serving, and the data is back (${taken.where})` };
  },
};
