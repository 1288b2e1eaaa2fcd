// abra app backup create | snapshots | download, abra app restore
//
// Real abra execs into the backup-bot-two container with a TTY, so `backup create` and `restore`
// fail without one: `FATA the input device is not a TTY` (run them under `script -qec ...`).
//
// `backup snapshots -m` prints a JSON array, oldest first:
//   [{"id": "1a2b3c4d", "time": "2026-05-01T12:00:00.000Z", "domain": "...", "stack": "...",
//     "volumes": ["<stack>_<vol>", ...], "archive": "/abs/path/1a2b3c4d.tar.gz", "size": 1234}]
import { loadApp } from './app.js';
import type { Invocation } from './argv.js';
import { createBackup, downloadSnapshot, findSnapshot, listSnapshots, restoreBackup } from './backup.js';
import { fatal, out } from './log.js';
import { table } from './table.js';

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
  if (inv.bool('machine')) {
    out(JSON.stringify(snaps));
    return;
  }
  out(table(['SNAPSHOT', 'TIME', 'VOLUMES', 'SIZE'], snaps.map((s) => [s.id, s.time, s.volumes.join(','), String(s.size)])));
}

export async function backupDownload(inv: Invocation): Promise<void> {
  const app = loadApp(inv.args[0] ?? '');
  const snap = findSnapshot(app, inv.str('snapshot'));
  out(downloadSnapshot(app, snap, inv.str('include')));
}

export async function appRestore(inv: Invocation): Promise<void> {
  requireTty();
  const app = loadApp(inv.args[0] ?? '');
  const snap = findSnapshot(app, inv.str('snapshot'));
  await restoreBackup(app, snap);
  out(`restore finished (snapshot ${snap.id})`);
}
