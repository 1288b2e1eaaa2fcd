import { inspect } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ForgeClient, ForgeError, type ForgeClientOptions, type ForgeLogger } from '../../controller/clients/forge/client.js';
import { startForgeDouble, type DoubleIssue, type ForgeDouble } from '../support/forge-double/index.js';

const ref = { owner: 'recipes', repo: 'custom-html' };
const REPO = 'recipes/custom-html';
// Long and unusual, so a leak cannot hide behind a coincidence.
const TOKEN = 'tok_9f2c41d7e8a05b3c6d1e2f4a7b8c9d0e1f2a3b4c';

let double: ForgeDouble;
let pr: DoubleIssue;
let logLines: string[];

const recordingLogger: ForgeLogger = {
  warn(fields, message) {
    logLines.push(`${message} ${JSON.stringify(fields)}`);
  },
};

function client(options: Partial<ForgeClientOptions> = {}): ForgeClient {
  return new ForgeClient({
    baseUrl: double.url,
    token: TOKEN,
    timeoutMs: 2_000,
    retry: { attempts: 3, baseDelayMs: 5, maxDelayMs: 20 },
    logger: recordingLogger,
    ...options,
  });
}

async function forgeError(promise: Promise<unknown>): Promise<ForgeError> {
  const error = await promise.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  if (!(error instanceof ForgeError)) throw new Error(`expected a ForgeError, got ${inspect(error)}`);
  return error;
}

beforeEach(async () => {
  logLines = [];
  double = await startForgeDouble({ botLogin: 'cc-ci', botToken: TOKEN, time: new Date('2026-07-01T10:00:00Z') });
  double.addUser({ login: 'alice' });
  double.addUser({ login: 'bob' });
  double.addRepo({ owner: 'recipes', name: 'custom-html', permissions: { alice: 'write' } });
  pr = double.addPullRequest({ repo: REPO, author: 'bob', headRef: 'bump-2.1.0' });
});

afterEach(async () => {
  await double.close();
});

