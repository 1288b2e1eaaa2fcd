import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { configSchema, type Config } from '../../controller/model/config.js';
import { createLogger } from '../../controller/model/log.js';
import { runDir, type StatePaths } from '../../controller/model/paths.js';
import { RuntimeMetrics } from '../../controller/engine/metrics.js';
import { SpecSync } from '../../controller/runtime/spec-sync.js';
import { runDetail } from '../../controller/views/run-view.js';
import { Retention } from '../../reconcilers/retention.js';
import { RunHistory } from '../../state/history.js';
import { RetentionStore } from '../../state/retention-store.js';
import { Store } from '../../state/store.js';
import { WarmStore } from '../../state/warm-store.js';
import { ForgeStore } from '../../state/forge-store.js';
import { addHistoryRun, removeTempState, tempState } from '../support/history.js';

/**
 * Retention on real SQLite and a real state directory: finished runs past the horizon lose their
 * log, steps, run directory and spec file and keep their summary; nothing unfinished, leased,
 * running a child or named by a warm app is touched; a pass killed between marking and removing
 * is finished by the next one; and deleting a spec file this way neither cancels nor re-creates
 * anything.
 */

const DAY = 86_400_000;
let dir: string;
let paths: StatePaths;
let store: Store;

beforeEach(() => {
  ({ dir, paths, store } = tempState('ccci-retention-'));
});

afterEach(() => removeTempState({ dir, store }));

function policy(retention: Record<string, unknown>): Config {
  return configSchema.parse({ retention });
}

function retention(config: Config): Retention {
  return new Retention({ store, config, paths, logger: createLogger('silent'), metrics: new RuntimeMetrics() });
}

/** A finished run with a spec file, a run directory (a log file and evidence), log lines and steps. */
function finished(name: string, daysAgo: number, extra: { recipe?: string; phase?: 'Done' | 'TearingDown' | 'Reporting' | 'Testing' } = {}): void {
  const at = Date.now() - daysAgo * DAY;
  addHistoryRun(store, { name, createdAt: at, finishedAt: at + 60_000, ...extra }, paths);
  mkdirSync(join(runDir(paths, name), 'evidence'), { recursive: true });
  writeFileSync(join(runDir(paths, name), 'log.txt'), 'the log\n');
  writeFileSync(join(runDir(paths, name), 'evidence', 'junit.xml'), '<testsuite/>');
}

