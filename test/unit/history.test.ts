import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { configSchema } from '../../controller/model/config.js';
import { createLogger } from '../../controller/model/log.js';
import type { StatePaths } from '../../controller/model/paths.js';
import { RuntimeMetrics } from '../../controller/engine/metrics.js';
import { parseRunQuery, type RunQuery } from '../../controller/views/run-query.js';
import { runList, type RunRow } from '../../controller/views/run-view.js';
import { Retention } from '../../reconcilers/retention.js';
import { RunHistory } from '../../state/history.js';
import { Store } from '../../state/store.js';
import { RESULTS, type RunResult } from '../../state/types.js';
import { addHistoryRun, removeTempState, tempState } from '../support/history.js';

/**
 * The runs as history on real SQLite: keyset pages newest first with the unfinished runs on top,
 * each filter and their combinations, cursors that stay put when runs arrive, refused queries;
 * and the recipe aggregates the store keeps as runs reach Done, checked against a recount.
 */

let dir: string;
let paths: StatePaths;
let store: Store;

beforeEach(() => {
  ({ dir, paths, store } = tempState('ccci-history-'));
});

afterEach(() => removeTempState({ dir, store }));

const T0 = 1_700_000_000_000;
const RECIPES = ['webnotes', 'plainpage', 'gitea'];
const resultOf = (i: number): RunResult => RESULTS[(i * 7) % 4]!;

/** 120 finished runs (3 recipes, both lanes, all results, PRs 1–5 on two repositories) and 3 unfinished. */
function seed(): void {
  store.atomically(() => {
    for (let i = 0; i < 120; i++) {
      const recipe = RECIPES[i % 3]!;
      addHistoryRun(store, {
        name: `run-${String(i).padStart(3, '0')}`,
        recipe,
        lane: i % 4 === 0 ? 'quick' : 'cold',
        result: resultOf(i),
        createdAt: T0 + i * 60_000,
        ...(i % 2 === 0 ? { pr: { owner: 'Recipes', repo: recipe, pr: 1 + (i % 5) } } : {}),
      });
    }
    addHistoryRun(store, { name: 'queued-1', phase: 'Pending', createdAt: T0 + 500 * 60_000 });
    addHistoryRun(store, { name: 'queued-2', phase: 'Pending', createdAt: T0 + 501 * 60_000, recipe: 'gitea' });
    addHistoryRun(store, { name: 'tearing', phase: 'TearingDown', result: 'failed', createdAt: T0 + 10 * 60_000 });
  });
}

function query(raw: Record<string, string>): RunQuery {
  const q = parseRunQuery(raw);
  if (!q.ok) throw new Error(q.error);
  return q.query;
}

/** Every finished run the filter lets through, page by page, following the cursors. */
function walk(raw: Record<string, string>): { names: string[]; pages: number } {
  const names: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const list = runList(store, query({ ...raw, ...(cursor ? { cursor } : {}) }));
    names.push(...list.finished.map((r) => r.name));
    cursor = list.next;
    pages++;
  } while (cursor && pages < 100);
  return { names, pages };
}

/** The same, straight from the table: what the pages must add up to. */
function expected(where: string, ...params: (string | number)[]): string[] {
  const q = `SELECT name FROM runs WHERE phase = 'Done' ${where} ORDER BY created_at DESC, name DESC`;
  return (store.db.prepare(q).all(...params) as { name: string }[]).map((r) => r.name);
}

