import { isLightweightTag, releaseBelow, tagCommit } from '../../controller/clients/git.js';
import { type RunContext, type SubjectApp } from '../context.js';
import { CancelledError, InputError, TestFailure } from '../errors.js';
import { deployedState, ensureApp, leaseFor, type DesiredApp } from '../deploy.js';
import { releaseApp } from '../teardown.js';
import { spareIngressPort } from '../admission.js';
import type { TierRunner } from './runner.js';
import { checkMarker, newMarker, seedMarker, type MarkerPlace } from './data-marker.js';
import { WarmStore } from '../../state/warm-store.js';

/**
 * upgrade: the last release installs the way an operator installs it (`abra app deploy <domain>
 * <version>`, not chaos, so abra's own release checks apply), data is written through it, then
 * the same app is upgraded in place to the ref under test the way the original cc-ci did it —
 * the head checked out in the run's recipe clone and a chaos redeploy (`abra app deploy -C -f`)
 * — converges, serves, carries the chaos-version label of the head, and still has the data.
 */

export interface UpgradeBase {
  tag: string;
  commit: string;
  /** Why this release, for the log and `cc-ci describe run`. */
  why: string;
  lightweight: boolean;
}

export async function upgradeBase(ctx: RunContext): Promise<UpgradeBase | null> {
  const ws = ctx.workspace!;
  const gitOpts = ctx.gitOptions;
  let base: { tag: string; commit: string } | null;
  let why: string;
  if (ws.settings.upgradeBase) {
    try {
      base = { tag: ws.settings.upgradeBase, commit: await tagCommit(ws.recipeDir, ws.settings.upgradeBase, gitOpts) };
    } catch {
      throw new InputError(`settings upgradeBase "${ws.settings.upgradeBase}" is not a tag of the recipe repository`);
    }
    why = 'from settings (upgradeBase)';
  } else {
    base = await releaseBelow(ws.recipeDir, ws.commit, gitOpts);
    why = 'is the highest release tag below the ref (prereleases are never a base)';
  }
  if (!base) return null;
  const lightweight = await isLightweightTag(ws.recipeDir, base.tag, gitOpts);
  if (lightweight) why += "; it is a lightweight tag, which abra does not deploy as a release (the upgrade tier will show abra's refusal)";
  return { ...base, why, lightweight };
}

/**
 * The upgrade itself, from an app that serves the base (named `from` in the reason): test data
 * written through it, the app upgraded in place to the head (a chaos redeploy), which must carry
 * the head's label, converge, serve and still have the data. Both lanes climb it.
 */
async function upgradeInPlace(ctx: RunContext, baseApp: SubjectApp, from: string, seeded?: Seeded): Promise<{ reason: string }> {
  const ws = ctx.workspace!;
  const head = ws.commit.slice(0, 8);
  const { marker, place } = seeded ?? (await seedBase(ctx, baseApp));

  const upgraded = await ensureApp(ctx, { purpose: 'upgrade', commit: ws.commit, describe: `head ${head}` });
  ctx.subject.current = upgraded;
  const moved = deployedState(upgraded.services, upgraded.stack, { commit: ws.commit });
  if (!moved.at) throw new TestFailure(`the stack did not move to the head ${head}: it shows ${moved.shows}`);

  if (place.how === 'none') {
    return { reason: `${from} → head ${head} in place (${moved.shows}), converged and serving; data not checked: ${place.describe}` };
  }
  const check = await checkMarker(ctx, upgraded, 'upgrade', marker, false);
  if (!check.ok) {
    throw new TestFailure(`the upgrade from ${from} lost the data written before it (${place.describe}): ${check.found}`);
  }
  return { reason: `${from} → head ${head} in place (${moved.shows}), converged, serving, and the data written before it survived (${place.describe})` };
}

/** The test data the upgrade must keep, written through the base before it is upgraded. */
interface Seeded {
  marker: string;
  place: MarkerPlace;
}

/** The base release installing beside install (installBaseEarly), and how to stop it. */
export interface EarlyBase {
  app: Promise<{ baseApp: SubjectApp; seeded: Seeded }>;
  stop: AbortController;
}

async function seedBase(ctx: RunContext, baseApp: SubjectApp): Promise<Seeded> {
  const marker = newMarker('upgrade');
  const place = await seedMarker(ctx, baseApp, 'upgrade', marker, false);
  ctx.log('info', `test data before the upgrade: ${place.describe}`);
  return { marker, place };
}

/**
 * The quick lane's upgrade (docs/warm.md): the warm app, at its canonical version and holding its
 * canonical data, is upgraded in place to the head as an operator's chaos upgrade would.
 */
