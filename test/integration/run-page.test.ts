import { chromium, type Browser } from '@playwright/test';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { join } from 'node:path';
import type { ResultPromise } from 'execa';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { RecipeRepo } from '../../fixtures/recipe-repo.js';
import { projectRoot } from '../../controller/model/project-root.js';
import { dropSpec, ensureSwarm, makeTestEnv, recipeRepo, removeEnvStacks, serve, untilDone, waitFor, withStore, type TestEnv } from '../support/harness.js';
import { startForgeDouble, type ForgeDouble } from '../support/forge-double/index.js';

/**
 * The run page on the real swarm, in real Chromium, as a maintainer uses it: logged in through
 * the forge (the double), they watch a run climb — lines and tiers arriving live, through a
 * connection that drops midway —, cancel it, rerun its failed tiers from the page and see that
 * verdict arrive. Someone anonymous, and a page on another site, are refused.
 */

const TOKEN = 'tok_5d1c0b9a8f7e6d5c4b3a2918171615141312111f';
const CLIENT_SECRET = 'oauth-secret-0b1c2d3e4f5a6b7c8d9e';
const REPO = 'recipes/webnotes';
const HTTP_PORT = 22050;
const EVIL_PORT = 22051;
const PROXY_PORT = 22052;
const SHOTS = join(projectRoot(), 'dist', 'screenshots');

let t: TestEnv;
let repo: RecipeRepo;
let double: ForgeDouble;
let server: ResultPromise | null = null;
let browser: Browser;
let proxy: Server;
const proxied = new Set<Socket>();

