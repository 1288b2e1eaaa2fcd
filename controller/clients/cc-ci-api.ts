import { setTimeout as sleep } from 'node:timers/promises';
import { readBoundedBody } from './bounded-body.js';

/**
 * A running `cc-ci serve`'s JSON API (/api/v1, described by controller/http/openapi.ts) over HTTP,
 * for the CLI's remote mode (`cc-ci get runs --server URL`, controller/cli/remote.ts). Node's
 * global fetch; every request has a time limit and every answer a size limit; every failure is an
 * ApiError of one line that names the server, never the token. What the answers mean is the
 * caller's: this module moves bytes and JSON, and reads the live log's server-sent events.
 */

/** One line, fit to print: the server's own `error` when it answered with one. `status`: the HTTP status, null when no answer came. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
    /** The answer's JSON, when there was one (a 404 of a run may list invalid spec files). */
    readonly body: unknown = null,
  ) {
    super(message);
  }
}

/** A time for every request: long enough for a runs page on a busy server, short enough that a dead one is named quickly. */
const TIMEOUT_MS = 30_000;
/** The largest JSON answer read: a run's detail with its step journal is well under it; a runs page is a few hundred KiB. */
const MAX_BODY_BYTES = 16 * 1024 * 1024;
/** The server pings an idle stream every 15 s (http/sse.ts): this long without a byte is a dead connection. */
const STREAM_IDLE_MS = 45_000;
/** How long a stream that dropped is tried again (a server restarting) before giving up. */
const RECONNECT_FOR_MS = 60_000;
/** Lines and events of a stream are a log line in JSON: far under this. */
const MAX_EVENT_BYTES = 1024 * 1024;

export interface ApiOptions {
  /** The server's address as the person gave it (validated by serverUrl). */
  server: URL;
  /** Sent as `Authorization: Bearer`; never printed. */
  token?: string | undefined;
  timeoutMs?: number;
  maxBodyBytes?: number;
  streamIdleMs?: number;
  reconnectForMs?: number;
}

/** `--server`'s value as a base URL, or why it is not one. Credentials in it would show in `ps` and in messages: refused. */
export function serverUrl(raw: string): { ok: true; url: URL } | { ok: false; error: string } {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, error: `--server ${JSON.stringify(raw)} is not a URL (http://host:port)` };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { ok: false, error: `--server must be an http:// or https:// URL, not ${url.protocol}` };
  if (url.username || url.password) return { ok: false, error: '--server must not carry credentials: give the token in CCCI_TOKEN or --token-file' };
  if (url.search || url.hash) return { ok: false, error: '--server is the address of cc-ci serve, without a query or fragment' };
  // A server behind a proxy under a path (https://ci.example.org/cc-ci/) keeps it: routes are resolved under it.
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return { ok: true, url };
}

/** One server-sent event: its type (`message` when none was named), its data, and the last event ID when it was dispatched. */
export interface StreamEvent {
  event: string;
  data: string;
  lastEventId: string | null;
}

export class EventStreamError extends Error {}

/**
 * The text/event-stream format (the HTML standard's "Interpreting an event stream"), bounded: a
 * line or an event past `maxBytes` is an error rather than memory. Written here rather than taken
 * from a library: cc-ci has no SSE parser among its dependencies, and the format is a few rules.
 * Fed chunks as they arrive; a line may end with CR, LF or CRLF, split across chunks.
 */
export class EventStreamParser {
  private readonly decoder = new TextDecoder('utf-8');
  private pending = '';
  /** The last chunk ended in CR: an LF that begins the next one ends the same line. */
  private skipLF = false;
  private type = '';
  private data: string[] = [];
  private dataLength = 0;
  private idBuffer: string | null = null;
  /** The ID of the last event dispatched: where a new connection resumes (Last-Event-ID). */
  lastEventId: string | null = null;
  /** The reconnection time the server asked for (`retry:`), if it did. */
  retryMs: number | null = null;

  constructor(private readonly maxBytes = MAX_EVENT_BYTES) {}

  push(chunk: Uint8Array): StreamEvent[] {
    let text = this.decoder.decode(chunk, { stream: true });
    if (this.skipLF && text.length > 0) {
      if (text.startsWith('\n')) text = text.slice(1);
      this.skipLF = false;
    }
    const buf = this.pending + text;
    const events: StreamEvent[] = [];
    const eol = /[\r\n]/g;
    let start = 0;
    for (let m = eol.exec(buf); m; m = eol.exec(buf)) {
      const line = buf.slice(start, m.index);
      let end = m.index + 1;
      if (m[0] === '\r') {
        if (end === buf.length) this.skipLF = true;
        else if (buf[end] === '\n') end++;
      }
      start = end;
      eol.lastIndex = end;
      this.line(line, events);
    }
    this.pending = buf.slice(start);
    if (this.pending.length > this.maxBytes) throw new EventStreamError(`a line of the stream is longer than ${this.maxBytes} bytes`);
    return events;
  }

