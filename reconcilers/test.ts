import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { junitXml } from '../controller/model/junit.js';
import { TIER_RUNNERS } from './tiers/index.js';
import type { TierName, TierRecord } from '../state/types.js';
import { type RunContext } from './context.js';
import { CancelledError, DeadlineError, ShutdownError, TestFailure } from './errors.js';
import { diagnose, diagnosticsFile } from './deploy.js';
import { abandonEarlyWork, installBaseEarly } from './tiers/upgrade.js';

/**
 * The test reconciler. Desired: every tier of the run evaluated, in order, as a ladder — a tier
 * that does not apply is `n/a` and the climb goes on; a tier that fails stops it and the
 * tiers above are `skipped`. Observed through the run's tier records, so a tier with a result
 * is never run again.
 */
export async function reconcileTiers(ctx: RunContext): Promise<void> {
  await installBaseEarly(ctx);
  try {
    await climb(ctx);
  } finally {
    await abandonEarlyWork(ctx);
  }
}

async function climb(ctx: RunContext): Promise<void> {
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
  writeTierJUnit(ctx.dir, ctx.spec.spec.recipe, tier, { skipped: `${result}: ${reason}` }, 0);
}

export interface TierOutcome {
  failure?: string;
  /** The tier could not be evaluated: cancelled, out of run time, an infrastructure fault. */
  error?: string;
  skipped?: string;
  passed?: string;
}

/** One JUnit file per tier, whatever became of it, unless one is there already (the tier's
 *  runner wrote a richer one of its own, or the tier was recorded before). */
export function writeTierJUnit(runDir: string, recipe: string, tier: TierName, outcome: TierOutcome, ms: number): void {
  const dir = join(runDir, 'evidence');
  const file = join(dir, `junit-${tier}.xml`);
  if (existsSync(file)) return;
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    file,
    junitXml(tier, [
      {
        name: `${recipe} ${tier}`,
        classname: `cc-ci.${recipe}`,
        timeSeconds: ms / 1000,
        ...(outcome.failure ? { failure: { message: outcome.failure } } : {}),
        ...(outcome.error ? { error: { message: outcome.error } } : {}),
        ...(outcome.skipped !== undefined ? { skipped: outcome.skipped } : {}),
        ...(outcome.passed ? { systemOut: outcome.passed } : {}),
      },
    ]),
  );
}

/** Runs one tier under its own deadline: the Run reconciler, seeing the tier's recorded start
 *  pass `timeouts.tiers.<tier>`, stops it through the handle given to `onTier`. Returns whether
 *  it passed. */
async function runTier(ctx: RunContext, tier: TierName): Promise<boolean> {
  const deadline = new AbortController();
  const tctx = ctx.withSignal(AbortSignal.any([ctx.signal, deadline.signal]));
  const recipe = ctx.spec.spec.recipe;
  ctx.store.startTier(ctx.name, tier);
  ctx.onTier(tier, deadline);
  ctx.setPhase('Testing', `tier ${tier}`);
  ctx.log('tier', `${tier}: started`);
  const started = Date.now();
  try {
    const { reason } = await TIER_RUNNERS[tier].run(tctx);
    ctx.store.finishTier(ctx.name, tier, 'pass', reason);
    ctx.log('tier', `${tier}: pass in ${seconds(started)} — ${reason}`);
    writeTierJUnit(ctx.dir, recipe, tier, { passed: reason }, Date.now() - started);
    return true;
  } catch (e) {
    const message = ctx.redactor.apply(e instanceof Error ? e.message : String(e));
    // The run's own cancel or deadline ends the run, not just the tier; so does a fault of
    // cc-ci or the infrastructure. The tier still gets its JUnit file, saying which.
    if (ctx.signal.aborted || !(e instanceof TestFailure || (e instanceof DeadlineError && deadline.signal.aborted))) {
      const why = ctx.signal.aborted ? runEnded(ctx.signal.reason, message) : `error: ${message}`;
      writeTierJUnit(ctx.dir, recipe, tier, { error: `${tier} interrupted — ${why}` }, Date.now() - started);
      throw e;
    }
    ctx.store.finishTier(ctx.name, tier, 'fail', message);
    ctx.log('tier', `${tier}: FAIL in ${seconds(started)} — ${message}`);
    writeTierJUnit(ctx.dir, recipe, tier, { failure: message }, Date.now() - started);
    await failureDiagnostics(ctx);
    return false;
  } finally {
    ctx.onTier(null, null);
  }
}

function runEnded(reason: unknown, fallback: string): string {
  if (reason instanceof CancelledError) return `cancelled: ${reason.message}`;
  if (reason instanceof ShutdownError) return `the controller shut down: ${reason.message}`;
  return reason instanceof Error ? reason.message : fallback;
}

/**
 * After a failed tier, the state of every app of the attempt still standing — each service's
 * tasks, last task error and log tail — into evidence/diagnostics-<stack>.txt: after teardown
 * it is all a maintainer has. A deploy that failed wrote its own at the moment it failed.
 */
async function failureDiagnostics(ctx: RunContext): Promise<void> {
  // An app already being removed (install's, once upgrade began) is not what failed.
  const apps = ctx.store.appsOfRun(ctx.name).filter((a) => a.attempt === ctx.attempt && a.state !== 'released' && a.state !== 'tearing-down');
  for (const app of apps) {
    if (existsSync(diagnosticsFile(ctx, app.stack))) continue;
    try {
      const services = await ctx.docker.stackServices(app.stack);
      await diagnose(ctx, app.stack, services, { quiet: true });
      ctx.log('info', `diagnostics of ${app.stack}: ${join('evidence', `diagnostics-${app.stack}.txt`)}`);
    } catch (e) {
      if (ctx.signal.aborted) throw e;
      ctx.log('warn', `could not collect diagnostics of ${app.stack}: ${(e as Error).message}`);
    }
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
