import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ResultPromise } from 'execa';
import { parse, stringify } from 'yaml';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RecipeRepo } from '../../fixtures/recipe-repo.js';
import { reportMarker } from '../../controller/clients/forge/report-text.js';
import {
  NOTHING,
  anyTestStacks,
  cli,
  dropSpec,
  ensureSwarm,
  envStacks,
  removeEnvStacks,
  getRunsJson,
  leftoversOf,
  makeTestEnv,
  recipeRepo,
  serve,
  waitFor,
  withStore,
  type TestEnv,
} from '../support/harness.js';
import { deliverWebhook, startForgeDouble, type DoubleIssue, type ForgeDouble, type JsonObject } from '../support/forge-double/index.js';

/**
 * `!testme` end to end: the forge double in this process, `cc-ci serve` as a child process with a
 * config pointing at it, and real runs on the real swarm. Webhook mode and poll mode each take a
 * comment to a verdict on the pull request; every delivery that must not start a run is shown to
 * start none; and a forge that answers 500 for a while still ends up with the right report.
 */

// Long and unusual, so a leak into a page or a log line cannot hide behind a coincidence.
const TOKEN = 'tok_3c9e71d2a4b85f60e1d7c2b9a8f4e3d2c1b0a9f8';
const SECRET = 'whsec_8f7e6d5c4b3a29181716151413121110ffeeddcc';
const REPO = 'recipes/webnotes';
/** A test with a real run: every tier of the ladder on the swarm, then the report. */
const RUN_TEST_MS = 900_000;

let t: TestEnv;
let repo: RecipeRepo;
let double: ForgeDouble;
let pr: DoubleIssue;
let server: ResultPromise | null = null;
let nextPort = 21400;

beforeAll(async () => {
  await ensureSwarm();
  repo = await recipeRepo('webnotes');
});

afterAll(async () => {
  await removeEnvStacks(t);
});

beforeEach(async () => {
  // A state directory per test: each test's double numbers its PRs and comments from 1 again.
  t = await makeTestEnv({ portRange: [21500, 21599], deploySeconds: 25, httpSeconds: 15 });
  writeFileSync(join(t.dir, 'token'), `${TOKEN}\n`, { mode: 0o600 });
  writeFileSync(join(t.dir, 'webhook-secret'), `${SECRET}\n`, { mode: 0o600 });
  double = await startForgeDouble({ botLogin: 'cc-ci', botToken: TOKEN });
  for (const login of ['alice', 'bob']) double.addUser({ login });
  double.addRepo({ owner: 'recipes', name: 'webnotes', permissions: { alice: 'write', bob: 'read' } });
  double.addRepo({ owner: 'recipes', name: 'unenrolled', permissions: { alice: 'write' } });
  // The PR's head is the bundled recipe's main commit; its head repository clones from disk.
  pr = double.addPullRequest({ repo: REPO, author: 'alice', headRef: 'bump', headSha: repo.head, cloneUrl: repo.path });
});

afterEach(async () => {
  if (server) {
    server.kill('SIGTERM');
    await server;
    server = null;
  }
  expect(double.violations).toEqual([]);
  await double.close();
  t.cleanup();
});

/** Starts `cc-ci serve` with a config for the double; returns the server's base URL. */
async function startServe(mode: 'webhook' | 'poll', port = nextPort++): Promise<string> {
  const base = parse(readFileSync(t.configFile, 'utf8')) as Record<string, unknown>;
  const file = join(t.dir, `config-${mode}-${port}.yaml`);
  const publicUrl = `http://127.0.0.1:${port}`;
  // What is under test here is the intake and the report, not the ladder (tiers.test.ts climbs
  // it): the operator's layer declares every tier but install n/a, so each run is one deploy.
  const operator = join(t.dir, 'operator');
  mkdirSync(join(operator, 'webnotes'), { recursive: true });
  const why = 'the forge tests check the intake and the report; tiers.test.ts climbs the ladder';
  writeFileSync(join(operator, 'webnotes', 'settings.yaml'), stringify({ expectedNA: { upgrade: why, backup: why, restore: why, custom: why } }));
  writeFileSync(
    file,
    stringify({
      ...base,
      recipesDir: operator,
      capacity: 1,
      forge: {
        url: double.url,
        tokenFile: join(t.dir, 'token'),
        webhookSecretFile: join(t.dir, 'webhook-secret'),
        mode,
        pollSeconds: 1,
        timeoutSeconds: 3,
        // Deferred decisions come back after 2 s, 4 s, …: the backoff itself, not its length, is under test.
        intakeRetry: { firstSeconds: 2 },
      },
      repos: [REPO],
      http: { port, host: '127.0.0.1', publicUrl },
    }),
  );
  server = serve(t, { CCCI_CONFIG: file });
  await waitFor('the HTTP server', async () => (await fetch(`${publicUrl}/healthz`).catch(() => null))?.ok, 30_000, 200);
  return publicUrl;
}

