import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { configSchema } from '../../controller/model/config.js';
import { BotIdentity } from '../../controller/clients/forge/bot.js';
import { ForgeClient } from '../../controller/clients/forge/client.js';
import { EnrolledRepos } from '../../controller/forge/enrolled.js';
import {
  DEFAULT_INTAKE_RETRY,
  Intake,
  MAX_INTAKE_ATTEMPTS,
  intakeRetryDelayMs,
  maxIntakeAttempts,
  runNameFor,
  type CommentEvent,
  type IntakeRetry,
} from '../../controller/forge/intake.js';
import { replyMarker } from '../../controller/forge/replies.js';
import { createLogger } from '../../controller/model/log.js';
import { ensureStateDirs, statePaths, type StatePaths } from '../../controller/model/paths.js';
import { ForgeStore } from '../../state/forge-store.js';
import { Store } from '../../state/store.js';
import type { TierName } from '../../state/types.js';
import { startForgeDouble, type DoubleIssue, type ForgeDouble } from '../support/forge-double/index.js';

/**
 * The intake's decisions against the forge double, without a controller: which comments become a
 * spec file, which get one reply, which are ignored, and that nothing is decided twice.
 */

const REPO = 'recipes/custom-html';
const SHA = 'a'.repeat(40);

let dir: string;
let paths: StatePaths;
let store: Store;
let forgeStore: ForgeStore;
let double: ForgeDouble;
let pr: DoubleIssue;

/** Retries due after a millisecond, given up after five failures: the schedule without the waiting. */
const FAST: IntakeRetry = { firstDelayMs: 1, maxDelayMs: 1, horizonMs: 5 };
/** Lets a millisecond pass, so a retry scheduled 1 ms after the last failure is due. */
const tick = () => new Promise((r) => setTimeout(r, 3));

function intake(o: { repos?: unknown[]; allowList?: string[]; retry?: IntakeRetry } = {}): Intake {
  const client = new ForgeClient({ baseUrl: double.url, token: double.botToken, timeoutMs: 2_000, retry: { attempts: 2, baseDelayMs: 5, maxDelayMs: 10 } });
  const createClient = new ForgeClient({ baseUrl: double.url, token: double.botToken, timeoutMs: 2_000, retry: { attempts: 1 } });
  const config = configSchema.parse({ repos: o.repos ?? [REPO] });
  return new Intake({
    store,
    forgeStore,
    paths,
    repos: new EnrolledRepos(config.repos),
    allowList: o.allowList ?? [],
    client,
    createClient,
    bot: new BotIdentity(client),
    logger: createLogger('silent'),
    retry: o.retry ?? FAST,
  });
}

function eventFor(comment: { id: number; body: string; author: string }, extra: Partial<CommentEvent> = {}): CommentEvent {
  return {
    via: 'webhook',
    delivery: 'd-1',
    owner: 'recipes',
    repo: 'custom-html',
    pr: pr.index,
    commentId: comment.id,
    body: comment.body,
    commenter: comment.author,
    sender: comment.author,
    prState: 'open',
    headSha: SHA,
    cloneUrl: 'https://git.example.org/recipes/custom-html.git',
    ...extra,
  };
}

/** A comment as the poller hands it over: no head, no state, the comment's creation time. */
function polled(body: string, index: number, author = 'alice'): CommentEvent {
  const made = double.addComment({ repo: REPO, index, author, body }).comment;
  return {
    ...eventFor(made, { via: 'poll', delivery: null, pr: index }),
    headSha: null,
    prState: null,
    cloneUrl: null,
    commentedAt: new Date(made.created * 1000).toISOString(),
  };
}

function comment(author: string, body: string): CommentEvent {
  return eventFor(double.addComment({ repo: REPO, index: pr.index, author, body }).comment);
}