describe('the runs list', () => {
  it('puts the unfinished runs on top of the first page with their queue positions, then pages finished runs newest first', () => {
    seed();
    const first = runList(store, query({ limit: '25' }));
    expect(first.unfinished.map((r) => r.name)).toEqual(['queued-2', 'queued-1', 'tearing']);
    expect(first.unfinished.map((r) => r.queuePosition)).toEqual([2, 1, null]);
    expect(first.unfinished[1]).toMatchObject({ waiting: 'waiting for the controller to admit it' });
    expect(first.finished).toHaveLength(25);
    expect(first.finished[0]?.name).toBe('run-119');
    expect(first.next).toBe(`${T0 + 95 * 60_000}.run-095`);
    const second = runList(store, query({ limit: '25', cursor: first.next! }));
    expect(second.unfinished).toEqual([]);
    expect(second.finished[0]?.name).toBe('run-094');
    const all = walk({ limit: '7' });
    expect(all.names).toEqual(expected(''));
    expect(all.pages).toBe(Math.ceil(120 / 7));
  });

  it('filters by recipe, result, lane and pull request, alone and together, through every page', () => {
    seed();
    expect(walk({ recipe: 'gitea', limit: '9' }).names).toEqual(expected('AND recipe = ?', 'gitea'));
    expect(walk({ result: 'failed', limit: '9' }).names).toEqual(expected('AND result = ?', 'failed'));
    expect(walk({ lane: 'quick', limit: '9' }).names).toEqual(expected('AND lane = ?', 'quick'));
    const pr3 = walk({ pr: '3', limit: '4' }).names;
    expect(pr3).toEqual(expected("AND json_extract(spec_json, '$.spec.trigger.forge.pr') = 3"));
    expect(pr3.length).toBeGreaterThan(5);
    // The repository of the pull request, in any case.
    expect(walk({ pr: '3', repo: 'recipes/GITEA' }).names).toEqual(expected("AND json_extract(spec_json, '$.spec.trigger.forge.pr') = 3 AND recipe = 'gitea'"));
    const combined = walk({ recipe: 'webnotes', lane: 'cold', result: 'failed', limit: '3' }).names;
    expect(combined).toEqual(expected('AND recipe = ? AND lane = ? AND result = ?', 'webnotes', 'cold', 'failed'));
    expect(combined.length).toBeGreaterThan(3);
    // Unfinished runs are filtered too: a recipe's queue, and none with a result filter they lack.
    expect(runList(store, query({ recipe: 'gitea' })).unfinished.map((r) => r.name)).toEqual(['queued-2']);
    expect(runList(store, query({ result: 'passed' })).unfinished).toEqual([]);
    expect(runList(store, query({ result: 'failed' })).unfinished.map((r) => r.name)).toEqual(['tearing']);
    const row: RunRow | undefined = runList(store, query({ pr: '1' })).finished[0];
    expect(row?.forge).toEqual({ repo: 'Recipes/gitea', pr: 1, by: 'alice' });
  });

  it('keeps a cursor where it was when new runs arrive, queued or finished', () => {
    seed();
    const first = runList(store, query({ limit: '10' }));
    const before = runList(store, query({ limit: '10', cursor: first.next! })).finished.map((r) => r.name);
    addHistoryRun(store, { name: 'new-queued', phase: 'Pending', createdAt: T0 + 900 * 60_000 });
    addHistoryRun(store, { name: 'new-done', createdAt: T0 + 901 * 60_000 });
    const after = runList(store, query({ limit: '10', cursor: first.next! })).finished.map((r) => r.name);
    expect(after).toEqual(before);
    const fresh = runList(store, query({ limit: '10' }));
    expect(fresh.unfinished[0]?.name).toBe('new-queued');
    expect(fresh.finished[0]?.name).toBe('new-done');
  });

  it('refuses bad query values with a clear message', () => {
    const bad: [Record<string, string>, RegExp][] = [
      [{ limit: '0' }, /^limit: must be at least 1$/],
      [{ limit: '201' }, /^limit: must be at most 200$/],
      [{ limit: 'ten' }, /^limit: must be a number$/],
      [{ limit: '2.5' }, /^limit: must be a whole number$/],
      [{ result: 'green' }, /^result: must be one of passed, failed, error, cancelled$/],
      [{ lane: 'warm' }, /^lane: must be cold or quick$/],
      [{ pr: '-3' }, /^pr: must be a pull request number$/],
      [{ pr: 'x' }, /^pr: must be a pull request number$/],
      [{ recipe: 'Not_A_Recipe' }, /^recipe: must be a recipe name/],
      [{ repo: 'just-a-name' }, /^repo: must be owner\/name$/],
      [{ cursor: 'yesterday' }, /^cursor: is not a cursor this server handed out/],
      [{ cursor: '123.Bad_Name' }, /^cursor: is not a cursor/],
      [{ colour: 'red' }, /unknown field "colour"/],
    ];
    for (const [raw, message] of bad) {
      const r = parseRunQuery(raw);
      expect(r.ok, JSON.stringify(raw)).toBe(false);
      if (!r.ok) expect(r.error, JSON.stringify(raw)).toMatch(message);
    }
    // A form's empty fields are no filter at all.
    expect(parseRunQuery({ recipe: '', result: '', pr: '' })).toEqual({ ok: true, query: { limit: 50, before: null, filter: {} } });
    expect(parseRunQuery({ limit: '500' }, 10_000)).toMatchObject({ ok: true, query: { limit: 500 } });
  });
});

/** The aggregates recounted from the rows: what recipe_stats must say. */
function recount(): Record<string, unknown>[] {
  return store.db
    .prepare(
      `SELECT recipe, lane, SUM(result IS 'passed') AS passed, SUM(result IS 'failed') AS failed, SUM(result IS 'error') AS error,
              SUM(result IS 'cancelled') AS cancelled,
              (SELECT name FROM runs x WHERE x.recipe = r.recipe AND x.lane = r.lane AND x.phase = 'Done' ORDER BY created_at DESC, name DESC LIMIT 1) AS last_run
       FROM runs r WHERE phase = 'Done' GROUP BY recipe, lane ORDER BY recipe, lane`,
    )
    .all() as Record<string, unknown>[];
}

const stats = () =>
  new RunHistory(store).allStats().map((s) => ({
    recipe: s.recipe,
    lane: s.lane,
    passed: s.passed,
    failed: s.failed,
    error: s.error,
    cancelled: s.cancelled,
    last_run: s.lastRun,
  }));

describe('recipe aggregates', () => {
  it('agree with a full recount after a mix of results and lanes, a verdict changed, and across a restart', () => {
    seed();
    expect(stats()).toEqual(recount());
    // Runs finishing in another order than they were created: the last Done run is still the newest created.
    addHistoryRun(store, { name: 'late', recipe: 'gitea', phase: 'Testing', createdAt: T0 + 1_000 * 60_000 });
    addHistoryRun(store, { name: 'early', recipe: 'gitea', createdAt: T0 + 999 * 60_000, result: 'failed' });
    store.updateRun('late', { phase: 'Done', result: 'error' });
    store.updateRun('run-001', { result: 'passed' });
    expect(stats()).toEqual(recount());
    expect(stats().find((s) => s.recipe === 'gitea' && s.lane === 'cold')?.last_run).toBe('late');
    store.close();
    store = new Store(paths.db);
    expect(stats()).toEqual(recount());
  });

  it('keep counting the runs whose summaries retention removed', async () => {
    seed();
    const before = recount();
    const config = configSchema.parse({ retention: { logs: { keepPerRecipe: 5 }, summaries: { keepPerRecipe: 10 } } });
    const retention = new Retention({ store, config, paths, logger: createLogger('silent'), metrics: new RuntimeMetrics() });
    const report = await retention.runOnce();
    expect(report.forgotten.length).toBeGreaterThan(50);
    expect(Number((store.db.prepare("SELECT COUNT(*) AS n FROM runs WHERE phase = 'Done'").get() as { n: number }).n)).toBeLessThan(40);
    expect(stats()).toEqual(before);
  });
});
