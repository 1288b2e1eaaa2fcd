import { chmodSync } from 'node:fs';
import { dirname } from 'node:path';
import { ok, runProcess } from '../controller/clients/process.js';
import type { RunContext, SubjectApp } from './context.js';
import type { FileFromLayer, HookName } from '../recipes/customization.js';
import { runRepoCode } from './sandboxed.js';

/**
 * Runs a recipe's hook: an executable file from the customisation layers, started with an
 * argument array (never a shell), a timeout, the run's cancel signal, and an environment that
 * tells it where the app is. Hooks from the recipe repository and cc-ci's bundled ones run in the
 * sandbox (reconcilers/sandboxed.ts); the operator's run on the host. Its output goes into the
 * run's log.
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
    ...(app ? { BASE_URL: app.baseUrl, APP_HOST: app.host, DOMAIN: app.domain, STACK_NAME: app.stack } : {}),
    ...extra,
  };
}

/** The operator's own hooks (their layer of the customisation) are trusted like cc-ci's config:
 *  they run on the host and may drive the app through abra (ABRA_DIR). */
function trusted(file: FileFromLayer): boolean {
  return file.source === 'operator';
}

/**
 * A line `::add-mask::VALUE` (GitHub Actions' spelling) from a hook or a check registers VALUE as a
 * secret of the run: the line itself is not logged, and VALUE is masked wherever it appears from
 * then on (a password the install-steps hook inserted with `abra app secret insert`). True when
 * the line was such a directive.
 */
export function maskDirective(ctx: RunContext, line: string): boolean {
  const m = /^::add-mask::(.+)$/.exec(line.trim());
  if (!m?.[1]) return false;
  ctx.redactor.add(m[1]);
  return true;
}

/** Logs a batch of a hook's or check's lines after `prefix`, minus its `::add-mask::` directives
 *  (which it obeys); the lines it logged. */
export function logProgramLines(ctx: RunContext, stream: 'out' | 'err', lines: readonly string[], prefix: string): string[] {
  const kept = lines.filter((line) => !maskDirective(ctx, line));
  ctx.logLines(
    stream,
    kept.map((line) => `${prefix}${line}`),
  );
  return kept;
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
  const onLines = (stream: 'out' | 'err', lines: readonly string[]): void => void logProgramLines(ctx, stream, lines, '  ');
  // A file the hook is handed (verify-backup's archive) is readable in the sandbox, nothing else of the run.
  const handed = Object.entries(extraEnv)
    .filter(([k, v]) => k.endsWith('_FILE') && v.startsWith('/'))
    .map(([, v]) => v);
  // The sandbox user reads it through its own bind; the directory it is in stays closed.
  if (!trusted(file)) for (const f of handed) chmodSync(f, 0o644);
  const r = await ctx.step(
    `hook ${hook}`,
    () =>
      trusted(file)
        ? runProcess({
            cmd: file.path,
            args,
            env: { ...scriptEnv(ctx, app, extraEnv), ABRA_DIR: ctx.abraDir },
            timeoutMs: limitSeconds * 1000,
            signal: ctx.signal,
            tracker: ctx.tracker,
            cwd: ctx.workspace?.recipeDir ?? ctx.dir,
            onLines,
          })
        : runRepoCode(ctx, {
            key: `hook-${hook}`,
            cmd: file.path,
            args,
            env: scriptEnv(ctx, app, extraEnv),
            readOnly: [dirname(file.path), ...handed],
            timeoutMs: limitSeconds * 1000,
            app,
            onLines,
          }),
    `${file.path} ${args.join(' ')} (${file.source}${trusted(file) ? ', on the host' : ', sandboxed'})`,
  );
  ctx.throwIfCancelled();
  const output = `${r.stdout}\n${r.stderr}`.trim();
  return { ran: true, ok: ok(r), output: r.timedOut ? `timed out after ${limitSeconds}s (hookTimeoutSeconds) and was stopped` : output };
}
