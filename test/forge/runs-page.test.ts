import { chromium } from '@playwright/test';
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { configSchema } from '../../controller/model/config.js';
import { createLogger } from '../../controller/model/log.js';
import { Metrics } from '../../controller/http/metrics.js';
import { buildApp } from '../../controller/http/server.js';
import type { StatePaths } from '../../controller/model/paths.js';
import { RetentionStore } from '../../state/retention-store.js';
import { Store } from '../../state/store.js';
import { addHistoryRun, removeTempState, tempState } from '../support/history.js';

/**
 * The runs list and recipe history at scale, through the real fastify app: pages and filters in
 * HTML and JSON, bad queries refused with a message, the live runs list (server-sent events) and
 * its script under the page's content security policy, in a real browser.
 */

let dir: string;
let paths: StatePaths;
let store: Store;
let app: FastifyInstance;
let closing: AbortController;

beforeEach(() => {
  ({ dir, paths, store } = tempState('ccci-runs-page-'));
  closing = new AbortController();
  app = buildApp({ store, paths, config: configSchema.parse({}), logger: createLogger('silent'), metrics: new Metrics(store), webhook: null }, closing.signal);
});

afterEach(async () => {
  closing.abort();
  await app.close();
  removeTempState({ dir, store });
});

const T0 = 1_700_000_000_000;

function seed(n: number): void {
  store.atomically(() => {
    for (let i = 0; i < n; i++) {
      addHistoryRun(store, {
        name: `run-${String(i).padStart(3, '0')}`,
        recipe: i % 2 ? 'plainpage' : 'webnotes',
        lane: i % 3 ? 'cold' : 'quick',
        result: i % 4 ? 'passed' : 'failed',
        createdAt: T0 + i * 60_000,
        pr: { owner: 'recipes', repo: i % 2 ? 'plainpage' : 'webnotes', pr: 1 + (i % 3) },
      });
    }
  });
}

const rowNames = (html: string) => [...html.matchAll(/<tr id="run-([^"]+)"/g)].map((m) => m[1]);

describe('the runs list, paged and filtered', () => {
  it('serves a page of runs with a link to the next, and the same as JSON', async () => {
    seed(130);
    addHistoryRun(store, { name: 'waiting', phase: 'Pending', createdAt: T0 });
    const first = await app.inject('/runs');
    expect(first.statusCode).toBe(200);
    const names = rowNames(first.body);
    expect(names).toHaveLength(51);
    expect(names.slice(0, 2)).toEqual(['waiting', 'run-129']);
    expect(first.body).toContain('#1 in queue: waiting for the controller to admit it');
    const older = /href="(\/runs\?cursor=[^"]+)">older/.exec(first.body)?.[1]?.replace(/&amp;/g, '&');
    expect(older).toBe(`/runs?cursor=${T0 + 80 * 60_000}.run-080`);
    expect(rowNames((await app.inject(older!)).body).slice(0, 2)).toEqual(['run-079', 'run-078']);

    interface Answer {
      runs: { name: string; lane: string }[];
      next: string | null;
      invalidSpecs: unknown[];
    }
    const json = async (url: string) => (await app.inject(url)).json<Answer>();
    const api = await json('/api/runs?limit=10&recipe=webnotes&result=failed');
    expect(api.runs.map((r) => r.name)).toEqual(['run-128', 'run-124', 'run-120', 'run-116', 'run-112', 'run-108', 'run-104', 'run-100', 'run-096', 'run-092']);
    expect(api.next).toBe(`${T0 + 92 * 60_000}.run-092`);
    expect(api.invalidSpecs).toEqual([]);
    const next = await json(`/api/runs?limit=10&recipe=webnotes&result=failed&cursor=${api.next}`);
    expect(next.runs[0]?.name).toBe('run-088');
    // Quick runs are every third; their pull request is #1.
    const pr = await json('/api/runs?pr=1&repo=recipes/plainpage&lane=quick');
    const expected = Array.from({ length: 130 }, (_, i) => 129 - i)
      .filter((i) => i % 2 === 1 && i % 3 === 0)
      .map((i) => `run-${String(i).padStart(3, '0')}`);
    expect(expected.length).toBeGreaterThan(10);
    expect(pr.runs.map((r) => r.name)).toEqual(expected);
    const lane = await json('/api/runs?lane=quick&limit=200');
    expect(lane.runs.every((r) => r.lane === 'quick')).toBe(true);
    expect(lane.runs).toHaveLength(Math.ceil(130 / 3));
  });

  it('refuses bad query values with 400 and a message, never a stack', async () => {
    seed(1);
    for (const [url, message] of [
      ['/runs?limit=1000', 'limit: must be at most 200'],
      ['/runs?result=green', 'result: must be one of passed, failed, error, cancelled'],
      ['/api/runs?pr=abc', 'pr: must be a pull request number'],
      ['/api/runs?cursor=%27%3B--', 'cursor: is not a cursor'],
      ['/recipes/webnotes?lane=warm', 'lane: must be cold or quick'],
      ['/events/runs?recipe=..%2Fx', 'recipe: must be a recipe name'],
    ] as const) {
      const r = await app.inject(url);
      expect(r.statusCode, url).toBe(400);
      expect(r.body, url).toContain(message);
      expect(r.body, url).not.toMatch(/\bat .*\.(js|ts):\d+/);
    }
  });

  it('pages a recipe’s history and keeps its pass rate from the aggregates', async () => {
    seed(130);
    const r = await app.inject('/recipes/webnotes');
    expect(r.statusCode).toBe(200);
    const history = r.body.slice(r.body.indexOf('<h2>History</h2>'));
    const names = [...history.matchAll(/<tr><td><a href="\/runs\/([^"]+)"/g)].map((m) => m[1]);
    expect(names).toHaveLength(50);
    expect(names[0]).toBe('run-128');
    // Even runs are webnotes; every fourth run failed: 33 failed, 32 passed.
    expect(r.body).toContain('49% <span class="muted">(32 of 65)</span>');
    const older = /href="(\/recipes\/webnotes\?cursor=[^"]+)">older/.exec(history)?.[1];
    expect(older).toBeTruthy();
    const page2 = (await app.inject(older!)).body;
    expect([...page2.slice(page2.indexOf('<h2>History</h2>')).matchAll(/<tr><td><a href="\/runs\/([^"]+)"/g)].map((m) => m[1])[0]).toBe('run-028');
  });
});

