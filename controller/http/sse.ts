import type { FastifyInstance } from 'fastify';
import type { ServerResponse } from 'node:http';
import type { Store } from '../../state/store.js';
import type { RunEvent } from '../../state/types.js';
import { followRun, formatEvent } from '../views/follow.js';
import { isName } from '../model/spec.js';

/**
 * GET /runs/:name/events: the run's log as server-sent events (Woodpecker's stream endpoint).
 * Every event carries `id: <seq>`, so a browser that reconnects sends Last-Event-ID and resumes
 * right after what it saw. A new stream replays the last TAIL_LINES lines (a `skipped` event says
 * how many came before; `?all=1` replays them all). The stream ends with an `end` event once the
 * run is Done. Comment lines keep idle proxies from closing it.
 *
 * Bounded for a server that runs for months: a write the client does not read waits for `drain`
 * (a paused reader holds one batch, not the log); replay yields to the event loop between batches
 * (other requests, /healthz, keep being answered); new lines are pushed from the store's change
 * events, not polled per stream; streams are capped in all and per client address.
 */

const PING_MS = 15_000;
/** Lines per replay batch: small enough that a dozen replaying streams leave the loop free for other requests between batches. */
const BATCH = 100;
export const TAIL_LINES = 2_000;
/** A writer in another process (`cc-ci run` beside serve) has no change events here: look this often. */
const FALLBACK_LOOK_MS = 5_000;

export interface StreamCaps {
  /** Streams open at once, in all. */
  total: number;
  /** Streams open at once from one client address. */
  perClient: number;
}

/** One listener on the store for every stream: wakes the streams of the run that changed. */
class RunWatchers {
  private readonly waiting = new Map<string, Set<() => void>>();

  constructor(store: Store) {
    store.changes.on('event', (run: string) => this.wake(run));
    store.changes.on('run', (run: string) => this.wake(run));
  }

  private wake(run: string): void {
    const set = this.waiting.get(run);
    if (!set) return;
    this.waiting.delete(run);
    for (const w of set) w();
  }

  /** Resolves when the run changes, after `ms`, or when `signal` aborts. */
  next(run: string, ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const set = this.waiting.get(run) ?? new Set<() => void>();
      this.waiting.set(run, set);
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        set.delete(done);
        if (set.size === 0 && this.waiting.get(run) === set) this.waiting.delete(run);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
      set.add(done);
    });
  }
}

/** Writes, and when the socket's buffer is full waits for it to drain (or the stream to stop). */
async function write(res: ServerResponse, chunk: string, signal: AbortSignal): Promise<void> {
  if (signal.aborted || res.write(chunk)) return;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    res.once('drain', done);
    signal.addEventListener('abort', done, { once: true });
  });
}

export function registerEvents(app: FastifyInstance, o: { store: Store; closing: AbortSignal; caps: StreamCaps }): void {
  const watchers = new RunWatchers(o.store);
  const open = new Map<string, number>();
  let total = 0;

  app.get<{ Params: { name: string }; Querystring: { after?: string; all?: string } }>('/runs/:name/events', async (request, reply) => {
    const { name } = request.params;
    const run = isName(name) ? o.store.getRun(name) : undefined;
    if (!run) return reply.code(404).send({ error: `no run named ${name}` });
    const client = request.ip;
    if (total >= o.caps.total || (open.get(client) ?? 0) >= o.caps.perClient) {
      return reply
        .code(429)
        .header('retry-after', '30')
        .send({ error: `too many live-log streams open (${total >= o.caps.total ? 'on this server' : 'from your address'}); try again later` });
    }
    const lastId = Number(request.headers['last-event-id'] ?? request.query.after ?? 0);
    const resumeAt = Number.isInteger(lastId) && lastId > 0 ? lastId : 0;

    total++;
    open.set(client, (open.get(client) ?? 0) + 1);
    reply.hijack();
    // A stream is long-lived by design: the server's idle timeout is for sockets left open by
    // nobody, and the pings keep proxies from closing this one.
    // (fastify's inject hands the route a socket without timeouts at all.)
    const socket: { setTimeout?: unknown } | null = request.raw.socket;
    if (typeof socket?.setTimeout === 'function') request.raw.socket.setTimeout(0);
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    const stop = new AbortController();
    const abort = (): void => stop.abort();
    res.once('close', abort); // the client went away
    o.closing.addEventListener('abort', abort, { once: true });
    const ping = setInterval(() => {
      if (res.writableLength === 0) res.write(': ping\n\n');
    }, PING_MS);
    const t0 = run.createdAt;
    // Written by hand rather than through an object per line: replaying a long log makes less garbage.
    const line = (e: RunEvent): string =>
      `id: ${e.seq}\nevent: log\ndata: {"seq":${e.seq},"ts":${e.ts},"kind":${JSON.stringify(e.kind)},"text":${JSON.stringify(e.text)},"line":${JSON.stringify(formatEvent(e, t0))}}\n\n`;
    try {
      await write(res, 'retry: 2000\n\n', stop.signal);
      let seq = resumeAt;
      if (resumeAt === 0 && request.query.all !== '1') {
        const last = o.store.lastEventSeq(name);
        if (last > TAIL_LINES) {
          seq = last - TAIL_LINES;
          await write(res, `event: skipped\ndata: ${JSON.stringify({ skipped: seq, all: `${request.url.split('?')[0]}?all=1` })}\n\n`, stop.signal);
        }
      }
      const final = await followRun(o.store, name, (e) => write(res, line(e), stop.signal), {
        fromSeq: seq,
        follow: true,
        signal: stop.signal,
        batch: BATCH,
        wait: () => watchers.next(name, FALLBACK_LOOK_MS, stop.signal),
      });
      if (!stop.signal.aborted && final?.phase === 'Done') {
        await write(res, `event: end\ndata: ${JSON.stringify({ result: final.result, reason: final.reason })}\n\n`, stop.signal);
      }
    } catch {
      // The store closed under us (shutdown) or the client left: nothing more to send.
    } finally {
      clearInterval(ping);
      res.off('close', abort);
      o.closing.removeEventListener('abort', abort);
      total--;
      const left = (open.get(client) ?? 1) - 1;
      if (left > 0) open.set(client, left);
      else open.delete(client);
      res.end();
    }
  });
}
