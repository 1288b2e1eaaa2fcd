import { createReadStream, realpathSync, statSync } from 'node:fs';
import { extname, join, resolve, sep } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { runDir, type StatePaths } from '../model/paths.js';
import { isName } from '../model/spec.js';

/**
 * GET /runs/:name/artifacts/*: files under the run's evidence/ directory and nothing else. The
 * path is resolved and then realpath'd, and both must stay inside evidence/, so neither `..` nor a
 * symlink planted by a recipe's test reaches another file. Evidence is recipe output: HTML is
 * served sandboxed so it cannot run script against this origin.
 */

const TYPES: Record<string, string> = {
  '.txt': 'text/plain; charset=utf-8',
  '.log': 'text/plain; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.xml': 'application/xml; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webm': 'video/webm',
  '.zip': 'application/zip',
};

export function evidenceFile(paths: StatePaths, name: string, rel: string): string | null {
  if (!isName(name) || rel === '' || rel.includes('\0')) return null;
  const root = join(runDir(paths, name), 'evidence');
  const target = resolve(root, rel);
  if (!target.startsWith(root + sep)) return null;
  try {
    const realRoot = realpathSync(root);
    const real = realpathSync(target);
    if (!real.startsWith(realRoot + sep) || !statSync(real).isFile()) return null;
    return real;
  } catch {
    return null;
  }
}

export function registerArtifacts(app: FastifyInstance, o: { paths: StatePaths }): void {
  app.get<{ Params: { name: string; '*': string } }>('/runs/:name/artifacts/*', async (request, reply) => {
    const file = evidenceFile(o.paths, request.params.name, request.params['*']);
    if (!file) return reply.code(404).send({ error: 'no such artifact' });
    return reply
      .header('content-type', TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream')
      .header('x-content-type-options', 'nosniff')
      .header('content-security-policy', "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; media-src 'self'")
      .send(createReadStream(file));
  });
}
