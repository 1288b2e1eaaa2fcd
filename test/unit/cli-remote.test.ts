import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { FastifyInstance } from 'fastify';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventStreamParser } from '../../controller/clients/cc-ci-api.js';
import { configSchema } from '../../controller/model/config.js';
import { createLogger } from '../../controller/model/log.js';
import { Metrics } from '../../controller/http/metrics.js';
import { buildApp } from '../../controller/http/server.js';
import { ensureStateDirs, runDir, statePaths, type StatePaths } from '../../controller/model/paths.js';
import { formatEvent } from '../../controller/views/follow.js';
import { Store } from '../../state/store.js';
import { TokenStore } from '../../state/token-store.js';
import type { EventKind, TierName } from '../../state/types.js';
import { CLI } from '../support/harness.js';

/**
 * The CLI's remote mode (controller/cli/remote.ts) against the real HTTP app in this process, on a
 * state directory the test writes: `get runs`, `describe run` and `logs` print with --server what
 * they print from the state directory; `logs -f` follows a run over a dropped connection without
 * a line twice; cancel and rerun act with a token, and are refused without one; a server that is
 * not there is one line. No swarm, no controller: nothing here deploys.
 */

let dir: string;
let paths: StatePaths;
let store: Store;
let app: FastifyInstance;
let server: string;
let token: string;
const HOUR = 3_600_000;
/** The event streams the server was asked for, and where each resumed. */
const streams: { url: string; lastEventId: string | string[] | null }[] = [];
/** Everything the CLI printed, to look for the token in. */
const printed: string[] = [];

/** The CLI as a person runs it: an argument array, no shell; only the environment given (no CCCI_* of the machine). */
async function cli(args: string[], env: Record<string, string> = {}): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CCCI_')));
  const r = await execa('node', [CLI, ...args], { env: { ...base, CCCI_STATE_DIR: dir, ...env }, extendEnv: false, reject: false, timeout: 60_000 });
  printed.push(r.stdout, r.stderr);
  return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const local = (args: string[]) => cli(args);
const remote = (args: string[], env: Record<string, string> = {}) => cli([...args, '--server', server], env);
/** The server names its state directory `<state>` in what it sends (http/api.ts): the one way the two outputs differ. */
const asServed = (text: string) => text.split(paths.root).join('<state>');