  private line(line: string, events: StreamEvent[]): void {
    if (line === '') {
      this.lastEventId = this.idBuffer;
      if (this.data.length > 0) events.push({ event: this.type || 'message', data: this.data.join('\n'), lastEventId: this.lastEventId });
      this.type = '';
      this.data = [];
      this.dataLength = 0;
      return;
    }
    if (line.startsWith(':')) return; // a comment: the server's keep-alive ping
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.type = value;
    else if (field === 'data') {
      this.dataLength += value.length + 1;
      if (this.dataLength > this.maxBytes) throw new EventStreamError(`an event of the stream is larger than ${this.maxBytes} bytes`);
      this.data.push(value);
    } else if (field === 'id' && !value.includes('\0')) this.idBuffer = value;
    else if (field === 'retry' && /^\d{1,9}$/.test(value)) this.retryMs = Number(value);
  }
}

/** What `onEvent` threw: the caller's own error, not a dropped connection to resume. */
class FromCaller extends Error {
  constructor(readonly error: unknown) {
    super('thrown by the caller');
  }
}

export class CcCiApi {
  private readonly base: URL;
  private readonly timeoutMs: number;
  private readonly maxBodyBytes: number;

  constructor(private readonly o: ApiOptions) {
    this.base = o.server;
    this.timeoutMs = o.timeoutMs ?? TIMEOUT_MS;
    this.maxBodyBytes = o.maxBodyBytes ?? MAX_BODY_BYTES;
  }

  /** Whether requests carry a token (a refusal for want of one can say where one goes). */
  get hasToken(): boolean {
    return Boolean(this.o.token);
  }

  /** The server as messages name it. */
  get where(): string {
    return this.base.href;
  }

  /** GET a JSON route (`path` below the server's address, e.g. `api/v1/runs`). */
  async get(path: string, query: Record<string, string | undefined> = {}): Promise<unknown> {
    return this.request('GET', this.url(path, query));
  }

  /** POST JSON (or nothing) to a route; the answer's JSON. */
  async post(path: string, body?: Record<string, unknown>): Promise<unknown> {
    return this.request('POST', this.url(path, {}), body);
  }

