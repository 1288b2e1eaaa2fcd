import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join, posix } from 'node:path';
import { EnvFile } from '../../controller/envfile.js';
import { readComposeFacts, splitComposeFile, type ComposeFacts } from '../../controller/recipe-compose.js';
import { readTar, tarOneFile } from '../../controller/tar.js';
import { TestFailure, type RunContext, type SubjectApp } from '../../reconcilers/context.js';
import { runHook } from '../hooks.js';

/**
 * The data a tier writes before an operation and expects after it (the original cc-ci's
 * `ci_marker`). A recipe with `seed`/`check` hooks writes it through the app itself; the
 * generic floor writes a marker file into the app's volume inside the running container
 * (`docker cp`, no shell in the image needed) where the backup covers it.
 */

export const MARKER_FILE = '.ccci-marker';

export function newMarker(op: string): string {
  return `ccci-${op}-${randomBytes(6).toString('hex')}`;
}

interface GenericTarget {
  service: string;
  container: string;
  dir: string;
  volume: string;
}

/** The app's compose facts, from the files its .env names (cc-ci's overlays included). */
export function appComposeFacts(ctx: RunContext, app: SubjectApp): ComposeFacts {
  const envPath = join(ctx.config.abra.dir, 'servers', ctx.config.abra.server, `${app.domain}.env`);
  const files = existsSync(envPath) ? splitComposeFile(new EnvFile(envPath).resolved('COMPOSE_FILE')) : ['compose.yml'];
  return readComposeFacts(ctx.workspace!.recipeDir, files);
}

/** Where the generic marker goes: a volume of the service the backup runs on (or `app`),
 *  inside the path the backup labels cover. Null when the service keeps no volume. */
async function genericTarget(ctx: RunContext, app: SubjectApp, forBackup: boolean): Promise<GenericTarget | null> {
  const facts = appComposeFacts(ctx, app);
  const service = (forBackup ? facts.backupService : null) ?? 'app';
  const container = await ctx.docker.runningContainer(`${app.stack}_${service}`);
  if (!container) throw new TestFailure(`no running container of ${app.stack}_${service} to keep test data in`);
  const mounts = await ctx.docker.volumeMounts(container);
  for (const m of mounts) {
    const vol = m.name.startsWith(`${app.stack}_`) ? m.name.slice(app.stack.length + 1) : m.name;
    if (forBackup && facts.backupExcluded.includes(vol)) continue;
    let dir = m.destination;
    const paths = forBackup ? facts.backupPaths[vol] : undefined;
    if (paths?.length) {
      // The backup covers only these paths: the marker must live inside one that is a directory.
      const candidates = paths.map((p) => posix.join(m.destination, p));
      let found: string | null = null;
      for (const c of candidates) {
        const tar = await ctx.docker.copyOut(container, c);
        if (tar && readTar(tar)[0]?.type === 'directory') {
          found = c;
          break;
        }
      }
      if (!found) continue;
      dir = found;
    }
    return { service, container, dir, volume: m.name };
  }
  return null;
}

export interface MarkerPlace {
  how: 'hooks' | 'generic' | 'none';
  describe: string;
}

/** Writes the marker before an operation. */
export async function seedMarker(ctx: RunContext, app: SubjectApp, op: string, value: string, forBackup: boolean): Promise<MarkerPlace> {
  const hooks = ctx.workspace!.customization.hooks;
  if (hooks.seed) {
    const r = await runHook(ctx, 'seed', app, [op], { CCCI_OP: op, CCCI_MARKER: value });
    if (!r.ok) throw new TestFailure(`the seed hook could not write test data before ${op}: ${lastLines(r.output)}`);
    return { how: 'hooks', describe: `seed hook (${hooks.seed.source})` };
  }
  const target = await genericTarget(ctx, app, forBackup);
  if (!target) return { how: 'none', describe: `no volume on the ${forBackup ? 'backed-up' : 'app'} service to keep test data in` };
  await ctx.step('write marker', () => ctx.docker.copyIn(target.container, target.dir, tarOneFile(MARKER_FILE, Buffer.from(`${value}\n`))), `${target.volume}:${target.dir}/${MARKER_FILE}`);
  return { how: 'generic', describe: `marker file ${posix.join(target.dir, MARKER_FILE)} in volume ${target.volume}` };
}

/** Whether the marker written before the operation is still (or again) there. */
export async function checkMarker(ctx: RunContext, app: SubjectApp, op: string, value: string, forBackup: boolean): Promise<{ ok: boolean; found: string }> {
  const hooks = ctx.workspace!.customization.hooks;
  if (hooks.check) {
    const r = await runHook(ctx, 'check', app, [op], { CCCI_OP: op, CCCI_MARKER: value });
    return { ok: r.ok, found: lastLines(r.output) || (r.ok ? 'present' : 'missing') };
  }
  const target = await genericTarget(ctx, app, forBackup);
  if (!target) return { ok: false, found: 'no volume to look in' };
  const tar = await ctx.docker.copyOut(target.container, posix.join(target.dir, MARKER_FILE));
  const content = tar ? readTar(tar).find((e) => e.type === 'file')?.content.toString('utf8').trim() : undefined;
  if (content === undefined) return { ok: false, found: `no ${MARKER_FILE} in ${target.dir}` };
  return { ok: content === value, found: content === value ? 'present' : `"${content}" instead of "${value}"` };
}

/** Changes the data after a backup, so a restore has something to undo. */
export async function mutateData(ctx: RunContext, app: SubjectApp, op: string, original: string): Promise<string> {
  const hooks = ctx.workspace!.customization.hooks;
  const changed = newMarker(`${op}-changed`);
  if (hooks.mutate) {
    const r = await runHook(ctx, 'mutate', app, [op], { CCCI_OP: op, CCCI_MARKER: original, CCCI_NEW_MARKER: changed });
    if (!r.ok) throw new TestFailure(`the mutate hook failed: ${lastLines(r.output)}`);
    return 'mutate hook';
  }
  await seedMarker(ctx, app, op, changed, true);
  return `overwrote the marker with ${changed}`;
}

export function lastLines(text: string, n = 3): string {
  return text.split('\n').map((l) => l.trim()).filter(Boolean).slice(-n).join(' | ');
}
