import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { parse } from 'yaml';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { configSchema } from '../../controller/model/config.js';
import { createLogger } from '../../controller/model/log.js';
import { Metrics } from '../../controller/http/metrics.js';
import { buildApp } from '../../controller/http/server.js';
import { OPENAPI } from '../../controller/http/openapi.js';
import { ensureStateDirs, statePaths, type StatePaths } from '../../controller/model/paths.js';
import { validateSpec } from '../../controller/model/spec.js';
import { rerunPlan } from '../../controller/runtime/run-actions.js';
import { Store } from '../../state/store.js';
import { TokenStore } from '../../state/token-store.js';
import type { TierName, TierResult } from '../../state/types.js';

/**
 * Cancel and rerun over the API (controller/http/actions.ts), in process: who may, what is
 * recorded, which tiers a rerun climbs, and the OpenAPI document against the routes.
 */

let dir: string;
let paths: StatePaths;
let store: Store;
let app: FastifyInstance;
let token: string;
const cancelled: string[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ccci-actions-'));
  paths = statePaths(dir);
  ensureStateDirs(paths);
  store = new Store(paths.db);
  cancelled.length = 0;
  app = buildApp(
    {
      store,
      paths,
      config: configSchema.parse({}),
      logger: createLogger('silent'),
      metrics: new Metrics(store),
      webhook: null,
      // The serving controller's cancel: recorded as the manager records it.
      cancel: (name, reason) => {
        cancelled.push(name);
        store.updateRun(name, { cancelRequested: true, cancelReason: reason });
        store.appendEvent(name, 'warn', `cancel requested: ${reason}`);
      },
    },
    new AbortController().signal,
  );
  token = new TokenStore(store).create('ci-bot')!;
});