const runNames = async (): Promise<string[]> => (await getRunsJson(t)).runs.map((r) => r.name);
const specFiles = (): string[] => readdirSync(join(t.stateDir, 'specs')).filter((f) => !f.startsWith('.'));
const reportComments = () => double.commentsOn(REPO, pr.index).filter((c) => c.author === 'cc-ci' && c.body.includes('<!-- cc-ci:report'));
const replies = () => double.commentsOn(REPO, pr.index).filter((c) => c.author === 'cc-ci' && c.body.includes('<!-- cc-ci:reply'));
const coldStatuses = () => double.statusesFor(REPO, repo.head).filter((s) => s.context === 'cc-ci/cold');
/** The forge's status rows oldest first (the double keeps them in the order they were posted). */
const statusLog = (context: string) =>
  double
    .statusesFor(REPO, repo.head)
    .filter((s) => s.context === context)
    .map((s) => `${s.state} ${s.description}`);

/**
 * Stacks this test's controller put on the swarm: leased apps (its store) and .env files (its
 * abra dir), whichever are live. Other suites share the swarm, so only this env's count.
 */
async function deployedByThisEnv(): Promise<string[]> {
  const leased = new Set(await envStacks(t));
  const envDir = join(t.abraDir, 'servers', 'default');
  const envFiles = existsSync(envDir)
    ? readdirSync(envDir)
        .filter((f) => f.endsWith('.env'))
        .map((f) => f.slice(0, -'.env'.length).replace(/\./g, '_').slice(0, 45))
    : [];
  for (const s of envFiles) leased.add(s);
  const live = (await anyTestStacks()).filter((s) => leased.has(s));
  return [...new Set([...leased, ...live])];
}

async function deliver(url: string, payload: JsonObject, options: { deliveryId?: string; eventType?: string; secret?: string } = {}) {
  return deliverWebhook(`${url}/hooks/forge`, payload, { secret: SECRET, ...options });
}

/** Waits for a run to finish and for its verdict to be on the pull request. */
async function verdictOf(name: string): Promise<void> {
  const run = await waitFor(`${name} to finish`, async () => (await getRunsJson(t)).runs.find((r) => r.name === name && r.phase === 'Done'), 600_000, 1_000);
  expect(run, `${run.result}: ${run.reason ?? ''}`).toMatchObject({ result: 'passed' });
  for (const d of run.domains) expect(await leftoversOf(t, d)).toEqual(NOTHING);
  await waitFor(
    'the verdict on the pull request',
    async () => coldStatuses().at(-1)?.state === 'success' && reportComments()[0]?.body.includes('✅ **Passed**'),
    120_000,
    500,
  );
}

/** The PR as the forge shows it after one passed run of `name` triggered by `commentId`. */
function expectReported(name: string, commentId: number, url: string): void {
  expect(double.comment(commentId)?.reactions.map((r) => `${r.user}:${r.content}`)).toEqual(['cc-ci:eyes']);
  const [ours, ...more] = reportComments();
  expect(more).toEqual([]);
  expect(ours?.body).toContain(reportMarker(name));
  expect(ours?.body).toContain('✅ **Passed**');
  expect(ours?.body).toContain('| install | ✅ pass |');
  expect(ours?.body).toContain(`Full log and evidence: ${url}/runs/${name}`);
  expect(ours?.body).toContain('To run again, comment `!testme`');
  // Edited in place: created while queued or running, then edited to the verdict.
  const history = double.events.filter((e) => e.commentId === ours?.id);
  expect(history[0]?.action).toBe('created');
  expect(JSON.stringify(history[0]?.payload)).toMatch(/Queued|Running/);
  expect(history.at(-1)?.action).toBe('edited');
  const states = coldStatuses().map((s) => s.state);
  expect(states[0]).toBe('pending');
  expect(states.at(-1)).toBe('success');
  expect(states.filter((s) => s !== 'pending')).toEqual(['success']);
  expect(coldStatuses().every((s) => s.targetUrl === `${url}/runs/${name}`)).toBe(true);
}

