import type { FastifyInstance } from 'fastify';
import type { Store } from '../../state/store.js';
import type { RunEvent } from '../../state/types.js';
import { followRun, formatEvent } from '../views/follow.js';
import { isName } from '../model/spec.js';

/**
 * GET /runs/:name/events: the run's log as server-sent events (Woodpecker's stream endpoint).
 * Every event carries `id: <seq>`, so a browser that reconnects sends Last-Event-ID and resumes
 * right after what it saw; without it the log replays from the start. The stream ends with an
 * `end` event once the run is Done. Comment lines keep idle proxies from closing it.
 */

const PING_MS = 15_000;

export function registerEvents(app: FastifyInstance, o: { store: Store; closing: AbortSignal }): void {
  app.get<{ Params: { name: string }; Querystring: { after?: string } }>('/runs/:name/events', async (request, reply) => {
    const { name } = request.params;
    const run = isName(name) ? o.store.getRun(name) : undefined;
    if (!run) return reply.code(404).send({ error: `no run named ${name}` });
    const lastId = Number(request.headers['last-event-id'] ?? request.query.after ?? 0);
    const fromSeq = Number.isInteger(lastId) && lastId > 0 ? lastId : 0;

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
    res.write('retry: 2000\n\n');
    const stop = new AbortController();
    const abort = (): void => stop.abort();
    res.once('close', abort); // the client went away
    o.closing.addEventListener('abort', abort, { once: true });
    const ping = setInterval(() => res.write(': ping\n\n'), PING_MS);
    const t0 = run.createdAt;
    const send = (e: RunEvent): void => {
      if (stop.signal.aborted) return;
      res.write(`id: ${e.seq}\nevent: log\ndata: ${JSON.stringify({ ...e, line: formatEvent(e, t0) })}\n\n`);
    };
    try {
      const final = await followRun(o.store, name, send, { fromSeq, follow: true, pollMs: 250, signal: stop.signal });
      if (!stop.signal.aborted && final?.phase === 'Done') {
        res.write(`event: end\ndata: ${JSON.stringify({ result: final.result, reason: final.reason })}\n\n`);
      }
    } catch {
      // The store closed under us (shutdown) or the client left: nothing more to send.
    } finally {
      clearInterval(ping);
      res.off('close', abort);
      o.closing.removeEventListener('abort', abort);
      res.end();
    }
  });
}
