import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../controller/model/config.js';
import { createLogger } from '../../controller/model/log.js';
import { Metrics } from '../../controller/http/metrics.js';
import { buildApp } from '../../controller/http/server.js';
import { TAIL_LINES } from '../../controller/http/sse.js';
import { ensureStateDirs, statePaths } from '../../controller/model/paths.js';
import { Store } from '../../state/store.js';
import { heldBytes } from '../support/memory.js';

/**
 * The live log under load, listening for real (docs/security.md, "What is bounded"): ten clients
 * that open a 200,000-line log and never read it hold the server to a bound, /healthz keeps
 * answering within 100 ms while streams replay, a new stream replays only the tail, and streams
 * are capped per client address. The figures are printed.
 */

const LINES = 200_000;

let dir: string;
let store: Store;
let app: FastifyInstance;
let port = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ccci-sse-'));
  const paths = statePaths(dir);
  ensureStateDirs(paths);
  store = new Store(paths.db);
  const spec = { apiVersion: 'cc-ci/v1', kind: 'Run', metadata: { name: 'big' }, spec: { recipe: 'webnotes', source: { repo: '/r', ref: 'main' } } };
  store.insertRun({ name: 'big', specJson: JSON.stringify(spec), specHash: 'h', specPath: null, recipe: 'webnotes', lane: 'cold' });
  store.updateRun('big', { phase: 'Testing' });
  const line = 'x'.repeat(120);
  for (let i = 0; i < LINES; i += 5_000)
    store.appendEvents(
      'big',
      Array.from({ length: 5_000 }, (_, j) => ({ kind: 'out' as const, text: `${i + j} ${line}` })),
    );
  app = buildApp(
    {
      store,
      paths,
      config: configSchema.parse({ http: { maxStreamsPerClient: 14 } }),
      logger: createLogger('silent'),
      metrics: new Metrics(store),
      webhook: null,
    },
    new AbortController().signal,
  );
  await app.listen({ port: 0, host: '127.0.0.1' });
  const a = app.server.address();
  port = typeof a === 'object' && a ? a.port : 0;
}, 60_000);

afterAll(async () => {
  await app.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A client that asks for the whole log and then stops reading. */
function pausedClient(): Promise<Socket> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => {
      s.write('GET /runs/big/events?all=1 HTTP/1.1\r\nHost: x\r\n\r\n');
      s.once('data', () => {
        s.pause();
        resolve(s);
      });
    });
  });
}

/** A client that reads the whole log as fast as it can; resolves with the bytes it got. */
function readingClient(): { done: Promise<number>; socket: Socket } {
  const s = connect(port, '127.0.0.1', () => s.write('GET /runs/big/events?all=1 HTTP/1.1\r\nHost: x\r\n\r\n'));
  let bytes = 0;
  let tail = '';
  const done = new Promise<number>((resolve) => {
    s.on('data', (c: Buffer) => {
      bytes += c.length;
      tail = (tail + c.subarray(-400).toString()).slice(-400);
      if (tail.includes(`"seq":${LINES},`)) resolve(bytes);
    });
  });
  return { done, socket: s };
}

async function healthzMs(): Promise<number> {
  const t0 = performance.now();
  const r = await fetch(`http://127.0.0.1:${port}/healthz`);
  await r.text();
  return performance.now() - t0;
}

describe('live-log streams under load', () => {
  it('ten paused clients on a 200,000-line log hold the server under 64 MB, and /healthz answers within 100 ms while streams replay', async () => {
    await healthzMs(); // the first fetch of a process loads its HTTP client: not the server's time
    const before = heldBytes();
    let peakRss = process.memoryUsage().rss;
    const rss0 = peakRss;
    const sample = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 20);
    const paused = await Promise.all(Array.from({ length: 10 }, () => pausedClient()));
    const readers = [readingClient(), readingClient()];
    const latencies: number[] = [];
    let replaying = true;
    const replayed = Promise.all(readers.map((r) => r.done)).finally(() => (replaying = false));
    while (replaying) {
      latencies.push(await healthzMs());
      await new Promise((r) => setTimeout(r, 20));
    }
    const bytes = await replayed;
    await new Promise((r) => setTimeout(r, 500)); // the paused streams have filled what they can
    const heldMB = (heldBytes() - before) / 2 ** 20;
    clearInterval(sample);
    const worst = Math.max(...latencies);
    console.log(
      `10 paused + 2 reading streams of ${LINES} lines (${(bytes[0] ?? 0) / 2 ** 20 > 0 ? ((bytes[0] ?? 0) / 2 ** 20).toFixed(1) : '?'} MB each replayed): ` +
        `held +${heldMB.toFixed(1)} MB, peak RSS +${((peakRss - rss0) / 2 ** 20).toFixed(1)} MB; ` +
        `/healthz during replay: ${latencies.length} requests, median ${latencies.sort((a, b) => a - b)[Math.floor(latencies.length / 2)]?.toFixed(1)} ms, worst ${latencies
          .slice(-5)
          .map((l) => l.toFixed(0))
          .join(', ')} ms`,
    );
    expect(latencies.length).toBeGreaterThan(3);
    expect(heldMB).toBeLessThan(64);
    expect(worst).toBeLessThan(100);
    for (const s of paused) s.destroy();
    for (const r of readers) r.socket.destroy();
  }, 120_000);

  it('replays the last lines by default, saying how many it skipped, and pushes a new line at once', async () => {
    const ac = new AbortController();
    const response = await fetch(`http://127.0.0.1:${port}/runs/big/events`, { signal: ac.signal });
    const reader = response.body!.getReader();
    let seen = '';
    const readUntil = async (test: (s: string) => boolean): Promise<void> => {
      while (!test(seen)) {
        const { value, done } = await reader.read();
        if (done) throw new Error('stream ended');
        seen += Buffer.from(value).toString();
      }
    };
    await readUntil((s) => s.includes(`"seq":${LINES},`));
    expect(seen).toContain(`event: skipped\ndata: {"skipped":${LINES - TAIL_LINES},`);
    expect([...seen.matchAll(/^id: /gm)]).toHaveLength(TAIL_LINES);
    const t0 = Date.now();
    store.appendEvent('big', 'info', 'a line now');
    await readUntil((s) => s.includes('"text":"a line now"'));
    expect(Date.now() - t0).toBeLessThan(1_000); // pushed by the store's change event, not found by a poll
    ac.abort();
  });

  it('refuses a stream past the cap for one client address with 429, and serves again when one closes', async () => {
    await new Promise((r) => setTimeout(r, 200)); // the streams of the tests above have closed
    const open = await Promise.all(Array.from({ length: 14 }, () => pausedClient()));
    const refused = await fetch(`http://127.0.0.1:${port}/runs/big/events`);
    expect(refused.status).toBe(429);
    expect(await refused.json()).toMatchObject({ error: expect.stringContaining('from your address') });
    open[0]?.destroy();
    await new Promise((r) => setTimeout(r, 200));
    const ac = new AbortController();
    const again = await fetch(`http://127.0.0.1:${port}/runs/big/events`, { signal: ac.signal });
    expect(again.status).toBe(200);
    ac.abort();
    for (const s of open) s.destroy();
  });
});