afterEach(async () => {
  await app.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

interface RunOpts {
  tiers?: [TierName, TierResult | null][];
  phase?: 'Pending' | 'Testing' | 'Done';
  result?: 'passed' | 'failed' | 'error' | null;
  forge?: { pr: number; comment: number };
  createdAt?: number;
}

function addRun(name: string, o: RunOpts = {}): void {
  const spec = {
    apiVersion: 'cc-ci/v1',
    kind: 'Run',
    metadata: { name },
    spec: {
      recipe: 'webnotes',
      source: { repo: 'https://git.example.org/recipes/webnotes.git', ref: 'main' },
      lane: 'cold',
      ...(o.tiers ? { tiers: o.tiers.map(([t]) => t) } : {}),
      ...(o.forge
        ? { trigger: { kind: 'comment', forge: { owner: 'recipes', repo: 'webnotes', pr: o.forge.pr, comment: o.forge.comment, by: 'alice' } } }
        : {}),
    },
  };
  store.insertRun({ name, specJson: JSON.stringify(spec), specHash: 'h', specPath: null, recipe: 'webnotes', lane: 'cold' });
  if (o.tiers) {
    store.planTiers(
      name,
      o.tiers.map(([t]) => t),
    );
    for (const [t, r] of o.tiers) {
      if (r === null) continue;
      store.startTier(name, t);
      store.finishTier(name, t, r, `${t} ${r}`);
    }
  }
  store.updateRun(name, { phase: o.phase ?? 'Done', result: o.result === undefined ? 'failed' : o.result, commitSha: 'a'.repeat(40), reason: 'r' });
}

const bearer = (t = token) => ({ authorization: `Bearer ${t}` });
const post = (url: string, headers: Record<string, string> = {}, payload?: unknown) =>
  app.inject({
    method: 'POST',
    url,
    headers: { ...headers, ...(payload ? { 'content-type': 'application/json' } : {}) },
    ...(payload ? { payload: JSON.stringify(payload) } : {}),
  });

function specOf(name: string) {
  const file = join(paths.specs, `${name}.yaml`);
  expect(existsSync(file), `${file} written`).toBe(true);
  const parsed = validateSpec(parse(readFileSync(file, 'utf8')));
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.spec;
}

describe('POST /api/v1/runs/:name/cancel', () => {
  it('needs a known token: none, a wrong one and a revoked one are 401 and change nothing', async () => {
    addRun('c1', { phase: 'Testing', result: null });
    expect((await post('/api/v1/runs/c1/cancel')).statusCode).toBe(401);
    const wrong = await post('/api/v1/runs/c1/cancel', bearer('ccci_not-a-token'));
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().error).toMatch(/token is not known/);
    new TokenStore(store).revoke('ci-bot');
    expect((await post('/api/v1/runs/c1/cancel', bearer())).statusCode).toBe(401);
    expect(store.getRun('c1')?.cancelRequested).toBe(false);
    expect(cancelled).toEqual([]);
  });

  it("cancels through the controller, recording the token's name, and says so", async () => {
    addRun('c2', { phase: 'Testing', result: null });
    const r = await post('/api/v1/runs/c2/cancel', bearer());
    expect(r.statusCode, r.body).toBe(202);
    expect(r.json()).toMatchObject({ run: 'c2', message: expect.stringMatching(/cancel requested/) });
    expect(cancelled).toEqual(['c2']);
    expect(store.getRun('c2')?.cancelReason).toBe('cancelled by token:ci-bot');
    expect(store.eventsSince('c2', 0, 100).map((e) => e.text)).toContain('cancel requested: cancelled by token:ci-bot');
    // Again: nothing more is done.
    expect((await post('/api/v1/runs/c2/cancel', bearer())).json().message).toMatch(/being cancelled already/);
    expect(cancelled).toEqual(['c2']);
  });

  it('404s an unknown run and 409s a finished one', async () => {
    addRun('c3', { phase: 'Done', result: 'passed' });
    expect((await post('/api/v1/runs/nope/cancel', bearer())).statusCode).toBe(404);
    const done = await post('/api/v1/runs/c3/cancel', bearer());
    expect(done.statusCode).toBe(409);
    expect(done.json().error).toMatch(/has finished \(passed\)/);
    expect(cancelled).toEqual([]);
  });

  it('a form post without a session is refused with a page saying why, not a redirect', async () => {
    addRun('c4', { phase: 'Testing', result: null });
    const r = await app.inject({
      method: 'POST',
      url: '/runs/c4/cancel',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://localhost:80' },
      payload: '_form=x',
    });
    expect(r.statusCode).toBe(401);
    expect(r.body).toMatch(/<p role="alert">log in to cancel runs/);
    expect(store.getRun('c4')?.cancelRequested).toBe(false);
  });
});

describe('POST /api/v1/runs/:name/rerun', () => {
  const ladder = (results: (TierResult | null)[]): [TierName, TierResult | null][] =>
    (['install', 'upgrade', 'backup', 'restore', 'custom'] as const).map((t, i) => [t, results[i] ?? null]);

  it('writes a new run at the same commit, lane and trigger, every tier, and logs who asked in the old run', async () => {
    addRun('w1', { tiers: ladder(['pass', 'fail', 'skipped', 'skipped', 'skipped']), forge: { pr: 7, comment: 70 } });
    const r = await post('/api/v1/runs/w1/rerun', bearer());
    expect(r.statusCode, r.body).toBe(201);
    expect(r.headers.location).toBe('/api/v1/runs/w1-r1');
    const spec = specOf('w1-r1');
    expect(spec.spec.source.ref).toBe('a'.repeat(40));
    expect(spec.spec.tiers).toEqual(['install', 'upgrade', 'backup', 'restore', 'custom']);
    expect(spec.spec.trigger?.forge).toMatchObject({ owner: 'recipes', repo: 'webnotes', pr: 7, comment: 70 });
    expect(spec.spec.rerun).toEqual({ of: 'w1', tiers: 'all', by: 'token:ci-bot' });
    expect(store.eventsSince('w1', 0, 100).map((e) => e.text)).toContain(
      'rerun requested by token:ci-bot: w1-r1 reruns every tier: install, upgrade, backup, restore, custom',
    );
    // Until the controller takes the spec in, its page says so and looks again (no 404 to reload past).
    const pending = await app.inject('/runs/w1-r1');
    expect(pending.statusCode).toBe(200);
    expect(pending.headers.refresh).toBe('1');
    expect(pending.body).toMatch(/the controller has not taken it in yet/);
    expect((await app.inject('/runs/w1-r9')).statusCode).toBe(404);
    // The next rerun of the same run gets the next name.
    expect((await post('/api/v1/runs/w1/rerun', bearer())).json().run).toBe('w1-r2');
  });

  it('failed tiers only: from the first that did not pass, saying which passed and are not run again', async () => {
    addRun('w2', { tiers: ladder(['pass', 'n/a', 'fail', 'skipped', 'skipped']) });
    const r = await post('/api/v1/runs/w2/rerun?failed=1', bearer());
    expect(r.statusCode, r.body).toBe(201);
    expect(r.json().message).toBe(
      'run w2-r1 reruns backup, restore, custom from backup, the first tier that did not pass (install, upgrade passed in w2 and are not run again)',
    );
    expect(specOf('w2-r1').spec.tiers).toEqual(['backup', 'restore', 'custom']);
    expect(specOf('w2-r1').spec.rerun?.tiers).toBe('failed');
    // The JSON body says the same as the query.
    expect((await post('/api/v1/runs/w2/rerun', bearer(), { failed: true })).json().message).toMatch(/^run w2-r2 reruns backup, restore, custom/);
  });

  it('refuses what cannot be rerun: nothing failed, not finished, followed by a newer run of the pull request', async () => {
    addRun('p1', { tiers: ladder(['pass', 'pass', 'pass', 'pass', 'pass']), result: 'passed' });
    const passed = await post('/api/v1/runs/p1/rerun?failed=1', bearer());
    expect(passed.statusCode).toBe(409);
    expect(passed.json().error).toMatch(/nothing failed to rerun/);
    addRun('p2', { phase: 'Testing', result: null, tiers: ladder(['pass', null]) });
    expect((await post('/api/v1/runs/p2/rerun?failed=1', bearer())).json().error).toMatch(/has not finished/);
    addRun('old', { forge: { pr: 9, comment: 1 }, tiers: ladder(['fail']) });
    addRun('new', { forge: { pr: 9, comment: 2 }, tiers: ladder(['pass', 'fail']) });
    const stale = await post('/api/v1/runs/old/rerun', bearer());
    expect(stale.statusCode).toBe(409);
    expect(stale.json().error).toBe('run old was followed by new on the same pull request and lane: rerun that one');
    expect(existsSync(join(paths.specs, 'old-r1.yaml'))).toBe(false);
    // Its own rerun does not count as newer: the newer run can be rerun twice.
    expect((await post('/api/v1/runs/new/rerun', bearer())).statusCode).toBe(201);
    expect((await post('/api/v1/runs/new/rerun', bearer())).statusCode).toBe(201);
  });

  it('a run that ended before any tier reruns the whole ladder it asked for', () => {
    addRun('e1', { result: 'error' });
    const plan = rerunPlan(store, store.getRun('e1')!, true);
    expect(plan).toEqual({
      tiers: ['install', 'upgrade', 'backup', 'restore', 'custom'],
      why: expect.stringMatching(/^no tier of e1 ran \(r\): reruns every tier/),
    });
  });
});

describe('the run page and the OpenAPI document', () => {
  it('without a login, the page names the CLI commands for what can be done', async () => {
    addRun('g1', { tiers: [['install', 'fail']] });
    const body = (await app.inject('/runs/g1')).body;
    expect(body).toContain('<code>cc-ci rerun g1 --failed</code>');
    expect(body).not.toContain('cc-ci cancel g1');
    expect(body).not.toMatch(/<form method="post"/);
  });

  it('describes every /api/v1 route, and nothing that is not one', async () => {
    await app.ready();
    // fastify's route tree, one node per line, each indented under its parent.
    const served = new Set<string>();
    const stack: string[] = [];
    for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
      const m = /^([│ ]*)[├└]── (\S+)(?: \(([^)]+)\))?$/.exec(line);
      if (!m) continue;
      const depth = m[1]!.length / 4;
      const path = (stack[depth - 1] ?? '') + m[2]!;
      stack[depth] = path;
      for (const method of m[3]?.split(', ') ?? []) {
        if (method !== 'HEAD' && path.startsWith('/api/v1/')) served.add(`${method.toLowerCase()} ${path.replace(/:(\w+)/g, '{$1}')}`);
      }
    }
    const described = new Set(Object.entries(OPENAPI.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m} ${p}`)));
    expect([...served].sort()).toEqual([...described].sort());
    const doc = await app.inject('/api/v1/openapi.json');
    expect(doc.json()).toMatchObject({ openapi: '3.1.0', info: { version: 'v1' } });
  });
});
