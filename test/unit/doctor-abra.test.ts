import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Abra } from '../../controller/clients/abra.js';
import { ABRA_COMMANDS, checkAbraFlags } from '../../controller/cli/doctor.js';

/**
 * `cc-ci doctor`'s self-check of the pinned abra: every command cc-ci runs, the flags it needs,
 * and the `--chaos`/`--offline`/`--volumes` it passes only where the command has them. A stand-in
 * abra prints cobra-style help in which some flags are missing, as an older or newer abra would.
 */

let dir: string;
let abra: Abra;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ccci-doctor-'));
  const bin = join(dir, 'abra');
  writeFileSync(
    bin,
    [
      '#!/bin/sh',
      '# args: <cmd...> --help -n',
      'case "$*" in',
      // `app restore` has no help at all here: that command is reported as broken.
      '  "app restore --help -n") echo "FATA unknown command \\"restore\\" for \\"abra app\\"" >&2; exit 1 ;;',
      // backup download lacks --volumes; secret generate lacks --chaos; app deploy lacks --no-domain-checks.
      '  "app backup download --help -n") printf "Flags:\\n  -s, --snapshot string\\n  -C, --chaos\\nGlobal Flags:\\n  -n, --no-input\\n  -o, --offline\\n" ;;',
      '  "app secret generate --help -n") printf "Flags:\\n  -a, --all\\n  -m, --machine\\nGlobal Flags:\\n  -n, --no-input\\n  -o, --offline\\n" ;;',
      '  "app deploy --help -n") printf "Flags:\\n  -C, --chaos\\n  -f, --force\\n  -c, --no-converge-checks\\nGlobal Flags:\\n  -n, --no-input\\n  -o, --offline\\n" ;;',
      '  *) printf "Flags:\\n  -l, --local\\n  -s, --server string\\n  -D, --domain string\\n  -C, --chaos\\n  -f, --force\\n  -a, --all\\n  -m, --machine\\n  -s, --snapshot string\\nGlobal Flags:\\n  -n, --no-input\\n  -o, --offline\\n" ;;',
      'esac',
      '',
    ].join('\n'),
  );
  chmodSync(bin, 0o755);
  abra = new Abra({ bin, abraDir: join(dir, 'abra-dir'), server: 'default', callTimeoutMs: 10_000 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the abra self-check', () => {
  it('covers every command cc-ci runs', () => {
    expect(ABRA_COMMANDS.map((c) => c.path.join(' '))).toEqual([
      'server add',
      'app new',
      'app deploy',
      'app undeploy',
      'app remove',
      'app secret generate',
      'app secret remove',
      'app volume remove',
      'app backup create',
      'app backup snapshots',
      'app backup download',
      'app restore',
    ]);
  });

  it('names each missing required flag, each missing optional one, and a command whose help fails', async () => {
    const report = await checkAbraFlags(abra);
    expect(report.missing).toEqual(['abra app deploy --no-domain-checks', 'abra app restore --help failed: unknown command "restore" for "abra app"']);
    expect(report.unavailable).toEqual(['abra app secret generate --chaos', 'abra app backup download --volumes']);
  });

  it('passes an optional flag only where the help lists it', async () => {
    expect(await abra.supports(['app', 'backup', 'download'], '--volumes')).toBe(false);
    expect(await abra.supports(['app', 'backup', 'download'], '--chaos')).toBe(true);
    expect(await abra.supports(['app', 'backup', 'download'], '--offline')).toBe(true);
    // a prefix is not the flag
    expect(await abra.supports(['app', 'deploy'], '--no')).toBe(false);
  });
});