  /**
   * Reads a route's server-sent events, handing each to `onEvent` (awaited: a slow printer slows
   * the reading) until it returns 'stop' or `signal` aborts. A stream that drops — the connection
   * lost, or nothing heard for streamIdleMs, though the server pings — is opened again after the
   * server's `retry:` time with Last-Event-ID, until a new one delivers an event, for
   * reconnectForMs at most. A stream the server ends without `onEvent` saying 'stop' is a drop
   * too: the caller knows which event ends it (`end`, `caught-up`). The first connection failing
   * is not retried: a server that is not there is said at once.
   */
  async events(
    path: string,
    o: {
      query?: Record<string, string | undefined>;
      onEvent: (e: StreamEvent) => 'stop' | undefined | Promise<'stop' | undefined>;
      signal?: AbortSignal;
    },
  ): Promise<void> {
    const url = this.url(path, o.query ?? {});
    const idleMs = this.o.streamIdleMs ?? STREAM_IDLE_MS;
    const reconnectForMs = this.o.reconnectForMs ?? RECONNECT_FOR_MS;
    let lastEventId: string | null = null;
    let retryMs = 2_000;
    let connectedOnce = false;
    let droppedAt: number | null = null;
    for (;;) {
      if (o.signal?.aborted) return;
      const conn = new AbortController();
      const stop = (): void => conn.abort();
      o.signal?.addEventListener('abort', stop, { once: true });
      // Until the answer's head: the request's time limit; then: the longest silence allowed.
      let timedOut: 'connect' | 'idle' | null = null;
      let timer = setTimeout(() => {
        timedOut = 'connect';
        conn.abort();
      }, this.timeoutMs);
      const idle = (): void => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          timedOut = 'idle';
          conn.abort();
        }, idleMs);
      };
      let problem: string;
      try {
        const response = await fetch(url, {
          headers: this.headers({ accept: 'text/event-stream', ...(lastEventId !== null ? { 'last-event-id': lastEventId } : {}) }),
          redirect: 'manual',
          signal: conn.signal,
        });
        if (response.status !== 200 || !(response.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
          // An answer that is not a stream (404, 401, 429) is final: asking again would get the same.
          await this.answer(response, url);
          throw new ApiError(
            `${this.where} answered ${url.pathname} with ${response.headers.get('content-type') ?? 'no content type'}, not an event stream`,
            null,
          );
        }
        connectedOnce = true;
        idle();
        const parser = new EventStreamParser();
        const reader = (response.body as ReadableStream<Uint8Array> | null)?.getReader();
        if (!reader) throw new ApiError(`${this.where} sent an event stream without a body`, null);
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          idle();
          for (const e of parser.push(value)) {
            // Only a stream that delivers counts as resumed: one the server closes at once again and again is given up on.
            droppedAt = null;
            lastEventId = e.lastEventId;
            let verdict: 'stop' | undefined;
            try {
              verdict = await o.onEvent(e);
            } catch (thrown) {
              throw new FromCaller(thrown);
            }
            if (verdict === 'stop') {
              await reader.cancel().catch(() => undefined);
              return;
            }
          }
          retryMs = parser.retryMs ?? retryMs;
        }
        problem = 'the server closed the stream';
      } catch (e) {
        if (e instanceof FromCaller) throw e.error;
        if (o.signal?.aborted) return;
        if (e instanceof ApiError) throw e;
        if (e instanceof EventStreamError) throw new ApiError(`${this.where}: ${e.message}`, null);
        if (!connectedOnce) throw this.unreachable(e, timedOut === 'connect');
        problem =
          timedOut === 'idle'
            ? `nothing heard for ${idleMs / 1000} s`
            : timedOut === 'connect'
              ? `no answer within ${this.timeoutMs / 1000} s`
              : describeCause(e);
      } finally {
        clearTimeout(timer);
        o.signal?.removeEventListener('abort', stop);
      }
      droppedAt ??= Date.now();
      if (Date.now() - droppedAt > reconnectForMs) {
        throw new ApiError(`lost the stream of the cc-ci server at ${this.where} (${problem}) and could not resume it within ${reconnectForMs / 1000} s`, null);
      }
      try {
        await sleep(retryMs, undefined, o.signal ? { signal: o.signal } : {});
      } catch {
        return; // aborted while waiting
      }
    }
  }

  private url(path: string, query: Record<string, string | undefined>): URL {
    const url = new URL(path.replace(/^\/+/, ''), this.base);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, v);
    return url;
  }

  private headers(extra: Record<string, string>): Record<string, string> {
    return { 'user-agent': 'cc-ci-cli', ...(this.o.token ? { authorization: `Bearer ${this.o.token}` } : {}), ...extra };
  }

  private async request(method: 'GET' | 'POST', url: URL, body?: Record<string, unknown>): Promise<unknown> {
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: this.headers({ accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }),
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        // An API answers itself: a redirect would lead the token elsewhere, or to a login page.
        redirect: 'manual',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      return await this.answer(response, url);
    } catch (e) {
      if (e instanceof ApiError) throw e;
      throw this.unreachable(e, e instanceof Error && e.name === 'TimeoutError');
    }
  }

  /** The JSON of a 2xx answer; anything else as an ApiError carrying the server's own words when it sent some. */
  private async answer(response: Response, url: URL): Promise<unknown> {
    const text = await this.readBounded(response, url);
    let json: unknown;
    try {
      json = JSON.parse(text) as unknown;
    } catch {
      json = null;
    }
    if (response.status >= 200 && response.status < 300) {
      if (json === null) throw new ApiError(`${this.where} did not answer ${url.pathname} with JSON: is it the address of cc-ci serve?`, null);
      return json;
    }
    if (response.status >= 300 && response.status < 400) {
      const to = response.headers.get('location');
      throw new ApiError(
        `${this.where} answered ${url.pathname} with a redirect${to ? ` to ${to.slice(0, 200)}` : ''} (HTTP ${response.status}): --server must be the address cc-ci serves on`,
        response.status,
      );
    }
    const said = json !== null && typeof json === 'object' && 'error' in json && typeof json.error === 'string' ? json.error.slice(0, 1000) : null;
    throw new ApiError(said ?? `${this.where} answered ${url.pathname} with HTTP ${response.status}`, response.status, json);
  }

  private async readBounded(response: Response, url: URL): Promise<string> {
    const body = await readBoundedBody(response, this.maxBodyBytes);
    if (body === null) throw new ApiError(`${this.where} answered ${url.pathname} with more than ${this.maxBodyBytes / (1024 * 1024)} MiB`, null);
    return body.toString('utf8');
  }

  private unreachable(e: unknown, timedOut: boolean): ApiError {
    return timedOut
      ? new ApiError(`the cc-ci server at ${this.where} did not answer within ${this.timeoutMs / 1000} s`, null)
      : new ApiError(`cannot reach the cc-ci server at ${this.where}: ${describeCause(e)}`, null);
  }
}

/** Why a fetch failed, in a few words: undici's `fetch failed` hides the reason in its cause (ECONNREFUSED, ENOTFOUND…). */
function describeCause(e: unknown): string {
  const cause = e instanceof Error ? (e.cause ?? e) : e;
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    return code ?? cause.message.split('\n')[0] ?? 'failed';
  }
  return String(cause).split('\n')[0] ?? 'failed';
}
