import type { FastifyInstance } from 'fastify';
import type { Store } from '../../state/store.js';
import type { StatePaths } from '../model/paths.js';
import { invalidSpecsOf, runDescription, runDetail, runList, runListJson } from '../views/run-view.js';
import { parseRunQuery } from '../views/run-query.js';
import { isName } from '../model/spec.js';
import { projectRoot } from '../model/project-root.js';
import { homedir } from 'node:os';

/**
 * The server's own file layout is nobody's business on the network: in an answer, the state
 * directory, cc-ci's installation and the service user's home are named by placeholders.
 */
export function withoutHostPaths<T>(value: T, places: readonly [string, string][]): T {
  // A place is replaced only where the path ends or goes on with a `/`: /srv/cc-ci-other is
  // another directory than /srv/cc-ci, not `<cc-ci>-other`.
  const sorted = places
    .filter(([p]) => p.length > 1)
    .sort((a, b) => b[0].length - a[0].length)
    .map(([p, name]) => [new RegExp(`${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![\\w-]|\\.[\\w-])`, 'g'), name] as const);
  const hide = (v: unknown): unknown => {
    if (typeof v === 'string') return sorted.reduce((s, [re, name]) => s.replace(re, name), v);
    if (Array.isArray(v)) return v.map(hide);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, hide(x)]));
    return v;
  };
  return hide(value) as T;
}

/** GET /api/runs[?limit&cursor&recipe&result&lane&pr&repo] and /api/runs/:name: the same views as the pages and `cc-ci get -o json`, as JSON. */
export function registerApi(app: FastifyInstance, o: { store: Store; paths: StatePaths }): void {
  const places: [string, string][] = [
    [o.paths.root, '<state>'],
    [projectRoot(), '<cc-ci>'],
    [homedir(), '~'],
  ];
  app.addHook('preSerialization', async (request, _reply, payload) => (request.url.startsWith('/api/') ? withoutHostPaths(payload, places) : payload));
  // /api/v1/ is the API the pages and the CLI share (openapi.ts describes it); /api/ is the same,
  // kept for clients written before the version was in the path.
  for (const base of ['/api/v1', '/api']) registerRunRoutes(app, base, o);
}

function registerRunRoutes(app: FastifyInstance, base: string, o: { store: Store; paths: StatePaths }): void {
  app.get(`${base}/runs`, async (request, reply) => {
    const q = parseRunQuery(request.query);
    if (!q.ok) return reply.code(400).send({ error: `bad query: ${q.error}` });
    return runListJson(runList(o.store, q.query));
  });

  app.get<{ Params: { name: string } }>(`${base}/runs/:name`, async (request, reply) => {
    const { name } = request.params;
    const d = isName(name) ? runDetail(o.store, o.paths, name) : undefined;
    if (!d) {
      // A spec file of that name that could not be taken in is why there is no run: say so (as `cc-ci describe run` does).
      const invalidSpecs = isName(name) ? invalidSpecsOf(o.store, name) : [];
      return reply.code(404).send({ error: `no run named ${name}`, ...(invalidSpecs.length ? { invalidSpecs } : {}) });
    }
    return runDescription(d);
  });
}
