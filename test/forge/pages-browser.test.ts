import { chromium, type Browser, type Page } from '@playwright/test';
import axeCore from 'axe-core';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { configSchema } from '../../controller/model/config.js';
import { junitXml } from '../../controller/model/junit.js';
import { formatDuration } from '../../controller/clients/forge/report-text.js';
import { createLogger } from '../../controller/model/log.js';
import { Metrics } from '../../controller/http/metrics.js';
import { buildApp } from '../../controller/http/server.js';
import { ensureStateDirs, runDir, statePaths, type StatePaths } from '../../controller/model/paths.js';
import { projectRoot } from '../../controller/model/project-root.js';
import { Store } from '../../state/store.js';
import type { TierName } from '../../state/types.js';

/**
 * Every page in real Chromium, at a desktop and a phone width, in light and dark: no serious or
 * critical accessibility violation (axe-core), no script or policy error, keyboard reachable, and
 * a screenshot of each saved as a test artifact (dist/screenshots/). The run page's timeline and
 * log follow a run the store moves on — with the connection dropped midway, no line lost or
 * doubled. (The same on the real swarm: test/integration/run-page.test.ts.)
 */

const SHOTS = join(projectRoot(), 'dist', 'screenshots');
const AXE = axeCore.source;
// A 1×1 PNG stands in for a Playwright screenshot among a run's evidence.
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');

let dir: string;
let paths: StatePaths;
let store: Store;
let app: FastifyInstance;
let address: string;
let browser: Browser;