const specFiles = (): string[] => readdirSync(paths.specs).filter((f) => !f.startsWith('.'));
const botComments = (): string[] =>
  double
    .commentsOn(REPO, pr.index)
    .filter((c) => c.author === 'cc-ci')
    .map((c) => c.body);

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ccci-intake-'));
  paths = statePaths(dir);
  ensureStateDirs(paths);
  store = new Store(paths.db);
  forgeStore = new ForgeStore(store);
  double = await startForgeDouble({ botLogin: 'cc-ci' });
  for (const login of ['alice', 'bob', 'carol']) double.addUser({ login });
  double.addRepo({ owner: 'recipes', name: 'custom-html', permissions: { alice: 'write', bob: 'read' } });
  double.addRepo({ owner: 'recipes', name: 'elsewhere', permissions: { alice: 'write' } });
  pr = double.addPullRequest({ repo: REPO, author: 'bob', headSha: SHA });
});

afterEach(async () => {
  expect(double.violations).toEqual([]);
  await double.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the intake', () => {
  it('turns !testme by a writer into one spec file pinned to the head at comment time', async () => {
    const e = comment('alice', '!testme');
    const name = runNameFor('custom-html', pr.index, e.commentId);
    expect(await intake().handle(e)).toEqual({ kind: 'run', run: name });
    expect(specFiles()).toEqual([`${name}.yaml`]);
    const spec = parse(readFileSync(join(paths.specs, `${name}.yaml`), 'utf8')) as Record<string, unknown>;
    expect(spec).toMatchObject({
      metadata: { name },
      spec: {
        recipe: 'custom-html',
        lane: 'cold',
        source: { repo: 'https://git.example.org/recipes/custom-html.git', ref: SHA },
        trigger: {
          kind: 'comment',
          forge: { owner: 'recipes', repo: 'custom-html', pr: pr.index, comment: e.commentId, by: 'alice', sha: SHA, delivery: 'd-1' },
        },
      },
    });
    // The same comment again (a redelivery, or the poller seeing it too) makes nothing new.
    expect(await intake().handle({ ...e, delivery: 'd-2', via: 'poll' })).toMatchObject({ kind: 'ignored' });
    expect(specFiles()).toHaveLength(1);
    expect(botComments()).toEqual([]);
  });

  it('runs a pinned !testme when the head is that commit, and refuses it with one reply when the head moved', async () => {
    const pinned = comment('alice', `!testme --quick ${SHA.slice(0, 7).toUpperCase()}`);
    const name = runNameFor('custom-html', pr.index, pinned.commentId);
    expect(await intake().handle(pinned)).toEqual({ kind: 'run', run: name });
    const spec = parse(readFileSync(join(paths.specs, `${name}.yaml`), 'utf8')) as { spec: { lane: string; source: { ref: string } } };
    expect(spec.spec).toMatchObject({ lane: 'quick', source: { ref: SHA } });

    const stale = comment('alice', `!testme ${'b'.repeat(12)}`);
    expect(await intake().handle(stale)).toEqual({ kind: 'replied', reply: 'moved' });
    expect(specFiles()).toEqual([`${name}.yaml`]);
    const replies = botComments();
    expect(replies).toHaveLength(1);
    expect(replies[0]).toContain(replyMarker(stale.commentId));
    expect(replies[0]).toContain(`you asked me to test commit \`${'b'.repeat(12)}\``);
    // Seen again (a redelivery), nothing more is posted.
    expect(await intake().handle({ ...stale, delivery: 'd-9' })).toMatchObject({ kind: 'ignored' });
    expect(botComments()).toHaveLength(1);
    // A reader's pinned comment is refused for who they are, not for the commit.
    expect(await intake().handle(comment('bob', `!testme ${'b'.repeat(12)}`))).toEqual({ kind: 'replied', reply: 'denied' });
  });

  it('!testme --failed reruns what did not pass in the PR’s last run of the lane, at the same commit; otherwise says why not', async () => {
    // A finished cold run of this pull request, at the head, that failed at backup.
    const addDone = async (name: string, sha: string, results: [TierName, 'pass' | 'fail' | 'skipped'][]) => {
      await new Promise((r) => setTimeout(r, 5)); // each newer than the last
      const spec = {
        apiVersion: 'cc-ci/v1',
        kind: 'Run',
        metadata: { name },
        spec: {
          recipe: 'custom-html',
          source: { repo: 'https://git.example.org/recipes/custom-html.git', ref: sha },
          lane: 'cold',
          trigger: { kind: 'comment', forge: { owner: 'recipes', repo: 'custom-html', pr: pr.index, comment: 1, by: 'alice', sha } },
        },
      };
      store.insertRun({ name, specJson: JSON.stringify(spec), specHash: name, specPath: null, recipe: 'custom-html', lane: 'cold' });
      store.planTiers(
        name,
        results.map(([t]) => t),
      );
      for (const [t, r] of results) {
        store.startTier(name, t);
        store.finishTier(name, t, r, r);
      }
      store.updateRun(name, { phase: 'Done', result: results.some(([, r]) => r === 'fail') ? 'failed' : 'passed', commitSha: sha, finishedAt: Date.now() });
    };
    const none = comment('alice', '!testme --failed');
    expect(await intake().handle(none)).toEqual({ kind: 'replied', reply: 'no-rerun' });
    expect(botComments().at(-1)).toContain('there is nothing for `!testme --failed` to rerun: this pull request has no finished cold run');

    await addDone('first', SHA, [
      ['install', 'pass'],
      ['upgrade', 'pass'],
      ['backup', 'fail'],
      ['restore', 'skipped'],
      ['custom', 'skipped'],
    ]);
    const again = comment('alice', '!testme --failed');
    const name = runNameFor('custom-html', pr.index, again.commentId);
    expect(await intake().handle(again)).toEqual({ kind: 'run', run: name });
    const spec = parse(readFileSync(join(paths.specs, `${name}.yaml`), 'utf8')) as { spec: Record<string, unknown> };
    expect(spec.spec).toMatchObject({
      lane: 'cold',
      source: { ref: SHA },
      tiers: ['backup', 'restore', 'custom'],
      rerun: { of: 'first', tiers: 'failed', by: 'alice' },
    });
    expect(forgeStore.getComment(again.commentId)?.detail).toBe(`backup, restore, custom of first (--failed) at ${SHA}`);

    // The head moved since: the failure of another commit says nothing of this one.
    await addDone('older-head', 'c'.repeat(40), [['install', 'fail']]);
    expect(await intake().handle(comment('alice', '!testme --failed'))).toEqual({ kind: 'replied', reply: 'no-rerun' });
    expect(botComments().at(-1)).toMatch(/its last cold run, older-head, tested cccccccccccc, and the head is aaaaaaaaaaaa now/);
    // Everything passed: nothing to rerun.
    await addDone('green', SHA, [['install', 'pass']]);
    expect(await intake().handle(comment('alice', '!testme --failed'))).toEqual({ kind: 'replied', reply: 'no-rerun' });
    expect(botComments().at(-1)).toMatch(/every tier of green passed: nothing failed to rerun/);
    // The quick lane has its own history.
    expect(await intake().handle(comment('alice', '!testme --quick --failed'))).toEqual({ kind: 'replied', reply: 'no-rerun' });
    expect(botComments().at(-1)).toMatch(/no finished quick run/);
    expect(specFiles()).toEqual([`${name}.yaml`]);
  });

  it('takes the lane from --quick, the recipe and clone URL from the config mapping', async () => {
    const e = comment('alice', 'Looks good.\n\n!testme --quick');
    const repos = [{ name: REPO, recipe: 'html', cloneUrl: 'https://mirror.example.org/html.git' }];
    const out = await intake({ repos }).handle(e);
    expect(out).toEqual({ kind: 'run', run: `html-pr${pr.index}-c${e.commentId}` });
    const spec = parse(readFileSync(join(paths.specs, `html-pr${pr.index}-c${e.commentId}.yaml`), 'utf8')) as { spec: Record<string, unknown> };
    expect(spec.spec).toMatchObject({ recipe: 'html', lane: 'quick', source: { repo: 'https://mirror.example.org/html.git', ref: SHA } });
  });

  it('answers a malformed command once with the valid forms', async () => {
    const e = comment('alice', '!testme --qiuck');
    expect(await intake().handle(e)).toEqual({ kind: 'replied', reply: 'help' });
    expect(await intake().handle(e)).toMatchObject({ kind: 'ignored' });
    const replies = botComments();
    expect(replies).toHaveLength(1);
    expect(replies[0]).toContain(replyMarker(e.commentId));
    expect(replies[0]).toContain('@alice I did not understand `!testme --qiuck`');
    expect(replies[0]).toContain('- `!testme`: ');
    expect(replies[0]).toContain('- `!testme --quick`: ');
    expect(specFiles()).toEqual([]);
  });

  it('ignores prose, edits of nothing and code: no record, no reply', async () => {
    for (const body of ['!testmexyz', 'please !testme', '```\n!testme\n```', '`!testme`']) {
      expect(await intake().handle(comment('alice', body))).toEqual({ kind: 'ignored', reason: 'not a command' });
    }
    expect(forgeStore.listUnfinishedComments()).toEqual([]);
    expect(botComments()).toEqual([]);
  });

  it('refuses a commenter without write access once, politely, and starts nothing', async () => {
    const e = comment('bob', '!testme');
    expect(await intake().handle(e)).toEqual({ kind: 'replied', reply: 'denied' });
    expect(await intake().handle(e)).toMatchObject({ kind: 'ignored' });
    expect(botComments()).toHaveLength(1);
    expect(botComments()[0]).toContain('@bob thank you for asking! Only people with write access to `recipes/custom-html`');
    expect(specFiles()).toEqual([]);
  });

  it('lets the allow-list in without write access', async () => {
    const e = comment('carol', '!testme');
    expect(await intake({ allowList: ['Carol'] }).handle(e)).toMatchObject({ kind: 'run' });
  });

  it('says so when the bot may not read permissions (it needs admin)', async () => {
    double.setPermission(REPO, 'cc-ci', 'write');
    const e = comment('alice', '!testme');
    expect(await intake().handle(e)).toEqual({ kind: 'replied', reply: 'cannot-check' });
    expect(botComments()[0]).toContain('needs admin access to `recipes/custom-html`');
    expect(specFiles()).toEqual([]);
  });

  it('ignores the bot’s own comments, unenrolled repositories and closed pull requests (with a reply)', async () => {
    expect(await intake().handle(comment('cc-ci', '!testme'))).toEqual({ kind: 'ignored', reason: 'the bot’s own comment' });
    const other = double.addPullRequest({ repo: 'recipes/elsewhere', author: 'alice' });
    const c = double.addComment({ repo: 'recipes/elsewhere', index: other.index, author: 'alice', body: '!testme' }).comment;
    expect(await intake().handle(eventFor(c, { repo: 'elsewhere', pr: other.index }))).toMatchObject({
      kind: 'ignored',
      reason: expect.stringContaining('not enrolled'),
    });
    expect(await intake().handle({ ...comment('alice', '!testme'), prState: 'closed' })).toEqual({ kind: 'replied', reply: 'closed' });
    expect(specFiles()).toEqual([]);
    // The bot's own '!testme' aside, one reply: the one about the closed pull request.
    expect(botComments().filter((b) => b.includes('<!-- cc-ci:reply'))).toEqual([expect.stringContaining('this pull request is closed')]);
  });

  it('defers a decision while the forge is down and makes it when the forge is back', async () => {
    const e = comment('alice', '!testme');
    const i = intake();
    double.setDown(true);
    expect(await i.handle(e)).toMatchObject({ kind: 'deferred' });
    expect(specFiles()).toEqual([]);
    await tick();
    await i.retryUnfinished();
    expect(forgeStore.getComment(e.commentId)).toMatchObject({ decision: null, attempts: 2 });
    double.setDown(false);
    await tick();
    await i.retryUnfinished();
    expect(forgeStore.getComment(e.commentId)).toMatchObject({ decision: 'run' });
    expect(specFiles()).toHaveLength(1);
  });

  it('backs off exponentially over a day before giving up', async () => {
    expect([1, 2, 3, 4].map((n) => intakeRetryDelayMs(n))).toEqual([20_000, 40_000, 80_000, 160_000]);
    expect(intakeRetryDelayMs(30)).toBe(DEFAULT_INTAKE_RETRY.maxDelayMs);
    const total = (n: number) => Array.from({ length: n }, (_, k) => intakeRetryDelayMs(k + 1)).reduce((a, b) => a + b, 0);
    expect(total(MAX_INTAKE_ATTEMPTS)).toBeGreaterThanOrEqual(24 * 3600_000);
    expect(total(MAX_INTAKE_ATTEMPTS - 1)).toBeLessThan(24 * 3600_000);
    expect(maxIntakeAttempts(FAST)).toBe(5);

    // With the real schedule, a comment that just failed is not asked about again yet.
    const e = comment('alice', '!testme');
    const i = intake({ retry: DEFAULT_INTAKE_RETRY });
    double.setDown(true);
    expect(await i.handle(e)).toMatchObject({ kind: 'deferred' });
    double.setDown(false);
    const calls = double.requests.length;
    await i.retryUnfinished();
    expect(double.requests.length).toBe(calls);
    expect(forgeStore.getComment(e.commentId)).toMatchObject({ decision: null, attempts: 1 });
  });

  it('does not post a reply twice when an earlier post arrived but was not recorded', async () => {
    const e = comment('bob', '!testme');
    double.failNext('issueCreateComment', 500);
    expect(await intake().handle(e)).toEqual({ kind: 'replied', reply: 'denied' });
    expect(forgeStore.getComment(e.commentId)).toMatchObject({ replyState: 'pending' });
    // As if a create had timed out after the forge stored it: the marker finds it.
    double.addComment({ repo: REPO, index: pr.index, author: 'cc-ci', body: `${replyMarker(e.commentId)}\nearlier` });
    await tick();
    await intake().retryUnfinished();
    expect(botComments()).toHaveLength(1);
    expect(forgeStore.getComment(e.commentId)).toMatchObject({ replyState: 'posted' });
  });

  it('gives up on a comment at the horizon and tells the commenter once, even if the forge is still down then', async () => {
    const e = comment('alice', '!testme');
    const i = intake();
    double.setDown(true);
    expect(await i.handle(e)).toMatchObject({ kind: 'deferred' });
    for (let n = 1; n < maxIntakeAttempts(FAST); n++) {
      await tick();
      await i.retryUnfinished();
    }
    expect(forgeStore.getComment(e.commentId)).toMatchObject({ decision: null, attempts: maxIntakeAttempts(FAST) });
    // The horizon: the decision is given up, the reply cannot go out yet and waits its turn.
    await tick();
    await i.retryUnfinished();
    expect(forgeStore.getComment(e.commentId)).toMatchObject({ decision: 'error', replyState: 'pending' });
    expect(forgeStore.getComment(e.commentId)?.detail).toMatch(/^gave-up: /);
    double.setDown(false);
    await tick();
    await i.retryUnfinished();
    await tick();
    await i.retryUnfinished();
    expect(forgeStore.getComment(e.commentId)).toMatchObject({ decision: 'error', replyState: 'posted' });
    expect(botComments()).toEqual([
      expect.stringContaining('@alice I could not start a test run for this comment: the forge did not answer cc-ci for a long time'),
    ]);
    expect(specFiles()).toEqual([]);
  });

  it('a webhook comment accepted just before a crash is decided by the next controller', async () => {
    const e = comment('alice', '!testme');
    // What the webhook route does before it answers 202; then the process dies.
    expect(intake().accept(e)).toBe(true);
    expect(forgeStore.getComment(e.commentId)).toMatchObject({ decision: null, attempts: 0 });
    // The forge redelivers: the same delivery id is a duplicate, but the comment is not lost.
    expect(intake().accept(e)).toBe(false);
    expect(specFiles()).toEqual([]);
    // The restarted controller's retry loop.
    await intake().retryUnfinished();
    expect(forgeStore.getComment(e.commentId)).toMatchObject({ decision: 'run' });
    expect(specFiles()).toEqual([`${runNameFor('custom-html', pr.index, e.commentId)}.yaml`]);
    // A redelivery under a new id finds the decision made.
    expect(intake().accept({ ...e, delivery: 'd-2' })).toBe(true);
    expect(await intake().handle({ ...e, delivery: 'd-2' })).toMatchObject({ kind: 'ignored' });
    expect(specFiles()).toHaveLength(1);
  });

  it('accepts a delivery that is no command without writing a comment row', () => {
    const e = comment('alice', 'lgtm');
    expect(intake().accept(e)).toBe(true);
    expect(forgeStore.getComment(e.commentId)).toBeUndefined();
    expect(intake().accept(e)).toBe(false);
  });

  it('tests a PR whose head repository is gone from the configured cloneUrl, and says why not without one', async () => {
    const withUrl = { ...comment('alice', '!testme'), cloneUrl: null };
    const repos = [{ name: REPO, cloneUrl: 'https://mirror.example.org/custom-html.git' }];
    const out = await intake({ repos }).handle(withUrl);
    expect(out).toMatchObject({ kind: 'run' });
    const spec = parse(readFileSync(join(paths.specs, `${runNameFor('custom-html', pr.index, withUrl.commentId)}.yaml`), 'utf8')) as {
      spec: Record<string, unknown>;
    };
    expect(spec.spec).toMatchObject({ source: { repo: 'https://mirror.example.org/custom-html.git', ref: SHA } });

    const without = { ...comment('alice', '!testme'), cloneUrl: null };
    expect(await intake().handle(without)).toEqual({ kind: 'replied', reply: 'no-source' });
    expect(forgeStore.getComment(without.commentId)).toMatchObject({ decision: 'error', replyState: 'posted' });
    expect(botComments()).toEqual([expect.stringContaining('@alice I cannot test this pull request: its head repository is gone')]);
    expect(specFiles()).toHaveLength(1);
  });

  it('echoes a command without pinging anyone it mentions', async () => {
    const e = comment('alice', '!testme @bob please');
    expect(await intake().handle(e)).toEqual({ kind: 'replied', reply: 'help' });
    const [reply] = botComments();
    expect(reply).toContain('@alice I did not understand');
    expect(reply).toContain('`!testme @\u200Bbob please`');
    expect(reply).not.toMatch(/@bob/);
  });

  it('reads the pull request itself for a polled comment: 404 is an issue, a refusal is an error with a reply', async () => {
    const run = polled('!testme', pr.index);
    expect(await intake().handle(run)).toEqual({ kind: 'run', run: runNameFor('custom-html', pr.index, run.commentId) });
    const spec = parse(readFileSync(join(paths.specs, `${runNameFor('custom-html', pr.index, run.commentId)}.yaml`), 'utf8')) as {
      spec: Record<string, unknown>;
    };
    expect(spec.spec).toMatchObject({ source: { ref: SHA } });

    const issue = double.addIssue({ repo: REPO, author: 'alice' });
    const onIssue = polled('!testme', issue.index);
    expect(await intake().handle(onIssue)).toEqual({ kind: 'ignored', reason: 'not a pull request' });
    expect(forgeStore.getComment(onIssue.commentId)).toMatchObject({ decision: 'ignored' });

    const refused = polled('!testme', pr.index);
    double.failNext('repoGetPullRequest', 403);
    expect(await intake().handle(refused)).toEqual({ kind: 'replied', reply: 'unreadable' });
    expect(forgeStore.getComment(refused.commentId)).toMatchObject({ decision: 'error', replyState: 'posted' });
    expect(botComments()).toEqual([expect.stringContaining('@alice the forge would not let me read this pull request')]);
    expect(specFiles()).toHaveLength(1);
  });
});