const specFile = (name: string) => join(paths.specs, `${name}.yaml`);
const count = (table: string, run: string) => Number((store.db.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE run = ?`).get(run) as { n: number }).n);

function expectPruned(name: string): void {
  const run = store.getRun(name);
  expect(run, name).toMatchObject({ phase: 'Done', result: 'passed', reason: 'passed: install', specPath: null });
  expect(run?.finishedAt).not.toBeNull();
  expect(
    store.getTiers(name).map((t) => t.result),
    name,
  ).toEqual(['pass']);
  expect(count('events', name), name).toBe(0);
  expect(count('steps', name), name).toBe(0);
  expect(existsSync(runDir(paths, name)), name).toBe(false);
  expect(existsSync(specFile(name)), name).toBe(false);
  expect(store.getSpecFile(specFile(name)), name).toBeUndefined();
  expect(new RunHistory(store).prunedAt(name), name).not.toBeNull();
}

function expectKept(name: string): void {
  expect(count('events', name), name).toBeGreaterThan(0);
  expect(count('steps', name), name).toBeGreaterThan(0);
  expect(existsSync(join(runDir(paths, name), 'log.txt')), name).toBe(true);
  expect(new RunHistory(store).prunedAt(name), name).toBeNull();
}

describe('retention', () => {
  it('by age: removes the log, steps, run directory and spec file of runs finished too long ago, and keeps their summary', async () => {
    finished('old-1', 40);
    finished('old-2', 31);
    finished('recent', 2);
    const report = await retention(policy({ logs: { maxAgeSeconds: 30 * 86_400 } })).runOnce();
    expect(report.pruned.sort()).toEqual(['old-1', 'old-2']);
    expect(report.logLines).toBe(4);
    expectPruned('old-1');
    expectPruned('old-2');
    expectKept('recent');
    // The run page says so: the API, `describe run` (the view), and the live log's first line.
    expect(runDetail(store, paths, 'old-1')?.prunedAt).toBe(new RunHistory(store).prunedAt('old-1'));
    // A second pass has nothing to do.
    expect((await retention(policy({ logs: { maxAgeSeconds: 30 * 86_400 } })).runOnce()).pruned).toEqual([]);
  });

  it('by count per recipe: keeps the newest N finished runs of each recipe', async () => {
    for (let i = 0; i < 5; i++) finished(`web-${i}`, 10 - i);
    for (let i = 0; i < 3; i++) finished(`plain-${i}`, 10 - i, { recipe: 'plainpage' });
    const report = await retention(policy({ logs: { keepPerRecipe: 2 } })).runOnce();
    expect(report.pruned.sort()).toEqual(['plain-0', 'web-0', 'web-1', 'web-2']);
    for (const n of ['web-3', 'web-4', 'plain-1', 'plain-2']) expectKept(n);
  });

  it('never touches an unfinished run, one with a lease not released or a child on record, or one a warm app names', async () => {
    for (const phase of ['Testing', 'TearingDown', 'Reporting'] as const) finished(`busy-${phase.toLowerCase()}`, 50, { phase });
    finished('leased', 50);
    store.leaseApp({
      domain: 'webn-abc123.ci.localhost',
      run: 'leased',
      attempt: 1,
      purpose: 'main',
      stack: 's',
      server: 'default',
      abraDir: '/x',
      port: null,
    });
    finished('child', 50);
    store.addChild({ pid: 999_999, run: 'child', startTicks: null, command: 'abra', startedAt: Date.now() });
    const warm = new WarmStore(store);
    for (const role of ['promoted', 'candidate', 'holder', 'returning'] as const) finished(`warm-${role}`, 50, { recipe: `r-${role}` });
    for (const [recipe, patch] of [
      ['r-promoted', { promotedRun: 'warm-promoted' }],
      ['r-candidate', { candidateRun: 'warm-candidate' }],
      ['r-holder', { holder: 'warm-holder' }],
      ['r-returning', { returnPending: 'warm-returning' }],
    ] as const) {
      warm.insert(recipe, '{}', `/w/${recipe}.yaml`);
      warm.update(recipe, patch);
    }
    finished('free', 50);
    const config = policy({ logs: { maxAgeSeconds: 86_400, keepPerRecipe: 1 }, summaries: { maxAgeSeconds: 86_400, keepPerRecipe: 1 } });
    const report = await retention(config).runOnce();
    expect(report.pruned).toEqual(['free']);
    for (const n of [
      'busy-testing',
      'busy-tearingdown',
      'busy-reporting',
      'leased',
      'child',
      'warm-promoted',
      'warm-candidate',
      'warm-holder',
      'warm-returning',
    ]) {
      expectKept(n);
      expect(existsSync(specFile(n)), n).toBe(true);
    }
    // Once the lease is released, the run is fair game.
    store.setAppState('webn-abc123.ci.localhost', 'released');
    expect((await retention(config).runOnce()).pruned).toEqual(['leased']);
  });

  it('past the second horizon forgets the summary too — but never the newest Done run of a recipe and lane', async () => {
    for (let i = 0; i < 4; i++) finished(`web-${i}`, 400 - i);
    new ForgeStore(store).ensureReport('web-0');
    const report = await retention(policy({ logs: { maxAgeSeconds: 30 * 86_400 }, summaries: { maxAgeSeconds: 365 * 86_400 } })).runOnce();
    expect(report.pruned.sort()).toEqual(['web-0', 'web-1', 'web-2', 'web-3']);
    expect(report.forgotten.sort()).toEqual(['web-0', 'web-1', 'web-2']);
    expect(store.getRun('web-0')).toBeUndefined();
    expect(store.getTiers('web-0')).toEqual([]);
    expect(new ForgeStore(store).getReport('web-0')).toBeUndefined();
    expect(store.getRun('web-3')).toMatchObject({ result: 'passed' });
  });

  it('refuses a policy that would forget summaries before logs', () => {
    expect(() => policy({ logs: { keepPerRecipe: 100 }, summaries: { keepPerRecipe: 10 } })).toThrow(/summaries must be kept at least as long/);
  });

  it('finishes, after a restart, what a pass marked and did not get to remove', async () => {
    finished('marked', 40);
    finished('other', 40);
    // A pass that was killed right after recording: the mark is in the store, nothing removed yet.
    expect(new RetentionStore(store).markPruned('marked', Date.now())).toBe(true);
    expectPrunedButPending('marked');
    store.close();
    store = new Store(paths.db);
    // Retention off: it marks nothing new, and still finishes what is marked.
    const report = await retention(policy({ enabled: false })).runOnce();
    expect(report).toMatchObject({ pruned: ['marked'], resumed: 1 });
    expectPruned('marked');
    expectKept('other');
  });

  it('deletes a finished run’s spec file as forgetting: no cancel, no new run, and a file put back is refused', async () => {
    const calls: string[] = [];
    const sync = new SpecSync(store, paths.specs, createLogger('silent'), {
      enqueue: (n) => calls.push(`enqueue ${n}`),
      accepted: (n) => calls.push(`accepted ${n}`),
      cancel: (n) => calls.push(`cancel ${n}`),
    });
    finished('gone', 40);
    sync.resync();
    const text = (await import('node:fs')).readFileSync(specFile('gone'), 'utf8');
    // Marked but the file not removed yet: a resync in between takes nothing in again.
    new RetentionStore(store).markPruned('gone', Date.now());
    sync.resync();
    await retention(policy({ logs: { maxAgeSeconds: 30 * 86_400 } })).runOnce();
    // The watcher's unlink, and a resync, after the fact.
    sync.removed(specFile('gone'));
    sync.resync();
    expect(calls).toEqual([]);
    expectPruned('gone');
    // The same file dropped in again: refused, with the reason, and the run stays what it was.
    writeFileSync(specFile('gone'), text);
    sync.resync();
    expect(calls).toEqual([]);
    expect(store.getSpecFile(specFile('gone'))).toMatchObject({ status: 'invalid', error: expect.stringMatching(/removed by retention/) });
    expect(store.getRun('gone')).toMatchObject({ phase: 'Done', result: 'passed', specPath: null });
  });

  it('works in bounded passes: at most runsPerPass runs each', async () => {
    for (let i = 0; i < 12; i++) finished(`r-${i}`, 50);
    const config = policy({ runsPerPass: 5, logs: { maxAgeSeconds: 86_400 } });
    expect((await retention(config).runOnce()).pruned).toHaveLength(5);
    expect((await retention(config).runOnce()).pruned).toHaveLength(5);
    expect((await retention(config).runOnce()).pruned).toHaveLength(2);
  });
});

function expectPrunedButPending(name: string): void {
  expect(store.db.prepare('SELECT files_pending FROM runs WHERE name = ?').get(name)).toEqual({ files_pending: 1 });
  expect(existsSync(specFile(name))).toBe(true);
  expect(existsSync(runDir(paths, name))).toBe(true);
}
