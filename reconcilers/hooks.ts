import { ok, runProcess } from '../controller/clients/process.js';
import type { RunContext, SubjectApp } from './context.js';
import type { HookName } from '../recipes/customization.js';

/**
 * Runs a recipe's hook: an executable file from the customisation layers, started with an
 * argument array (never a shell), a timeout, the run's cancel signal, and an environment that
 * tells it where the app is. Its output goes into the run's log.
 */

export interface HookResult {
  ran: boolean;
  ok: boolean;
  output: string;
}

/** What every hook and custom test is told about the run and its app, as environment variables
 *  (docs/testing.md lists them). */
export function scriptEnv(ctx: RunContext, app: SubjectApp | null, extra: Record<string, string> = {}): Record<string, string> {
  return {
    CCCI_RUN: ctx.name,
    RECIPE: ctx.spec.spec.recipe,
    RECIPE_DIR: ctx.workspace?.recipeDir ?? '',
    ABRA_DIR: ctx.abraDir,
    ...(app ? { BASE_URL: app.baseUrl, APP_HOST: app.host, DOMAIN: app.domain, STACK_NAME: app.stack } : {}),
    ...extra,
  };
}

export async function runHook(
  ctx: RunContext,
  hook: HookName,
  app: SubjectApp | null,
  args: string[] = [],
  extraEnv: Record<string, string> = {},
): Promise<HookResult> {
  const file = ctx.workspace?.customization.hooks[hook];
  if (!file) return { ran: false, ok: true, output: '' };
  const limitSeconds = ctx.workspace?.settings.hookTimeoutSeconds ?? 300;
  const r = await ctx.step(
    `hook ${hook}`,
    () =>
      runProcess({
        cmd: file.path,
        args,
        env: scriptEnv(ctx, app, extraEnv),
        timeoutMs: limitSeconds * 1000,
        signal: ctx.signal,
        tracker: ctx.tracker,
        cwd: ctx.workspace?.recipeDir ?? ctx.dir,
        onLine: (stream, line) => ctx.log(stream, `  ${line}`),
      }),
    `${file.path} ${args.join(' ')} (${file.source})`,
  );
  ctx.throwIfCancelled();
  const output = `${r.stdout}\n${r.stderr}`.trim();
  return { ran: true, ok: ok(r), output: r.timedOut ? `timed out after ${limitSeconds}s (hookTimeoutSeconds) and was stopped` : output };
}
