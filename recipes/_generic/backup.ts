import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { AbraError } from '../../controller/abra.js';
import { EnvFile } from '../../controller/envfile.js';
import { readComposeFacts, splitComposeFile } from '../../controller/recipe-compose.js';
import { readTar } from '../../controller/tar.js';
import { TestFailure, type RunContext, type SubjectApp } from '../../reconcilers/context.js';
import { ensureApp, subjectApp } from '../../reconcilers/deploy.js';
import { runHook } from '../hooks.js';
import type { TierRunner } from '../tiers.js';
import { MARKER_FILE, lastLines, newMarker, seedMarker } from './data-marker.js';

/**
 * backup: where the recipe carries backupbot labels — settle (strict convergence), write test
 * data, `abra app backup create` (under a pseudo-terminal), then check the artefact: it exists,
 * is a non-empty gzip'd tar, and holds the data (or the recipe's verify-backup hook says so).
 */

/** Backup applies when some service of the recipe's compose files carries `backupbot.backup`. */
export function backupApplies(ctx: RunContext): { applies: true } | { applies: false; reason: string } {
  const ws = ctx.workspace!;
  const sample = new EnvFile(join(ws.recipeDir, '.env.sample'));
  const facts = readComposeFacts(ws.recipeDir, splitComposeFile(sample.resolved('COMPOSE_FILE')));
  return facts.backupCapable ? { applies: true } : { applies: false, reason: 'no service carries backupbot.backup labels' };
}

/** Settles the app: strictly converged and serving again before anything execs into it. */
export async function settle(ctx: RunContext, app: SubjectApp): Promise<SubjectApp> {
  return ensureApp(ctx, { purpose: app.purpose, commit: app.commit, describe: app.describe });
}

export interface TakenBackup {
  snapshot: string;
  marker: string;
  where: string;
  summary: string;
}

export async function takeBackup(ctx: RunContext): Promise<TakenBackup> {
  const app = await settle(ctx, await subjectApp(ctx));
  const marker = newMarker('backup');
  const place = await seedMarker(ctx, app, 'backup', marker, true);
  ctx.log('info', `test data before the backup: ${place.describe}`);

  await backupStep(ctx, 'abra app backup create', () => ctx.abra.backupCreate(app.domain), app.domain);
  const snapshots = await backupStep(ctx, 'abra app backup snapshots', () => ctx.abra.backupSnapshots(app.domain), app.domain);
  const snapshot = snapshots[snapshots.length - 1];
  if (!snapshot) throw new TestFailure('abra app backup create reported success but no snapshot exists');

  const dir = join(ctx.dir, 'evidence', 'backup');
  mkdirSync(dir, { recursive: true });
  const file = await backupStep(ctx, 'abra app backup download', () => ctx.abra.backupDownload(app.domain, snapshot.id, dir), snapshot.id);
  const size = statSync(file).size;
  if (size === 0) throw new TestFailure(`the backup artefact of snapshot ${snapshot.id} is empty`);
  let files: { name: string; content: Buffer }[];
  try {
    files = readTar(gunzipSync(readFileSync(file))).filter((e) => e.type === 'file');
  } catch (e) {
    throw new TestFailure(`the backup artefact of snapshot ${snapshot.id} is not a gzip'd tar: ${(e as Error).message}`);
  }
  if (files.length === 0) throw new TestFailure(`the backup artefact of snapshot ${snapshot.id} holds no file`);

  const verify = await runHook(ctx, 'verify-backup', app, [], { CCCI_BACKUP_FILE: file, CCCI_MARKER: marker });
  if (verify.ran && !verify.ok) throw new TestFailure(`the verify-backup hook rejected snapshot ${snapshot.id}: ${lastLines(verify.output)}`);
  if (place.how === 'generic') {
    const copy = files.find((f) => basename(f.name) === MARKER_FILE);
    if (!copy || copy.content.toString('utf8').trim() !== marker) {
      throw new TestFailure(`snapshot ${snapshot.id} does not contain the test data written before it (${place.describe})`);
    }
  }
  const summary =
    `snapshot ${snapshot.id}: ${size} bytes, ${files.length} file(s)` +
    (verify.ran ? ', verify-backup hook passed' : '') +
    (place.how === 'generic' ? ', holds the marker' : place.how === 'hooks' ? '' : ` (${place.describe})`);
  const taken = { snapshot: snapshot.id, marker, where: place.describe, summary };
  ctx.backup.current = taken;
  return taken;
}

/** A backup command of abra, as a recorded step: abra refusing it is the tier's failure, with
 *  abra's own reason (the backup bot is part of what a recipe's backups need to work). */
export async function backupStep<T>(ctx: RunContext, name: string, fn: () => Promise<T>, detail: string): Promise<T> {
  try {
    return await ctx.step(name, fn, detail);
  } catch (e) {
    if (e instanceof AbraError) throw new TestFailure(`${name} failed: ${e.fatal ?? e.message}`);
    throw e;
  }
}

export const backupTier: TierRunner = {
  name: 'backup',
  applies: async (ctx) => backupApplies(ctx),
  async run(ctx) {
    const taken = await takeBackup(ctx);
    return { reason: taken.summary };
  },
};
