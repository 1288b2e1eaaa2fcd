import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { runDir, type StatePaths } from '../model/paths.js';
import type { ServerResponse } from 'node:http';
import type { Store } from '../../state/store.js';
import { RunHistory } from '../../state/history.js';
import type { RunEvent } from '../../state/types.js';
import { followRun, formatEvent } from '../views/follow.js';
import { isName } from '../model/spec.js';

/**
 * GET /runs/:name/events: the run's log as server-sent events (Woodpecker's stream endpoint).
 * Every event carries `id: <seq>`, so a browser that reconnects sends Last-Event-ID and resumes
 * right after what it saw. A new stream replays the last TAIL_LINES lines (a `skipped` event says
 * how many came before; `?all=1` replays them all). The stream ends with an `end` event once the
 * run is Done — or, with `?follow=0` (`cc-ci logs --server` without -f), once it has sent what the
 * log holds now, with a `caught-up` event unless the run is Done. Comment lines keep idle proxies
 * from closing it. A run whose log retention removed gets one line saying so, and when.
 *
 * Bounded for a server that runs for months: a write the client does not read waits for `drain`
 * (a paused reader holds one batch, not the log); replay yields to the event loop between batches
 * (other requests, /healthz, keep being answered); new lines are pushed from the store's change
 * events, not polled per stream; streams — these and the live runs list's (runs-stream.ts) — are
 * capped together, in all and per client address.
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
export async function write(res: ServerResponse, chunk: string, signal: AbortSignal): Promise<void> {
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

/** The streams open now, in all and per client address: every event stream of the server counts against one set of caps. */
export class StreamSlots {
  private readonly open = new Map<string, number>();
  private total = 0;

  constructor(private readonly caps: StreamCaps) {}

  /** Takes a slot for `client`, or says why there is none. */
  take(client: string): string | null {
    if (this.total >= this.caps.total) return 'on this server';
    if ((this.open.get(client) ?? 0) >= this.caps.perClient) return 'from your address';
    this.total++;
    this.open.set(client, (this.open.get(client) ?? 0) + 1);
    return null;
  }

  release(client: string): void {
    this.total--;
    const left = (this.open.get(client) ?? 1) - 1;
    if (left > 0) this.open.set(client, left);
    else this.open.delete(client);
  }
}

/**
 * Serves one event stream: a slot (429 past the caps), the response taken over from fastify, the
 * idle timeout lifted, pings for proxies, and a stop when the client leaves or the server closes.
 * `body` writes through `send` (which waits for a slow reader) until it returns or `signal` aborts.
 */
export async function serveStream(
  request: FastifyRequest,
  reply: FastifyReply,
  o: { closing: AbortSignal; slots: StreamSlots },
  body: (send: (chunk: string) => Promise<void>, signal: AbortSignal) => Promise<void>,
): Promise<unknown> {
  const client = request.ip;
  const refused = o.slots.take(client);
  if (refused) {
    return reply
      .code(429)
      .header('retry-after', '30')
      .send({ error: `too many live streams open (${refused}); try again later` });
  }
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
  try {
    await body((chunk) => write(res, chunk, stop.signal), stop.signal);
  } catch {
    // The store closed under us (shutdown) or the client left: nothing more to send.
  } finally {
    clearInterval(ping);
    res.off('close', abort);
    o.closing.removeEventListener('abort', abort);
    o.slots.release(client);
    res.end();
  }
  return undefined;
}

export function registerEvents(app: FastifyInstance, o: { store: Store; paths: StatePaths; closing: AbortSignal; slots: StreamSlots }): void {
  const watchers = new RunWatchers(o.store);

  // The run page's stream, and the same under the versioned API (controller/http/openapi.ts).
  for (const path of ['/runs/:name/events', '/api/v1/runs/:name/events']) registerRunEvents(app, path, o, watchers);
}

