// abra app backup create | snapshots | download, abra app restore
//
// Real abra execs into the backup-bot-two container with a TTY, so `backup create` and `restore`
// fail without one: `FATA the input device is not a TTY` (run them under `script -qec ...`).
//
// `backup snapshots` prints what backup-bot-two's `snapshots` prints [R]: one `<time> <id>` line
// per snapshot, oldest first (there is no `-m`: a JSON listing was this double's invention).
// `backup download` writes `backup.tar.gz` into the working directory (see backup.ts).
import { loadApp } from './app.js';
import type { Invocation } from './argv.js';
import { createBackup, downloadSnapshot, findSnapshot, listSnapshots, restoreBackup } from './backup.js';
import { fatal, log, out } from './log.js';

function requireTty(): void {
  if (process.stdin.isTTY !== true) fatal('the input device is not a TTY');
}

export async function backupCreate(inv: Invocation): Promise<void> {
  requireTty();
  const app = loadApp(inv.args[0] ?? '');
  const snap = await createBackup(app);
  out(`backup finished (snapshot ${snap.id})`);
}

export async function backupSnapshots(inv: Invocation): Promise<void> {
  const app = loadApp(inv.args[0] ?? '');
  const wanted = inv.str('snapshot');
  const snaps = wanted !== undefined ? [findSnapshot(app, wanted)] : listSnapshots(app);
  if (snaps.length === 0) log.warn(`No Snapshots found for app ${app.domain}`);
  // The bot prints the time to the second and the short id (restic's first 8 hex digits).
  for (const s of snaps) out(`${s.time.replace(/\.\d+Z?$/, '').replace('T', ' ')} ${s.id}`);
}

export async function backupDownload(inv: Invocation): Promise<void> {
  const app = loadApp(inv.args[0] ?? '');
  const snap = findSnapshot(app, inv.str('snapshot'));
  out(await downloadSnapshot(app, snap, { volumes: inv.bool('volumes'), secrets: inv.bool('secrets') }));
}

export async function appRestore(inv: Invocation): Promise<void> {
  requireTty();
  const app = loadApp(inv.args[0] ?? '');
  const snap = findSnapshot(app, inv.str('snapshot'));
  await restoreBackup(app, snap);
  out(`restore finished (snapshot ${snap.id})`);
}
