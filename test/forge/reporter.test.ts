import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BotIdentity } from '../../controller/clients/forge/bot.js';
import { ForgeClient } from '../../controller/clients/forge/client.js';
import { reportMarker } from '../../controller/clients/forge/report-text.js';
import { createLogger } from '../../controller/model/log.js';
import { ForgeReporter } from '../../reconcilers/report.js';
import { ForgeStore } from '../../state/forge-store.js';
import { Store } from '../../state/store.js';
import { startForgeDouble, type DoubleIssue, type ForgeDouble } from '../support/forge-double/index.js';

/**
 * The forge reporter against the double and a real store, without a swarm: runs are moved through
 * their phases by hand and each pass must leave the forge exactly as the run's state says, once.
 */

const REPO = 'recipes/webnotes';

let dir: string;
let store: Store;
let forgeStore: ForgeStore;
let double: ForgeDouble;
let pr: DoubleIssue;
let sha: string;

function reporter(): ForgeReporter {
  const client = new ForgeClient({ baseUrl: double.url, token: double.botToken, timeoutMs: 1_000, retry: { attempts: 2, baseDelayMs: 5, maxDelayMs: 10 } });
  const createClient = new ForgeClient({ baseUrl: double.url, token: double.botToken, timeoutMs: 1_000, retry: { attempts: 1 } });
  return new ForgeReporter({
    store,
    forgeStore,
    client,
    createClient,
    bot: new BotIdentity(client),
    logger: createLogger('silent'),
    runUrl: (name) => `https://ci.example.org/runs/${name}`,
    resyncSeconds: 3600,
    finalAttempts: 2,
    finalBackoffMs: 5,
  });
}

function addRun(name: string, commentId: number, o: { lane?: string; sha?: string } = {}): void {
  const spec = {
    apiVersion: 'cc-ci/v1',
    kind: 'Run',
    metadata: { name },
    spec: {
      recipe: 'webnotes',
      source: { repo: '/tmp/webnotes', ref: o.sha ?? sha },
      lane: o.lane ?? 'cold',
      trigger: { kind: 'comment', forge: { owner: 'recipes', repo: 'webnotes', pr: pr.index, comment: commentId, by: 'alice', sha: o.sha ?? sha } },
    },
  };
  store.insertRun({ name, specJson: JSON.stringify(spec), specHash: name, specPath: null, recipe: 'webnotes', lane: o.lane ?? 'cold' });
}

function finish(name: string, result: 'passed' | 'failed' | 'cancelled', reason: string): void {
  store.updateRun(name, { phase: 'Preparing', startedAt: Date.now() - 5_000 });
  store.planTiers(name, ['install']);
  store.startTier(name, 'install');
  store.finishTier(name, 'install', result === 'failed' ? 'fail' : 'pass', result === 'failed' ? 'not serving' : 'serving');
  store.updateRun(name, { phase: 'Reporting', result, reason, teardownStartedAt: Date.now() });
}

const ours = () => double.commentsOn(REPO, pr.index).filter((c) => c.author === 'cc-ci');
const statuses = () => double.statusesFor(REPO, sha).map((s) => `${s.context} ${s.state} ${s.description}`);
/** Waits for the reporter's own queue to get there (no fixed sleep: the condition or a failure). */
async function until(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end)
      throw new Error(`condition not reached: ${JSON.stringify(ours().map((c) => c.body.split('\n').filter((l) => /run=|Queued|Running/.test(l))))}`);
    await new Promise((res) => setTimeout(res, 20));
  }
}
const writes = () => double.requests.filter((r) => r.method !== 'GET').length;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ccci-report-'));
  store = new Store(join(dir, 'cc-ci.db'));
  forgeStore = new ForgeStore(store);
  double = await startForgeDouble({ botLogin: 'cc-ci' });
  double.addUser({ login: 'alice' });
  double.addRepo({ owner: 'recipes', name: 'webnotes', permissions: { alice: 'write' } });
  pr = double.addPullRequest({ repo: REPO, author: 'alice' });
  sha = pr.pull?.headSha ?? '';
});

