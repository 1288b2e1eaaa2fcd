import { existsSync, mkdirSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { type RunContext, type Workspace } from './context.js';
import { callFault, CancelledError, InputError } from './errors.js';
import { describeCustomization, loadCustomization, SettingsError, snapshotRecipeLayer } from '../recipes/customization.js';
import { TIER_NAMES } from '../state/types.js';
import { excludeCcciFiles } from './app-env.js';
import { checkout, cloneRepo, GitError, resolveRef, tagCommit } from '../controller/clients/git.js';
import { ComposeError, readComposeFile } from '../controller/model/compose-model.js';

/**
 * Prepares a run (docs/architecture.md, A run): its own ABRA_DIR — `servers/` and `catalogue/` linked to
 * the canonical abra dir so the janitor and abra see every app, a fresh `recipes/` holding a
 * clone of the recipe at the ref — and the customisation it will use.
 */
export async function prepareWorkspace(ctx: RunContext): Promise<Workspace> {
  const { config, spec } = ctx;
  const recipe = spec.spec.recipe;
  const canonical = config.abra.dir;
  const recipeDir = join(ctx.abraDir, 'recipes', recipe);
  const gitOpts = ctx.gitOptions;

  // Evidence of an earlier, interrupted attempt is kept apart, never mixed with this one's.
  const evidence = join(ctx.dir, 'evidence');
  if (ctx.attempt > 1 && existsSync(evidence)) renameSync(evidence, join(ctx.dir, `evidence-attempt-${ctx.attempt - 1}`));

  await ctx.step(
    'make ABRA_DIR',
    async () => {
      const servers = join(canonical, 'servers');
      if (!existsSync(join(servers, config.abra.server))) {
        throw new Error(
          `abra server "${config.abra.server}" is not set up in ${canonical} (no servers/${config.abra.server}/): ` +
            'run `abra server add --local` there, or check `cc-ci doctor`',
        );
      }
      mkdirSync(join(canonical, 'catalogue'), { recursive: true });
      if (ctx.keepsAbraDir && existsSync(join(ctx.abraDir, 'servers'))) {
        // A warm app's ABRA_DIR lives as long as the app (what abra keeps beside its recipes — its
        // backups, say — is the app's): only the recipe clone is made afresh.
        rmSync(join(ctx.abraDir, 'recipes'), { recursive: true, force: true });
        mkdirSync(join(ctx.abraDir, 'recipes'), { recursive: true });
        return;
      }
      // A directory left by an interrupted attempt is stale: start from nothing.
      rmSync(ctx.abraDir, { recursive: true, force: true });
      mkdirSync(join(ctx.abraDir, 'recipes'), { recursive: true });
      symlinkSync(servers, join(ctx.abraDir, 'servers'));
      symlinkSync(join(canonical, 'catalogue'), join(ctx.abraDir, 'catalogue'));
    },
    ctx.abraDir,
  );

  await ctx.step(
    'clone recipe',
    async () => {
      try {
        await cloneRepo(spec.spec.source.repo, recipeDir, gitOpts);
      } catch (e) {
        if (ctx.signal.aborted) throw new CancelledError('cancelled while cloning');
        throw inputError(e, (m) => m);
      }
    },
    spec.spec.source.repo,
  );

  const commit = await ctx.step(
    'resolve ref',
    async () => {
      try {
        return await resolveRef(recipeDir, spec.spec.source.ref, gitOpts);
      } catch (e) {
        throw inputError(e, (m) => `${m}: ${spec.spec.source.repo}`);
      }
    },
    spec.spec.source.ref,
  );
  ctx.store.updateRun(ctx.name, { commitSha: commit });
  ctx.log('info', `testing ${recipe} at ${commit} (${spec.spec.source.ref})`);
  await ctx.step('check out', () => checkout(recipeDir, commit, gitOpts), commit.slice(0, 12));

  for (const required of ['compose.yml', '.env.sample']) {
    if (!existsSync(join(recipeDir, required))) {
      throw new InputError(`not a Co-op Cloud recipe at ${spec.spec.source.ref}: ${required} is missing`);
    }
  }
  try {
    const services = readComposeFile(recipeDir, 'compose.yml').services;
    if (!services || typeof services !== 'object' || !('app' in services)) {
      throw new InputError('not a Co-op Cloud recipe: compose.yml has no service named "app"');
    }
  } catch (e) {
    throw e instanceof ComposeError ? new InputError(e.message) : e;
  }
  // cc-ci's own files in the checkout are not the recipe's changes (reconcilers/app-env.ts).
  excludeCcciFiles(recipeDir);

  let customization;
  try {
    // The head's .cc-ci/, kept apart from the checkout the upgrade tier moves to the base release.
    const recipeLayer = snapshotRecipeLayer(recipeDir, join(ctx.dir, 'recipe-cc-ci'));
    customization = loadCustomization({
      recipe,
      recipeDir,
      ...(recipeLayer ? { recipeLayer } : {}),
      operatorDir: config.recipesDir,
      defaults: { deployTimeoutSeconds: config.timeouts.deploySeconds, httpTimeoutSeconds: config.timeouts.httpSeconds },
    });
  } catch (e) {
    throw e instanceof SettingsError ? new InputError(`recipe customisation: ${e.message}`) : e;
  }
  ctx.store.updateRun(ctx.name, { customization });
  ctx.log('info', `customisation: ${describeCustomization(customization)}`);

  // A wrong upgradeBase is the settings' mistake: say so before anything is deployed.
  const base = customization.settings.upgradeBase;
  const tiers = spec.spec.tiers ?? TIER_NAMES;
  if (base && tiers.includes('upgrade') && !customization.settings.expectedNA.upgrade) {
    await ctx.step(
      'check upgrade base',
      async () => {
        try {
          await tagCommit(recipeDir, base, gitOpts);
        } catch (e) {
          throw inputError(e, () => `recipe customisation: upgradeBase "${base}" is not a tag of the recipe repository ${spec.spec.source.repo}`);
        }
      },
      base,
    );
  }

  // The operator's extraEnv values may be credentials: masked from here on (their keys alone are logged).
  for (const value of customization.operatorValues) ctx.redactor.add(value);
  const ws: Workspace = { abraDir: ctx.abraDir, recipeDir, commit, settings: customization.settings, customization };
  ctx.workspace = ws;
  return ws;
}

/** git refusing (no such repository, no such ref) is the run's input being wrong; git that hung
 *  or was killed is not, and goes on as the call fault it is (RunContext.step names it). */
function inputError(e: unknown, message: (m: string) => string): unknown {
  if (!(e instanceof GitError) || callFault(e, null, '') !== null) return e;
  return new InputError(message(e.message));
}
