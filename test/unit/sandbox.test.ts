import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSandboxed, sandboxProblem, type SandboxSettings } from '../../controller/clients/sandbox.js';

/**
 * The sandbox for repository code, with the real bubblewrap: what a hostile hook tries — the
 * forge token, the state database, the Docker socket, the controller's environment, another
 * service on the host — gets nothing; the app under test answers through the relay.
 */

const settings: SandboxSettings = { bwrap: 'bwrap', uid: 65534, gid: 65534 };
let dir: string;
let app: Server;
let other: Server;
let appPort = 0;
let otherPort = 0;

const listen = (s: Server) => new Promise<number>((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as { port: number }).port)));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ccci-sandbox-'));
  app = createServer((_q, r) => r.end('the app'));
  other = createServer((_q, r) => r.end('the controller'));
  appPort = await listen(app);
  otherPort = await listen(other);
  mkdirSync(join(dir, 'state'), { mode: 0o700 });
  writeFileSync(join(dir, 'state', 'cc-ci.db'), 'STATE-DB-CONTENT', { mode: 0o600 });
  writeFileSync(join(dir, 'forge-token'), 'TOKEN-abc123', { mode: 0o600 });
  mkdirSync(join(dir, 'recipe'));
  writeFileSync(join(dir, 'recipe', 'compose.yml'), 'services: {}\n');
});

afterAll(() => {
  app.close();
  other.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A hostile program: tries everything and prints what it got. */
const HOSTILE = `
const fs = require('node:fs');
const net = require('node:net');
const http = require('node:http');
const out = {};
const read = (k, p) => { try { out[k] = fs.readFileSync(p, 'utf8'); } catch (e) { out[k] = 'denied:' + e.code; } };
read('token', process.argv[1]);
read('db', process.argv[2]);
read('shadow', '/etc/shadow');
out.socket = fs.existsSync('/var/run/docker.sock') || fs.existsSync('/run/docker.sock');
out.parentEnv = process.env.CCCI_PARENT_SECRET ?? null;
out.given = process.env.GIVEN ?? null;
out.uid = process.getuid();
out.recipe = fs.existsSync(process.argv[4] + '/compose.yml');
try { fs.writeFileSync('/usr/ccci-x', 'x'); out.wroteUsr = true; } catch { out.wroteUsr = false; }
try { fs.writeFileSync(process.env.HOME + '/note', 'mine'); out.wroteHome = true; } catch { out.wroteHome = false; }
const get = (port) => new Promise((res) => {
  const q = http.get({ host: '127.0.0.1', port, timeout: 3000 }, (r) => { let t = ''; r.on('data', (c) => (t += c)); r.on('end', () => res(t)); });
  q.on('error', (e) => res('unreachable:' + e.code));
  q.on('timeout', () => { q.destroy(); res('unreachable:timeout'); });
});
(async () => {
  out.app = await get(Number(process.env.APP_PORT));
  out.other = await get(Number(process.argv[3]));
  console.log(JSON.stringify(out));
})();
`;

describe('the sandbox for repository code', () => {
  it('is available here (bubblewrap installed, namespaces allowed)', async () => {
    expect(await sandboxProblem(settings)).toBeNull();
    expect(await sandboxProblem({ ...settings, bwrap: 'no-such-bwrap' })).toMatch(/apt-get install bubblewrap/);
  });

  it('gives a hostile program nothing of the host, and the app under test only', async () => {
    process.env.CCCI_PARENT_SECRET = 'PARENT-SECRET';
    const work = join(dir, 'work');
    const r = await runSandboxed(settings, {
      cmd: process.execPath,
      args: ['-e', HOSTILE, join(dir, 'forge-token'), join(dir, 'state', 'cc-ci.db'), String(otherPort), join(dir, 'recipe')],
      env: { GIVEN: 'yes', APP_PORT: String(appPort) },
      workDir: work,
      readOnly: [join(dir, 'recipe')],
      cwd: join(dir, 'recipe'),
      app: { host: '127.0.0.1', port: appPort },
      timeoutMs: 30_000,
    });
    delete process.env.CCCI_PARENT_SECRET;
    expect(r.exitCode, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
    expect(got.token).toMatch(/^denied:/);
    expect(got.db).toMatch(/^denied:/);
    expect(got.shadow).toMatch(/^denied:/);
    expect(got.socket).toBe(false);
    expect(got.parentEnv).toBeNull();
    expect(got.given).toBe('yes');
    expect(got.uid).not.toBe(0);
    expect(got.recipe).toBe(true);
    expect(got.wroteUsr).toBe(false);
    expect(got.wroteHome).toBe(true);
    expect(got.app).toBe('the app');
    expect(got.other).toMatch(/^unreachable:/);
    expect(readFileSync(join(work, 'note'), 'utf8')).toBe('mine');
    expect(`${r.stdout}${r.stderr}`).not.toMatch(/TOKEN-abc123|STATE-DB-CONTENT|PARENT-SECRET/);
  });

  it('has no network at all without an app, and reports the exit status and a timeout', async () => {
    const r = await runSandboxed(settings, {
      cmd: process.execPath,
      args: ['-e', `require('node:http').get('http://127.0.0.1:${otherPort}/', () => process.exit(0)).on('error', () => process.exit(7))`],
      env: {},
      workDir: join(dir, 'work2'),
      readOnly: [],
      cwd: '/',
      app: null,
      timeoutMs: 30_000,
    });
    expect(r.exitCode).toBe(7);
    const slow = await runSandboxed(settings, {
      cmd: 'sleep',
      args: ['30'],
      env: {},
      workDir: join(dir, 'work3'),
      readOnly: [],
      cwd: '/',
      app: null,
      timeoutMs: 1000,
    });
    expect(slow.timedOut).toBe(true);
    expect(existsSync(join(dir, 'work3'))).toBe(true);
  });
});