function addRun(
  name: string,
  o: {
    phase: 'Pending' | 'Testing' | 'Done';
    result?: 'passed' | 'failed';
    createdAgo: number;
    tiers?: [TierName, 'pass' | 'fail' | 'skipped'][];
    pr?: number;
    events?: [EventKind, string][];
  },
): void {
  const spec = {
    apiVersion: 'cc-ci/v1',
    kind: 'Run',
    metadata: { name },
    spec: {
      recipe: 'webnotes',
      source: { repo: 'https://git.example.org/recipes/webnotes.git', ref: 'main' },
      lane: 'cold',
      ...(o.tiers ? { tiers: o.tiers.map(([t]) => t) } : {}),
      ...(o.pr ? { trigger: { kind: 'comment', forge: { owner: 'recipes', repo: 'webnotes', pr: o.pr, comment: o.pr * 10, by: 'alice' } } } : {}),
    },
  };
  store.insertRun({ name, specJson: JSON.stringify(spec), specHash: 'h', specPath: null, recipe: 'webnotes', lane: 'cold' });
  const created = Date.now() - o.createdAgo;
  // Hours ago: AGE reads the same in both outputs however long apart they are printed.
  store.db.prepare('UPDATE runs SET created_at = ? WHERE name = ?').run(created, name);
  if (o.tiers) {
    store.planTiers(
      name,
      o.tiers.map(([t]) => t),
    );
    for (const [t, r] of o.tiers) {
      store.startTier(name, t);
      store.finishTier(name, t, r, `${t}: ${r}`);
    }
  }
  for (const [kind, text] of o.events ?? []) store.appendEvent(name, kind, text);
  if (o.phase === 'Done') {
    store.updateRun(name, {
      phase: 'Done',
      result: o.result ?? 'failed',
      reason: `${o.result ?? 'failed'}: upgrade`,
      commitSha: 'c'.repeat(40),
      startedAt: created + 1_000,
      finishedAt: created + 95_000,
    });
  } else if (o.phase === 'Testing') store.updateRun(name, { phase: 'Testing' });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ccci-remote-'));
  paths = statePaths(dir);
  ensureStateDirs(paths);
  store = new Store(paths.db);
  app = buildApp(
    { store, paths, config: configSchema.parse({}), logger: createLogger('silent'), metrics: new Metrics(store), webhook: null },
    new AbortController().signal,
  );
  app.addHook('onRequest', async (request) => {
    if (request.url.includes('/events')) streams.push({ url: request.url, lastEventId: request.headers['last-event-id'] ?? null });
  });
  server = await app.listen({ port: 0, host: '127.0.0.1' });
  token = new TokenStore(store).create('ci-cli')!;

  addRun('alpha-failed', {
    phase: 'Done',
    createdAgo: 3 * HOUR,
    pr: 7,
    tiers: [
      ['install', 'pass'],
      ['upgrade', 'fail'],
      ['backup', 'skipped'],
    ],
    events: [
      ['phase', 'Preparing'],
      ['info', 'cloned the recipe'],
      ['tier', 'install'],
      ['out', '  abra app deploy'],
      ['warn', 'slow to converge'],
      ['tier', 'upgrade'],
      ['error', 'GET /health answered 502'],
      ['result', 'failed'],
    ],
  });
  store.updateRun('alpha-failed', {
    retries: [{ attempt: 1, reason: 'the Docker daemon did not answer', at: Date.now() - 2 * HOUR }],
    customization: { layers: ['_generic'] },
    understanding: {
      composeFiles: ['compose.yml'],
      composeVersion: '3.8',
      services: [{ name: 'app', replicas: 1, mode: 'replicated' }],
      web: { service: 'app', port: 8080, why: 'traefik labels' },
      backup: { capable: true, services: ['app'], testData: null, why: 'backupbot labels' },
      secrets: [],
      upgradeBase: { none: 'no release tag' },
    },
  });
  store.endStep(store.beginStep('alpha-failed', 1, 'prepare'), 'done');
  store.endStep(store.beginStep('alpha-failed', 1, 'deploy install'), 'failed');
  store.leaseApp({
    domain: 'webn-abc123.ci.localhost',
    run: 'alpha-failed',
    attempt: 1,
    purpose: 'install',
    stack: 'webn-abc123_ci_localhost',
    server: 'default',
    abraDir: join(dir, 'abra'),
    port: 20001,
  });
  mkdirSync(join(runDir(paths, 'alpha-failed'), 'evidence'), { recursive: true });
  writeFileSync(join(runDir(paths, 'alpha-failed'), 'evidence', 'diagnostics-webn.txt'), 'tasks\n');
  addRun('beta-passed', { phase: 'Done', result: 'passed', createdAgo: 5 * HOUR, tiers: [['install', 'pass']] });
  addRun('gamma-queued', { phase: 'Pending', createdAgo: 2 * HOUR });
  store.recordSpecFile({ path: join(paths.specs, 'broken.yaml'), name: 'broken', status: 'invalid', error: 'spec.recipe: is required', hash: null });
}, 60_000);

afterAll(async () => {
  await app?.close();
  store?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  // Whatever happened, the token was never printed.
  for (const text of printed) expect(text).not.toContain(token);
});