describe('every operation round-trips against the double with no contract violation', () => {
  it('the full report cycle of a run', async () => {
    const forge = client();
    const sha = pr.pull?.headSha ?? '';
    const trigger = double.addComment({ repo: REPO, index: pr.index, author: 'alice', body: '!testme' }).comment;

    expect(await forge.getCurrentUser()).toEqual({ id: double.bot.id, login: 'cc-ci' });

    const pull = await forge.getPullRequest(ref, pr.index);
    expect(pull).toMatchObject({ number: pr.index, state: 'open', headSha: sha, headRef: 'bump-2.1.0', baseRef: 'main', isFork: false, author: 'bob' });
    expect(pull.cloneUrl).toBe(`${double.url}/${REPO}.git`);

    expect(await forge.getCollaboratorPermission(ref, 'alice')).toEqual({
      permission: 'write',
      roleName: 'write',
      user: { id: expect.any(Number), login: 'alice' },
    });

    expect(await forge.addCommentReaction(ref, trigger.id, 'eyes')).toMatchObject({ content: 'eyes', created: true, user: { login: 'cc-ci' } });
    expect(await forge.addCommentReaction(ref, trigger.id, 'eyes')).toMatchObject({ created: false });

    const report = await forge.createComment(ref, pr.index, '⏳ queued <details>&</details>');
    expect(report).toMatchObject({ body: '⏳ queued <details>&</details>', user: { login: 'cc-ci' }, issueIndex: pr.index, isOnPullRequest: true });
    double.advanceTime(60);
    const edited = await forge.editComment(ref, report.id, '✅ passed');
    expect(edited).toMatchObject({ id: report.id, body: '✅ passed', updatedAt: '2026-07-01T10:01:00Z', createdAt: '2026-07-01T10:00:00Z' });

    const pending = await forge.createCommitStatus(ref, sha, {
      state: 'pending',
      context: 'cc-ci/cold',
      description: 'queued',
      targetUrl: 'https://ci.example.org/runs/1',
    });
    expect(pending).toMatchObject({
      state: 'pending',
      context: 'cc-ci/cold',
      description: 'queued',
      targetUrl: 'https://ci.example.org/runs/1',
      creator: 'cc-ci',
    });
    await forge.createCommitStatus(ref, sha, { state: 'success', context: 'cc-ci/cold' });
    const statuses = await forge.listCommitStatuses(ref, sha, { sort: 'oldest' });
    expect(statuses.items.map((s) => s.state)).toEqual(['pending', 'success']);
    expect(statuses.totalCount).toBe(2);
    expect((await forge.listCommitStatuses(ref, sha, { state: 'success', page: 1, limit: 10 })).items).toHaveLength(1);

    const comments = await forge.listIssueComments(ref, pr.index);
    expect(comments.map((c) => c.body)).toEqual(['!testme', '✅ passed']);
    expect(comments[0]).toMatchObject({ id: trigger.id, user: { login: 'alice' }, issueIndex: pr.index });

    const repoPage = await forge.listRepoComments(ref, { since: new Date('2026-07-01T10:00:30Z'), page: 1, limit: 10 });
    expect(repoPage.items.map((c) => c.id)).toEqual([report.id]);
    expect(repoPage.totalCount).toBe(1);

    expect(double.violations).toEqual([]);
    expect(new Set(double.requests.map((r) => r.operation))).toEqual(
      new Set([
        'userGetCurrent',
        'repoGetPullRequest',
        'repoGetRepoPermissions',
        'issuePostCommentReaction',
        'issueCreateComment',
        'issueEditComment',
        'repoCreateStatus',
        'repoListStatuses',
        'issueGetComments',
        'issueGetRepoComments',
      ]),
    );
  });

  it('since/before reach the forge as RFC3339 and filter', async () => {
    const forge = client();
    const at = (iso: string) => double.addComment({ repo: REPO, index: pr.index, author: 'alice', body: iso, at: new Date(iso) }).comment.id;
    at('2026-07-01T09:00:00Z');
    const inside = at('2026-07-01T09:30:00Z');
    at('2026-07-01T10:30:00Z');
    const found = await forge.listIssueComments(ref, pr.index, { since: new Date('2026-07-01T09:15:00.250Z'), before: new Date('2026-07-01T10:00:00Z') });
    expect(found.map((c) => c.id)).toEqual([inside]);
    expect(double.requestsFor('issueGetComments')[0]?.url).toContain('since=2026-07-01T09%3A15%3A00Z');
    expect(double.violations).toEqual([]);
  });

  it('a PR from a fork', async () => {
    double.addRepo({ owner: 'bob', name: 'custom-html', parent: REPO });
    const fork = double.addPullRequest({ repo: REPO, author: 'bob', headRepo: 'bob/custom-html', headRef: 'patch-1' });
    expect(await client().getPullRequest(ref, fork.index)).toMatchObject({
      isFork: true,
      headRepoFullName: 'bob/custom-html',
      cloneUrl: `${double.url}/bob/custom-html.git`,
    });
    expect(double.violations).toEqual([]);
  });

  it('sends `Authorization: token <TOKEN>` and URL-encodes path segments', async () => {
    const seen: Array<{ url: string; authorization: string | null }> = [];
    const spy: typeof fetch = async (input, init) => {
      seen.push({ url: String(input), authorization: new Headers(init?.headers).get('authorization') });
      return new Response(JSON.stringify({ message: 'not found', url: '' }), { status: 404 });
    };
    await forgeError(client({ fetch: spy }).getCollaboratorPermission({ owner: 'a b', repo: 'c/d' }, 'e?f'));
    expect(seen).toEqual([{ url: `${double.url}/api/v1/repos/a%20b/c%2Fd/collaborators/e%3Ff/permission`, authorization: `token ${TOKEN}` }]);
  });
});