/** Neither the token nor the webhook secret on any page, API answer, metric or the live log. */
async function expectNoSecrets(url: string, name: string): Promise<void> {
  for (const path of ['/runs', `/runs/${name}`, `/runs/${name}/events`, '/api/runs', `/api/runs/${name}`, '/metrics', '/healthz']) {
    const r = await fetch(`${url}${path}`);
    expect(r.ok, path).toBe(true);
    const body = await r.text();
    expect(body, path).not.toContain(TOKEN);
    expect(body, path).not.toContain(SECRET);
  }
}

async function stopServe(): Promise<{ stdout: string; stderr: string }> {
  if (!server) throw new Error('no server');
  server.kill('SIGTERM');
  const r = await server;
  server = null;
  expect(r.exitCode).toBe(0);
  return { stdout: String(r.stdout), stderr: String(r.stderr) };
}

describe('!testme over a webhook', () => {
  it(
    'a signed !testme makes one run whose verdict is reported on the pull request',
    async () => {
      const url = await startServe('webhook');
      const { comment, payload } = double.addComment({ repo: REPO, index: pr.index, author: 'alice', body: '!testme' });
      const name = `webnotes-pr${pr.index}-c${comment.id}`;

      const first = await deliver(url, payload, { deliveryId: 'delivery-1' });
      expect(first.status).toBe(202);
      // The same delivery replayed, and the same comment redelivered under a new id: still one run.
      expect((await deliver(url, payload, { deliveryId: 'delivery-1' })).status).toBe(200);
      expect((await deliver(url, payload, { deliveryId: 'delivery-2' })).status).toBe(202);

      await waitFor('the 👀 reaction', async () => double.comment(comment.id)?.reactions.length === 1, 30_000, 200);
      await waitFor('the pending status', async () => coldStatuses()[0]?.state === 'pending', 30_000, 200);
      // The run as the store has it at the moment the verdict reaches the pull request: still
      // tearing down (the verdict does not wait for teardown).
      const atVerdict = waitFor(
        'the success status',
        async () =>
          coldStatuses().at(-1)?.state === 'success' && reportComments()[0]?.body.includes('✅ **Passed**') ? withStore(t, (s) => s.getRun(name)) : undefined,
        600_000,
        50,
      );
      await verdictOf(name);
      expect(await atVerdict).toMatchObject({ phase: 'TearingDown', result: 'passed', finishedAt: null });
      expectReported(name, comment.id, url);
      expect(await runNames()).toEqual([name]);
      expect(specFiles()).toEqual([`${name}.yaml`]);

      // The spec pins the PR head at comment time and says where it came from.
      const spec = parse(readFileSync(join(t.stateDir, 'specs', `${name}.yaml`), 'utf8')) as { spec: Record<string, unknown> };
      expect(spec.spec).toMatchObject({
        recipe: 'webnotes',
        lane: 'cold',
        source: { repo: repo.path, ref: repo.head },
        trigger: {
          kind: 'comment',
          forge: { owner: 'recipes', repo: 'webnotes', pr: pr.index, comment: comment.id, by: 'alice', sha: repo.head, delivery: 'delivery-1' },
        },
      });

      await expectNoSecrets(url, name);
      const logs = await stopServe();
      expect(logs.stdout + logs.stderr).not.toContain(TOKEN);
      expect(logs.stdout + logs.stderr).not.toContain(SECRET);

      // A restart never double-posts: the report state is stored.
      const writes = double.requests.filter((r) => r.method !== 'GET').length;
      await startServe('webhook');
      await new Promise((r) => setTimeout(r, 5_000));
      expect(double.requests.filter((r) => r.method !== 'GET').length).toBe(writes);
    },
    RUN_TEST_MS,
  );

  it('starts no run for anything else, answering only where an answer helps', async () => {
    const url = await startServe('webhook');
    const before = await runNames();
    const filesBefore = specFiles();
    const comment = (author: string, body: string) => double.addComment({ repo: REPO, index: pr.index, author, body });

    // A bad signature: 401 and nothing written.
    const hello = comment('alice', '!testme');
    expect((await deliver(url, hello.payload, { secret: 'not-the-secret' })).status).toBe(401);

    // An unenrolled repository.
    const otherPr = double.addPullRequest({ repo: 'recipes/unenrolled', author: 'alice', headSha: repo.head });
    const other = double.addComment({ repo: 'recipes/unenrolled', index: otherPr.index, author: 'alice', body: '!testme' });
    expect((await deliver(url, other.payload)).status).toBe(202);

    // A commenter without write access: one polite reply, even if delivered twice.
    const bob = comment('bob', '!testme');
    expect((await deliver(url, bob.payload)).status).toBe(202);
    expect((await deliver(url, bob.payload)).status).toBe(202);

    // A malformed command: one help reply. Prose that only starts like one: nothing.
    const foo = comment('alice', '!testme foo');
    expect((await deliver(url, foo.payload)).status).toBe(202);
    const xyz = comment('alice', '!testmexyz');
    expect((await deliver(url, xyz.payload)).status).toBe(202);

    // An edited comment (its created event never came): edits are not commands.
    const edited = comment('alice', '!testme');
    expect((await deliver(url, double.commentPayload(edited.comment.id, 'edited', { previousBody: 'hello' }))).status).toBe(200);

    // A review submitted as a comment.
    const review = double.reviewCommentPayload({ repo: REPO, index: pr.index, reviewer: 'alice', content: '!testme' });
    expect((await deliver(url, review, { eventType: 'pull_request_review_comment' })).status).toBe(200);

    await waitFor('the two replies', async () => replies().length >= 2, 30_000, 200);
    // The bot's own comments come back as created comments: never commands, even a bare !testme.
    for (const e of double.events.filter((ev) => ev.action === 'created')) {
      expect([200, 202]).toContain((await deliver(url, e.payload)).status);
    }
    expect((await deliver(url, comment('cc-ci', '!testme').payload)).status).toBe(202);
    await new Promise((r) => setTimeout(r, 3_000));

    const texts = replies().map((c) => c.body);
    expect(texts).toHaveLength(2);
    expect(texts.find((b) => b.includes('@bob'))).toContain('Only people with write access to `recipes/webnotes`');
    expect(texts.find((b) => b.includes('@alice'))).toContain('I did not understand `!testme foo`');
    expect(double.commentsOn('recipes/unenrolled', otherPr.index).filter((c) => c.author === 'cc-ci')).toEqual([]);
    expect(double.comment(hello.comment.id)?.reactions).toEqual([]);
    expect(double.statusesFor(REPO, repo.head)).toEqual([]);
    expect(await runNames()).toEqual(before);
    expect(specFiles()).toEqual(filesBefore);
    expect(await deployedByThisEnv()).toEqual([]);
  });

  it(
    'answers a forge that was down when the comment came: the intake’s calls fail for a while, then one run',
    async () => {
      // GET /user and the permission check fail more often than one call retries (4 attempts), so
      // the decision is deferred and made on the intake's backoff.
      double.failNext('userGetCurrent', 500, 8);
      double.failNext('repoGetRepoPermissions', 500, 6);
      const url = await startServe('webhook');
      // serve asks GET /user once at start (4 attempts); the comment comes after, to its own 4.
      await waitFor('serve’s own GET /user attempts', async () => double.requestsFor('userGetCurrent').length >= 4, 60_000, 200);
      const { comment, payload } = double.addComment({ repo: REPO, index: pr.index, author: 'alice', body: '!testme' });
      const name = `webnotes-pr${pr.index}-c${comment.id}`;
      expect((await deliver(url, payload)).status).toBe(202);
      // A redelivery while the decision is deferred is still one comment.
      expect((await deliver(url, payload)).status).toBe(202);

      await waitFor('the run, once the forge answers', async () => (await runNames()).includes(name), 400_000, 1_000);
      await verdictOf(name);
      expectReported(name, comment.id, url);
      expect(await runNames()).toEqual([name]);
      const injected = double.requests.filter((r) => r.injected).map((r) => r.operation);
      expect(injected.filter((op) => op === 'userGetCurrent')).toHaveLength(8);
      expect(injected.filter((op) => op === 'repoGetRepoPermissions')).toHaveLength(6);
      expect(replies()).toEqual([]);
    },
    RUN_TEST_MS,
  );

  it(
    'a restart while the run is queued and again while it runs posts nothing twice',
    async () => {
      const port = nextPort++;
      const url = await startServe('webhook', port);
      // Capacity is 1: a run by hand takes it, so the forge run has to wait in the queue.
      dropSpec(t, 'blocker', { repo: repo.path, ref: repo.head, tiers: ['install'] });
      await waitFor(
        'the blocker to be admitted',
        async () => (await getRunsJson(t)).runs.find((r) => r.name === 'blocker' && r.phase !== 'Pending'),
        60_000,
        500,
      );
      const { comment, payload } = double.addComment({ repo: REPO, index: pr.index, author: 'alice', body: '!testme' });
      const name = `webnotes-pr${pr.index}-c${comment.id}`;
      expect((await deliver(url, payload)).status).toBe(202);
      await waitFor(
        'the queued report',
        async () => reportComments()[0]?.body.includes('⏳ **Queued**: position 1') && statusLog('cc-ci/cold').length === 1,
        60_000,
        200,
      );
      expect((await getRunsJson(t)).runs.find((r) => r.name === name)?.phase).toBe('Pending');

      await stopServe();
      await startServe('webhook', port);
      await waitFor(
        'the forge run to be running',
        async () =>
          reportComments()[0]?.body.includes('🏃 **Running**') &&
          (await getRunsJson(t)).runs.find((r) => r.name === name && ['Deploying', 'Testing'].includes(r.phase)),
        300_000,
        500,
      );

      await stopServe();
      await startServe('webhook', port);
      await verdictOf(name);
      expectReported(name, comment.id, url);
      const log = statusLog('cc-ci/cold');
      // Pending while queued and running (again running after the interrupted attempt), the verdict once.
      expect(log.filter((x) => !x.startsWith('pending '))).toEqual(['success Passed']);
      expect(log.at(-1)).toBe('success Passed');
      expect(log[0]).toBe('pending Queued');
      for (let i = 1; i < log.length; i++) expect(log[i], `status ${i} repeats the one before`).not.toBe(log[i - 1]);
      expect(double.requestsFor('issuePostCommentReaction').filter((r) => r.status < 300)).toHaveLength(1);
      expect(double.requestsFor('issueCreateComment')).toHaveLength(1);
      expect((await getRunsJson(t)).runs.find((r) => r.name === name)?.attempt).toBe(2);
    },
    RUN_TEST_MS,
  );

  it(
    '!testme --quick with no healthy warm app falls back to the cold ladder, and says so on the pull request',
    async () => {
      const url = await startServe('webhook');
      const { comment, payload } = double.addComment({ repo: REPO, index: pr.index, author: 'alice', body: 'Only a quick look, please.\n\n!testme --quick' });
      const name = `webnotes-pr${pr.index}-c${comment.id}`;
      expect((await deliver(url, payload)).status).toBe(202);
      const run = await waitFor(
        `${name} to finish`,
        async () => (await getRunsJson(t)).runs.find((r) => r.name === name && r.phase === 'Done'),
        600_000,
        1_000,
      );
      expect(run, `${run.result}: ${run.reason ?? ''}`).toMatchObject({ result: 'passed' });
      await waitFor('the quick verdict', async () => statusLog('cc-ci/quick').at(-1) === 'success Passed (quick lane fell back to cold)', 120_000, 500);
      expect(statusLog('cc-ci/cold')).toEqual([]);
      expect(statusLog('cc-ci/quick').filter((x) => !x.startsWith('pending '))).toEqual(['success Passed (quick lane fell back to cold)']);
      expect(double.statusesFor(REPO, repo.head).every((x) => x.targetUrl === `${url}/runs/${name}`)).toBe(true);
      const [ours, ...more] = reportComments();
      expect(more).toEqual([]);
      expect(ours?.body).toContain('quick lane');
      expect(ours?.body).toContain('✅ **Passed**');
      expect(ours?.body).toContain(
        "**Quick lane fell back to cold**: no healthy warm app — webnotes has no Warm object — so this run climbs the cold ladder on fresh apps. This result has the cold lane's confidence.",
      );
      expect(ours?.body).not.toContain('lower-confidence');
      const spec = parse(readFileSync(join(t.stateDir, 'specs', `${name}.yaml`), 'utf8')) as { spec: Record<string, unknown> };
      expect(spec.spec).toMatchObject({ lane: 'quick' });
    },
    RUN_TEST_MS,
  );
});