describe('reading with --server prints what reading the state directory prints', () => {
  it('get runs: the table, wide, JSON, a filter and a page', async () => {
    for (const args of [
      ['get', 'runs'],
      ['get', 'runs', '-o', 'wide'],
      ['get', 'runs', '-o', 'json'],
      ['get', 'runs', '--result', 'failed'],
      ['get', 'runs', '--limit', '1'],
      ['get', 'runs', '--limit', '1', '--cursor', `${Date.now() - 3 * HOUR}.alpha-failed`],
    ]) {
      const [here, there] = await Promise.all([local(args), remote(args)]);
      expect(here.exitCode, here.stderr).toBe(0);
      expect(there.exitCode, there.stderr).toBe(0);
      expect(there.stdout, args.join(' ')).toBe(asServed(here.stdout));
    }
    const table = (await remote(['get', 'runs'])).stdout;
    expect(table).toMatch(/^gamma-queued\s+webnotes\s+main\s+cold\s+Pending\s+-\s+2h\s+-\s+#1 in queue: waiting for the controller to admit it$/m);
    expect(table).toMatch(/^broken\s+-.*Invalid\s+error.*broken\.yaml: spec\.recipe: is required$/m);
    expect((await remote(['get', 'runs', '--limit', '1'])).stdout).toMatch(/^\(older runs: --cursor \d+\.alpha-failed --limit 1\)$/m);
  });

  it('get runs: a bad filter is refused here with the same words, before any request', async () => {
    const [here, there] = await Promise.all([local(['get', 'runs', '--pr', 'abc']), remote(['get', 'runs', '--pr', 'abc'])]);
    expect(there.exitCode).toBe(2);
    expect(there.stderr).toBe(here.stderr);
    expect(there.stderr).toBe('cc-ci: get runs: pr: must be a pull request number');
  });

  it('describe run: every section, the same; an unknown run and an invalid spec file alike', async () => {
    const [here, there] = await Promise.all([local(['describe', 'run', 'alpha-failed']), remote(['describe', 'run', 'alpha-failed'])]);
    expect(here.exitCode, here.stderr).toBe(0);
    expect(there.exitCode, there.stderr).toBe(0);
    expect(there.stdout).toBe(asServed(here.stdout));
    for (const line of [
      /^Trigger: {4}\{"kind":"comment","forge":\{"owner":"recipes","repo":"webnotes","pr":7,"comment":70,"by":"alice"\}\}$/m,
      /^Attempt: {4}1 \(retried after: #1 the Docker daemon did not answer\)$/m,
      /^Duration: {3}1m34s$/m,
      /^ {2}upgrade\s+fail\s+\S+\s+upgrade: fail$/m,
      /^ {2}webn-abc123\.ci\.localhost\s+install\s+leased\s+20001$/m,
      /^ {2}web: app on port 8080: traefik labels$/m,
      /^ {2}\{"layers":\["_generic"\]\}$/m,
      /^Evidence \(<state>\/runs\/alpha-failed\):$/m,
      /^ {2}evidence\/diagnostics-webn\.txt \(6 bytes\)$/m,
      /^ {2}2\s+1\s+deploy install\s+failed\s+\S+$/m,
    ])
      expect(there.stdout).toMatch(line);

    const unknown = await Promise.all([local(['describe', 'run', 'nope']), remote(['describe', 'run', 'nope']), remote(['logs', 'nope'])]);
    for (const r of unknown) expect([r.exitCode, r.stderr]).toEqual([2, 'cc-ci: no run named nope']);
    const invalid = await Promise.all([local(['describe', 'run', 'broken']), remote(['describe', 'run', 'broken'])]);
    for (const r of invalid) expect(r.exitCode).toBe(2);
    expect(invalid[1].stdout).toBe(asServed(invalid[0].stdout));
    expect(invalid[1].stdout).toBe('<state>/specs/broken.yaml: invalid: spec.recipe: is required');
  });

  it('logs: every line once, in order, timed from the first, as on the host', async () => {
    const [here, there] = await Promise.all([local(['logs', 'alpha-failed']), remote(['logs', 'alpha-failed'])]);
    expect(here.exitCode, here.stderr).toBe(0);
    expect(there.exitCode, there.stderr).toBe(0);
    expect(there.stdout).toBe(here.stdout);
    const events = store.eventsSince('alpha-failed', 0);
    expect(there.stdout.split('\n')).toEqual(events.map((e) => formatEvent(e, events[0]!.ts)));
  });

  it('logs -f: follows lines as they are written, over a dropped connection, until the run is done; no line twice', async () => {
    addRun('delta-live', { phase: 'Testing', createdAgo: HOUR, events: [['phase', 'Testing']] });
    const child = execa('node', [CLI, 'logs', '-f', 'delta-live', '--server', server], {
      reject: false,
      timeout: 60_000,
      extendEnv: false,
      env: { PATH: process.env.PATH ?? '' },
    });
    let seen = '';
    child.stdout?.on('data', (c: Buffer) => (seen += c.toString()));
    const until = async (text: string) => {
      for (let i = 0; i < 200 && !seen.includes(text); i++) await new Promise((r) => setTimeout(r, 50));
      expect(seen).toContain(text);
    };
    await until('==> Testing');
    for (let i = 1; i <= 5; i++) store.appendEvent('delta-live', 'out', `line ${i}`);
    await until('line 5');
    // Every connection of the server is cut: the CLI resumes after the last line it printed.
    app.server.closeAllConnections();
    for (let i = 6; i <= 10; i++) store.appendEvent('delta-live', 'out', `line ${i}`);
    await until('line 10');
    // Without -f, the log as it stands, and done: the same as on the host.
    const [here, there] = await Promise.all([local(['logs', 'delta-live']), remote(['logs', 'delta-live'])]);
    expect(there.exitCode, there.stderr).toBe(0);
    expect(there.stdout).toBe(here.stdout);
    expect(there.stdout.split('\n')).toHaveLength(11);
    store.appendEvent('delta-live', 'result', 'passed');
    store.updateRun('delta-live', { phase: 'Done', result: 'passed', reason: 'passed' });
    const r = await child;
    printed.push(r.stdout, r.stderr);
    expect(r.exitCode, r.stderr).toBe(0);
    const events = store.eventsSince('delta-live', 0);
    expect(events).toHaveLength(12);
    // Two streams: the first, and the one resumed after line 5 (the run's 6th event).
    expect(streams.filter((x) => x.url.includes('/delta-live/'))).toEqual([
      { url: '/api/v1/runs/delta-live/events?all=1', lastEventId: null },
      { url: '/api/v1/runs/delta-live/events?all=1', lastEventId: String(events[5]!.seq) },
      { url: '/api/v1/runs/delta-live/events?all=1&follow=0', lastEventId: null },
    ]);
    expect(r.stdout.split('\n')).toEqual(events.map((e) => formatEvent(e, events[0]!.ts)));
  }, 30_000);

  it('the server and the token come from the environment too; the option wins', async () => {
    const viaEnv = await cli(['get', 'runs', '-o', 'json'], { CCCI_SERVER: server });
    expect(viaEnv.exitCode, viaEnv.stderr).toBe(0);
    expect(JSON.parse(viaEnv.stdout)).toMatchObject({ invalidSpecs: [{ file: '<state>/specs/broken.yaml' }] });
    const optionWins = await cli(['get', 'runs', '--server', server], { CCCI_SERVER: 'http://127.0.0.1:9/' });
    expect(optionWins.exitCode, optionWins.stderr).toBe(0);
  });
});

describe('acting with --server', () => {
  it('rerun --failed with CCCI_TOKEN: the new spec is written at the same commit, by token:<name>', async () => {
    const r = await remote(['rerun', 'alpha-failed', '--failed'], { CCCI_TOKEN: token });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^run alpha-failed-r1 reruns upgrade, backup from upgrade, the first tier that did not pass/m);
    expect(r.stdout).toMatch(/^run\/alpha-failed-r1 created \(cc-ci serve runs it; cc-ci logs -f alpha-failed-r1 --server http:\/\/127\.0\.0\.1:\d+\/\)$/m);
    const spec = parse(readFileSync(join(paths.specs, 'alpha-failed-r1.yaml'), 'utf8')) as {
      spec: { tiers: string[]; source: { ref: string }; rerun: { by: string } };
    };
    expect(spec.spec).toMatchObject({ tiers: ['upgrade', 'backup'], source: { ref: 'c'.repeat(40) }, rerun: { by: 'token:ci-cli' } });
  });

  it('cancel with --token-file: recorded with who; a finished run says there is nothing to cancel, as on the host', async () => {
    const file = join(dir, 'token');
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
    const r = await remote(['cancel', 'gamma-queued', '--token-file', file]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /^run gamma-queued: cancel requested; it is torn down, then reported cancelled \(by the controller serving http:\/\/127\.0\.0\.1:\d+\/; cc-ci logs -f gamma-queued --server http:\/\/127\.0\.0\.1:\d+\/\)$/,
    );
    expect(store.getRun('gamma-queued')).toMatchObject({ cancelRequested: true, cancelReason: 'cancelled by token:ci-cli' });
    expect(store.eventsSince('gamma-queued', 0).at(-1)?.text).toBe('cancel requested: cancelled by token:ci-cli');
    const finished = await remote(['cancel', 'beta-passed', '--token-file', file]);
    expect(finished.exitCode).toBe(2);
    expect(finished.stdout).toBe('run beta-passed has finished (passed): there is nothing to cancel');
  });

  it("without a token or with a bad one: the server's refusal, exit 2, nothing done", async () => {
    const none = await remote(['cancel', 'alpha-failed']);
    expect(none.exitCode).toBe(2);
    expect(none.stderr).toBe('cc-ci: log in to cancel runs, or send an API token (Authorization: Bearer) (give a token in CCCI_TOKEN or --token-file)');
    const bad = await remote(['rerun', 'beta-passed'], { CCCI_TOKEN: 'ccci_not-a-token' });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toBe('cc-ci: the token is not known (revoked, or mistyped): ask the operator for one (cc-ci token create)');
    expect(bad.stderr).not.toContain('ccci_not-a-token');
    expect(store.getRun('beta-passed-r1')).toBeUndefined();
    const empty = join(dir, 'empty-token');
    writeFileSync(empty, '\n');
    expect((await remote(['cancel', 'alpha-failed', '--token-file', empty])).stderr).toBe(
      `cc-ci: --token-file ${empty}: holds no token (one line: what cc-ci token create printed)`,
    );
  });
});

describe('a server that is not there, or not named right', () => {
  it('one line naming the URL, exit 2, no stack', async () => {
    // A port that was free a moment ago: nothing listens there.
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const a = s.address();
        s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
      });
    });
    for (const args of [
      ['get', 'runs'],
      ['describe', 'run', 'alpha-failed'],
      ['logs', '-f', 'alpha-failed'],
      ['cancel', 'alpha-failed'],
    ]) {
      const r = await cli([...args, '--server', `http://127.0.0.1:${port}`], { CCCI_TOKEN: token });
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(`cc-ci: cannot reach the cc-ci server at http://127.0.0.1:${port}/: ECONNREFUSED`);
    }
  });

  it('refuses a URL with credentials in it, and --server with --state-dir', async () => {
    const creds = await cli(['get', 'runs', '--server', 'http://ci:secret@127.0.0.1:1/']);
    expect([creds.exitCode, creds.stderr]).toEqual([2, 'cc-ci: --server must not carry credentials: give the token in CCCI_TOKEN or --token-file']);
    const both = await cli(['get', 'runs', '--server', server, '--state-dir', dir]);
    expect([both.exitCode, both.stderr]).toEqual([2, 'cc-ci: --server and --state-dir name two places to read: give one']);
  });
});