function registerRunEvents(
  app: FastifyInstance,
  path: string,
  o: { store: Store; paths: StatePaths; closing: AbortSignal; slots: StreamSlots },
  watchers: RunWatchers,
): void {
  app.get<{ Params: { name: string }; Querystring: { after?: string; all?: string; follow?: string } }>(path, async (request, reply) => {
    const { name } = request.params;
    const run = isName(name) ? o.store.getRun(name) : undefined;
    if (!run) return reply.code(404).send({ error: `no run named ${name}` });
    const lastId = Number(request.headers['last-event-id'] ?? request.query.after ?? 0);
    const resumeAt = Number.isInteger(lastId) && lastId > 0 ? lastId : 0;
    const prunedAt = new RunHistory(o.store).prunedAt(name);
    const t0 = run.createdAt;
    // Written by hand rather than through an object per line: replaying a long log makes less garbage.
    const line = (e: RunEvent): string =>
      `id: ${e.seq}\nevent: log\ndata: {"seq":${e.seq},"ts":${e.ts},"kind":${JSON.stringify(e.kind)},"text":${JSON.stringify(e.text)},"line":${JSON.stringify(formatEvent(e, t0))}}\n\n`;
    return serveStream(request, reply, o, async (send, signal) => {
      await send('retry: 2000\n\n');
      if (prunedAt !== null) {
        // No id: a reconnecting browser must not resume from a line that is not in the log.
        const text = prunedLogNote(prunedAt);
        await send(`event: log\ndata: ${JSON.stringify({ seq: 0, ts: prunedAt, kind: 'info', text, line: text })}\n\n`);
      }
      let seq = resumeAt;
      if (resumeAt === 0 && request.query.all !== '1') {
        const last = o.store.lastEventSeq(name);
        if (last > TAIL_LINES) {
          seq = last - TAIL_LINES;
          await send(`event: skipped\ndata: ${JSON.stringify({ skipped: seq, all: `${request.url.split('?')[0]}?all=1` })}\n\n`);
        }
      }
      // The run's phase, step and tiers, sent whenever they changed since the last look: the run
      // page's timeline moves with the run rather than on a reload.
      let lastState = '';
      const sendState = async (): Promise<void> => {
        const state = runState(o.store, o.paths, name);
        if (state === null || state === lastState) return;
        lastState = state;
        await send(`event: state\ndata: ${state}\n\n`);
      };
      await sendState();
      // `follow=0` (`cc-ci logs` without -f): what the log holds now, then a `caught-up` event and the end of the stream.
      const follow = request.query.follow !== '0';
      const final = await followRun(o.store, name, (e) => send(line(e)), {
        fromSeq: seq,
        follow,
        signal,
        batch: BATCH,
        wait: async () => {
          await sendState();
          await watchers.next(name, FALLBACK_LOOK_MS, signal);
        },
      });
      if (!signal.aborted) await sendState();
      if (!signal.aborted && final?.phase === 'Done') {
        await send(`event: end\ndata: ${JSON.stringify({ result: final.result, reason: final.reason })}\n\n`);
      } else if (!signal.aborted && !follow) {
        // Says the stream ended on purpose: a client that sees the stream end without it (or `end`) lost the connection and resumes.
        await send(`event: caught-up\ndata: {}\n\n`);
      }
    });
  });
}

/** What the run page's timeline shows of a run now, as the JSON of a `state` event (null: no such run). */
export function runState(store: Store, paths: StatePaths, name: string): string | null {
  const run = store.getRun(name);
  if (!run) return null;
  const tiers = store.getTiers(name);
  return JSON.stringify({
    phase: run.phase,
    step: run.step,
    result: run.result,
    reason: run.reason,
    retryPending: run.retryPending,
    teardownProblem: run.teardownProblem,
    attempt: run.attempt,
    startedAt: run.startedAt,
    finishedAt: run.finishedAt,
    tiers: tiers.map((t) => ({ tier: t.tier, result: t.result, reason: t.reason, startedAt: t.startedAt, durationMs: t.durationMs })),
    // Once a tier failed, its diagnostics are one click from the reason (written as it failed).
    diagnostics: tiers.some((t) => t.result === 'fail') ? diagnosticsOf(paths, name) : [],
  });
}

/** The diagnostics files of a run's evidence, as links. */
function diagnosticsOf(paths: StatePaths, name: string): { name: string; url: string }[] {
  let files: string[];
  try {
    files = readdirSync(join(runDir(paths, name), 'evidence'));
  } catch {
    return [];
  }
  return files
    .filter((f) => /^diagnostics-.*\.txt$/.test(f))
    .sort()
    .map((f) => ({ name: f, url: `/runs/${encodeURIComponent(name)}/artifacts/${encodeURIComponent(f)}` }));
}

/** What a run's log says once retention removed it (docs/runbook.md, State directory growth). */
export function prunedLogNote(at: number): string {
  return `The log, steps and files of this run were removed by retention on ${new Date(at).toISOString()}; its result, reason and tiers are kept.`;
}
