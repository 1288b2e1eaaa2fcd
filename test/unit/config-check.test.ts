import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI } from '../support/harness.js';

/**
 * `cc-ci config check FILE` as the NixOS module's build runs it: the built CLI, no state
 * directory, no swarm. Its errors must be the ones `serve` prints for the same file, so the
 * bad files are checked against `serve`'s own output too (it exits at config load, before it
 * touches a state directory or docker).
 */

const dir = mkdtempSync(join(tmpdir(), 'ccci-config-check-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

async function run(args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  // No CCCI_CONFIG from the caller's environment: only the file named is read.
  const env: NodeJS.ProcessEnv = { ...process.env, CCCI_STATE_DIR: join(dir, 'state') };
  delete env.CCCI_CONFIG;
  const r = await execa('node', [CLI, ...args], { env, extendEnv: false, reject: false, timeout: 60_000 });
  return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describe('cc-ci config check', () => {
  it('accepts a full server config and says so', async () => {
    const good = file(
      'good.yaml',
      [
        'capacity: 2',
        'domain: { base: ci.example.org }',
        'ingress: { mode: traefik }',
        'forge:',
        '  url: https://git.example.org',
        '  tokenFile: /run/credentials/cc-ci.service/forge-token',
        '  webhookSecretFile: /run/credentials/cc-ci.service/webhook-secret',
        "repos: ['coop-cloud/webnotes']",
        'http: { port: 8080, publicUrl: https://ci.example.org }',
        '',
      ].join('\n'),
    );
    const r = await run(['config', 'check', good]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(`${good}: ok`);
  });

  it('accepts an empty file: every default applies', async () => {
    const r = await run(['config', 'check', file('empty.yaml', '')]);
    expect(r.exitCode, r.stderr).toBe(0);
  });

  it.each([
    ['an unknown key', 'capcity: 2\n', /unknown field "capcity"/],
    ['a value out of range', 'capacity: 0\n', /capacity: Too small/],
    ['YAML that does not parse', 'capacity: [1\n', /is not valid YAML/],
    ['the forge in webhook mode without its secret', 'forge: { url: https://git.example.org, tokenFile: /t }\n', /forge\.webhookSecretFile is required/],
  ])('refuses %s with exit 2 and the error serve gives', async (_what, text, error) => {
    const bad = file('bad.yaml', text);
    const checked = await run(['config', 'check', bad]);
    expect(checked.exitCode).toBe(2);
    expect(checked.stdout).toBe('');
    expect(checked.stderr).toMatch(error);
    const served = await run(['serve', '--config', bad]);
    expect(served.exitCode).toBe(2);
    expect(served.stderr.trim()).toBe(checked.stderr.trim());
  });

  it('refuses a file it cannot read', async () => {
    const r = await run(['config', 'check', join(dir, 'missing.yaml')]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/cannot read config file .*missing\.yaml: ENOENT/);
  });
});
