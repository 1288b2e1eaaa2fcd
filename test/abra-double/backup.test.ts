// `abra app backup create | snapshots | download` and `abra app restore`, pinned to the backupbot
// label specification and backup-bot-two's behaviour (docs/abra-double.md, contract rows 24–30;
// § numbers are the abra reference's sections).
import { execa } from 'execa';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
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

interface Snapshot {
  id: string;
  time: string;
}

/** backup-bot-two's listing [R]: `<time> <id>` lines, oldest first. */
async function snapshots(): Promise<Snapshot[]> {
  const r = await sb.abra(['app', 'backup', 'snapshots', domain, '-n']);
  expectOk(r);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const m = /^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) ([0-9a-f]{8})$/.exec(l);
      expect(m, `snapshot line "${l}"`).not.toBeNull();
      return { time: m?.[1] ?? '', id: m?.[2] ?? '' };
    });
}

async function tarList(file: string, opts: { gzip: boolean }): Promise<string[]> {
  return String((await execa('tar', [opts.gzip ? '-tzf' : '-tf', file], { timeout: 30_000 })).stdout)
    .split('\n')
    .filter(Boolean);
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

describe('backup and restore', () => {
  it('backup create and restore need a TTY: "FATA the input device is not a TTY"', async () => {
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
    expect(snaps.map((x) => x.id)).toEqual([snapshotId]);
    expect(Number.isNaN(Date.parse(`${snaps[0]?.time.replace(' ', 'T')}Z`))).toBe(false);
    // the bot's own output, hooks included, comes back through abra
    expect(r.stdout).toContain(`run command in ${stack}_app: bash -c 'set -o pipefail;cp /www/index.html /data/keep/dump.txt'`);

    // the double's snapshot store: /var/lib/docker/volumes/<stack>_<vol>/...
    const archive = join(sb.abraDir, 'backups', domain, `${snapshotId}.tar.gz`);
    const list = await tarList(archive, { gzip: true });
    const v = (vol: string, p: string): string => `var/lib/docker/volumes/${stack}_${vol}/_data/${p}`;
    expect(list).toContain(v('www', 'index.html'));
    expect(list).toContain(v('data', 'keep/state.txt'));
    expect(list).toContain(v('data', 'keep/dump.txt')); // written by backupbot.backup.pre-hook
    expect(list.some((l) => l.includes('/skip'))).toBe(false); // backupbot.backup.volumes.data.path=keep
    expect(list.some((l) => l.includes(`${stack}_cache`))).toBe(false); // backupbot.backup.volumes.cache=false
  });

  it("download writes backup-bot-two's backup.tar.gz: one nested tar per volume, plus the secrets unless --volumes alone [R]", async () => {
    const all = mkdtempSync(join(downloads, 'all-'));
    const r = await sb.abra(['app', 'backup', 'download', domain, '-s', snapshotId, '-n'], { cwd: all });
    expectOk(r);
    expect(r.stdout.trim()).toBe(join(all, 'backup.tar.gz'));
    expect((await tarList(join(all, 'backup.tar.gz'), { gzip: true })).sort()).toEqual([`${domain}.json`, `${stack}_data.tar`, `${stack}_www.tar`]);
    await execa('tar', ['-xzf', 'backup.tar.gz'], { cwd: all, timeout: 30_000 });
    // the app's secrets, read in its containers: what cc-ci must never keep
    expect(Object.keys(JSON.parse(readFileSync(join(all, `${domain}.json`), 'utf8')) as Record<string, string>).sort()).toEqual(['api_token', 'db_password']);
    expect(await tarList(join(all, `${stack}_data.tar`), { gzip: false })).toContain(`var/lib/docker/volumes/${stack}_data/_data/keep/state.txt`);

    const volumes = mkdtempSync(join(downloads, 'volumes-'));
    expectOk(await sb.abra(['app', 'backup', 'download', domain, '--volumes', '-n'], { cwd: volumes }));
    expect((await tarList(join(volumes, 'backup.tar.gz'), { gzip: true })).sort()).toEqual([`${stack}_data.tar`, `${stack}_www.tar`]);
    expect(readdirSync(volumes)).toEqual(['backup.tar.gz']);
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

  it('a hook that fails is reported ("Failed to run command") and the backup carries on without it [R]', async () => {
    sb.editEnv(domain, { BACKUP_PRE_HOOK: 'echo dumping; exit 3' });
    expectOk(await sb.abra(['app', 'deploy', domain, '-f', '-n']));
    const before = (await snapshots()).length;
    const r = await sb.abraTty(['app', 'backup', 'create', domain, '-n']);
    expectOk(r);
    expect(r.stdout).toContain(`Failed to run command bash -c 'set -o pipefail;echo dumping; exit 3' in ${stack}_app (backup pre-hook): dumping`);
    expect(r.stdout).toMatch(/backup finished \(snapshot [0-9a-f]{8}\)/);
    expect(await snapshots()).toHaveLength(before + 1);
    sb.editEnv(domain, { BACKUP_PRE_HOOK: 'cp /www/index.html /data/keep/dump.txt' });
  });

  it('no service labelled backupbot.backup=true: FATA', async () => {
    sb.editEnv(domain, { ENABLE_BACKUPS: 'false' }); // backupbot.backup=${ENABLE_BACKUPS:-true}
    expectOk(await sb.abra(['app', 'deploy', domain, '-f', '-n']));
    expectFatal(await sb.abraTty(['app', 'backup', 'create', domain, '-n']), 'backupbot.backup=true');
  });
});