describe('the live runs list', () => {
  it('has no meta refresh; its script is the one the content security policy allows', async () => {
    const r = await app.inject('/runs');
    expect(r.body).not.toMatch(/http-equiv="refresh"/);
    const script = /<script>([\s\S]*?)<\/script>/.exec(r.body)?.[1];
    expect(script).toContain('new EventSource(table.dataset.events)');
    const hash = `'sha256-${createHash('sha256').update(script!).digest('base64')}'`;
    expect(String(r.headers['content-security-policy'])).toMatch(new RegExp(`script-src [^;]*${hash.replace(/[+/]/g, '\\$&')}`));
  });

  it('sends the row of a run that changed, to the streams whose filter it passes', async () => {
    seed(3);
    const address = await app.listen({ port: 0, host: '127.0.0.1' });
    const read = async (url: string, until: RegExp, act: () => void, waitMs = 5_000): Promise<string> => {
      const ac = new AbortController();
      const r = await fetch(`${address}${url}`, { signal: ac.signal });
      expect(r.headers.get('content-type')).toMatch(/text\/event-stream/);
      const reader = r.body!.getReader();
      let text = '';
      act();
      const deadline = Date.now() + waitMs;
      while (!until.test(text) && Date.now() < deadline) {
        const chunk = await Promise.race([reader.read(), new Promise<null>((res) => setTimeout(() => res(null), 1_000))]);
        if (chunk && !chunk.done) text += Buffer.from(chunk.value).toString();
      }
      ac.abort();
      return text;
    };
    const all = await read('/events/runs', /event: rows/, () => {
      setTimeout(() => addHistoryRun(store, { name: 'new-one', phase: 'Pending', createdAt: T0 + 10 * 60_000 }), 100);
    });
    const rows = JSON.parse(/event: rows\ndata: (.*)\n/.exec(all)![1]!).rows as { name: string; unfinished: boolean; html: string }[];
    expect(rows.find((r) => r.name === 'new-one')).toMatchObject({ unfinished: true, html: expect.stringContaining('#1 in queue') });
    // A stream of another recipe hears nothing of it; one of its recipe does.
    const other = await read(
      '/events/runs?recipe=plainpage',
      /event: rows/,
      () => {
        setTimeout(() => store.updateRun('new-one', { phase: 'Preparing' }), 100);
      },
      1_500,
    );
    expect(other).not.toContain('new-one');
    const same = await read('/events/runs?recipe=webnotes', /new-one/, () => {
      setTimeout(() => store.updateRun('new-one', { phase: 'Deploying' }), 100);
    });
    expect(same).toContain('Deploying');
  });

  it('updates rows in place in a real browser, under the policy, with no violation', async () => {
    seed(3);
    addHistoryRun(store, { name: 'live-one', phase: 'Pending', createdAt: T0 + 10 * 60_000 });
    const address = await app.listen({ port: 0, host: '127.0.0.1' });
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu'] });
    try {
      const page = await browser.newPage();
      const problems: string[] = [];
      page.on('console', (m) => {
        if (/Content Security Policy|Refused to|error/i.test(m.text())) problems.push(m.text());
      });
      page.on('pageerror', (e) => problems.push(e.message));
      await page.goto(`${address}/runs`);
      await vi.waitFor(async () => expect(await page.locator('#live').textContent()).toBe('live'), { timeout: 10_000 });
      const row = page.locator('#run-live-one');
      expect(await row.textContent()).toContain('Pending');
      store.updateRun('live-one', { phase: 'Testing' });
      await vi.waitFor(async () => expect(await row.textContent()).toContain('Testing'), { timeout: 10_000 });
      addHistoryRun(store, { name: 'brand-new', phase: 'Pending', createdAt: T0 + 20 * 60_000 });
      await vi.waitFor(async () => expect(await page.locator('#unfinished tr').first().getAttribute('id')).toBe('run-brand-new'), { timeout: 10_000 });
      store.updateRun('live-one', { phase: 'Done', result: 'failed', finishedAt: T0 + 30 * 60_000 });
      // Finished: it moves to its place among the finished runs, by creation time (newest first).
      await vi.waitFor(async () => expect(await page.locator('#finished tr').first().getAttribute('id')).toBe('run-live-one'), { timeout: 10_000 });
      expect(await page.locator('#unfinished tr').count()).toBe(1);
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
    }
  });

  it('says on a pruned run’s live log that retention removed it, and when', async () => {
    addHistoryRun(store, { name: 'pruned', createdAt: T0 });
    new RetentionStore(store).markPruned('pruned', T0 + DAY);
    const r = await app.inject('/runs/pruned/events');
    expect(r.body).toContain(`removed by retention on ${new Date(T0 + DAY).toISOString()}`);
    expect(r.body).toContain('event: end');
    expect((await app.inject('/api/runs/pruned')).json()).toMatchObject({ prunedAt: T0 + DAY });
  });
});

const DAY = 86_400_000;