describe('poll mode: the commit tested is the commit the maintainer saw', () => {
  const at = (iso: string): Date => new Date(iso);

  it('tests the head when nothing was pushed since the comment (a push before it is what they saw)', async () => {
    double.setTime(at('2026-12-02T10:00:00Z'));
    const seen = double.pushToPullRequest({ repo: REPO, index: pr.index, pusher: 'bob' });
    double.advanceTime(30);
    const e = polled('!testme', pr.index);
    double.advanceTime(600); // cc-ci polls ten minutes later; nothing moved
    expect(await intake().handle(e)).toEqual({ kind: 'run', run: runNameFor('custom-html', pr.index, e.commentId) });
    const spec = parse(readFileSync(join(paths.specs, `${runNameFor('custom-html', pr.index, e.commentId)}.yaml`), 'utf8')) as {
      spec: { source: { ref: string } };
    };
    expect(spec.spec.source.ref).toBe(seen);
    expect(double.requestsFor('issueGetCommentsAndTimeline')).toHaveLength(1);
  });

  it('refuses, with a reply asking for a new comment, when the head moved after the comment (plain or force push)', async () => {
    double.setTime(at('2026-12-02T10:00:00Z'));
    const e = polled('!testme', pr.index);
    double.advanceTime(120);
    const pushed = double.pushToPullRequest({ repo: REPO, index: pr.index, pusher: 'bob' });
    expect(await intake().handle(e)).toEqual({ kind: 'replied', reply: 'pushed' });
    expect(forgeStore.getComment(e.commentId)).toMatchObject({ decision: 'error', replyState: 'posted' });
    expect(forgeStore.getComment(e.commentId)?.detail).toContain(`the head is now ${pushed}`);
    expect(botComments()).toEqual([
      expect.stringContaining('@alice the head of this pull request moved after your comment (a push at `2026-12-02T10:02:00Z`)'),
    ]);
    expect(specFiles()).toEqual([]);

    // A force push in the comment's own second: the forge keeps whole seconds, so it counts as after.
    double.advanceTime(60);
    const same = polled('!testme --quick', pr.index);
    double.pushToPullRequest({ repo: REPO, index: pr.index, pusher: 'bob', force: true });
    expect(await intake().handle(same)).toEqual({ kind: 'replied', reply: 'pushed' });
    expect(specFiles()).toEqual([]);
  });

  it('pins with !testme <sha> without the timeline; a forge without a timeline gets a reply asking for a pin', async () => {
    double.setTime(at('2026-12-02T10:00:00Z'));
    const pinned = polled(`!testme ${SHA.slice(0, 10)}`, pr.index);
    expect(await intake().handle(pinned)).toMatchObject({ kind: 'run' });
    expect(double.requestsFor('issueGetCommentsAndTimeline')).toHaveLength(0);

    const unpinned = polled('!testme', pr.index);
    double.failNext('issueGetCommentsAndTimeline', 404);
    expect(await intake().handle(unpinned)).toEqual({ kind: 'replied', reply: 'unpinned' });
    expect(botComments()).toEqual([expect.stringContaining('Comment `!testme <commit>` with the commit you want tested')]);

    const noTime = { ...polled('!testme', pr.index), commentedAt: '' };
    expect(await intake().handle(noTime)).toEqual({ kind: 'replied', reply: 'unpinned' });
    expect(specFiles()).toHaveLength(1);
  });

  it('defers the decision when the timeline cannot be read for now, and decides on the retry', async () => {
    double.setTime(at('2026-12-02T10:00:00Z'));
    const e = polled('!testme', pr.index);
    double.failNext('issueGetCommentsAndTimeline', 503, 2);
    expect(await intake().handle(e)).toMatchObject({ kind: 'deferred' });
    expect(specFiles()).toEqual([]);
    expect(await intake().handle(e)).toMatchObject({ kind: 'run' });
  });
});

describe('runNameFor', () => {
  it('is deterministic, at most 63 characters and [a-z0-9-]', () => {
    expect(runNameFor('webnotes', 7, 1234)).toBe('webnotes-pr7-c1234');
    const long = runNameFor('a-very-long-recipe-name-that-goes-on-and-on-and-on-and-on-and-on', 123456, 9876543210);
    expect(long.length).toBeLessThanOrEqual(63);
    expect(long).toMatch(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/);
    expect(long.endsWith('-pr123456-c9876543210')).toBe(true);
  });
});
