import { releaseBelow, tagCommit } from '../../controller/git.js';
import { InputError, TestFailure, type RunContext } from '../../reconcilers/context.js';
import { ensureApp } from '../../reconcilers/deploy.js';
import { releaseApp } from '../../reconcilers/teardown.js';
import type { TierRunner } from '../tiers.js';
import { checkMarker, newMarker, seedMarker } from './data-marker.js';

/**
 * upgrade: the last release installs, data is written through it, then the same app is
 * upgraded in place to the ref under test the way the original cc-ci did it — the head checked
 * out in the run's recipe clone and a chaos redeploy (`abra app deploy -C -f`) — converges,
 * serves, carries the chaos-version label of the head, and still has the data.
 */

async function upgradeBase(ctx: RunContext): Promise<{ tag: string; commit: string } | null> {
  const ws = ctx.workspace!;
  const gitOpts = ctx.gitOptions;
  if (ws.settings.upgradeBase) {
    try {
      return { tag: ws.settings.upgradeBase, commit: await tagCommit(ws.recipeDir, ws.settings.upgradeBase, gitOpts) };
    } catch {
      throw new InputError(`settings upgradeBase "${ws.settings.upgradeBase}" is not a tag of the recipe repository`);
    }
  }
  return releaseBelow(ws.recipeDir, ws.commit, gitOpts);
}

export const upgradeTier: TierRunner = {
  name: 'upgrade',
  async applies(ctx) {
    const base = await upgradeBase(ctx);
    return base ? { applies: true } : { applies: false, reason: `no release tag below ${ctx.spec.spec.source.ref} to upgrade from` };
  },
  async run(ctx) {
    const ws = ctx.workspace!;
    const base = (await upgradeBase(ctx))!;
    const head = ws.commit.slice(0, 8);
    ctx.log('info', `upgrade base: ${base.tag} (${base.commit.slice(0, 8)})${ws.settings.upgradeBase ? ' from settings' : ', the highest release below the ref'}`);

    // One app at a time: the install app has done its job.
    if (ctx.subject.current) {
      await releaseApp(ctx, ctx.subject.current.domain);
      ctx.subject.current = null;
    }

    const baseApp = await ensureApp(ctx, { purpose: 'upgrade', commit: base.commit, describe: `release ${base.tag}` });
    const marker = newMarker('upgrade');
    const place = await seedMarker(ctx, baseApp, 'upgrade', marker, false);
    ctx.log('info', `test data before the upgrade: ${place.describe}`);

    const upgraded = await ensureApp(ctx, { purpose: 'upgrade', commit: ws.commit, describe: `head ${head}` });
    ctx.subject.current = upgraded;
    const app = upgraded.services.find((s) => s.name === `${upgraded.stack}_app`);
    const chaosVersion = app?.labels[`coop-cloud.${upgraded.stack}.chaos-version`] ?? '';
    if (!chaosVersion.startsWith(head)) {
      throw new TestFailure(`the stack did not move to the head: chaos-version label is "${chaosVersion}", expected ${head}`);
    }

    if (place.how === 'none') {
      return { reason: `${base.tag} → head ${head} in place (chaos-version ${chaosVersion}), converged and serving; data not checked: ${place.describe}` };
    }
    const check = await checkMarker(ctx, upgraded, 'upgrade', marker, false);
    if (!check.ok) {
      throw new TestFailure(`the upgrade from ${base.tag} lost the data written before it (${place.describe}): ${check.found}`);
    }
    return { reason: `${base.tag} → head ${head} in place (chaos-version ${chaosVersion}), converged, serving, and the data written before it survived (${place.describe})` };
  },
};