/** A TCP relay in front of cc-ci: dropping its sockets is a dropped connection, as a flaky network drops it. */
function startProxy(): Promise<Server> {
  const s = createServer((client) => {
    const upstream = connect(HTTP_PORT, '127.0.0.1');
    proxied.add(client);
    proxied.add(upstream);
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      proxied.delete(client);
      proxied.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  return new Promise((resolve) => s.listen(PROXY_PORT, '127.0.0.1', () => resolve(s)));
}

beforeAll(async () => {
  await ensureSwarm();
  repo = await recipeRepo('webnotes');
  t = await makeTestEnv({ portRange: [22000, 22049], deploySeconds: 60, httpSeconds: 20 });
  writeFileSync(join(t.dir, 'token'), `${TOKEN}\n`, { mode: 0o600 });
  writeFileSync(join(t.dir, 'webhook-secret'), 'whsec_run_page_0123456789\n', { mode: 0o600 });
  writeFileSync(join(t.dir, 'oauth-secret'), `${CLIENT_SECRET}\n`, { mode: 0o600 });
  double = await startForgeDouble({ botLogin: 'cc-ci', botToken: TOKEN });
  for (const login of ['alice', 'bob']) double.addUser({ login });
  double.addRepo({ owner: 'recipes', name: 'webnotes', permissions: { alice: 'write', bob: 'read' } });
  double.addPullRequest({ repo: REPO, author: 'alice', headRef: 'bump', headSha: repo.head, cloneUrl: repo.path });
  // People reach cc-ci through the relay: its address is the public one.
  const publicUrl = `http://127.0.0.1:${PROXY_PORT}`;
  double.addOAuthApp({ clientId: 'cc-ci-pages', clientSecret: CLIENT_SECRET, redirectUris: [`${publicUrl}/login/callback`] });
  const base = parse(readFileSync(t.configFile, 'utf8')) as Record<string, unknown>;
  const file = join(t.dir, 'config-pages.yaml');
  writeFileSync(
    file,
    stringify({
      ...base,
      capacity: 1,
      forge: { url: double.url, tokenFile: join(t.dir, 'token'), webhookSecretFile: join(t.dir, 'webhook-secret'), mode: 'webhook', timeoutSeconds: 3 },
      repos: [REPO],
      login: { clientId: 'cc-ci-pages', clientSecretFile: join(t.dir, 'oauth-secret') },
      http: { port: HTTP_PORT, host: '127.0.0.1', publicUrl },
    }),
  );
  proxy = await startProxy();
  server = serve(t, { CCCI_CONFIG: file });
  await waitFor('the HTTP server', async () => (await fetch(`http://127.0.0.1:${HTTP_PORT}/healthz`).catch(() => null))?.ok, 30_000, 200);
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu'] });
  mkdirSync(SHOTS, { recursive: true });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  if (server) {
    server.kill('SIGTERM');
    await server;
  }
  for (const s of proxied) s.destroy();
  proxy?.close();
  await double?.close();
  await removeEnvStacks(t);
  t?.cleanup();
});

const PUBLIC = `http://127.0.0.1:${PROXY_PORT}`;
const forgeTrigger = (pr: number) => ({
  trigger: { kind: 'comment', forge: { owner: 'recipes', repo: 'webnotes', pr, comment: 1, by: 'alice', sha: repo.head } },
});

describe('the run page on the real swarm', () => {
  it('a writer watches a run live through a dropped connection, cancels it, reruns its failed tiers and sees the verdict; others are refused', async () => {
    const name = 'page-live';
    dropSpec(t, name, { repo: repo.path, ref: 'main', tiers: ['install', 'upgrade', 'backup'], extra: forgeTrigger(1) });

    // Alice logs in through the forge and lands on the run's page.
    double.authorizeAs('alice');
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(`${PUBLIC}/login?next=/runs/${name}`);
    expect(page.url()).toBe(`${PUBLIC}/runs/${name}`);
    await vi.waitFor(async () => expect(await page.locator('#live').textContent()).toBe('live'), { timeout: 30_000 });
    expect(await page.locator('.actions').textContent()).toContain('as alice');

    // Install starts and ends on the page without a reload.
    const tier = (x: string) => page.locator(`#tier-${x} .tstate`);
    await vi.waitFor(async () => expect(await tier('install').textContent()).toBe('running'), { timeout: 120_000, interval: 250 });
    // The connection drops while the run goes on; the page reconnects and misses nothing.
    for (const s of proxied) s.destroy();
    await vi.waitFor(async () => expect(await tier('install').textContent()).toBe('pass'), { timeout: 120_000, interval: 250 });
    await vi.waitFor(async () => expect(await tier('upgrade').textContent()).toBe('running'), { timeout: 60_000, interval: 250 });
    await page.screenshot({ path: join(SHOTS, 'swarm-run-live-desktop.png'), fullPage: true });

    // Someone anonymous sees no form, and is refused if they post anyway; so is a page on another site.
    const anonymous = await browser.newContext();
    const anon = await anonymous.newPage();
    await anon.goto(`${PUBLIC}/runs/${name}`);
    expect(await anon.locator('.actions form').count()).toBe(0);
    expect(await anon.locator('.actions a').first().textContent()).toBe('Log in');
    const status = await anon.evaluate(async (url) => (await fetch(url, { method: 'POST' })).status, `${PUBLIC}/runs/${name}/cancel`);
    expect(status).toBe(401);
    await anonymous.close();
    const evil = createHttpServer((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end(
        `<form id="f" method="post" action="${PUBLIC}/runs/${name}/cancel"><input name="_form" value="guess"></form><script>document.getElementById('f').submit()</script>`,
      );
    });
    await new Promise<void>((resolve) => evil.listen(EVIL_PORT, 'localhost', resolve));
    try {
      const lured = await context.newPage();
      const answer = lured.waitForResponse((r) => r.url().endsWith(`/runs/${name}/cancel`));
      await lured.goto(`http://localhost:${EVIL_PORT}/`);
      expect([401, 403]).toContain((await answer).status());
      await lured.close();
    } finally {
      evil.close();
    }
    expect(withStore(t, (s) => s.getRun(name)?.cancelRequested)).toBe(false);

    // Alice cancels during upgrade: the verdict arrives on the page.
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.waitForURL(`${PUBLIC}/runs/${name}`);
    await vi.waitFor(async () => expect(await page.locator('#verdict').textContent()).toBe('cancelled'), { timeout: 120_000, interval: 250 });
    const done = await untilDone(t, name, 180_000);
    expect(done.result).toBe('cancelled');
    expect(done.reason).toMatch(/cancelled by alice/);
    // Every line of the run's log is on the page once, in order, the drop notwithstanding.
    await vi.waitFor(async () => expect(await page.locator('#live').textContent()).toBe('finished: cancelled'), { timeout: 60_000 });
    const logged = withStore(t, (s) => s.eventsSince(name, 0, 100_000).map((e) => e.seq));
    const ids: string[] = await page.locator('#log .ln').evaluateAll((els) => els.map((e) => e.id));
    const shown = ids.map((id) => Number(id.slice(1)));
    expect(shown).toEqual(logged);

    // Rerun the failed tiers from the page: a new run from upgrade, at the same commit, to its verdict.
    await page.reload();
    await page.getByRole('button', { name: 'Rerun failed tiers' }).click();
    await page.waitForURL(`${PUBLIC}/runs/${name}-r1`);
    expect(await page.locator('dl').textContent()).toMatch(/Rerun of\s*page-live \(the tiers that failed\) by alice/);
    await vi.waitFor(async () => expect(await page.locator('#verdict').textContent()).toBe('passed'), { timeout: 240_000, interval: 500 });
    const rerun = await untilDone(t, `${name}-r1`, 120_000);
    expect(withStore(t, (s) => s.getTiers(rerun.name).map((x) => `${x.tier}:${x.result}`))).toEqual(['upgrade:pass', 'backup:pass']);
    expect(rerun.commitSha).toBe(repo.head);
    await page.screenshot({ path: join(SHOTS, 'swarm-run-rerun-desktop.png'), fullPage: true });
    expect(problems).toEqual([]);
    await context.close();
  }, 600_000);
});
