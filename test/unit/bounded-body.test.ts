import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBoundedBody } from '../../controller/clients/bounded-body.js';

/** Answers of every shape a bounded reader meets: declared too large, growing too large, small, empty. */
let server: Server;
let base: string;
let endlessStopped = false;

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/declared') {
      res.writeHead(200, { 'content-length': String(10 * 1024 * 1024) });
      res.write('x'.repeat(1024));
      return; // never finishes: the reader must not wait for it
    }
    if (req.url === '/endless') {
      // Chunked, no length: 1 KiB every few ms until the client goes away.
      res.writeHead(200);
      const timer = setInterval(() => res.write('y'.repeat(1024)), 2);
      res.on('close', () => {
        clearInterval(timer);
        endlessStopped = true;
      });
      return;
    }
    if (req.url === '/empty') {
      res.writeHead(204).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

describe('readBoundedBody', () => {
  it('reads a body within the bound whole, and an answer without one as empty', async () => {
    expect((await readBoundedBody(await fetch(`${base}/small`), 64))?.toString()).toBe('{"ok":true}');
    expect((await readBoundedBody(await fetch(`${base}/empty`), 64))?.length).toBe(0);
  });

  it('refuses a declared length past the bound without reading on', async () => {
    expect(await readBoundedBody(await fetch(`${base}/declared`), 64 * 1024)).toBeNull();
  });

  it('stops a body that grows past the bound, and lets the connection go', async () => {
    expect(await readBoundedBody(await fetch(`${base}/endless`), 64 * 1024)).toBeNull();
    await expect.poll(() => endlessStopped, { timeout: 5_000 }).toBe(true);
  });
});