describe('retries', () => {
  it('retries a 500 and then succeeds', async () => {
    double.failNext('repoCreateStatus', 500, 2);
    const status = await client().createCommitStatus(ref, pr.pull?.headSha ?? '', { state: 'pending', context: 'cc-ci/cold' });
    expect(status.state).toBe('pending');
    expect(double.requestsFor('repoCreateStatus').map((r) => r.status)).toEqual([500, 500, 201]);
    expect(logLines).toHaveLength(2);
    expect(logLines[0]).toContain('"operation":"repoCreateStatus"');
  });

  it('gives up after the configured attempts, with the last status', async () => {
    double.failNext('userGetCurrent', 503, 10);
    const error = await forgeError(client({ retry: { attempts: 4, baseDelayMs: 1, maxDelayMs: 1 } }).getCurrentUser());
    expect(error).toMatchObject({ operation: 'userGetCurrent', status: 503, kind: 'http', attempts: 4 });
    expect(double.requestsFor('userGetCurrent')).toHaveLength(4);
  });

  it('waits longer before each retry (exponential backoff)', async () => {
    double.failNext('userGetCurrent', 500, 3);
    const times: number[] = [];
    const timed: typeof fetch = async (input, init) => {
      times.push(performance.now());
      return fetch(input, init);
    };
    await client({ fetch: timed, retry: { attempts: 4, baseDelayMs: 40, maxDelayMs: 1_000 } }).getCurrentUser();
    const gaps = times.slice(1).map((t, i) => t - (times[i] ?? 0));
    expect(gaps).toHaveLength(3);
    expect(gaps[0]).toBeGreaterThanOrEqual(35);
    expect(gaps[1]).toBeGreaterThanOrEqual(70);
    expect(gaps[2]).toBeGreaterThanOrEqual(140);
  });

  it.each([400, 401, 403, 404, 409, 422, 429])('does not retry a %i', async (status) => {
    double.failNext('repoGetPullRequest', status, 5);
    const error = await forgeError(client().getPullRequest(ref, pr.index));
    expect(error).toMatchObject({ status, kind: 'http', attempts: 1, retryable: false });
    expect(double.requestsFor('repoGetPullRequest')).toHaveLength(1);
  });

  it('does not retry a real 404 from the forge', async () => {
    const error = await forgeError(client().getPullRequest(ref, 999));
    expect(error).toMatchObject({ status: 404, operation: 'repoGetPullRequest' });
    expect(error.message).toMatch(/HTTP 404: .*not found/);
    expect(double.requestsFor('repoGetPullRequest')).toHaveLength(1);
  });

  it('does not retry an answer it cannot read', async () => {
    let calls = 0;
    const junk: typeof fetch = async () => {
      calls += 1;
      return new Response(JSON.stringify({ id: 'not a number' }), { status: 200, headers: { 'content-type': 'application/json' } });
    };
    const error = await forgeError(client({ fetch: junk }).getCurrentUser());
    expect(error).toMatchObject({ kind: 'invalid-response', status: 200 });
    expect(calls).toBe(1);
  });

  it('retries network errors while the forge is down', async () => {
    double.setDown(true);
    const error = await forgeError(client().getCurrentUser());
    expect(error).toMatchObject({ kind: 'network', status: null, attempts: 3 });
    double.setDown(false);
    expect((await client().getCurrentUser()).login).toBe('cc-ci');
  });

  it('recovers when the forge comes back between attempts', async () => {
    double.setDown(true);
    let calls = 0;
    const flaky: typeof fetch = async (input, init) => {
      calls += 1;
      if (calls === 2) double.setDown(false);
      return fetch(input, init);
    };
    expect((await client({ fetch: flaky }).getCurrentUser()).login).toBe('cc-ci');
    expect(calls).toBe(2);
  });

  it('attempts: 1 disables retries', async () => {
    double.failNext('userGetCurrent', 500, 2);
    await forgeError(client({ retry: { attempts: 1 } }).getCurrentUser());
    expect(double.requestsFor('userGetCurrent')).toHaveLength(1);
  });

  it('refuses a retry policy without attempts', () => {
    expect(() => client({ retry: { attempts: 0 } })).toThrow(RangeError);
  });
});

describe('timeouts', () => {
  it('a call that gets no answer in time fails with kind timeout', async () => {
    double.delayNext('userGetCurrent', 1_000);
    const started = performance.now();
    const error = await forgeError(client({ timeoutMs: 100, retry: { attempts: 1 } }).getCurrentUser());
    expect(error).toMatchObject({ kind: 'timeout', status: null, operation: 'userGetCurrent' });
    expect(performance.now() - started).toBeLessThan(800);
  });

  it('a timed-out attempt is retried', async () => {
    double.delayNext('repoGetPullRequest', 1_000);
    const pull = await client({ timeoutMs: 150 }).getPullRequest(ref, pr.index);
    expect(pull.number).toBe(pr.index);
    expect(logLines[0]).toContain('"kind":"timeout"');
  });

  it('a body that stalls after the headers also times out', async () => {
    const stalling: typeof fetch = async (_input, init) => {
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('{"id": 1,'));
          init?.signal?.addEventListener('abort', () => controller.error(init.signal?.reason));
        },
      });
      return new Response(body, { status: 200, headers: { 'content-type': 'application/json' } });
    };
    const error = await forgeError(client({ fetch: stalling, timeoutMs: 100, retry: { attempts: 1 } }).getCurrentUser());
    expect(error.kind).toBe('timeout');
  });
});