describe('the event stream parser', () => {
  const all = (chunks: (string | Uint8Array)[], max?: number) => {
    const p = new EventStreamParser(max);
    const enc = new TextEncoder();
    return chunks.flatMap((c) => p.push(typeof c === 'string' ? enc.encode(c) : c));
  };

  it('splits lines on CR, LF and CRLF across chunks, keeps the last id, skips comments', () => {
    const ü = new TextEncoder().encode('ü');
    expect(
      all([
        'retry: 2000\r',
        '\n\r\n: ping\n\nid: 4\nevent: log\ndata: {"a":',
        '1}\ndata: x\r',
        '\r',
        'event: state\ndata: ',
        ü.subarray(0, 1),
        ü.subarray(1),
        '\n\n',
      ]),
    ).toEqual([
      { event: 'log', data: '{"a":1}\nx', lastEventId: '4' },
      { event: 'state', data: 'ü', lastEventId: '4' },
    ]);
  });

  it('refuses a line or an event past its bound', () => {
    expect(() => all(['data: ' + 'x'.repeat(100)], 64)).toThrow(/longer than 64 bytes/);
    expect(() => all(['data: ' + 'x'.repeat(40) + '\n', 'data: ' + 'x'.repeat(40) + '\n'], 64)).toThrow(/larger than 64 bytes/);
  });
});
