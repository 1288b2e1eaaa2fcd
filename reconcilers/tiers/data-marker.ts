import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import type { MarkerCandidate } from '../../controller/clients/recipe-facts.js';
import { readTar, tarOneFile } from '../../controller/model/tar.js';
import { appFacts } from '../app-env.js';
import { type RunContext, type SubjectApp } from '../context.js';
import { TestFailure } from '../errors.js';
import { runHook } from '../hooks.js';

/**
 * The data a tier writes before an operation and expects after it (the original cc-ci's
 * `ci_marker`). A recipe with `seed`/`check` hooks writes it through the app itself; the
 * generic floor writes a marker file into a volume of the app inside the running container
 * (`docker cp`, no shell in the image needed): for backups, a volume the backup covers, of a
 * service that carries backupbot.backup (recipe-facts.ts picks them), within the paths the
 * labels limit it to.
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

/** Where the generic marker can go, best first: the backed-up volumes, then (for an upgrade,
 *  which keeps every volume) the volumes of the app and of the web service. */
async function candidates(ctx: RunContext, app: SubjectApp, forBackup: boolean): Promise<{ list: MarkerCandidate[]; why: string }> {
  const facts = await appFacts(ctx, app);
  if (forBackup) return { list: facts.backup.candidates, why: facts.backup.why };
  const list = [...facts.backup.candidates.map((c) => ({ ...c, paths: null }))];
  const others = [...new Set(['app', ...(facts.web.service ? [facts.web.service] : [])])];
  for (const service of others) list.push({ service, volume: '', mount: '', paths: null });
  return { list, why: `no volume of ${others.join(' or ')} to keep test data in` };
}

async function genericTarget(ctx: RunContext, app: SubjectApp, forBackup: boolean): Promise<{ target: GenericTarget | null; why: string }> {
  const { list, why } = await candidates(ctx, app, forBackup);
  const tried: string[] = [];
  for (const c of list) {
    const service = `${app.stack}_${c.service}`;
    const container = await ctx.docker.runningContainer(service);
    if (!container) throw new TestFailure(`no running container of ${service} to keep test data in`);
    const mounts = await ctx.docker.volumeMounts(container);
    // A candidate without a volume stands for "any volume of the service".
    const usable = c.volume ? mounts.filter((m) => m.destination === c.mount || m.name === `${app.stack}_${c.volume}`) : mounts;
    for (const m of usable) {
      if (!c.paths) return { target: { service: c.service, container, dir: m.destination, volume: m.name }, why: '' };
      // The backup covers only these paths: the marker must live inside one that is a directory.
      for (const p of c.paths) {
        const dir = posix.join(m.destination, p);
        const tar = await ctx.docker.copyOut(container, dir);
        if (tar && (await readTar(tar))[0]?.type === 'directory') return { target: { service: c.service, container, dir, volume: m.name }, why: '' };
      }
      tried.push(`${c.volume} of ${c.service} is backed up only at ${c.paths.join(', ')}, and none of it is a directory`);
    }
  }
  return { target: null, why: tried.length ? `${why}; ${tried.join('; ')}` : why };
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
  const { target, why } = await genericTarget(ctx, app, forBackup);
  if (!target) return { how: 'none', describe: why };
  await ctx.step(
    'write marker',
    async () => ctx.docker.copyIn(target.container, target.dir, await tarOneFile(MARKER_FILE, Buffer.from(`${value}\n`))),
    `${target.volume}:${target.dir}/${MARKER_FILE}`,
  );
  return { how: 'generic', describe: `marker file ${posix.join(target.dir, MARKER_FILE)} in volume ${target.volume}` };
}

/** Whether the marker written before the operation is still (or again) there. */
export async function checkMarker(ctx: RunContext, app: SubjectApp, op: string, value: string, forBackup: boolean): Promise<{ ok: boolean; found: string }> {
  const hooks = ctx.workspace!.customization.hooks;
  if (hooks.check) {
    const r = await runHook(ctx, 'check', app, [op], { CCCI_OP: op, CCCI_MARKER: value });
    return { ok: r.ok, found: lastLines(r.output) || (r.ok ? 'present' : 'missing') };
  }
  const { target, why } = await genericTarget(ctx, app, forBackup);
  if (!target) return { ok: false, found: why };
  const tar = await ctx.docker.copyOut(target.container, posix.join(target.dir, MARKER_FILE));
  const content = tar
    ? (await readTar(tar))
        .find((e) => e.type === 'file')
        ?.content.toString('utf8')
        .trim()
    : undefined;
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
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(-n)
    .join(' | ');
}