afterEach(async () => {
  expect(double.violations).toEqual([]);
  await double.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the forge reporter', () => {
  it('reacts, keeps one comment edited in place, and moves the lane status from pending to success', async () => {
    const trigger = double.addComment({ repo: REPO, index: pr.index, author: 'alice', body: '!testme' }).comment;
    addRun('webnotes-pr1-c1', trigger.id);
    const r = reporter();

    await r.sync('webnotes-pr1-c1');
    expect(double.comment(trigger.id)?.reactions.map((x) => `${x.user}:${x.content}`)).toEqual(['cc-ci:eyes']);
    expect(ours()).toHaveLength(1);
    expect(ours()[0]?.body).toContain('⏳ **Queued**: position 1 in the queue');
    expect(statuses()).toEqual(['cc-ci/cold pending Queued']);

    store.updateRun('webnotes-pr1-c1', { phase: 'Testing', startedAt: Date.now() });
    await r.sync('webnotes-pr1-c1');
    expect(ours()).toHaveLength(1);
    expect(ours()[0]?.body).toContain('🏃 **Running**: follow the live log at https://ci.example.org/runs/webnotes-pr1-c1');

    finish('webnotes-pr1-c1', 'passed', 'passed: install');
    const run = store.getRun('webnotes-pr1-c1');
    if (!run) throw new Error('no run');
    await r.reportFinal(run);
    expect(ours()).toHaveLength(1);
    expect(ours()[0]?.body).toContain('✅ **Passed**');
    expect(ours()[0]?.body).toContain('| install | ✅ pass |');
    expect(double.statusesFor(REPO, sha).map((s) => s.state)).toEqual(['pending', 'pending', 'success']);
    expect(double.statusesFor(REPO, sha).every((s) => s.targetUrl === 'https://ci.example.org/runs/webnotes-pr1-c1')).toBe(true);
    expect(forgeStore.getReport('webnotes-pr1-c1')).toMatchObject({ final: true, failed: false });

    // A restart (a new reporter on the same store) posts nothing more.
    const before = writes();
    await reporter().sync('webnotes-pr1-c1');
    expect(writes()).toBe(before);
  });

  it('reports the verdict when the last tier ends, while teardown still runs, and does not post again when the run is Done', async () => {
    const trigger = double.addComment({ repo: REPO, index: pr.index, author: 'alice', body: '!testme' }).comment;
    const name = 'webnotes-pr1-c9';
    addRun(name, trigger.id);
    const r = reporter();
    store.updateRun(name, { phase: 'Testing', startedAt: Date.now() - 5_000 });
    store.planTiers(name, ['install']);
    store.startTier(name, 'install');
    store.finishTier(name, 'install', 'fail', 'not serving');
    await r.sync(name);
    expect(ours()[0]?.body).toContain('🏃 **Running**');

    // An infrastructure fault to be retried is no verdict: still running.
    store.updateRun(name, { phase: 'TearingDown', result: null, reason: 'interrupted', retryPending: true, teardownStartedAt: Date.now() });
    await r.sync(name);
    expect(ours()[0]?.body).toContain('🏃 **Running**');
    expect(statuses()).toEqual(['cc-ci/cold pending Running']);

    store.updateRun(name, { phase: 'TearingDown', result: 'failed', reason: 'install failed: not serving', retryPending: false });
    await r.sync(name);
    expect(ours()).toHaveLength(1);
    expect(ours()[0]?.body).toContain('❌ **Failed**');
    expect(statuses()).toEqual(['cc-ci/cold pending Running', 'cc-ci/cold failure Failed: install']);
    // Not final yet: a teardown that fails would still add its note.
    expect(forgeStore.getReport(name)).toMatchObject({ final: false });
    expect(forgeStore.runsToReport(60_000)).toContain(name);

    const before = writes();
    store.updateRun(name, { phase: 'Done', finishedAt: Date.now() });
    await r.sync(name);
    expect(writes()).toBe(before);
    expect(forgeStore.getReport(name)).toMatchObject({ final: true });
  });

  it('a teardown that fails after the verdict adds a note to the comment; the verdict and the status stand', async () => {
    const trigger = double.addComment({ repo: REPO, index: pr.index, author: 'alice', body: '!testme' }).comment;
    const name = 'webnotes-pr1-c10';
    addRun(name, trigger.id);
    const r = reporter();
    store.updateRun(name, { phase: 'Testing', startedAt: Date.now() - 5_000 });
    store.planTiers(name, ['install']);
    store.finishTier(name, 'install', 'pass', 'serving');
    store.updateRun(name, { phase: 'TearingDown', result: 'passed', reason: 'passed: install', teardownStartedAt: Date.now() });
    await r.sync(name);
    expect(ours()[0]?.body).toContain('✅ **Passed**');
    expect(ours()[0]?.body).not.toContain('Cleaning up');
    const statusesAtVerdict = statuses();

    store.updateRun(name, { phase: 'Reporting', teardownProblem: 'timed out in teardown after 15s: could not remove webn-abc123.ci.localhost: 1 volumes' });
    await r.sync(name);
    expect(ours()).toHaveLength(1);
    const body = ours()[0]?.body ?? '';
    expect(body).toContain('✅ **Passed**');
    expect(body).toMatch(
      /🧹 \*\*Cleaning up after this run failed\*\* \(timed out in teardown after 15s: could not remove webn-abc123\.ci\.localhost: 1 volumes\)\. That is a problem of the CI server/,
    );
    expect(statuses()).toEqual(statusesAtVerdict);
    expect(forgeStore.getReport(name)).toMatchObject({ final: true });
  });

  it('adopts its own comment by the marker when the id was never stored', async () => {
    const trigger = double.addComment({ repo: REPO, index: pr.index, author: 'alice', body: '!testme' }).comment;
    addRun('webnotes-pr1-c2', trigger.id);
    // A create that "timed out" after the forge stored it.
    double.addComment({ repo: REPO, index: pr.index, author: 'cc-ci', body: `${reportMarker('webnotes-pr1-c2')}\nold text` });
    await reporter().sync('webnotes-pr1-c2');
    expect(ours()).toHaveLength(1);
    expect(ours()[0]?.body).toContain('⏳ **Queued**');
  });

  it('does not hold a run forever on a dead forge, then catches up when it is back', async () => {
    const trigger = double.addComment({ repo: REPO, index: pr.index, author: 'alice', body: '!testme' }).comment;
    addRun('webnotes-pr1-c3', trigger.id);
    finish('webnotes-pr1-c3', 'failed', 'install failed: not serving');
    const run = store.getRun('webnotes-pr1-c3');
    if (!run) throw new Error('no run');
    double.setDown(true);
    await reporter().reportFinal(run);
    expect(forgeStore.getReport('webnotes-pr1-c3')).toMatchObject({ final: false, failed: true });
    expect(
      store
        .eventsSince('webnotes-pr1-c3', 0)
        .map((e) => e.text)
        .join('\n'),
    ).toMatch(/could not report the verdict to the forge/);
    expect(forgeStore.runsToReport(60_000)).toEqual(['webnotes-pr1-c3']);

    double.setDown(false);
    await reporter().sync('webnotes-pr1-c3');
    expect(ours()).toHaveLength(1);
    expect(ours()[0]?.body).toContain('❌ **Failed**');
    expect(statuses()).toEqual(['cc-ci/cold failure Failed: install']);
    expect(forgeStore.runsToReport(60_000)).toEqual([]);
  });

  it('a superseded run on the same commit does not cover the newer run’s status', async () => {
    const first = double.addComment({ repo: REPO, index: pr.index, author: 'alice', body: '!testme' }).comment;
    addRun('webnotes-pr1-c4', first.id);
    const r = reporter();
    await r.sync('webnotes-pr1-c4');
    await new Promise((res) => setTimeout(res, 5));
    const second = double.addComment({ repo: REPO, index: pr.index, author: 'alice', body: '!testme' }).comment;
    addRun('webnotes-pr1-c5', second.id);
    await r.sync('webnotes-pr1-c5');
    store.updateRun('webnotes-pr1-c4', { phase: 'Done', result: 'cancelled', reason: 'superseded by webnotes-pr1-c5', finishedAt: Date.now() });
    await r.sync('webnotes-pr1-c4');
    expect(statuses()).toEqual(['cc-ci/cold pending Queued', 'cc-ci/cold pending Queued']);
    expect(ours().find((c) => c.body.includes(reportMarker('webnotes-pr1-c4')))?.body).toContain('⏹️ **Cancelled**: superseded by webnotes-pr1-c5');
    expect(forgeStore.getReport('webnotes-pr1-c4')).toMatchObject({ final: true });
  });

  it('a reaction the forge refuses (404: the comment is gone) is given up, and the rest of the report goes out', async () => {
    const trigger = double.addComment({ repo: REPO, index: pr.index, author: 'alice', body: '!testme' }).comment;
    addRun('webnotes-pr1-c6', trigger.id);
    double.failNext('issuePostCommentReaction', 404);
    const r = reporter();
    await r.sync('webnotes-pr1-c6');
    expect(ours()).toHaveLength(1);
    expect(statuses()).toEqual(['cc-ci/cold pending Queued']);
    expect(forgeStore.getReport('webnotes-pr1-c6')).toMatchObject({ reaction: 'given-up' });
    expect(
      store
        .eventsSince('webnotes-pr1-c6', 0)
        .map((e) => e.text)
        .join('\n'),
    ).toMatch(/the forge refused the 👀 reaction on the trigger comment \(404/);

    // Given up means not asked again: the next passes go on without it, to the verdict.
    finish('webnotes-pr1-c6', 'passed', 'passed: install');
    const run = store.getRun('webnotes-pr1-c6');
    if (!run) throw new Error('no run');
    await r.reportFinal(run);
    expect(double.requestsFor('issuePostCommentReaction')).toHaveLength(1);
    expect(ours()[0]?.body).toContain('✅ **Passed**');
    expect(statuses().at(-1)).toBe('cc-ci/cold success Passed');
    expect(forgeStore.getReport('webnotes-pr1-c6')).toMatchObject({ final: true, failed: false });
  });

  it('a commit status the forge refuses (403) does not hold back the comment or the verdict', async () => {
    const trigger = double.addComment({ repo: REPO, index: pr.index, author: 'alice', body: '!testme' }).comment;
    addRun('webnotes-pr1-c7', trigger.id);
    double.failNext('issuePostCommentReaction', 403);
    double.failNext('repoCreateStatus', 403);
    const r = reporter();
    await r.sync('webnotes-pr1-c7');
    expect(ours()[0]?.body).toContain('⏳ **Queued**');
    expect(statuses()).toEqual([]);
    finish('webnotes-pr1-c7', 'failed', 'install failed: not serving');
    const run = store.getRun('webnotes-pr1-c7');
    if (!run) throw new Error('no run');
    await r.reportFinal(run);
    // The next status is asked for afresh, and goes out.
    expect(statuses()).toEqual(['cc-ci/cold failure Failed: install']);
    expect(ours()).toHaveLength(1);
    expect(ours()[0]?.body).toContain('❌ **Failed**');
    expect(forgeStore.getReport('webnotes-pr1-c7')).toMatchObject({ final: true, reaction: 'given-up' });
    const log = store
      .eventsSince('webnotes-pr1-c7', 0)
      .map((e) => e.text)
      .join('\n');
    expect(log).toMatch(/the forge refused the cc-ci\/cold commit status "Queued" \(403/);
  });

  it('keeps retrying what a forge may still do: a 500 on the reaction is not given up', async () => {
    const trigger = double.addComment({ repo: REPO, index: pr.index, author: 'alice', body: '!testme' }).comment;
    addRun('webnotes-pr1-c8', trigger.id);
    double.failNext('issuePostCommentReaction', 500, 1);
    const r = reporter();
    // One POST per pass: a write that failed is tried again by the next pass, not in the same breath.
    await expect(r.sync('webnotes-pr1-c8')).rejects.toThrow();
    expect(double.requestsFor('issuePostCommentReaction')).toHaveLength(1);
    expect(forgeStore.getReport('webnotes-pr1-c8')).toMatchObject({ reaction: 'pending' });
    await r.sync('webnotes-pr1-c8');
    expect(double.comment(trigger.id)?.reactions.map((x) => x.content)).toEqual(['eyes']);
    expect(forgeStore.getReport('webnotes-pr1-c8')).toMatchObject({ reaction: 'done' });
  });

  it('a status POST that timed out after the forge stored it is not posted again: the next pass lists first', async () => {
    const trigger = double.addComment({ repo: REPO, index: pr.index, author: 'alice', body: '!testme' }).comment;
    addRun('webnotes-pr1-c12', trigger.id);
    // The forge stores the status, then answers too late: the client gives up on it (timeout 1 s).
    double.delayNext('repoCreateStatus', 1_500, 1);
    const r = reporter();
    await expect(r.sync('webnotes-pr1-c12')).rejects.toThrow(/no answer/);
    await until(() => statuses().length === 1); // the forge did store it
    forgeStore.updateReport('webnotes-pr1-c12', { attempts: 1, lastError: 'timeout' }); // as the queue's failure handler records it
    await r.sync('webnotes-pr1-c12');
    expect(statuses()).toEqual(['cc-ci/cold pending Queued']);
    expect(double.requestsFor('repoCreateStatus')).toHaveLength(1);
    expect(double.requestsFor('repoListStatuses')).toHaveLength(1);
  });

  it('moves every queued run up when one ahead of it leaves the queue', async () => {
    const names = ['webnotes-pr1-c9', 'webnotes-pr1-c10', 'webnotes-pr1-c11'];
    for (const name of names) {
      const trigger = double.addComment({ repo: REPO, index: pr.index, author: 'alice', body: '!testme' }).comment;
      addRun(name, trigger.id);
      await new Promise((res) => setTimeout(res, 2));
    }
    const r = reporter();
    const stop = new AbortController();
    const running = r.start(stop.signal, () => undefined);
    try {
      const bodyOf = (name: string) => ours().find((c) => c.body.includes(reportMarker(name)))?.body ?? '';
      await until(() => names.every((n, i) => bodyOf(n).includes(`position ${i + 1} in the queue`)));
      // Only the first run changes; the others' comments must follow without a resync (an hour away).
      store.updateRun('webnotes-pr1-c9', { phase: 'Preparing', startedAt: Date.now() });
      await until(() => bodyOf('webnotes-pr1-c10').includes('position 1 in the queue') && bodyOf('webnotes-pr1-c11').includes('position 2 in the queue'));
      expect(bodyOf('webnotes-pr1-c9')).toContain('🏃 **Running**');
      // A cancelled queued run leaves the queue too.
      store.updateRun('webnotes-pr1-c10', { cancelRequested: true });
      await until(() => bodyOf('webnotes-pr1-c11').includes('position 1 in the queue'));
    } finally {
      stop.abort();
      await running;
    }
  });

  it('ignores runs that did not come from a forge comment', async () => {
    store.insertRun({
      name: 'by-hand',
      specJson: JSON.stringify({
        apiVersion: 'cc-ci/v1',
        kind: 'Run',
        metadata: { name: 'by-hand' },
        spec: { recipe: 'webnotes', source: { repo: '/x', ref: 'main' }, lane: 'cold' },
      }),
      specHash: 'x',
      specPath: null,
      recipe: 'webnotes',
      lane: 'cold',
    });
    await reporter().sync('by-hand');
    expect(double.requests).toEqual([]);
    expect(forgeStore.runsToReport(60_000)).toEqual([]);
  });
});