describe('the token never leaks', () => {
  const leaks = (error: ForgeError): string[] =>
    [error.message, String(error), error.stack ?? '', inspect(error, { depth: 10, showHidden: true }), JSON.stringify(error)].filter((text) =>
      text.includes(TOKEN),
    );

  it('into any error or log line, whatever went wrong', async () => {
    const errors: ForgeError[] = [];
    // 401: the forge refuses the token.
    errors.push(await forgeError(new ForgeClient({ baseUrl: double.url, token: `${TOKEN}x`, retry: { attempts: 1 } }).getCurrentUser()));
    // 404, 403, 500 after retries.
    errors.push(await forgeError(client().getPullRequest(ref, 999)));
    double.failNext('repoGetRepoPermissions', 403);
    errors.push(await forgeError(client().getCollaboratorPermission(ref, 'alice')));
    double.failNext('userGetCurrent', 500, 3);
    errors.push(await forgeError(client().getCurrentUser()));
    // Timeout and network failure.
    double.delayNext('userGetCurrent', 500);
    errors.push(await forgeError(client({ timeoutMs: 50, retry: { attempts: 1 } }).getCurrentUser()));
    double.setDown(true);
    errors.push(await forgeError(client().getCurrentUser()));
    double.setDown(false);

    expect(errors.map((e) => e.kind)).toEqual(['http', 'http', 'http', 'http', 'timeout', 'network']);
    for (const error of errors) expect(leaks(error)).toEqual([]);
    expect(logLines.length).toBeGreaterThan(0);
    for (const line of logLines) expect(line).not.toContain(TOKEN);
  });

  it('even when the server echoes it back', async () => {
    const echoing: typeof fetch = async (_input, init) => {
      const authorization = new Headers(init?.headers).get('authorization') ?? '';
      return new Response(JSON.stringify({ message: `bad credentials: ${authorization}`, url: '' }), { status: 401 });
    };
    const error = await forgeError(client({ fetch: echoing }).getCurrentUser());
    expect(error.message).toContain('[REDACTED]');
    expect(leaks(error)).toEqual([]);
  });

  it('nor in the client object itself', () => {
    const forge = client();
    expect(inspect(forge, { depth: 10 })).not.toContain(TOKEN);
    expect(JSON.stringify(forge)).not.toContain(TOKEN);
  });
});

describe('a Gitea-compatible server that answers writes with minimal bodies', () => {
  it('takes each 2xx for the success it is: one request per write, nothing repeated', async () => {
    const { createServer } = await import('node:http');
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url?.replace(/\?.*$/, '')}`);
      req.resume();
      req.on('end', () => {
        const path = req.url ?? '';
        res.setHeader('content-type', 'application/json');
        if (req.method === 'POST' && /\/reactions$/.test(path)) return res.writeHead(201).end();
        if (req.method === 'POST' && /\/statuses\//.test(path)) return res.writeHead(201).end('{}');
        if (/\/comments(\/\d+)?$/.test(path)) return res.writeHead(req.method === 'POST' ? 201 : 200).end('{"id":9}');
        res.writeHead(404).end('{}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    try {
      const c = client({ baseUrl: `http://127.0.0.1:${port}` });
      const ref = { owner: 'recipes', repo: 'webnotes' };
      expect(await c.addCommentReaction(ref, 5, 'eyes')).toMatchObject({ content: 'eyes', created: true });
      expect((await c.createComment(ref, 3, 'hello')).id).toBe(9);
      expect((await c.editComment(ref, 9, 'hello again')).id).toBe(9);
      expect(await c.createCommitStatus(ref, 'a'.repeat(40), { state: 'pending', context: 'cc-ci', description: 'queued' })).toMatchObject({
        state: 'pending',
        context: 'cc-ci',
        description: 'queued',
      });
      expect(seen).toEqual([
        'POST /api/v1/repos/recipes/webnotes/issues/comments/5/reactions',
        'POST /api/v1/repos/recipes/webnotes/issues/3/comments',
        'PATCH /api/v1/repos/recipes/webnotes/issues/comments/9',
        `POST /api/v1/repos/recipes/webnotes/statuses/${'a'.repeat(40)}`,
      ]);
    } finally {
      server.close();
    }
  });
});
