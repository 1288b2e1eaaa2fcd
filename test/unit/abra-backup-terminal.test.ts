import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Abra, AbraError, jsonPart } from '../../controller/abra.js';

/**
 * Every backup command of abra execs into the backup bot's container and wants a terminal
 * (reference §4.2). The abra double demands one only of `backup create` and `restore`, so this
 * stands in for real abra with a script that refuses, as real abra does, when stdin is no TTY —
 * and that, like a terminal, mixes log lines into the output around the JSON.
 */

let dir: string;
let abra: Abra;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ccci-abra-tty-'));
  const bin = join(dir, 'abra');
  writeFileSync(
    bin,
    [
      '#!/bin/sh',
      '[ -t 0 ] || { echo "FATA the input device is not a TTY" >&2; exit 1; }',
      'case "$3" in',
      '  snapshots) echo "WARN backup bot: 1 repository"; echo \'[{"id":"1a2b3c4d","time":"2026-05-01T12:00:00.000Z"},\'; echo \' {"id":"5e6f7a8b","time":null}]\'; echo "INFO done" ;;',
      '  download) printf "archive" > "$PWD/5e6f7a8b.tar.gz"; echo "INFO downloaded"; echo "$PWD/5e6f7a8b.tar.gz" ;;',
      '  *) echo "FATA unexpected $*" >&2; exit 1 ;;',
      'esac',
      '',
    ].join('\n'),
  );
  chmodSync(bin, 0o755);
  abra = new Abra({ bin, abraDir: join(dir, 'abra-dir'), server: 'default', callTimeoutMs: 30_000 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('abra backup commands', () => {
  it('lists snapshots under a pseudo-terminal, reading the JSON out of the mixed output', async () => {
    expect(await abra.backupSnapshots('d.example')).toEqual([
      { id: '1a2b3c4d', time: '2026-05-01T12:00:00.000Z' },
      { id: '5e6f7a8b', time: null },
    ]);
  });

  it('downloads a snapshot under a pseudo-terminal, into the directory asked for', async () => {
    const out = join(dir, 'out');
    mkdirSync(out);
    const file = await abra.backupDownload('d.example', '5e6f7a8b', out);
    expect(file).toBe(join(out, '5e6f7a8b.tar.gz'));
    expect(readFileSync(file, 'utf8')).toBe('archive');
  });

  it("fails with abra's own FATA line", async () => {
    const e = await abra.backupCreate('d.example').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(AbraError);
    expect((e as AbraError).fatal).toBe('unexpected app backup create d.example -n');
  });

  it('finds the JSON document between log lines', () => {
    expect(jsonPart('WARN a\n[1,\n2]\nINFO b')).toBe('[1,\n2]');
    expect(jsonPart('{"a":1}')).toBe('{"a":1}');
    expect(jsonPart('no json here')).toBe('no json here');
  });
});
