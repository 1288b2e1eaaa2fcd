import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readTar, tarOneFile } from '../../controller/model/tar.js';

// The marker's tar in and out of `docker cp`, checked against GNU tar (what docker's format is read by).
const dir = mkdtempSync(join(tmpdir(), 'ccci-tar-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('tar of one file', () => {
  it('GNU tar unpacks what tarOneFile writes, with its mode', async () => {
    writeFileSync(join(dir, 'one.tar'), await tarOneFile('.cc-ci-marker', Buffer.from('m-123\n'), 0o600));
    mkdirSync(join(dir, 'out'));
    execFileSync('tar', ['-xf', join(dir, 'one.tar'), '-C', join(dir, 'out')]);
    expect(readFileSync(join(dir, 'out', '.cc-ci-marker'), 'utf8')).toBe('m-123\n');
    expect(execFileSync('tar', ['-tvf', join(dir, 'one.tar')], { encoding: 'utf8' })).toMatch(/^-rw------- /);
  });

  it('readTar reads what GNU tar writes: a directory, its files, content cut at the bound', async () => {
    mkdirSync(join(dir, 'data', 'sub'), { recursive: true });
    writeFileSync(join(dir, 'data', 'sub', 'small'), 'hello');
    writeFileSync(join(dir, 'data', 'big'), Buffer.alloc(200_000, 0x61));
    const buf = execFileSync('tar', ['-cf', '-', '-C', dir, 'data'], { maxBuffer: 10_000_000 });
    const entries = await readTar(buf, 1000);
    expect(entries[0]).toMatchObject({ name: 'data/', type: 'directory' });
    expect(entries.find((e) => e.name === 'data/sub/small')?.content.toString()).toBe('hello');
    expect(entries.find((e) => e.name === 'data/big')?.content.length).toBe(1000);
    expect(await readTar(await tarOneFile('x', Buffer.from('y')))).toEqual([{ name: 'x', type: 'file', content: Buffer.from('y') }]);
  });
});