function addRun(
  name: string,
  o: {
    phase: 'Pending' | 'Testing' | 'Done';
    result?: 'passed' | 'failed';
    tiers?: [TierName, 'pass' | 'fail' | 'skipped' | null][];
    pr?: number;
    recipe?: string;
  },
): void {
  const recipe = o.recipe ?? 'webnotes';
  const spec = {
    apiVersion: 'cc-ci/v1',
    kind: 'Run',
    metadata: { name },
    spec: {
      recipe,
      source: { repo: `https://git.example.org/recipes/${recipe}.git`, ref: 'main' },
      lane: 'cold',
      ...(o.pr
        ? { trigger: { kind: 'comment', forge: { owner: 'recipes', repo: 'webnotes', pr: o.pr, comment: o.pr * 10, by: 'alice', sha: 'c'.repeat(40) } } }
        : {}),
    },
  };
  store.insertRun({ name, specJson: JSON.stringify(spec), specHash: 'h', specPath: null, recipe, lane: 'cold' });
  if (o.tiers) {
    store.planTiers(
      name,
      o.tiers.map(([t]) => t),
    );
    for (const [t, r] of o.tiers) {
      if (r === null) continue;
      store.startTier(name, t);
      store.finishTier(name, t, r, `${t}: ${r === 'fail' ? 'GET /health answered 502 after the upgrade' : r}`);
    }
  }
  if (o.phase !== 'Pending') store.updateRun(name, { phase: o.phase, startedAt: Date.now() - 60_000, commitSha: 'c'.repeat(40) });
  if (o.phase === 'Done') store.updateRun(name, { result: o.result ?? 'failed', reason: `${o.result ?? 'failed'}: upgrade`, finishedAt: Date.now() });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ccci-pages-'));
  paths = statePaths(dir);
  ensureStateDirs(paths);
  store = new Store(paths.db);
  app = buildApp(
    {
      store,
      paths,
      config: configSchema.parse({ forge: { url: 'https://git.example.org', tokenFile: '/dev/null', webhookSecretFile: '/dev/null' } }),
      logger: createLogger('silent'),
      metrics: new Metrics(store),
      webhook: null,
    },
    new AbortController().signal,
  );
  addRun('webnotes-pr7-failed', {
    phase: 'Done',
    result: 'failed',
    pr: 7,
    tiers: [
      ['install', 'pass'],
      ['upgrade', 'fail'],
      ['backup', 'skipped'],
    ],
  });
  for (const text of ['==> Preparing', 'cloned the recipe', '--> install', 'deployed', '--> upgrade', 'the upgrade failed'])
    store.appendEvent('webnotes-pr7-failed', 'info', text);
  const evidence = join(runDir(paths, 'webnotes-pr7-failed'), 'evidence');
  mkdirSync(join(evidence, 'custom', 'playwright'), { recursive: true });
  writeFileSync(join(evidence, 'custom', 'playwright', 'home.png'), PNG);
  writeFileSync(join(evidence, 'diagnostics-webn-1_ci_localhost.txt'), '== webn-1_ci_localhost_app 0/1 update=updating\n');
  writeFileSync(
    join(evidence, 'junit-upgrade.xml'),
    junitXml('upgrade', [
      { name: 'converges', classname: 'upgrade', timeSeconds: 9.1 },
      { name: 'data survives', classname: 'upgrade', timeSeconds: 0.3, failure: { message: 'the marker written before the upgrade is gone' } },
    ]),
  );
  addRun('webnotes-main-passed', { phase: 'Done', result: 'passed', tiers: [['install', 'pass']] });
  addRun('webnotes-queued', { phase: 'Pending' });
  addRun('webnotes-live', {
    phase: 'Testing',
    tiers: [
      ['install', null],
      ['upgrade', null],
    ],
  });
  address = await app.listen({ port: 0, host: '127.0.0.1' });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu'] });
  mkdirSync(SHOTS, { recursive: true });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await app?.close();
  store?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface AxeResult {
  violations: { id: string; impact: string | null; help: string; nodes: { target: string[] }[] }[];
}

/** axe-core's verdict on the page as it stands (evaluated through the DevTools protocol, which the page's policy does not govern). */
async function axe(page: Page): Promise<string[]> {
  await page.evaluate(AXE);
  const r = await page.evaluate<AxeResult>('axe.run(document, { resultTypes: ["violations"] })');
  return r.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

const PAGES: [string, string][] = [
  ['runs', '/runs'],
  ['runs-filtered', '/runs?recipe=webnotes&result=failed'],
  ['run-failed', '/runs/webnotes-pr7-failed'],
  ['run-live', '/runs/webnotes-live'],
  ['run-queued', '/runs/webnotes-queued'],
  ['recipes', '/recipes'],
  ['recipe', '/recipes/webnotes'],
];
const VIEWPORTS = { desktop: { width: 1280, height: 900 }, phone: { width: 390, height: 844 } } as const;

describe('the pages in Chromium', () => {
  for (const scheme of ['light', 'dark'] as const) {
    it(`every page, desktop and phone, ${scheme}: no serious accessibility violation, no error, a screenshot of each`, async () => {
      const found: string[] = [];
      for (const [vp, viewport] of Object.entries(VIEWPORTS)) {
        const context = await browser.newContext({ viewport, colorScheme: scheme });
        const page = await context.newPage();
        const problems: string[] = [];
        page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
        page.on('pageerror', (e) => problems.push(e.message));
        for (const [name, url] of PAGES) {
          await page.goto(`${address}${url}`);
          await page.waitForLoadState('load');
          // The run pages' stream has delivered its first state and lines.
          if (url.startsWith('/runs/')) await vi.waitFor(async () => expect(await page.locator('#live').textContent()).not.toBe(''), { timeout: 10_000 });
          for (const v of await axe(page)) found.push(`${name} ${vp} ${scheme}: ${v}`);
          // Nothing is wider than the screen: a phone scrolls down, not sideways.
          const overflow = await page.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth');
          expect(overflow, `${name} at ${vp} width scrolls sideways`).toBeLessThanOrEqual(0);
          await page.screenshot({ path: join(SHOTS, `${name}-${vp}-${scheme}.png`), fullPage: true });
        }
        expect(problems, `${vp} ${scheme}`).toEqual([]);
        await context.close();
      }
      expect(found).toEqual([]);
    }, 120_000);
  }

  it('the failed run shows its screenshot inline, its diagnostics beside the failed tier, and rerun commands', async () => {
    const page = await browser.newPage();
    await page.goto(`${address}/runs/webnotes-pr7-failed`);
    const img = page.locator('.shots img');
    await expect.poll(() => img.evaluate((i) => (i as unknown as { naturalWidth: number }).naturalWidth)).toBe(1);
    expect(await page.locator('#tier-upgrade .treason a').textContent()).toBe('diagnostics-webn-1_ci_localhost.txt');
    expect(await page.locator('.actions').textContent()).toContain('cc-ci rerun webnotes-pr7-failed --failed');
    // JUnit as a table, the failing case first with its message; the passing one folded away.
    expect(await page.locator('h3').first().textContent()).toBe('junit-upgrade.xml (1 failing, 1 passed, 0 skipped)');
    expect(await page.locator('tr.failed').first().textContent()).toContain('the marker written before the upgrade is gone');
    // The header links the pull request and the commit on the forge.
    expect(await page.locator('header a').first().getAttribute('href')).toBe('https://git.example.org/recipes/webnotes/commit/' + 'c'.repeat(40));
    await page.close();
  });

  it('follows a run live: tiers advance, lines arrive in order, the verdict lands; a dropped connection loses and doubles nothing', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${address}/runs/webnotes-live`);
    await vi.waitFor(async () => expect(await page.locator('#live').textContent()).toBe('live'), { timeout: 10_000 });
    const tier = (t: string) => page.locator(`#tier-${t} .tstate`);
    expect(await tier('install').textContent()).toBe('pending');
    // The run's duration ticks in the header and the details (it started a minute ago).
    await vi.waitFor(
      async () => expect(await page.locator('.rundur').allTextContents()).toEqual([expect.stringMatching(/^1m\d+s$/), expect.stringMatching(/^1m\d+s$/)]),
      {
        timeout: 5_000,
      },
    );
    store.startTier('webnotes-live', 'install');
    store.appendEvent('webnotes-live', 'tier', 'install: deploying head');
    await vi.waitFor(async () => expect(await tier('install').textContent()).toBe('running'), { timeout: 10_000 });
    for (let i = 1; i <= 20; i++) store.appendEvent('webnotes-live', 'out', `line ${i}`);
    await vi.waitFor(async () => expect(await page.locator('#log').textContent()).toContain('line 20'), { timeout: 10_000 });

    // The connection drops (the server closes every socket): lines written meanwhile arrive once
    // the browser has reconnected (Last-Event-ID), each once, in order.
    app.server.closeAllConnections();
    for (let i = 21; i <= 40; i++) store.appendEvent('webnotes-live', 'out', `line ${i}`);
    store.finishTier('webnotes-live', 'install', 'pass', 'converged and serving');
    store.startTier('webnotes-live', 'upgrade');
    await vi.waitFor(async () => expect(await page.locator('#live').textContent()).toBe('live'), { timeout: 20_000 });
    await vi.waitFor(async () => expect(await page.locator('#log').textContent()).toContain('line 40'), { timeout: 30_000 });
    await vi.waitFor(async () => expect(await tier('upgrade').textContent()).toBe('running'), { timeout: 10_000 });
    expect(await tier('install').textContent()).toBe('pass');
    const lines = (await page.locator('#log .ln.out span').allTextContents()).map((t) => /line (\d+)$/.exec(t)?.[1]).filter(Boolean);
    expect(lines).toEqual(Array.from({ length: 40 }, (_, i) => String(i + 1)));
    const ids = await page.locator('#log .ln').evaluateAll((els) => els.map((e) => e.id));
    expect(new Set(ids).size).toBe(ids.length);

    // The verdict arrives without a reload.
    store.finishTier('webnotes-live', 'upgrade', 'fail', 'the data did not survive');
    store.updateRun('webnotes-live', { phase: 'Done', result: 'failed', reason: 'failed: upgrade', finishedAt: Date.now() });
    await vi.waitFor(async () => expect(await page.locator('#verdict').textContent()).toBe('failed'), { timeout: 10_000 });
    expect(await page.locator('#result').textContent()).toBe('failed');
    // The duration stops at the verdict, written as the server writes it.
    const ended = store.getRun('webnotes-live')!;
    const took = formatDuration(ended.finishedAt! - ended.startedAt!);
    await vi.waitFor(async () => expect(await page.locator('.rundur').allTextContents()).toEqual([took, took]), { timeout: 5_000 });
    expect(await page.locator('#tier-upgrade .treason').textContent()).toBe('the data did not survive');
    await vi.waitFor(async () => expect(await page.locator('#live').textContent()).toBe('finished: failed'), { timeout: 10_000 });

    // A queued run's page: "Not planned yet" gives way to the ladder once the run plans it.
    const queued = await context.newPage();
    await queued.goto(`${address}/runs/webnotes-queued`);
    await vi.waitFor(async () => expect(await queued.locator('#live').textContent()).toBe('live'), { timeout: 10_000 });
    expect(await queued.locator('#unplanned').count()).toBe(1);
    store.updateRun('webnotes-queued', { phase: 'Preparing', startedAt: Date.now() });
    store.planTiers('webnotes-queued', ['install']);
    await vi.waitFor(async () => expect(await queued.locator('#tier-install .tstate').textContent()).toBe('pending'), { timeout: 10_000 });
    expect(await queued.locator('#unplanned').count()).toBe(0);
    expect(await queued.locator('#phase').textContent()).toBe('Preparing');

    // A line link: the page opened at #L3 scrolls to it and marks it.
    const linked = await context.newPage();
    await linked.goto(`${address}/runs/webnotes-live#L3`);
    await vi.waitFor(async () => expect(await linked.locator('#L3').getAttribute('class')).toContain('target'), { timeout: 10_000 });
    // Clicking another line's number moves the mark there.
    await linked.locator('#L5 a.n').click();
    await vi.waitFor(async () => expect(await linked.locator('#L5').getAttribute('class')).toContain('target'), { timeout: 5_000 });
    expect(await linked.locator('#L3').getAttribute('class')).not.toContain('target');
    // Search hides what does not match, and says how many lines do.
    await page.locator('#q').focus();
    await page.keyboard.type('line 3');
    await vi.waitFor(async () => expect(await page.locator('#hits').textContent()).toBe('11 matching lines'), { timeout: 5_000 });
    await context.close();
  }, 90_000);

  it("opens a recipe test's Playwright trace in the trace viewer cc-ci serves, from the run's evidence", async () => {
    // A real trace, recorded as a recipe's tests record one: a page with a script of its own.
    const recorder = await browser.newContext();
    await recorder.tracing.start({ screenshots: true, snapshots: true });
    const traced = await recorder.newPage();
    await traced.setContent('<h1 id="t">hello from a recipe test</h1><script>document.title = "ran"</script>');
    await traced.click('#t');
    const trace = join(runDir(paths, 'webnotes-pr7-failed'), 'evidence', 'custom', 'playwright', 'home-chromium', 'trace.zip');
    await recorder.tracing.stop({ path: trace });
    await recorder.close();

    const context = await browser.newContext();
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(`${address}/runs/webnotes-pr7-failed`);
    const link = page.getByRole('link', { name: 'open in the trace viewer' });
    expect(await link.getAttribute('href')).toBe(
      `/trace/index.html?trace=${encodeURIComponent('/runs/webnotes-pr7-failed/artifacts/custom/playwright/home-chromium/trace.zip')}`,
    );
    await link.click();
    // The viewer lists the recorded actions once it has read the trace.
    await vi.waitFor(async () => expect(await page.locator('body').textContent()).toMatch(/Click/), { timeout: 30_000, interval: 500 });
    await page.screenshot({ path: join(SHOTS, 'trace-viewer-desktop.png') });
    expect(problems).toEqual([]);
    // Only the viewer's own files are served from /trace/.
    expect((await app.inject('/trace/../../package.json')).statusCode).toBe(404);
    expect((await app.inject('/trace/sw.bundle.js')).headers['content-security-policy']).toMatch(/^default-src 'self'; script-src 'self'/);
    await context.close();
  }, 90_000);

  it("filters the runs list from its form, pages through it, and shows a recipe's badge to copy", async () => {
    // 120 finished runs of another recipe, every other one failed: 60 match the filter, a page holds 50.
    for (let i = 1; i <= 120; i++)
      addRun(`plainpage-${String(i).padStart(3, '0')}`, { phase: 'Done', result: i % 2 ? 'failed' : 'passed', recipe: 'plainpage' });
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${address}/runs`);
    // With the keyboard: type the recipe, choose the result, submit with Enter.
    await page.getByLabel('recipe', { exact: true }).fill('plainpage');
    await page.getByLabel('result').selectOption('failed');
    await page.getByLabel('recipe', { exact: true }).press('Enter');
    await page.waitForURL(/\/runs\?recipe=plainpage&result=failed/);
    const shown = async () =>
      // A row's inner text is its cells, tab-separated.
      (await page.locator('#finished tr').allInnerTexts()).map((row) => row.split('\t').map((cell) => cell.trim()));
    const first = await shown();
    expect(first).toHaveLength(50);
    for (const row of first) expect([row[1], row[5]]).toEqual(['plainpage', 'failed']);
    // The filter is kept in the form, and the older page carries it on.
    expect(await page.getByLabel('result').inputValue()).toBe('failed');
    await page.getByRole('link', { name: 'older →' }).click();
    await page.waitForURL(/cursor=/);
    const older = await shown();
    expect(older).toHaveLength(10);
    for (const row of older) expect([row[1], row[5]]).toEqual(['plainpage', 'failed']);
    // Newest first across the pages, and no run on both.
    const names = [...first, ...older].map((r) => r[0]!);
    expect(names).toEqual(Array.from({ length: 60 }, (_, i) => `plainpage-${String(119 - 2 * i).padStart(3, '0')}`));
    expect(await page.locator('#empty').count()).toBe(0);

    // The recipe page shows the badge of its newest verdict and the Markdown to copy into a README.
    await page.goto(`${address}/recipes/plainpage`);
    await vi.waitFor(
      async () =>
        expect(
          await page.evaluate<boolean>('(() => { const i = document.querySelector("h1 img[alt=badge]"); return i.complete && i.naturalWidth > 0; })()'),
        ).toBe(true),
      { timeout: 5_000 },
    );
    const svg = await (await page.request.get(`${address}/badge/plainpage.svg`)).text();
    expect(/<title>(.*?)<\/title>/.exec(svg)?.[1]).toBe('plainpage: passing');
    expect(await page.locator('body').textContent()).toContain('[![cc-ci](/badge/plainpage.svg)](/recipes/plainpage)');
    expect(await axe(page)).toEqual([]);
    await page.screenshot({ path: join(SHOTS, 'recipe-badge-desktop-light.png'), fullPage: true });
    await context.close();
  }, 60_000);

  it('the recipe page charts the pass rate by day, with the same in words', async () => {
    const r = await app.inject('/recipes/webnotes');
    expect(r.body).toMatch(/<svg role="img" aria-label="1 of 3 runs passed in the last 30 days"/);
  });
});
