import { execa } from 'execa';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archiveListing, scanBackupArchive } from '../../controller/clients/backup-archive.js';

/**
 * Reading what `abra app backup download` wrote (docs/abra-double.md, contract row 29): the
 * nested per-volume tars backup-bot-two packs, a flat archive, the secrets file never read.
 */

let dir: string;
const tar = (args: string[], cwd: string) => execa('tar', args, { cwd, timeout: 30_000 });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ccci-archive-'));
  const vol = join(dir, 'v', 'var', 'lib', 'docker', 'volumes', 's_data', '_data', 'notes');
  mkdirSync(vol, { recursive: true });
  writeFileSync(join(vol, '.ccci-marker'), 'ccci-backup-1\n');
  writeFileSync(join(vol, 'a.txt'), 'hello');
  const pack = join(dir, 'pack');
  mkdirSync(pack);
  await tar(['-cf', join(pack, 's_data.tar'), '-C', join(dir, 'v'), 'var'], dir);
  writeFileSync(join(pack, 'd.example.json'), '{"api_token":"s3cret-value"}\n');
  await tar(['-czf', join(dir, 'nested.tar.gz'), 's_data.tar', 'd.example.json'], pack);
  await tar(['-czf', join(dir, 'flat.tar.gz'), 'var'], join(dir, 'v'));
  writeFileSync(join(dir, 'not-a-tar.tar.gz'), 'plain text');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('backup archives', () => {
  it("reads backup-bot-two's nested volume tars and leaves the secrets file unread", async () => {
    const scan = await scanBackupArchive(join(dir, 'nested.tar.gz'), { want: '.ccci-marker' });
    expect(scan.volumes).toEqual(['s_data.tar']);
    expect(scan.secretsFiles).toEqual(['d.example.json']);
    expect(scan.files).toBe(2);
    expect(scan.found).toEqual([{ name: 's_data.tar!var/lib/docker/volumes/s_data/_data/notes/.ccci-marker', content: 'ccci-backup-1\n' }]);
    const listing = archiveListing(scan, 'snapshot 1a2b3c4d');
    expect(listing).toMatch(/^# snapshot 1a2b3c4d: 2 file\(s\), 19 bytes in 1 volume archive\(s\): s_data\.tar$/m);
    expect(listing).toMatch(/d\.example\.json: the app's secrets .* not read, not kept/);
    // The listing names files and sizes, never what the secrets file holds.
    expect(listing).not.toContain('s3cret-value');
  });

  it('reads a flat archive too', async () => {
    const scan = await scanBackupArchive(join(dir, 'flat.tar.gz'), { want: '.ccci-marker' });
    expect(scan.volumes).toEqual([]);
    expect(scan.found.map((f) => f.content)).toEqual(['ccci-backup-1\n']);
  });

  it('refuses what is not an archive', async () => {
    await expect(scanBackupArchive(join(dir, 'not-a-tar.tar.gz'), { want: '.ccci-marker' })).rejects.toThrow();
  });
});
