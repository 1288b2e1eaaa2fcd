import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { configSchema } from '../../controller/model/config.js';
import { BotIdentity } from '../../controller/clients/forge/bot.js';
import { ForgeClient } from '../../controller/clients/forge/client.js';
import { EnrolledRepos } from '../../controller/forge/enrolled.js';
import { Intake } from '../../controller/forge/intake.js';
import { Poller } from '../../controller/forge/poller.js';
import { createLogger } from '../../controller/model/log.js';
import { ensureStateDirs, statePaths, type StatePaths } from '../../controller/model/paths.js';
import { ForgeStore } from '../../state/forge-store.js';
import { Store } from '../../state/store.js';
import { startForgeDouble, type DoubleIssue, type ForgeDouble } from '../support/forge-double/index.js';

/** Poll mode against the double: what a poll hands to the intake, and the stored checkpoint. */

const REPO = 'recipes/webnotes';

let dir: string;
let paths: StatePaths;
let store: Store;
let forgeStore: ForgeStore;
let double: ForgeDouble;
let pr: DoubleIssue;

function parts(): { poller: Poller; intake: Intake } {
  const client = new ForgeClient({ baseUrl: double.url, token: double.botToken, timeoutMs: 2_000, retry: { attempts: 1 } });
  const repos = new EnrolledRepos(configSchema.parse({ repos: [REPO] }).repos);
  const intake = new Intake({
    store,
    forgeStore,
    paths,
    repos,
    allowList: [],
    client,
    createClient: client,
    bot: new BotIdentity(client),
    logger: createLogger('silent'),
    retry: { firstDelayMs: 1, maxDelayMs: 1, horizonMs: 5 },
  });
  return { poller: new Poller({ client, forgeStore, repos, intake, logger: createLogger('silent'), pollSeconds: 60 }), intake };
}
const poller = (): Poller => parts().poller;

const specFiles = (): string[] => readdirSync(paths.specs).filter((f) => !f.startsWith('.'));
const sinceOfLastList = (): string | null => {
  const url = double.requestsFor('issueGetRepoComments').at(-1)?.url ?? '';
  return new URL(url, 'http://x').searchParams.get('since');
};

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ccci-poll-'));
  paths = statePaths(dir);
  ensureStateDirs(paths);
  store = new Store(paths.db);
  forgeStore = new ForgeStore(store);
  double = await startForgeDouble({ botLogin: 'cc-ci' });
  double.addUser({ login: 'alice' });
  double.addRepo({ owner: 'recipes', name: 'webnotes', permissions: { alice: 'write' } });
  pr = double.addPullRequest({ repo: REPO, author: 'alice' });
});

