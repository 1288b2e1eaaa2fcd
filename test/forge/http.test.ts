import { chromium } from '@playwright/test';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { configSchema } from '../../controller/model/config.js';
import { EnrolledRepos } from '../../controller/forge/enrolled.js';
import { Intake, type CommentEvent } from '../../controller/forge/intake.js';
import { createLogger } from '../../controller/model/log.js';
import { Metrics } from '../../controller/http/metrics.js';
import { buildApp, type HttpTimeouts } from '../../controller/http/server.js';
import { HOOK_BODY_LIMIT } from '../../controller/http/webhook-route.js';
import { withoutHostPaths } from '../../controller/http/api.js';
import { projectRoot } from '../../controller/model/project-root.js';

const ROOT_DIR = projectRoot();
import { LogBudget } from '../../controller/model/log-budget.js';
import { ensureStateDirs, statePaths, type StatePaths } from '../../controller/model/paths.js';
import { ForgeStore } from '../../state/forge-store.js';
import { Store } from '../../state/store.js';
import { WarmStore } from '../../state/warm-store.js';
import { readExampleWebhookBytes, webhookHeaders } from '../support/forge-double/index.js';

/**
 * The HTTP server in process (fastify inject): the webhook's signature gate and delivery dedupe,
 * artifacts confined to evidence/, the SSE log with replay and resume, and pages that escape.
 */

const SECRET = 'hook-secret-5f1e0c9a7b';

let dir: string;
let paths: StatePaths;
let store: Store;
let app: FastifyInstance;
let handled: CommentEvent[];
let forgeStore: ForgeStore;
let webhookIntake: Intake;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ccci-http-'));
  paths = statePaths(dir);
  ensureStateDirs(paths);
  store = new Store(paths.db);
  handled = [];
  forgeStore = new ForgeStore(store);
  // The intake's synchronous half is the real one (it writes the rows before the answer); the
  // asynchronous half only records what it was handed, as if the process died right after.
  const real = new Intake({
    store,
    forgeStore,
    paths,
    repos: new EnrolledRepos(configSchema.parse({ repos: ['recipes/custom-html'] }).repos),
    allowList: [],
    client: {} as never,
    createClient: {} as never,
    bot: {} as never,
    logger: createLogger('silent'),
  });
  const intake = {
    accept: (e: CommentEvent) => real.accept(e),
    handle: async (e: CommentEvent) => {
      handled.push(e);
      return { kind: 'ignored', reason: 'test' } as const;
    },
  } as unknown as Intake;
  webhookIntake = intake;
  app = buildApp(
    {
      store,
      paths,
      config: configSchema.parse({ forge: { url: 'https://git.example.org', tokenFile: '/dev/null', webhookSecretFile: '/dev/null' } }),
      logger: createLogger('silent'),
      metrics: new Metrics(store),
      webhook: { secret: SECRET, forgeStore, intake },
    },
    new AbortController().signal,
  );
});

