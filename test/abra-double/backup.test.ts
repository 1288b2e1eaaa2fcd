// `abra app backup create | snapshots | download` and `abra app restore`, pinned to the backupbot
// label specification (/work/shared/reference/abra.md §10.1) and cc-ci's PTY requirement (§3, §10.3).
import { execa } from 'execa';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureImage, execIn, makeSandbox, newDomain, purgeStack, stackOf, type RunResult, type Sandbox } from './helpers.js';

let sb: Sandbox;
let domain: string;
let stack: string;
let downloads: string;

function expectOk(r: RunResult): void {
  expect(r.exitCode, `stdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(0);
}

function expectFatal(r: RunResult, message: string): void {
  expect(r.exitCode, r.stderr).toBe(1);
  expect(`${r.stderr}${r.stdout}`).toMatch(/^FATA /m); // under `script` stderr arrives on stdout
  expect(`${r.stderr}${r.stdout}`).toContain(message);
}

interface SnapshotJson {
  id: string;
  time: string;
  domain: string;
  stack: string;
  volumes: string[];
  archive: string;
  size: number;
}

async function snapshots(): Promise<SnapshotJson[]> {
  const r = await sb.abra(['app', 'backup', 'snapshots', domain, '-m', '-n']);
  expectOk(r);
  return JSON.parse(r.stdout) as SnapshotJson[];
}

beforeAll(async () => {
  await ensureImage();
  sb = await makeSandbox();
  downloads = mkdtempSync(join(tmpdir(), 'abd-dl-'));
  domain = newDomain();
  stack = stackOf(domain);
  expectOk(await sb.abra(['app', 'new', 'dbltest', '-s', 'default', '-D', domain, '-S', '-n']));
  expectOk(await sb.abra(['app', 'deploy', domain, '-n']));
});

afterAll(async () => {
  await purgeStack(stack);
  rmSync(downloads, { recursive: true, force: true });
  sb.cleanup();
});

describe('backup and restore (§10)', () => {
  it('backup create and restore need a TTY: "FATA the input device is not a TTY" (§3, §10.3)', async () => {
    expectFatal(await sb.abra(['app', 'backup', 'create', domain, '-n']), 'the input device is not a TTY');
    expectFatal(await sb.abra(['app', 'restore', domain, '-n']), 'the input device is not a TTY');
    expect(existsSync(join(sb.abraDir, 'backups', domain))).toBe(false);
  });

  let snapshotId: string;

  it('backup create under a PTY: hooks run, labels select volumes and paths, one .tar.gz per snapshot', async () => {
    await execIn(`${stack}_app`, 'echo original > /www/index.html; echo kept > /data/keep/state.txt; echo skipped > /data/skip/x.txt; echo c > /cache/c.txt');
    const r = await sb.abraTty(['app', 'backup', 'create', domain, '-n']);
    expectOk(r);
    const m = /backup finished \(snapshot ([0-9a-f]{8})\)/.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    snapshotId = m?.[1] ?? '';

    // post-hook ran: the pre-hook's dump is gone from the container again
    expect(await execIn(`${stack}_app`, 'ls /data/keep')).toBe('state.txt');

    const snaps = await snapshots();
    expect(snaps).toHaveLength(1);
    const snap = snaps[0];
    expect(snap).toMatchObject({ id: snapshotId, domain, stack });
    expect(snap?.volumes.sort()).toEqual([`${stack}_data`, `${stack}_www`]);
    expect(snap?.archive).toBe(join(sb.abraDir, 'backups', domain, `${snapshotId}.tar.gz`));
    expect(Number.isNaN(Date.parse(snap?.time ?? ''))).toBe(false);

    // archive layout: /var/lib/docker/volumes/<stack>_<vol>/... (§10.1)
    const list = String((await execa('tar', ['-tzf', snap?.archive ?? ''], { timeout: 30_000 })).stdout).split('\n');
    const v = (vol: string, p: string): string => `var/lib/docker/volumes/${stack}_${vol}/_data/${p}`;
    expect(list).toContain(v('www', 'index.html'));
    expect(list).toContain(v('data', 'keep/state.txt'));
    expect(list).toContain(v('data', 'keep/dump.txt')); // written by backupbot.backup.pre-hook
    expect(list.some((l) => l.includes('/skip'))).toBe(false); // backupbot.backup.volumes.data.path=keep
    expect(list.some((l) => l.includes(`${stack}_cache`))).toBe(false); // backupbot.backup.volumes.cache=false
  });

  it('download writes the snapshot to the given directory (or file) and prints the path', async () => {
    const r = await sb.abra(['app', 'backup', 'download', domain, '-s', snapshotId, '-i', downloads, '-n']);
    expectOk(r);
    const path = r.stdout.trim();
    expect(path).toBe(join(downloads, `${domain}_${snapshotId}.tar.gz`));
    expect(readdirSync(downloads)).toEqual([`${domain}_${snapshotId}.tar.gz`]);
    const file = join(downloads, 'named.tar.gz');
    expect((await sb.abra(['app', 'backup', 'download', domain, '-i', file])).stdout.trim()).toBe(file);
    // default: the current directory
    const cwd = await sb.abra(['app', 'backup', 'download', domain], { cwd: downloads });
    expect(cwd.stdout.trim()).toBe(join(downloads, `${domain}_${snapshotId}.tar.gz`));
  });

  it('backup → change data → restore brings the data back; restore hooks run', async () => {
    await execIn(`${stack}_app`, 'echo mutated > /www/index.html; rm /data/keep/state.txt');
    expect(await execIn(`${stack}_app`, 'cat /www/index.html')).toBe('mutated');
    const r = await sb.abraTty(['app', 'restore', domain, '-n']);
    expectOk(r);
    expect(r.stdout).toContain(`restore finished (snapshot ${snapshotId})`);
    expect(await execIn(`${stack}_app`, 'cat /www/index.html')).toBe('original');
    expect(await execIn(`${stack}_app`, 'cat /data/keep/state.txt')).toBe('kept');
    // backupbot.restore.post-hook copied the restored dump
    expect(await execIn(`${stack}_app`, 'cat /www/restored-dump.txt')).toBe('original');
  });

  it('-s picks a snapshot; the latest is the default; unknown snapshots FATA', async () => {
    await execIn(`${stack}_app`, 'echo second > /www/index.html');
    const r = await sb.abraTty(['app', 'backup', 'create', domain, '-n']);
    expectOk(r);
    const second = /snapshot ([0-9a-f]{8})/.exec(r.stdout)?.[1] ?? '';
    expect((await snapshots()).map((s) => s.id)).toEqual([snapshotId, second]);

    await execIn(`${stack}_app`, 'echo third > /www/index.html');
    expectOk(await sb.abraTty(['app', 'restore', domain, '-s', snapshotId, '-n']));
    expect(await execIn(`${stack}_app`, 'cat /www/index.html')).toBe('original');
    expectOk(await sb.abraTty(['app', 'restore', domain, '-n']));
    expect(await execIn(`${stack}_app`, 'cat /www/index.html')).toBe('second');

    expectFatal(await sb.abraTty(['app', 'restore', domain, '-s', 'ffffffff', '-n']), 'snapshot ffffffff not found');
  });

  it('crash fault: backup create dies after copying, before the archive is written', async () => {
    const state = mkdtempSync(join(tmpdir(), 'abd-state-'));
    try {
      const before = (await snapshots()).length;
      const r = await sb.abraTty(['app', 'backup', 'create', domain, '-n'], {
        env: { ABRA_DOUBLE_FAULTS: 'app.backup.create:1:crash', ABRA_DOUBLE_STATE: state },
      });
      expect(r.exitCode).toBe(137); // script -e reports the child's 128+SIGKILL
      expect(await snapshots()).toHaveLength(before);
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });

  it('no service labelled backupbot.backup=true: FATA (§10.1 "MUST show an error")', async () => {
    sb.editEnv(domain, { ENABLE_BACKUPS: 'false' }); // backupbot.backup=${ENABLE_BACKUPS:-true}
    expectOk(await sb.abra(['app', 'deploy', domain, '-f', '-n']));
    expectFatal(await sb.abraTty(['app', 'backup', 'create', domain, '-n']), 'backupbot.backup=true');
  });
});