afterEach(async () => {
  expect(double.violations).toEqual([]);
  await double.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the poller', () => {
  it('tests the head the maintainer saw: a push after the comment and before the poll is refused with a reply', async () => {
    const p = poller();
    const { comment } = double.addComment({ repo: REPO, index: pr.index, author: 'alice', body: '!testme' });
    double.advanceTime(20);
    double.pushToPullRequest({ repo: REPO, index: pr.index, pusher: 'alice' });
    await p.pollOnce();
    expect(specFiles()).toEqual([]);
    expect(forgeStore.getComment(comment.id)).toMatchObject({ decision: 'error', replyState: 'posted' });
    const timeline = double.requestsFor('issueGetCommentsAndTimeline');
    expect(timeline).toHaveLength(1);
    expect(new URL(timeline[0]?.url ?? '', 'http://x').searchParams.get('since')).toBe(new Date(comment.created * 1000).toISOString().replace('.000Z', 'Z'));
  });

  it('hands a new PR !testme to the intake once, and keeps the newest updated_at as the checkpoint', async () => {
    const { comment } = double.addComment({ repo: REPO, index: pr.index, author: 'alice', body: '!testme' });
    const p = poller();
    await p.pollOnce();
    expect(specFiles()).toEqual([`webnotes-pr${pr.index}-c${comment.id}.yaml`]);
    const checkpoint = forgeStore.getCheckpoint(REPO);
    expect(checkpoint).toBe(new Date(comment.updated * 1000).toISOString());

    // The next poll asks from the checkpoint (inclusive: the same comment comes back) and skips
    // it by id, without asking for the pull request again.
    const pullReads = double.requestsFor('repoGetPullRequest').length;
    await poller().pollOnce();
    expect(sinceOfLastList()).toBe(checkpoint?.replace('.000Z', 'Z'));
    expect(double.requestsFor('repoGetPullRequest')).toHaveLength(pullReads);
    expect(specFiles()).toHaveLength(1);
  });

  it('passes over issue comments, edited comments and prose', async () => {
    const issue = double.addIssue({ repo: REPO, author: 'alice' });
    double.addComment({ repo: REPO, index: issue.index, author: 'alice', body: '!testme' });
    double.addComment({ repo: REPO, index: pr.index, author: 'alice', body: '!testmexyz' });
    const edited = double.addComment({ repo: REPO, index: pr.index, author: 'alice', body: 'hello' }).comment;
    edited.body = '!testme';
    edited.updated += 5;
    await poller().pollOnce();
    expect(specFiles()).toEqual([]);
    expect(double.requestsFor('repoGetPullRequest')).toEqual([]);
    expect(forgeStore.getCheckpoint(REPO)).toBe(new Date(edited.updated * 1000).toISOString());
  });

  it('keeps its checkpoint when the forge fails, and reads the same window again', async () => {
    double.addComment({ repo: REPO, index: pr.index, author: 'alice', body: '!testme' });
    double.failNext('issueGetRepoComments', 500);
    await poller().pollOnce();
    expect(forgeStore.getCheckpoint(REPO)).toBeNull();
    expect(specFiles()).toEqual([]);
    await poller().pollOnce();
    expect(specFiles()).toHaveLength(1);
  });

  it('one comment whose pull request cannot be read does not hold up the others or the checkpoint', async () => {
    const refused = double.addComment({ repo: REPO, index: pr.index, author: 'alice', body: '!testme' }).comment;
    const failing = double.addComment({ repo: REPO, index: pr.index, author: 'alice', body: '!testme --quick' }).comment;
    const fine = double.addComment({ repo: REPO, index: pr.index, author: 'alice', body: '!testme' }).comment;
    double.failNext('repoGetPullRequest', 403); // for good: an error decision with a reply
    double.failNext('repoGetPullRequest', 500); // for now: deferred to the retry loop
    const { poller: p, intake } = parts();
    await p.pollOnce();
    expect(forgeStore.getComment(refused.id)).toMatchObject({ decision: 'error', replyState: 'posted' });
    expect(forgeStore.getComment(failing.id)).toMatchObject({ decision: null, attempts: 1 });
    expect(specFiles()).toEqual([`webnotes-pr${pr.index}-c${fine.id}.yaml`]);
    expect(forgeStore.getCheckpoint(REPO)).toBe(new Date(fine.updated * 1000).toISOString());
    expect(
      double
        .commentsOn(REPO, pr.index)
        .filter((c) => c.author === 'cc-ci')
        .map((c) => c.body),
    ).toEqual([expect.stringContaining('the forge would not let me read this pull request')]);

    // The next poll leaves the deferred comment to the retry loop, which makes its run.
    const reads = double.requestsFor('repoGetPullRequest').length;
    await p.pollOnce();
    expect(double.requestsFor('repoGetPullRequest')).toHaveLength(reads);
    await new Promise((r) => setTimeout(r, 3));
    await intake.retryUnfinished();
    expect(specFiles().sort()).toEqual([`webnotes-pr${pr.index}-c${failing.id}.yaml`, `webnotes-pr${pr.index}-c${fine.id}.yaml`].sort());
  });
});
