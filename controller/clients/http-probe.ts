import http from 'node:http';
import https from 'node:https';

/**
 * One HTTP request to an app under test, with a timeout, no redirects followed, and the app's
 * domain as Host (in the local ingress mode the request goes to 127.0.0.1:<port>).
 */

export interface ProbeResult {
  ok: boolean;
  status: number | null;
  /** Why it did not count: the connection error, or the unexpected status. */
  problem: string | null;
  body: string;
}

export interface ProbeOptions {
  url: string;
  host?: string;
  accept: readonly number[];
  timeoutMs: number;
  method?: string;
  body?: string;
  headers?: Record<string, string>;
}

export function probe(o: ProbeOptions): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const u = new URL(o.url);
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.request(
      u,
      {
        method: o.method ?? 'GET',
        headers: { ...(o.host ? { host: o.host } : {}), 'user-agent': 'cc-ci-probe', ...o.headers },
        timeout: o.timeoutMs,
        // Test apps serve a CI wildcard or self-signed certificate.
        ...(u.protocol === 'https:' ? { rejectUnauthorized: false, servername: o.host ?? u.hostname } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          if (size < 64 * 1024) chunks.push(c);
          size += c.length;
        });
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          const body = Buffer.concat(chunks).toString('utf8');
          // Traefik's own 404 means the router does not know the app yet, not that it serves.
          const traefik404 = status === 404 && body.trim() === '404 page not found';
          const accepted = o.accept.includes(status) && !traefik404;
          resolve({
            ok: accepted,
            status,
            problem: accepted ? null : `HTTP ${status}${traefik404 ? " (Traefik's 404: no route to the app)" : ''}`,
            body,
          });
        });
        res.on('error', (e) => resolve({ ok: false, status: null, problem: e.message, body: '' }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${o.timeoutMs} ms`)));
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ ok: false, status: null, problem: e.code ?? e.message, body: '' }));
    if (o.body !== undefined) req.write(o.body);
    req.end();
  });
}