describe('configuration', () => {
  it('a token file that cannot be read stops serve with an error naming the file, not its content', async () => {
    const file = join(t.dir, 'config-missing-token.yaml');
    const base = parse(readFileSync(t.configFile, 'utf8')) as Record<string, unknown>;
    const forge = { url: double.url, tokenFile: join(t.dir, 'no-such-token'), webhookSecretFile: join(t.dir, 'webhook-secret') };
    writeFileSync(file, stringify({ ...base, forge, repos: [REPO], http: { port: nextPort++ } }));
    const r = await cli(t, ['serve'], { CCCI_CONFIG: file });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(`cannot read the forge token file ${join(t.dir, 'no-such-token')}: ENOENT`);
    expect(r.stdout + r.stderr).not.toContain(SECRET);
  });
});

describe('!testme by polling', () => {
  it(
    'picks a new !testme up from the comment list and reports like the webhook does, even when reading the PR fails for a while',
    async () => {
      // More failures than one call's retries: a read is deferred to the intake's backoff, and the
      // poll goes on (the checkpoint moves) rather than waiting for it.
      double.failNext('repoGetPullRequest', 500, 6);
      const url = await startServe('poll');
      const known = await runNames();
      // An issue (not a PR) with a !testme, and a PR comment by someone without access: no run.
      const issue = double.addIssue({ repo: REPO, author: 'alice' });
      double.addComment({ repo: REPO, index: issue.index, author: 'alice', body: '!testme' });
      double.addComment({ repo: REPO, index: pr.index, author: 'bob', body: '!testme' });
      const { comment } = double.addComment({ repo: REPO, index: pr.index, author: 'alice', body: '!testme' });
      const name = `webnotes-pr${pr.index}-c${comment.id}`;

      await waitFor('the run from the poll', async () => (await runNames()).includes(name), 30_000, 500);
      await verdictOf(name);
      expectReported(name, comment.id, url);
      expect((await runNames()).filter((n) => !known.includes(n))).toEqual([name]);
      expect(double.commentsOn(REPO, issue.index).filter((c) => c.author === 'cc-ci')).toEqual([]);
      expect(replies().map((c) => c.body)).toEqual([expect.stringContaining('@bob thank you for asking!')]);
      expect(double.requestsFor('issueGetRepoComments').length).toBeGreaterThan(1);
      expect(double.requests.filter((r) => r.injected && r.operation === 'repoGetPullRequest')).toHaveLength(6);
      await expectNoSecrets(url, name);
    },
    RUN_TEST_MS,
  );
});

