import { mkdirSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AbraError } from '../../controller/clients/abra.js';
import { archiveListing, scanBackupArchive, type ArchiveScan } from '../../controller/clients/backup-archive.js';
import { appFacts, predictedFacts } from '../app-env.js';
import { type RunContext, type SubjectApp } from '../context.js';
import { TestFailure } from '../errors.js';
import { ensureApp, subjectApp } from '../deploy.js';
import { runHook } from '../hooks.js';
import type { TierRunner } from './runner.js';
import { MARKER_FILE, lastLines, newMarker, seedMarker } from './data-marker.js';

/**
 * backup: where the recipe carries backupbot labels — settle (strict convergence), write test
 * data, `abra app backup create` (under a pseudo-terminal), then check the snapshot: abra
 * downloads it (volumes only), cc-ci reads it without unpacking — one nested tar per volume, as
 * backup-bot-two packs it, or a flat archive — and the test data must be in it (or the recipe's
 * verify-backup hook says so). The run keeps a listing of the snapshot, never the archive.
 */

/** Backup applies when some service carries `backupbot.backup` true, with the app's own env. */
export async function backupApplies(ctx: RunContext): Promise<{ applies: true } | { applies: false; reason: string }> {
  const facts = ctx.subject.current ? await appFacts(ctx, ctx.subject.current) : await predictedFacts(ctx);
  return facts.backup.capable ? { applies: true } : { applies: false, reason: facts.backup.why };
}

/** Settles the app: strictly converged and serving again before anything execs into it. */
export async function settle(ctx: RunContext, app: SubjectApp): Promise<SubjectApp> {
  return ensureApp(ctx, { purpose: app.purpose, commit: app.commit, describe: app.describe });
}

export interface TakenBackup {
  snapshot: string;
  marker: string;
  where: string;
  /** Whether the test data could be placed (hooks or a backed-up volume); if not, `where` says why. */
  checked: boolean;
  summary: string;
}

/**
 * backup-bot-two runs each hook as `bash -c 'set -o pipefail;…'` in the service's container
 * and, when one fails, logs it and carries on: the backup "succeeds" without what the hook
 * should have produced (docs/abra-double.md, The contract). What it logs is the only sign, so cc-ci reads it.
 */
export function failedHooks(output: string): string[] {
  return output
    .split('\n')
    .map((l) => l.replace(/\x1b\[[0-9;]*m/g, '').trim())
    .filter((l) => /failed to run command|hook failed|\bhook\b.*\b(exit|error)/i.test(l))
    .map((l) => l.slice(0, 500));
}

export async function takeBackup(ctx: RunContext): Promise<TakenBackup> {
  const app = await settle(ctx, await subjectApp(ctx));
  const marker = newMarker('backup');
  const place = await seedMarker(ctx, app, 'backup', marker, true);
  ctx.log(
    place.how === 'none' ? 'warn' : 'info',
    `test data before the backup: ${place.how === 'none' ? `none can be written: ${place.describe}` : place.describe}`,
  );

  const said = await backupStep(ctx, 'abra app backup create', () => ctx.abra.backupCreate(app.domain), app.domain);
  const hooks = failedHooks(said);
  if (hooks.length) throw new TestFailure(`the backup ran, but a backup hook failed (backup-bot-two carries on without it): ${hooks.join(' | ')}`);
  const snapshots = await backupStep(ctx, 'abra app backup snapshots', () => ctx.abra.backupSnapshots(app.domain), app.domain);
  const snapshot = snapshots[snapshots.length - 1];
  if (!snapshot) throw new TestFailure('abra app backup create reported success but abra app backup snapshots lists no snapshot');

  // The archive is downloaded where nothing serves it, read, listed into the evidence, deleted.
  const work = join(ctx.dir, 'work', `backup-${snapshot.id}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  try {
    const { file, volumesOnly } = await backupStep(ctx, 'abra app backup download', () => ctx.abra.backupDownload(app.domain, snapshot.id, work), snapshot.id);
    const size = statSync(file).size;
    if (size === 0) throw new TestFailure(`the backup artefact of snapshot ${snapshot.id} is empty`);
    let scan: ArchiveScan;
    try {
      scan = await scanBackupArchive(file, { want: MARKER_FILE });
    } catch (e) {
      throw new TestFailure(`the backup artefact of snapshot ${snapshot.id} is not a tar archive: ${(e as Error).message}`);
    }
    const listing = join(ctx.dir, 'evidence', 'backup', `snapshot-${snapshot.id}.txt`);
    mkdirSync(join(ctx.dir, 'evidence', 'backup'), { recursive: true });
    writeFileSync(listing, archiveListing(scan, `snapshot ${snapshot.id} of ${app.domain} (${size} bytes${volumesOnly ? ', volumes only' : ''})`));
    if (scan.files === 0) throw new TestFailure(`the backup artefact of snapshot ${snapshot.id} holds no file`);

    const verify = await runHook(ctx, 'verify-backup', app, [], { CCCI_BACKUP_FILE: file, CCCI_MARKER: marker });
    if (verify.ran && !verify.ok) throw new TestFailure(`the verify-backup hook rejected snapshot ${snapshot.id}: ${lastLines(verify.output)}`);
    if (place.how === 'generic' && !scan.found.some((f) => f.content.trim() === marker)) {
      const seen = scan.found.map((f) => `${f.name} holds "${f.content.trim().slice(0, 60)}"`).join('; ');
      throw new TestFailure(`snapshot ${snapshot.id} does not contain the test data written before it (${place.describe})${seen ? `: ${seen}` : ''}`);
    }
    const summary =
      `snapshot ${snapshot.id}: ${size} bytes, ${scan.files} file(s)${scan.volumes.length ? ` in ${scan.volumes.length} volume(s)` : ''}` +
      (verify.ran ? ', verify-backup hook passed' : '') +
      (place.how === 'generic' ? ', holds the test data' : place.how === 'hooks' ? '' : `; data not checked: ${place.describe}`);
    const taken = { snapshot: snapshot.id, marker, where: place.describe, checked: place.how !== 'none', summary };
    ctx.backup.current = taken;
    return taken;
  } finally {
    rmSync(work, { recursive: true, force: true });
    try {
      rmdirSync(join(ctx.dir, 'work'));
    } catch {
      /* other work is still there */
    }
  }
}

/** A backup command of abra, as a recorded step: abra refusing it is the tier's failure, with
 *  abra's own reason (the backup bot is part of what a recipe's backups need to work). */
export async function backupStep<T>(ctx: RunContext, name: string, fn: () => Promise<T>, detail: string): Promise<T> {
  try {
    return await ctx.step(name, fn, detail);
  } catch (e) {
    // abra that cannot even start is the server's fault, never the recipe's.
    if (e instanceof AbraError && e.result.spawnError) throw new Error(`abra cannot be started (${e.result.spawnError}); see cc-ci doctor`, { cause: e });
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