afterEach(async () => {
  await app.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

const deliveries = () => (store.db.prepare('SELECT COUNT(*) AS n FROM forge_deliveries').get() as { n: number }).n;

function post(body: Buffer, headers: Record<string, string>) {
  return app.inject({ method: 'POST', url: '/hooks/forge', headers, payload: body });
}

function addRun(name: string, reason: string): void {
  const spec = {
    apiVersion: 'cc-ci/v1',
    kind: 'Run',
    metadata: { name },
    spec: { recipe: 'webnotes', source: { repo: 'https://bot:sekrit-token@git.example.org/r.git', ref: 'main' }, lane: 'cold' },
  };
  store.insertRun({ name, specJson: JSON.stringify(spec), specHash: 'h', specPath: null, recipe: 'webnotes', lane: 'cold' });
  for (const text of ['one', 'two', 'three']) store.appendEvent(name, 'info', text);
  store.updateRun(name, { phase: 'Done', result: 'failed', reason });
}

describe('POST /hooks/forge', () => {
  const body = readExampleWebhookBytes();

  it('401s a missing or wrong signature and writes nothing', async () => {
    const good = webhookHeaders(body, { secret: SECRET, deliveryId: 'd-1' });
    const unsigned = Object.fromEntries(Object.entries(good).filter(([k]) => !/signature/i.test(k)));
    expect((await post(body, unsigned)).statusCode).toBe(401);
    expect((await post(body, webhookHeaders(body, { secret: 'wrong', deliveryId: 'd-1' }))).statusCode).toBe(401);
    const tampered = Buffer.from(body.toString('utf8').replace('!testme', '!testme --quick'));
    expect((await post(tampered, good)).statusCode).toBe(401);
    await new Promise((r) => setImmediate(r));
    expect(deliveries()).toBe(0);
    expect(handled).toEqual([]);
  });

  it('answers a signed PR comment with 202, then hands it to the intake once per delivery', async () => {
    const headers = webhookHeaders(body, { secret: SECRET, deliveryId: 'd-2', flavour: 'forgejo' });
    const first = await post(body, headers);
    expect(first.statusCode).toBe(202);
    expect(first.json()).toMatchObject({ accepted: true });
    const again = await post(body, headers);
    expect(again.statusCode).toBe(200);
    expect(again.json()).toEqual({ duplicate: 'd-2' });
    await new Promise((r) => setImmediate(r));
    expect(handled).toHaveLength(1);
    expect(handled[0]).toMatchObject({ via: 'webhook', owner: 'recipes', repo: 'custom-html', pr: 42, body: '!testme', commenter: 'alice', delivery: 'd-2' });
    const metrics = (await app.inject('/metrics')).body;
    expect(metrics).toMatch(/ccci_webhook_deliveries_total\{outcome="accepted"\} 1/);
    expect(metrics).toMatch(/ccci_webhook_deliveries_total\{outcome="duplicate"\} 1/);
  });

  it('has written the delivery and the comment (undecided) before it answers: a crash after the 202 loses nothing', async () => {
    const r = await post(body, webhookHeaders(body, { secret: SECRET, deliveryId: 'd-3' }));
    expect(r.statusCode).toBe(202);
    const { comment } = r.json<{ comment: number }>();
    expect(deliveries()).toBe(1);
    // The intake's half never decided anything here; the row waits for the retry loop.
    expect(forgeStore.getComment(comment)).toMatchObject({ decision: null, attempts: 0, via: 'webhook' });
    expect(forgeStore.listUnfinishedComments().map((c) => c.commentId)).toEqual([comment]);
    await new Promise((res) => setImmediate(res));
    expect(handled).toHaveLength(1);
  });

  it('refuses a body over 1 MiB with 413, signed or not, and writes nothing', async () => {
    const big = Buffer.alloc(HOOK_BODY_LIMIT + 1, 0x20);
    const r = await post(big, { ...webhookHeaders(big, { secret: SECRET, deliveryId: 'd-big' }), 'content-type': 'application/json' });
    expect(r.statusCode).toBe(413);
    expect(deliveries()).toBe(0);
    // A real payload is far below the limit.
    expect(body.length).toBeLessThan(HOOK_BODY_LIMIT / 10);
  });

  it('logs unsigned deliveries at a bounded rate, saying how many it did not log', async () => {
    const lines: string[] = [];
    const logger = createLogger('warn', 1);
    vi.spyOn(logger, 'child').mockReturnValue({ warn: (_o: unknown, msg: string) => lines.push(msg), info: () => undefined, error: () => undefined } as never);
    const flooded = buildApp(
      {
        store,
        paths,
        config: configSchema.parse({}),
        logger,
        metrics: new Metrics(store),
        webhook: { secret: SECRET, forgeStore, intake: webhookIntake },
      },
      new AbortController().signal,
    );
    for (let i = 0; i < 200; i++) {
      const r = await flooded.inject({ method: 'POST', url: '/hooks/forge', headers: { 'content-type': 'application/json' }, payload: body });
      expect(r.statusCode).toBe(401);
    }
    await flooded.close();
    expect(lines).toHaveLength(10);
    expect(lines.every((l) => l.startsWith('webhook rejected: bad or missing signature'))).toBe(true);
    expect(deliveries()).toBe(0);
  });

  it('200s what it ignores (an edit, an issue comment) without handing it on', async () => {
    const edited = Buffer.from(body.toString('utf8').replace('"action": "created"', '"action": "edited"'));
    const r1 = await post(edited, webhookHeaders(edited, { secret: SECRET }));
    expect(r1.json()).toEqual({ ignored: 'comment-edited' });
    const r2 = await post(body, webhookHeaders(body, { secret: SECRET, eventType: 'pull_request_review_comment' }));
    expect(r2.json()).toEqual({ ignored: 'review-comment' });
    await new Promise((r) => setImmediate(r));
    expect(handled).toEqual([]);
  });
});

describe('artifacts', () => {
  beforeEach(() => {
    addRun('r1', 'x');
    const evidence = join(paths.runs, 'r1', 'evidence');
    mkdirSync(join(evidence, 'sub'), { recursive: true });
    writeFileSync(join(evidence, 'sub', 'junit.xml'), '<testsuite/>');
    writeFileSync(join(paths.runs, 'r1', 'result.json'), '{"secret":"no"}');
    writeFileSync(join(dir, 'outside.txt'), 'outside');
    symlinkSync(join(dir, 'outside.txt'), join(evidence, 'link.txt'));
  });

  it('serves files under evidence/ only', async () => {
    const ok = await app.inject('/runs/r1/artifacts/sub/junit.xml');
    expect(ok.statusCode).toBe(200);
    expect(ok.body).toBe('<testsuite/>');
    expect(ok.headers['content-type']).toMatch(/application\/xml/);
    expect(ok.headers['content-security-policy']).toMatch(/sandbox/);
    for (const url of [
      '/runs/r1/artifacts/..%2fresult.json',
      '/runs/r1/artifacts/%2e%2e/result.json',
      '/runs/r1/artifacts/sub/..%2f..%2fresult.json',
      '/runs/r1/artifacts/link.txt',
      '/runs/r1/artifacts/sub',
      '/runs/..%2f..%2f/artifacts/outside.txt',
      '/runs/nope/artifacts/sub/junit.xml',
    ]) {
      expect((await app.inject(url)).statusCode, url).toBe(404);
    }
  });
});

describe('pages, JSON and the live log', () => {
  it('escapes what runs say and shows no credentials', async () => {
    addRun('r2', '<script>alert(1)</script>');
    const list = await app.inject('/runs');
    expect(list.statusCode).toBe(200);
    expect(list.body).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(list.body).not.toContain('<script>alert(1)');
    const one = await app.inject('/runs/r2');
    expect(one.body).toContain('&lt;script&gt;');
    expect(one.body).toContain('https://***@git.example.org/r.git');
    for (const url of ['/runs', '/runs/r2', '/api/runs', '/api/runs/r2']) {
      const r = await app.inject(url);
      expect(r.body, url).not.toContain('sekrit-token');
      expect(r.body, url).not.toContain(SECRET);
    }
    expect((await app.inject('/api/runs/r2')).json()).toMatchObject({ name: 'r2', result: 'failed' });
    expect((await app.inject('/runs/missing')).statusCode).toBe(404);
    expect((await app.inject('/healthz')).json()).toEqual({ ok: true });
  });

  it('shows a verdict given during teardown as final while cleaning up, and a teardown that failed after it on the page and /metrics', async () => {
    addRun('r4', 'passed: install');
    store.updateRun('r4', { phase: 'TearingDown', result: 'passed', reason: 'passed: install' });
    const cleaning = (await app.inject('/runs/r4')).body;
    expect(cleaning).toMatch(
      /<span id="result" class="verdict passed">passed<\/span><span id="cleaning"> <span class="muted">\(final; cleaning up: the run's apps are being removed\)/,
    );
    expect((await app.inject('/metrics')).body).toMatch(/^ccci_teardown_failures 0$/m);

    store.updateRun('r4', { phase: 'Done', teardownProblem: 'timed out in teardown after 15s: could not remove webn-abc123.ci.localhost: 1 volumes' });
    const done = (await app.inject('/runs/r4')).body;
    expect(done).toContain('<span id="result" class="verdict passed">passed</span><span id="cleaning"></span>');
    expect(done).toMatch(
      /<dt>Teardown<\/dt><dd><span class="error">failed after the verdict<\/span>: timed out in teardown after 15s: could not remove webn-abc123\.ci\.localhost: 1 volumes/,
    );
    expect((await app.inject('/metrics')).body).toMatch(/^ccci_teardown_failures 1$/m);
  });

  it("names the server's own paths by placeholders in the API: state directory, installation, home", async () => {
    addRun('r3', `could not read ${join(paths.root, 'runs', 'r3', 'log.txt')} (see ${join(ROOT_DIR, 'recipes')})`);
    for (const url of ['/api/runs', '/api/runs/r3']) {
      const body = (await app.inject(url)).body;
      expect(body, url).not.toContain(paths.root);
      expect(body, url).not.toContain(ROOT_DIR);
      expect(body, url).toContain('<state>/runs/r3/log.txt');
      expect(body, url).toContain('<cc-ci>/recipes');
    }
    expect(
      withoutHostPaths({ a: ['/srv/state/x', 7, null], b: { c: '/srv/state2 /srv/state-old /srv/state.bak, /srv/state.' } }, [['/srv/state', '<state>']]),
    ).toEqual({
      a: ['<state>/x', 7, null],
      // Another directory whose name only begins the same is not the state directory.
      b: { c: '/srv/state2 /srv/state-old /srv/state.bak, <state>.' },
    });
  });

  it('sends security headers; the policy allows exactly the page’s own inline script and style', async () => {
    addRun('r4', 'headers');
    const hashOf = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
    const r = await app.inject('/runs/r4');
    const csp = String(r.headers['content-security-policy']);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    // The hashes in the policy are those of what the page really carries (a changed script without
    // a changed policy would simply not run).
    const script = /<script>([\s\S]*?)<\/script>/.exec(r.body)?.[1];
    const style = /<style>([\s\S]*?)<\/style>/.exec(r.body)?.[1];
    expect(script && style).toBeTruthy();
    expect(csp).toContain(`script-src ${hashOf(script!)}`);
    expect(csp).toContain(`style-src ${hashOf(style!)}`);
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.headers['referrer-policy']).toBe('no-referrer');
    // Badges are embedded by other sites.
    expect((await app.inject('/badge/webnotes.svg')).headers['cross-origin-resource-policy']).toBe('cross-origin');
    expect((await app.inject('/healthz')).headers['x-content-type-options']).toBe('nosniff');
  });

  it('runs the live log in a real browser under that policy, with no violation reported', async () => {
    addRun('r5', 'live');
    store.updateRun('r5', { phase: 'Testing', result: null, reason: null });
    const address = await app.listen({ port: 0, host: '127.0.0.1' });
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu'] });
    try {
      const page = await browser.newPage();
      const problems: string[] = [];
      page.on('console', (m) => {
        if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(m.text());
      });
      await page.goto(`${address}/runs/r5`);
      const log = page.locator('#log');
      await vi.waitFor(async () => expect(await log.textContent()).toContain('three'), { timeout: 10_000 });
      store.appendEvent('r5', 'info', 'a line after the page opened');
      await vi.waitFor(async () => expect(await log.textContent()).toContain('a line after the page opened'), { timeout: 10_000 });
      // The inline style applied too (the browser default is 16px).
      const fontSize = await page
        .locator('body')
        .evaluate((b) => (globalThis as unknown as { getComputedStyle(e: unknown): { fontSize: string } }).getComputedStyle(b).fontSize);
      expect(fontSize).toBe('14px');
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 60_000);

  it('replays the log over SSE, resumes after Last-Event-ID, and ends when the run is done', async () => {
    addRun('r3', 'done');
    const all = await app.inject('/runs/r3/events');
    expect(all.headers['content-type']).toMatch(/text\/event-stream/);
    const ids = [...all.body.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
    expect(ids).toEqual([1, 2, 3]);
    expect(all.body).toMatch(/event: end\ndata: \{"result":"failed","reason":"done"\}/);
    const resumed = await app.inject({ url: '/runs/r3/events', headers: { 'last-event-id': '2' } });
    expect([...resumed.body.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]))).toEqual([3]);
    expect(resumed.body).toContain('"text":"three"');
  });
});

describe('timeouts of the listening server', () => {
  let live: FastifyInstance | null = null;
  afterEach(async () => {
    await live?.close();
    live = null;
  });

  /** The same app, listening, with timeouts short enough to pass inside a test. */
  async function listening(timeouts: Partial<HttpTimeouts>): Promise<{ port: number; closing: AbortController }> {
    const closing = new AbortController();
    live = buildApp(
      {
        store,
        paths,
        config: configSchema.parse({}),
        logger: createLogger('silent'),
        metrics: new Metrics(store),
        webhook: { secret: SECRET, forgeStore, intake: webhookIntake },
        timeouts: { checkEveryMs: 20, ...timeouts },
      },
      closing.signal,
    );
    await live.listen({ port: 0, host: '127.0.0.1' });
    const a = live.server.address();
    return { port: typeof a === 'object' && a ? a.port : 0, closing };
  }

  /**
   * Sends raw bytes and collects what comes back until the server closes the socket, or (with
   * `until`) until the answer contains that text.
   */
  function rawExchange(port: number, bytes: string, until?: string): Promise<string> {
    return new Promise((resolve, reject) => {
      let got = '';
      const socket = connect(port, '127.0.0.1', () => socket.write(bytes));
      socket.on('data', (d) => {
        got += d.toString();
        if (until !== undefined && got.includes(until)) {
          socket.destroy();
          resolve(got);
        }
      });
      socket.on('close', () => resolve(got));
      socket.on('error', reject);
    });
  }

  it('closes a request whose headers never finish (408), and a keep-alive socket nobody uses', async () => {
    const { port } = await listening({ headersMs: 150, requestMs: 300, idleMs: 400 });
    expect(await rawExchange(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n')).toMatch(/^HTTP\/1\.1 408/);
    // A keep-alive socket after its answer, then silent: the server closes it.
    const kept = await rawExchange(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n');
    expect(kept).toMatch(/^HTTP\/1\.1 200/);
    expect(kept).toContain('{"ok":true}');
  });

  it('answers a webhook whose body trickles in with 503 before the forge’s 5 s are up, and records nothing', async () => {
    const { port } = await listening({ hookMs: 200, requestMs: 10_000, headersMs: 10_000, idleMs: 10_000 });
    const body = readExampleWebhookBytes();
    const headers = webhookHeaders(body, { secret: SECRET, deliveryId: 'd-slow' });
    const head = [`POST /hooks/forge HTTP/1.1`, 'Host: x', `content-length: ${body.length}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)].join(
      '\r\n',
    );
    const answer = await rawExchange(port, `${head}\r\n\r\n${body.subarray(0, 10).toString()}`, '\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 503/);
    expect(deliveries()).toBe(0);
  });

  it('closes connections past http.maxConnections at once, and serves again when they go', async () => {
    const closing = new AbortController();
    live = buildApp(
      { store, paths, config: configSchema.parse({ http: { maxConnections: 8 } }), logger: createLogger('silent'), metrics: new Metrics(store), webhook: null },
      closing.signal,
    );
    await live.listen({ port: 0, host: '127.0.0.1' });
    const a = live.server.address();
    const port = typeof a === 'object' && a ? a.port : 0;
    const held = await Promise.all(
      Array.from(
        { length: 8 },
        () =>
          new Promise<ReturnType<typeof connect>>((res) => {
            const s = connect(port, '127.0.0.1', () => res(s));
          }),
      ),
    );
    await new Promise((r) => setTimeout(r, 50));
    expect(await rawExchange(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')).toBe('');
    for (const s of held) s.destroy();
    await new Promise((r) => setTimeout(r, 50));
    expect(await rawExchange(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1\.1 200/);
  });

  it('keeps a live log stream open past every timeout', async () => {
    const { port, closing } = await listening({ headersMs: 100, requestMs: 150, idleMs: 150 });
    addRun('r4', 'x');
    store.updateRun('r4', { phase: 'Testing', result: null });
    const ac = new AbortController();
    const response = await fetch(`http://127.0.0.1:${port}/runs/r4/events`, { signal: ac.signal });
    const reader = response.body?.getReader();
    if (!reader) throw new Error('no body');
    let seen = '';
    const readUntil = async (text: string): Promise<void> => {
      while (!seen.includes(text)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended before ${text}; got ${seen}`);
        seen += Buffer.from(value).toString();
      }
    };
    await readUntil('"text":"three"');
    // Well past the request and idle timeouts (no traffic meanwhile: pings come every 15 s).
    await new Promise((r) => setTimeout(r, 600));
    store.appendEvent('r4', 'info', 'still here');
    await readUntil('"text":"still here"');
    ac.abort();
    closing.abort();
  });
});

describe('recipes and badges', () => {
  let clock = 1_700_000_000_000;
  /** A run of `recipe` that ended with `result` (null: still running), each newer than the last. */
  function ran(name: string, recipe: string, result: 'passed' | 'failed' | 'error' | 'cancelled' | null, lane: 'cold' | 'quick' = 'cold'): void {
    const spec = {
      apiVersion: 'cc-ci/v1',
      kind: 'Run',
      metadata: { name },
      spec: {
        recipe,
        source: { repo: 'https://git.example.org/r.git', ref: 'a'.repeat(40) },
        lane,
        trigger: { kind: 'comment', forge: { owner: 'recipes', repo: recipe, pr: 7, comment: 1, by: 'alice' } },
      },
    };
    store.insertRun({ name, specJson: JSON.stringify(spec), specHash: name, specPath: null, recipe, lane });
    clock += 60_000;
    store.db.prepare('UPDATE runs SET created_at = ? WHERE name = ?').run(clock, name);
    if (result) store.updateRun(name, { phase: 'Done', result, reason: `${result}: install`, startedAt: clock, finishedAt: clock + 5_000 });
    else store.updateRun(name, { phase: 'Testing', startedAt: clock });
  }

  beforeEach(() => {
    ran('web-1', 'webnotes', 'passed');
    ran('web-2', 'webnotes', 'failed');
    ran('web-3', 'webnotes', 'error');
    ran('web-4', 'webnotes', 'passed', 'quick');
    ran('web-5', 'webnotes', 'passed');
    ran('web-6', 'webnotes', 'failed', 'quick');
    ran('web-7', 'webnotes', null);
    ran('plain-1', 'plainpage', 'cancelled');
  });

  it('lists every recipe with its last verdict, pass rate and latest runs', async () => {
    const r = await app.inject('/recipes');
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/text\/html/);
    const row = (recipe: string) => r.body.split('<tr>').find((x) => x.includes(`href="/recipes/${recipe}"`)) ?? '';
    // Three passed of five verdicts; the error says nothing about the recipe.
    expect(row('webnotes')).toContain('60% <span class="muted">(3 of 5)</span>');
    expect(row('webnotes')).toContain('<img alt="webnotes badge" src="/badge/webnotes.svg">');
    // The last Done run (quick, failed), and the newest first in the latest runs, the running one too.
    expect(row('webnotes')).toMatch(/<td><span class="failed">failed<\/span> <span class="muted">/);
    const latest = [...row('webnotes').matchAll(/href="\/runs\/([^"]+)"/g)].map((m) => m[1]);
    expect(latest).toEqual(['web-7', 'web-6', 'web-5', 'web-4', 'web-3', 'web-2', 'web-1']);
    expect(row('plainpage')).toContain('<td>–</td>');
    expect(r.body.indexOf('/recipes/plainpage')).toBeLessThan(r.body.indexOf('/recipes/webnotes'));
  });

  it('shows one recipe’s whole history, newest first, and how to embed its badge', async () => {
    const r = await app.inject('/recipes/webnotes');
    expect(r.statusCode).toBe(200);
    const history = r.body.slice(r.body.indexOf('<h2>History</h2>'));
    expect([...history.matchAll(/<tr><td><a href="\/runs\/([^"]+)"/g)].map((m) => m[1])).toEqual([
      'web-7',
      'web-6',
      'web-5',
      'web-4',
      'web-3',
      'web-2',
      'web-1',
    ]);
    expect(history).toContain('recipes/webnotes#7 by alice');
    expect(r.body).toMatch(/<dt>Last cold<\/dt><dd><a href="\/runs\/web-5"><span class="passed">passed/);
    expect(r.body).toMatch(/<dt>Last quick<\/dt><dd><a href="\/runs\/web-6"><span class="failed">failed/);
    expect(r.body).toContain('[![cc-ci](/badge/webnotes.svg)](/recipes/webnotes)');
    expect((await app.inject('/recipes/nothing-here')).statusCode).toBe(404);
    expect((await app.inject('/recipes/..%2f..%2fetc')).statusCode).toBe(404);
  });

  it("shows the recipe's warm app: promoted commit and its run, the head under test, health, holder", async () => {
    expect((await app.inject('/recipes/webnotes')).body).not.toContain('Warm app');
    const warm = new WarmStore(store);
    warm.insert('webnotes', JSON.stringify({ spec: { source: { repo: 'https://git.example.org/r.git', branch: 'main' } } }), '/w');
    warm.update('webnotes', {
      promotedCommit: 'b'.repeat(40),
      promotedRun: 'web-5',
      promotedAt: clock,
      headCommit: 'c'.repeat(40),
      candidateRun: 'web-7',
      health: 'absent',
      healthReason: 'not <deployed>',
      holder: 'web-6',
      lastReconcileAt: clock,
      canonicalCommit: 'd'.repeat(40),
      canonicalVersion: '1.1.0+1.35.0',
      upkeep: 'returning to canonical dddddddddddd after web-4',
      snapshot: { kind: 'abra', id: '564b3f7e', commit: 'd'.repeat(40), at: clock },
    });
    const body = (await app.inject('/recipes/webnotes')).body;
    expect(body).toContain(`<dt>Canonical</dt><dd><code>${'d'.repeat(12)}</code> version 1.1.0+1.35.0</dd>`);
    expect(body).toContain('<dt>Upkeep</dt><dd>returning to canonical dddddddddddd after web-4</dd>');
    expect(body).toContain(`<dt>Snapshot</dt><dd>abra backup snapshot 564b3f7e at ${'d'.repeat(12)}`);
    expect(body).toContain('<h2>Warm app</h2>');
    expect(body).toContain(`<code>${'b'.repeat(12)}</code> by <a href="/runs/web-5">web-5</a>`);
    expect(body).toContain(`<code>${'c'.repeat(12)}</code> <span class="muted">(main)</span> being tested by <a href="/runs/web-7">web-7</a>`);
    expect(body).toContain('absent <span class="muted">not &lt;deployed&gt;</span>');
    expect(body).toContain('<dt>Holder</dt><dd><a href="/runs/web-6">web-6</a></dd>');
    warm.delete('webnotes');
  });

  it('draws the badge from the newest finished run, of one lane when asked', async () => {
    const badge = async (url: string) => {
      const r = await app.inject(url);
      expect(r.statusCode, url).toBe(200);
      expect(r.headers['content-type']).toMatch(/^image\/svg\+xml/);
      expect(r.headers['cache-control']).toMatch(/no-cache/);
      return /<title>([^<]*)<\/title>/.exec(r.body)?.[1];
    };
    expect(await badge('/badge/webnotes.svg')).toBe('webnotes: failing');
    expect(await badge('/badge/webnotes.svg?lane=cold')).toBe('webnotes cold: passing');
    expect(await badge('/badge/webnotes.svg?lane=quick')).toBe('webnotes quick: failing');
    expect(await badge('/badge/plainpage.svg')).toBe('plainpage: cancelled');
    expect(await badge('/badge/never-ran.svg')).toBe('never-ran: no runs');
    // The running web-7 does not count until it is Done; then it does.
    store.updateRun('web-7', { phase: 'Done', result: 'passed', finishedAt: clock + 1 });
    expect(await badge('/badge/webnotes.svg')).toBe('webnotes: passing');
    expect((await app.inject('/badge/webnotes.svg?lane=warm')).statusCode).toBe(400);
    expect((await app.inject('/badge/Not_A_Recipe.svg')).statusCode).toBe(404);
  });
});

describe('the log budget', () => {
  it('lets so many lines a window through, then counts, and the next window says how many were dropped', () => {
    let now = 0;
    const b = new LogBudget(3, 1000, () => now);
    expect([b.take(), b.take(), b.take()].map((x) => x.log)).toEqual([true, true, true]);
    expect(b.take()).toEqual({ log: false, dropped: 0 });
    expect(b.take()).toEqual({ log: false, dropped: 0 });
    now = 1000;
    expect(b.take()).toEqual({ log: true, dropped: 2 });
    expect(b.take()).toEqual({ log: true, dropped: 0 });
  });
});
