import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tierSeconds } from '../controller/config.js';
import { junitXml } from '../controller/junit.js';
import { TIER_RUNNERS } from '../recipes/tiers.js';
import type { TierName, TierRecord } from '../state/types.js';
import { CancelledError, DeadlineError, TestFailure, type RunContext } from './context.js';

/**
 * The test reconciler. Desired: every tier of the run evaluated, in order, as a ladder — a tier
 * that does not apply is `n/a` and the climb goes on; a tier that fails stops it and the
 * tiers above are `skipped`. Observed through the run's tier records, so a tier with a result
 * is never run again.
 */
export async function reconcileTiers(ctx: RunContext): Promise<void> {
  let failed: TierName | null = null;
  for (const t of ctx.store.getTiers(ctx.name)) {
    if (t.result !== null) {
      if (t.result === 'fail') failed = t.tier;
      continue;
    }
    if (failed) {
      notRun(ctx, t.tier, 'skipped', `not run: ${failed} failed`);
      continue;
    }
    const expectedNA = ctx.workspace?.settings.expectedNA[t.tier];
    if (expectedNA) {
      notRun(ctx, t.tier, 'n/a', `${expectedNA} (declared by the recipe's settings)`);
      continue;
    }
    const runner = TIER_RUNNERS[t.tier];
    const applies = await runner.applies(ctx);
    if (!applies.applies) {
      notRun(ctx, t.tier, 'n/a', applies.reason);
      continue;
    }
    if (!(await runTier(ctx, t.tier))) failed = t.tier;
  }
}

function notRun(ctx: RunContext, tier: TierName, result: 'skipped' | 'n/a', reason: string): void {
  ctx.store.finishTier(ctx.name, tier, result, reason);
  ctx.log('tier', `${tier}: ${result} (${reason})`);
  writeJUnit(ctx, tier, { skipped: `${result}: ${reason}` }, 0);
}

/** One JUnit file per tier, unless the tier's runner wrote a richer one of its own. */
function writeJUnit(ctx: RunContext, tier: TierName, outcome: { failure?: string; skipped?: string; passed?: string }, ms: number): void {
  const dir = join(ctx.dir, 'evidence');
  const file = join(dir, `junit-${tier}.xml`);
  if (existsSync(file)) return;
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    file,
    junitXml(tier, [
      {
        name: `${ctx.spec.spec.recipe} ${tier}`,
        classname: `cc-ci.${ctx.spec.spec.recipe}`,
        timeSeconds: ms / 1000,
        ...(outcome.failure ? { failure: { message: outcome.failure } } : {}),
        ...(outcome.skipped !== undefined ? { skipped: outcome.skipped } : {}),
        ...(outcome.passed ? { systemOut: outcome.passed } : {}),
      },
    ]),
  );
}

/** Runs one tier under its own deadline. Returns whether it passed. */
async function runTier(ctx: RunContext, tier: TierName): Promise<boolean> {
  const limitS = tierSeconds(ctx.config, tier);
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(new DeadlineError(`timed out in ${tier} after ${limitS}s`)), limitS * 1000);
  const tctx = ctx.withSignal(AbortSignal.any([ctx.signal, deadline.signal]));
  ctx.store.startTier(ctx.name, tier);
  ctx.setPhase('Testing', `tier ${tier}`);
  ctx.log('tier', `${tier}: started`);
  const started = Date.now();
  try {
    const { reason } = await TIER_RUNNERS[tier].run(tctx);
    ctx.store.finishTier(ctx.name, tier, 'pass', reason);
    ctx.log('tier', `${tier}: pass in ${seconds(started)} — ${reason}`);
    writeJUnit(ctx, tier, { passed: reason }, Date.now() - started);
    return true;
  } catch (e) {
    // The run's own cancel or deadline ends the run, not just the tier.
    if (ctx.signal.aborted) throw e;
    if (e instanceof TestFailure || (e instanceof DeadlineError && deadline.signal.aborted)) {
      ctx.store.finishTier(ctx.name, tier, 'fail', e.message);
      ctx.log('tier', `${tier}: FAIL in ${seconds(started)} — ${e.message}`);
      writeJUnit(ctx, tier, { failure: e.message }, Date.now() - started);
      return false;
    }
    if (e instanceof CancelledError) throw e;
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

function seconds(since: number): string {
  return `${((Date.now() - since) / 1000).toFixed(1)}s`;
}

/** The run's verdict from its tiers: any fail → failed; a pass and no fail → passed. A run in
 *  which no tier applied proved nothing, and says so rather than passing. */
export function verdict(tiers: TierRecord[]): { result: 'passed' | 'failed' | 'error'; reason: string } {
  const fail = tiers.find((t) => t.result === 'fail');
  if (fail) return { result: 'failed', reason: `${fail.tier} failed: ${fail.reason ?? ''}` };
  const passed = tiers.filter((t) => t.result === 'pass').map((t) => t.tier);
  if (passed.length === 0) return { result: 'error', reason: `no requested tier applied (${tiers.map((t) => `${t.tier}: ${t.reason ?? ''}`).join('; ')})` };
  const na = tiers.filter((t) => t.result === 'n/a').map((t) => t.tier);
  return { result: 'passed', reason: `passed: ${passed.join(', ')}${na.length ? `; n/a: ${na.join(', ')}` : ''}` };
}