describe('a forge that answers 500 for a while', () => {
  it(
    'still ends with the reaction, one comment with the verdict and the success status',
    async () => {
      const url = await startServe('webhook');
      const { comment, payload } = double.addComment({ repo: REPO, index: pr.index, author: 'alice', body: '!testme' });
      const name = `webnotes-pr${pr.index}-c${comment.id}`;
      double.failNext('issuePostCommentReaction', 500, 10);
      double.failNext('issueCreateComment', 500, 4);
      double.failNext('repoCreateStatus', 500, 20);
      expect((await deliver(url, payload)).status).toBe(202);

      await verdictOf(name);
      await waitFor('the reaction', async () => double.comment(comment.id)?.reactions.length === 1, 120_000, 500);
      expect(double.comment(comment.id)?.reactions.map((r) => r.content)).toEqual(['eyes']);
      expect(reportComments()).toHaveLength(1);
      expect(reportComments()[0]?.body).toContain('✅ **Passed**');
      expect(coldStatuses().at(-1)?.state).toBe('success');
      const injected = double.requests.filter((r) => r.injected).map((r) => r.operation);
      expect(new Set(injected)).toEqual(new Set(['issuePostCommentReaction', 'issueCreateComment', 'repoCreateStatus']));
      expect(injected.filter((op) => op === 'repoCreateStatus')).toHaveLength(20);
      expect(await runNames()).toEqual([name]);
    },
    RUN_TEST_MS,
  );
});