async function quickUpgrade(ctx: RunContext): Promise<{ reason: string }> {
  const canonical = new WarmStore(ctx.store).get(ctx.spec.spec.recipe)?.canonicalCommit;
  if (!canonical) throw new Error(`the warm app ${ctx.warmApp?.domain ?? ''} has no canonical version on record`);
  const baseApp = await ensureApp(ctx, { purpose: 'upgrade', commit: canonical, describe: `canonical ${canonical.slice(0, 8)}` });
  return upgradeInPlace(ctx, baseApp, `the warm app's canonical ${canonical.slice(0, 8)}`);
}

function baseWant(base: UpgradeBase): DesiredApp {
  return { purpose: 'upgrade', commit: base.commit, describe: `release ${base.tag}`, release: base.tag };
}

/**
 * Starts installing the upgrade's base release before the ladder climbs, beside the install tier
 * (docs/testing.md, How long a run takes), where the server allows a second app of the run: the
 * upgrade tier then finds it installed or installing. The lease and the app's own checkout are made
 * here, before install deploys anything, so the two deploys never share a checkout. Its failure
 * is the upgrade tier's to report; `abandonEarlyWork` stops it if the upgrade tier never runs.
 */
export async function installBaseEarly(ctx: RunContext): Promise<void> {
  if (ctx.warmApp || !ctx.config.overlapBaseInstall || ctx.early.upgradeBase) return;
  const tiers = ctx.store.getTiers(ctx.name);
  const pending = (tier: string) => tiers.some((t) => t.tier === tier && t.result === null);
  if (!pending('upgrade') || !pending('install') || ctx.workspace!.settings.expectedNA.upgrade) return;
  if (!spareIngressPort(ctx.store, ctx.config)) {
    ctx.log('info', 'upgrade base: installed when the upgrade tier starts (no spare ingress port for a second app now)');
    return;
  }
  const base = await upgradeBase(ctx);
  if (!base) return;
  const stop = new AbortController();
  const early = ctx.withSignal(AbortSignal.any([ctx.signal, stop.signal]));
  await leaseFor(early, 'upgrade');
  ctx.log('info', `upgrade base ${base.tag}: installing it now, beside install (overlapBaseInstall)`);
  // Installed and seeded: everything of the upgrade that comes before the head is deployed on it.
  const app = ensureApp(early, baseWant(base)).then(async (baseApp) => ({ baseApp, seeded: await seedBase(early, baseApp) }));
  // Observed by the upgrade tier, or dropped by abandonEarlyWork: never an unhandled rejection.
  app.catch(() => undefined);
  ctx.early.upgradeBase = { app, stop };
}

/** The ladder is over: early work no tier took is stopped and waited for, so nothing of it is
 *  leased or deployed after the attempt ends (teardown removes what it left). */
export async function abandonEarlyWork(ctx: RunContext): Promise<void> {
  const early = ctx.early.upgradeBase;
  if (!early) return;
  ctx.early.upgradeBase = null;
  early.stop.abort(new CancelledError('the upgrade tier did not run'));
  await early.app.catch(() => undefined);
}

export const upgradeTier: TierRunner = {
  name: 'upgrade',
  async applies(ctx) {
    if (ctx.warmApp) return { applies: true };
    const base = await upgradeBase(ctx);
    return base ? { applies: true } : { applies: false, reason: `no release tag below ${ctx.spec.spec.source.ref} to upgrade from` };
  },
  async run(ctx) {
    if (ctx.warmApp) return quickUpgrade(ctx);
    const base = (await upgradeBase(ctx))!;
    ctx.log('info', `upgrade base: ${base.tag} (${base.commit.slice(0, 8)}) ${base.why}`);

    const early = ctx.early.upgradeBase;
    ctx.early.upgradeBase = null;
    // The install app has done its job: it is removed in the background (recorded first; the run
    // is Done only once it is gone), unless its host port is needed for the base release now.
    if (ctx.subject.current) {
      const removal = releaseApp(ctx, ctx.subject.current.domain);
      ctx.subject.current = null;
      if (early || spareIngressPort(ctx.store, ctx.config)) removal.catch(() => undefined);
      else await removal;
    }

    const { baseApp, seeded } = await (early?.app ?? ensureApp(ctx, baseWant(base)).then((baseApp) => ({ baseApp, seeded: undefined }))).catch((e: unknown) => {
      if (e instanceof TestFailure && base.lightweight) {
        throw new TestFailure(
          `${e.message} — an operator cannot install release ${base.tag}: it is a lightweight tag; publish releases as annotated tags (git tag -a, as abra recipe release does)`,
        );
      }
      throw e;
    });
    return upgradeInPlace(ctx, baseApp, base.tag, seeded);
  },
};
