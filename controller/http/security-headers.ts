import helmet from '@fastify/helmet';
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { STYLE } from './html.js';
import { LIVE_LOG_SCRIPT } from './pages.js';
import { RUNS_LIVE_SCRIPT } from './runs-page.js';

/**
 * Security headers on every response (docs/security.md), through @fastify/helmet. The pages' only
 * scripts (the live log's, the live runs list's) and style are cc-ci's own inline ones, allowed by their hashes; nothing else runs or
 * loads — so an HTML file a recipe's tests left among a run's artifacts cannot script cc-ci's
 * origin. Pages cannot be framed. Badges stay embeddable in other sites (a README on the forge).
 */

const hash = (text: string): string => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

export const CONTENT_SECURITY_POLICY = {
  'default-src': ["'none'"],
  'script-src': [hash(LIVE_LOG_SCRIPT), hash(RUNS_LIVE_SCRIPT)],
  'style-src': [hash(STYLE)],
  'img-src': ["'self'", 'data:'],
  'connect-src': ["'self'"],
  'base-uri': ["'none'"],
  'form-action': ["'self'"],
  'frame-ancestors': ["'none'"],
};

export function registerSecurityHeaders(app: FastifyInstance): void {
  void app.register(helmet, {
    contentSecurityPolicy: { useDefaults: false, directives: CONTENT_SECURITY_POLICY },
    // Badges are images other sites show.
    crossOriginResourcePolicy: { policy: 'cross-origin' },
    crossOriginEmbedderPolicy: false,
    referrerPolicy: { policy: 'no-referrer' },
    // cc-ci is often served over plain HTTP on a private address; HSTS is the proxy's to set.
    strictTransportSecurity: false,
  });
}
