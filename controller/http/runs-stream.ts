import type { FastifyInstance } from 'fastify';
import { RunHistory, type RunFilter } from '../../state/history.js';
import type { Store } from '../../state/store.js';
import { matches, parseRunQuery } from '../views/run-query.js';
import { MAX_UNFINISHED, queuePositions, runRow } from '../views/run-view.js';
import { runRowHtml } from './runs-page.js';
import { serveStream, type StreamSlots } from './sse.js';

/**
 * GET /events/runs[?recipe=…&result=…&lane=…&pr=…&repo=…]: the runs list's changes as
 * server-sent events, so the page updates rows in place instead of reloading itself. A `rows`
 * event carries the rows that changed and pass the stream's filter — a run that changed, and
 * queued runs whose place in the queue moved — rendered as the page renders them.
 *
 * Bounded like the live log (sse.ts, whose slots and stream handling it shares): changes are
 * gathered from the store's change events into one set and turned into rows once for every
 * stream, at most every FLUSH_MS; a stream whose reader is slow keeps only the latest row of each
 * run, and past MAX_PENDING of them it is told to reload instead. With no stream open nothing is
 * gathered or looked at.
 */

const FLUSH_MS = 250;
/** A writer in another process (`cc-ci delete run` beside serve) has no change events here: look this often. */
const FALLBACK_LOOK_MS = 5_000;
/** Rows one stream holds for a slow reader before it is told to reload the page instead. */
const MAX_PENDING = 500;

interface RowEvent {
  name: string;
  unfinished: boolean;
  html: string;
}

class Subscriber {
  pending = new Map<string, RowEvent>();
  overflow = false;
  private wake: (() => void) | null = null;

  constructor(readonly filter: RunFilter) {}

  offer(row: RowEvent): void {
    if (this.overflow) return;
    this.pending.set(row.name, row);
    if (this.pending.size > MAX_PENDING) this.reload();
    this.wake?.();
  }

  /** Too much changed to send row by row: the page is to reload itself. */
  reload(): void {
    this.overflow = true;
    this.pending.clear();
    this.wake?.();
  }

  /** Resolves when there is something to send, or `signal` aborts. */
  ready(signal: AbortSignal): Promise<void> {
    if (this.pending.size || this.overflow || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.wake = null;
        signal.removeEventListener('abort', done);
        resolve();
      };
      this.wake = done;
      signal.addEventListener('abort', done, { once: true });
    });
  }
}

/** One listener on the store for every stream: which runs changed, turned into rows once. */
class RunsFeed {
  private readonly subscribers = new Set<Subscriber>();
  private readonly changed = new Set<string>();
  private flushTimer: NodeJS.Timeout | null = null;
  private lookTimer: NodeJS.Timeout | null = null;
  private lastLook = 0;
  /** The queue as the streams last saw it: a move in it changes other runs' rows. */
  private positions = new Map<string, number>();

  constructor(private readonly store: Store) {
    store.changes.on('run', (name: string) => this.note(name));
  }

  subscribe(filter: RunFilter): { sub: Subscriber; close: () => void } {
    const sub = new Subscriber(filter);
    if (this.subscribers.size === 0) this.startLooking();
    this.subscribers.add(sub);
    return {
      sub,
      close: () => {
        this.subscribers.delete(sub);
        if (this.subscribers.size === 0) this.stopLooking();
      },
    };
  }

  private note(name: string): void {
    if (this.subscribers.size === 0) return;
    this.changed.add(name);
    this.flushTimer ??= setTimeout(() => this.flush(), FLUSH_MS);
  }

  private startLooking(): void {
    this.positions = queuePositions(this.store);
    this.lastLook = Date.now();
    this.lookTimer = setInterval(() => {
      // A second of overlap: a change in the same millisecond as the last look is not missed (a row sent twice is harmless).
      const since = this.lastLook - 1_000;
      this.lastLook = Date.now();
      try {
        for (const name of new RunHistory(this.store).changedSince(since, MAX_PENDING + 1)) this.note(name);
      } catch {
        // The store closed (shutdown): the streams are ending.
      }
    }, FALLBACK_LOOK_MS);
    this.lookTimer.unref();
  }

  private stopLooking(): void {
    if (this.lookTimer) clearInterval(this.lookTimer);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.lookTimer = this.flushTimer = null;
    this.changed.clear();
  }

  private flush(): void {
    this.flushTimer = null;
    const names = new Set(this.changed);
    this.changed.clear();
    if (this.subscribers.size === 0) return;
    try {
      this.send(names);
    } catch {
      // The store closed (shutdown): the streams are ending.
    }
  }

  private send(names: Set<string>): void {
    const positions = queuePositions(this.store);
    // Only rows a page can show move with the queue: the newest MAX_UNFINISHED (a queue longer than
    // that must not turn every admission into hundreds of rows, or a reload).
    const shown = (p: Map<string, number>) => [...p.keys()].slice(-MAX_UNFINISHED);
    for (const name of shown(positions)) if (this.positions.get(name) !== positions.get(name)) names.add(name);
    for (const name of shown(this.positions)) if (!positions.has(name)) names.add(name);
    this.positions = positions;
    if (names.size > MAX_PENDING) {
      for (const s of this.subscribers) s.reload();
      return;
    }
    const now = Date.now();
    for (const name of names) {
      const row = runRow(this.store, name, positions);
      if (!row) continue;
      const event = { name, unfinished: row.phase !== 'Done', html: runRowHtml(row, now) };
      for (const s of this.subscribers) if (matches(s.filter, row)) s.offer(event);
    }
  }
}

export function registerRunsStream(app: FastifyInstance, o: { store: Store; closing: AbortSignal; slots: StreamSlots }): void {
  const feed = new RunsFeed(o.store);
  app.get('/events/runs', async (request, reply) => {
    const parsed = parseRunQuery(request.query);
    if (!parsed.ok) return reply.code(400).send({ error: parsed.error });
    const { filter } = parsed.query;
    return serveStream(request, reply, o, async (send, signal) => {
      const { sub, close } = feed.subscribe(filter);
      try {
        await send('retry: 2000\n\n');
        for (;;) {
          await sub.ready(signal);
          if (signal.aborted) return;
          if (sub.overflow) {
            sub.overflow = false;
            await send('event: reload\ndata: {}\n\n');
            continue;
          }
          const rows = [...sub.pending.values()];
          sub.pending.clear();
          await send(`event: rows\ndata: ${JSON.stringify({ rows })}\n\n`);
        }
      } finally {
        close();
      }
    });
  });
}
