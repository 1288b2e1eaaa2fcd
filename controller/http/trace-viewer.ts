import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join, relative } from 'node:path';
import type { FastifyInstance } from 'fastify';

/**
 * GET /trace/…: Playwright's own trace viewer, as Playwright ships it (playwright-core's
 * lib/vite/traceViewer), so a recipe test's trace opens here and not on a third-party site:
 * `/trace/index.html?trace=/runs/<run>/artifacts/…/trace.zip`. The viewer reads the trace in the
 * browser (a service worker unpacks it); nothing here parses it.
 *
 * A trace is pull-request output. The viewer is built to show untrusted traces (trace.playwright.dev
 * does so on one origin for everyone): it never copies a script element or an on… attribute into a
 * snapshot, renames frame sources, and serves every snapshot with a script policy of its own nonce.
 * cc-ci adds a policy for the viewer's pages that lets them load only the viewer's files and talk
 * only to this origin. What is left is the viewer's own correctness (docs/security.md, "Evidence").
 */

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.ttf': 'font/ttf',
  '.webmanifest': 'application/manifest+json',
  '.json': 'application/json; charset=utf-8',
};

function viewerRoot(): string | null {
  try {
    const root = join(dirname(createRequire(import.meta.url).resolve('playwright-core/package.json')), 'lib', 'vite', 'traceViewer');
    return statSync(join(root, 'index.html')).isFile() ? root : null;
  } catch {
    return null;
  }
}

/** Every file the viewer has, by its path under /trace/: nothing else is ever served from there. */
function listFiles(root: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && TYPES[extname(e.name)]) files.set(relative(root, p).split('\\').join('/'), p);
    }
  };
  walk(root);
  return files;
}

/** The hashes of the inline scripts of an HTML page (the viewer's index has a small one). */
function inlineScriptHashes(html: string): string[] {
  return [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map(
    (m) =>
      `'sha256-${createHash('sha256')
        .update(m[1] ?? '')
        .digest('base64')}'`,
  );
}

/** The trace viewer's link for an evidence file's URL. */
export function traceViewerUrl(artifactUrl: string): string {
  return `/trace/index.html?trace=${encodeURIComponent(artifactUrl)}`;
}

/** Registers /trace/*; returns false (and serves nothing) when this installation has no viewer. */
export function registerTraceViewer(app: FastifyInstance): boolean {
  const root = viewerRoot();
  if (!root) return false;
  const files = listFiles(root);
  const hashes = [...files.entries()].filter(([rel]) => rel.endsWith('.html')).flatMap(([, p]) => inlineScriptHashes(readFileSync(p, 'utf8')));
  const policy = [
    "default-src 'self'",
    `script-src 'self' ${hashes.join(' ')}`.trim(),
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "worker-src 'self'",
    "frame-src 'self'",
    "frame-ancestors 'self'",
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
  app.get<{ Params: { '*': string } }>('/trace/*', async (request, reply) => {
    const file = files.get(request.params['*'] === '' ? 'index.html' : request.params['*']);
    if (!file) return reply.code(404).send({ error: 'not part of the trace viewer' });
    return reply
      .header('content-type', TYPES[extname(file)] ?? 'application/octet-stream')
      .header('content-security-policy', policy)
      .header('x-frame-options', 'SAMEORIGIN')
      .header('cache-control', 'public, max-age=3600')
      .send(readFileSync(file));
  });
  return true;
}
