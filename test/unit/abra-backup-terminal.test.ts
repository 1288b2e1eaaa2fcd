import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Abra, AbraError, jsonPart, parseSnapshots } from '../../controller/clients/abra.js';

/**
 * Every backup command of abra execs into the backup bot's container and wants a terminal
 * (docs/abra-double.md, The contract). The abra double demands one only of `backup create` and `restore`, so this
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
      '[ "$4" = --help ] && { echo "Flags:"; [ "$3" = download ] && echo "      --volumes   volumes only"; echo "Global Flags:"; echo "  -o, --offline   prefer offline"; exit 0; }',
      '[ -t 0 ] || { echo "FATA the input device is not a TTY" >&2; exit 1; }',
      'case "$3" in',
      '  snapshots) echo "WARN backup bot: 1 repository"; echo \'[{"id":"1a2b3c4d","time":"2026-05-01T12:00:00.000Z"},\'; echo \' {"id":"5e6f7a8b","time":null}]\'; echo "INFO done" ;;',
      '  download) echo "$*" > "$PWD/args"; printf "archive" > "$PWD/5e6f7a8b.tar.gz"; echo "INFO downloaded"; echo "$PWD/5e6f7a8b.tar.gz" ;;',
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
    const { file, volumesOnly } = await abra.backupDownload('d.example', '5e6f7a8b', out);
    expect(file).toBe(join(out, '5e6f7a8b.tar.gz'));
    expect(readFileSync(file, 'utf8')).toBe('archive');
    // --volumes where the command's help lists it (no secrets in the archive); --offline, which
    // the help lists among the global flags; no --chaos, which it does not.
    expect(volumesOnly).toBe(true);
    expect(readFileSync(join(out, 'args'), 'utf8').trim()).toBe('app backup download d.example --snapshot 5e6f7a8b --volumes --offline -n');
  });

  it("reads backup-bot-two's text listing as well as a JSON one, skipping abra's own lines", () => {
    const text = [
      'INFO fetching snapshots',
      '2026-05-01 12:00:00 1a2b3c4d',
      '\x1b[33mWARN\x1b[0m something',
      '2026-05-02T08:30:00 5e6f7a8b9c0d',
      'No Snapshots found',
    ].join('\n');
    expect(parseSnapshots(text)).toEqual([
      { id: '1a2b3c4d', time: '2026-05-01 12:00:00' },
      { id: '5e6f7a8b9c0d', time: '2026-05-02T08:30:00' },
    ]);
    expect(parseSnapshots('[{"id":"1a2b3c4d","time":"t"}]')).toEqual([{ id: '1a2b3c4d', time: 't' }]);
    expect(parseSnapshots('WARN no snapshots for d.example')).toEqual([]);
  });

  it("fails with abra's own FATA line", async () => {
    const e = await abra.backupCreate('d.example').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(AbraError);
    expect((e as AbraError).fatal).toBe('unexpected app backup create d.example --offline -n');
  });

  it('finds the JSON document between log lines', () => {
    expect(jsonPart('WARN a\n[1,\n2]\nINFO b')).toBe('[1,\n2]');
    expect(jsonPart('{"a":1}')).toBe('{"a":1}');
    expect(jsonPart('no json here')).toBe('no json here');
  });
});
