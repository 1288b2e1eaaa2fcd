import { appendFileSync, copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ComposeError, splitComposeFile } from '../controller/model/compose-model.js';
import { EnvFile } from '../controller/model/envfile.js';
import { stackName } from '../controller/model/naming.js';
import { deployEnv, readRecipeFacts, type RecipeFacts } from '../controller/clients/recipe-facts.js';
import { OVERLAY_FILE, type Settings } from '../recipes/customization.js';
import { type RunContext } from './context.js';
import { TestFailure } from './errors.js';
import { appEnvPath } from '../controller/model/paths.js';

/**
 * The env cc-ci gives a run's app, and what that app's compose files say with it. cc-ci writes
 * the app's `.env` itself (never through `abra app config`), so one function decides every
 * value, for the real `.env` after `abra app new` and for the prediction the run logs at prepare.
 */

/** The overlay cc-ci adds in the local ingress mode (no Traefik): the web port, host-published. */
export const INGRESS_OVERLAY = 'compose.ccci-ingress.yml';
/** Marks an .env as configured by cc-ci for a run; also tells the janitor whose app it is. */
export const RUN_MARKER = 'CCCI_RUN';
/** Files cc-ci writes into a run's recipe checkout. */
export const CCCI_FILES = [INGRESS_OVERLAY, OVERLAY_FILE] as const;

/** Stands in for the app's domain before one is leased (the prediction at prepare). */
export const PREDICTED_DOMAIN = 'app.ccci.invalid';

/**
 * Tells git — and abra, which asks git whether the recipe has local changes — that cc-ci's own
 * files in the checkout are not the recipe's: with them in `.git/info/exclude` the tree stays
 * clean, so a release deploys the way an operator deploys it (not in chaos mode) and chaos
 * deploys of the head carry no `+U`. abra's go-git reads `.git/info/exclude` too [R].
 */
export function excludeCcciFiles(recipeDir: string): void {
  const info = join(recipeDir, '.git', 'info');
  mkdirSync(info, { recursive: true });
  const file = join(info, 'exclude');
  const have = existsSync(file) ? readFileSync(file, 'utf8').split('\n') : [];
  const missing = CCCI_FILES.map((f) => `/${f}`).filter((l) => !have.includes(l));
  if (missing.length) appendFileSync(file, `${have.length && have[have.length - 1] !== '' ? '\n' : ''}# cc-ci's own files\n${missing.join('\n')}\n`);
}

/** The recipe's compose files named by an env (COMPOSE_FILE, default compose.yml), cc-ci's overlays left out. */
export function recipeComposeFiles(env: EnvFile): string[] {
  return splitComposeFile(env.resolved('COMPOSE_FILE')).filter((f) => !(CCCI_FILES as readonly string[]).includes(f));
}

/**
 * The run's edits to an app env: its domain (abra's `app new` replaces only
 * `<recipe>.example.com`, and recipes ship `.env.sample`s with other domains — docs/abra-double.md, The contract),
 * no ACME, the deploy timeout where the recipe reads TIMEOUT, the settings' extra env, and
 * COMPOSE_FILE spelled out in full with cc-ci's overlays after the recipe's files (an unset
 * COMPOSE_FILE means compose.yml, which `"$COMPOSE_FILE:x"` would have lost).
 */
export interface RunEnv {
  run: string;
  domain: string;
  settings: Pick<Settings, 'deployTimeoutSeconds' | 'extraEnv'>;
  /** The customisation has a compose overlay (compose.ccci.yml). */
  overlay: boolean;
  /** Local ingress: cc-ci's overlay publishes the web port on the host. */
  ingressOverlay: boolean;
}

export function applyRunEnv(env: EnvFile, o: RunEnv): void {
  env.set('DOMAIN', o.domain);
  env.set('LETS_ENCRYPT_ENV', '');
  env.set('TIMEOUT', String(Math.round(o.settings.deployTimeoutSeconds)));
  for (const [k, v] of Object.entries(o.settings.extraEnv)) env.set(k, v);
  const files = recipeComposeFiles(env);
  if (o.overlay) files.push(OVERLAY_FILE);
  if (o.ingressOverlay) files.push(INGRESS_OVERLAY);
  env.appendLine("# cc-ci: the recipe's compose files, then cc-ci's overlays");
  env.appendLine(`COMPOSE_FILE="${files.join(':')}"`);
  env.set(RUN_MARKER, o.run);
}

/** The run's env edits for an app of this run. */
export function runEnvOf(ctx: RunContext, domain: string): RunEnv {
  const ws = ctx.workspace!;
  return { run: ctx.name, domain, settings: ws.settings, overlay: ws.customization.overlay !== null, ingressOverlay: ctx.config.ingress.mode !== 'traefik' };
}

/** The facts of a recipe checkout under an env, with the settings' web service and port. */
export async function factsUnder(ctx: RunContext, env: EnvFile, stack: string): Promise<RecipeFacts> {
  const ws = ctx.workspace!;
  try {
    return await readRecipeFacts(ctx.docker, {
      recipeDir: ws.recipeDir,
      // The customisation's overlay is part of what deploys (prepare copies it into the checkout).
      files: [...recipeComposeFiles(env), ...(ws.customization.overlay ? [OVERLAY_FILE] : [])],
      env: deployEnv(env.values(), ws.recipeDir, stack),
      modifiers: (v) => env.comment(v),
      web: { service: ws.settings.webService, port: ws.settings.webPort },
    });
  } catch (e) {
    if (e instanceof ComposeError) throw new TestFailure(`the recipe's compose files cannot be read: ${e.message}`);
    throw e;
  }
}

/** The facts of a deployed app, under its own `.env`. */
export async function appFacts(ctx: RunContext, app: { domain: string; stack: string }): Promise<RecipeFacts> {
  const path = appEnvPath(ctx.config, ctx.config.abra.server, app.domain);
  if (!existsSync(path)) return predictedFacts(ctx);
  return factsUnder(ctx, new EnvFile(path), app.stack);
}

/** What the facts will be once the run's app exists: `.env.sample` with the run's edits. */
export async function predictedFacts(ctx: RunContext): Promise<RecipeFacts> {
  const env = new EnvFile('/dev/null', readFileSync(join(ctx.workspace!.recipeDir, '.env.sample'), 'utf8'));
  applyRunEnv(env, runEnvOf(ctx, PREDICTED_DOMAIN));
  return factsUnder(ctx, env, stackName(PREDICTED_DOMAIN));
}

/** Copies the customisation's compose overlay into the run's recipe checkout (before every
 *  deploy: a checkout of another commit may carry a file of that name). */
export function copyRecipeOverlay(ctx: RunContext): void {
  const overlay = ctx.workspace!.customization.overlay;
  if (overlay) copyFileSync(overlay.path, join(ctx.workspace!.recipeDir, OVERLAY_FILE));
}
