// The forge double against the contract: its answers validate, it refuses requests that do not,
// and it behaves as the contract's handler notes say. Requests here are raw fetch calls, so the
// double is tested independently of cc-ci's client.
import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ForgeOperation } from '../../controller/clients/forge/client.js';
import {
  operations,
  readExampleWebhookBytes,
  startForgeDouble,
  validateDefinition,
  type DoubleIssue,
  type ForgeDouble,
  type JsonObject,
} from '../support/forge-double/index.js';

interface Answer {
  status: number;
  body: unknown;
  headers: Headers;
}

let double: ForgeDouble;
let pr: DoubleIssue;
let issue: DoubleIssue;
let aliceComment: number;
const REPO = 'recipes/custom-html';
const API = (): string => `${double.url}/api/v1`;

async function call(
  method: string,
  path: string,
  options: { token?: string | null; body?: unknown; rawBody?: string; contentType?: string; authorization?: string } = {},
): Promise<Answer> {
  const headers: Record<string, string> = {};
  const token = options.token === undefined ? double.botToken : options.token;
  if (options.authorization !== undefined) headers['Authorization'] = options.authorization;
  else if (token !== null) headers['Authorization'] = `token ${token}`;
  let body: string | undefined;
  if (options.rawBody !== undefined || options.body !== undefined) {
    headers['Content-Type'] = options.contentType ?? 'application/json';
    body = options.rawBody ?? JSON.stringify(options.body);
  }
  const response = await fetch(`${API()}${path}`, { method, headers, body, signal: AbortSignal.timeout(5_000) });
  const text = await response.text();
  return { status: response.status, body: text === '' ? null : (JSON.parse(text) as unknown), headers: response.headers };
}

/** Checks an answer against the contract with the same validators the double uses, independently. */
function expectContract(operation: ForgeOperation, answer: Answer): void {
  expect(operations.get(operation)?.validateResponse(answer.status, answer.body), `${operation} ${answer.status}`).toEqual([]);
}

beforeEach(async () => {
  double = await startForgeDouble({ botLogin: 'cc-ci', time: new Date('2026-07-01T10:00:00Z') });
  double.addUser({ login: 'alice', token: 'alice-token' });
  double.addUser({ login: 'bob', token: 'bob-token' });
  double.addUser({ login: 'root', isAdmin: true, token: 'root-token' });
  double.addRepo({ owner: 'recipes', name: 'custom-html', permissions: { alice: 'write' } });
  pr = double.addPullRequest({ repo: REPO, author: 'bob', headRef: 'bump-2.1.0' });
  issue = double.addIssue({ repo: REPO, author: 'bob', title: 'A bug' });
  aliceComment = double.addComment({ repo: REPO, index: pr.index, author: 'alice', body: '!testme' }).comment.id;
});

afterEach(async () => {
  await double.close();
});

describe('every operation answers within the contract', () => {
  it('success answers', async () => {
    const sha = pr.pull?.headSha ?? '';
    const answers: Array<[ForgeOperation, Answer]> = [
      ['userGetCurrent', await call('GET', '/user')],
      ['repoGetPullRequest', await call('GET', `/repos/${REPO}/pulls/${pr.index}`)],
      ['issueGetComments', await call('GET', `/repos/${REPO}/issues/${pr.index}/comments`)],
      ['issueGetComments', await call('GET', `/repos/${REPO}/issues/${issue.index}/comments`)],
      ['issueGetRepoComments', await call('GET', `/repos/${REPO}/issues/comments?page=1&limit=10`)],
      ['issueCreateComment', await call('POST', `/repos/${REPO}/issues/${pr.index}/comments`, { body: { body: 'queued <b>&</b>' } })],
      ['issueEditComment', await call('PATCH', `/repos/${REPO}/issues/comments/${aliceComment}`, { body: { body: 'edited by an admin' } })],
      ['issuePostCommentReaction', await call('POST', `/repos/${REPO}/issues/comments/${aliceComment}/reactions`, { body: { content: 'eyes' } })],
      [
        'repoCreateStatus',
        await call('POST', `/repos/${REPO}/statuses/${sha}`, {
          body: { state: 'pending', context: 'cc-ci/cold', description: 'queued', target_url: 'https://ci.example.org/runs/1' },
        }),
      ],
      ['repoListStatuses', await call('GET', `/repos/${REPO}/statuses/${sha}?sort=oldest&state=pending&page=1&limit=5`)],
      ['repoGetRepoPermissions', await call('GET', `/repos/${REPO}/collaborators/alice/permission`)],
    ];
    for (const [operation, answer] of answers) {
      expect(answer.status, operation).toBeLessThan(300);
      expectContract(operation, answer);
    }
    expect(double.violations).toEqual([]);
  });

  it('error answers', async () => {
    double.addRepo({ owner: 'recipes', name: 'archived', archived: true });
    const archivedPr = double.addPullRequest({ repo: 'recipes/archived', author: 'bob' });
    const answers: Array<[ForgeOperation, Answer, number]> = [
      ['userGetCurrent', await call('GET', '/user', { token: null }), 401],
      ['repoGetPullRequest', await call('GET', `/repos/recipes/nope/pulls/1`), 404],
      ['repoGetPullRequest', await call('GET', `/repos/${REPO}/pulls/${issue.index}`), 404],
      ['issueGetComments', await call('GET', `/repos/${REPO}/issues/999/comments`), 404],
      ['issueGetComments', await call('GET', `/repos/${REPO}/issues/${pr.index}/comments?since=yesterday`), 422],
      ['issueCreateComment', await call('POST', `/repos/recipes/archived/issues/${archivedPr.index}/comments`, { body: { body: 'x' } }), 423],
      ['issueEditComment', await call('PATCH', `/repos/${REPO}/issues/comments/${aliceComment}`, { token: 'bob-token', body: { body: 'x' } }), 403],
      ['issuePostCommentReaction', await call('POST', `/repos/${REPO}/issues/comments/${aliceComment}/reactions`, { body: { content: 'thumbsup' } }), 403],
      ['issuePostCommentReaction', await call('POST', `/repos/${REPO}/issues/comments/424242/reactions`, { body: { content: 'eyes' } }), 404],
      ['repoCreateStatus', await call('POST', `/repos/${REPO}/statuses/${'0'.repeat(40)}`, { body: { state: 'success', context: 'c' } }), 500],
      [
        'repoCreateStatus',
        await call('POST', `/repos/${REPO}/statuses/${pr.pull?.headSha}`, { token: 'bob-token', body: { state: 'success', context: 'c' } }),
        403,
      ],
      ['repoGetRepoPermissions', await call('GET', `/repos/${REPO}/collaborators/bob/permission`, { token: 'alice-token' }), 403],
      ['repoGetRepoPermissions', await call('GET', `/repos/${REPO}/collaborators/nobody/permission`), 404],
    ];
    for (const [operation, answer, status] of answers) {
      expect(answer.status, operation).toBe(status);
      expectContract(operation, answer);
      if (answer.body !== null) expect(answer.body).toMatchObject({ message: expect.any(String), url: `${double.url}/api/swagger` });
    }
    // The 422 for `since` is a request violation; nothing else may be.
    expect(double.violations.map((v) => v.operation)).toEqual(['issueGetComments']);
  });

  it("the 403 for editing somebody else's comment has an empty body, like the forge", async () => {
    const answer = await call('PATCH', `/repos/${REPO}/issues/comments/${aliceComment}`, { token: 'bob-token', body: { body: 'x' } });
    expect(answer).toMatchObject({ status: 403, body: null });
  });

  it('404s from the forge carry an errors list', async () => {
    const answer = await call('GET', `/repos/${REPO}/pulls/999`);
    expect(answer.body).toMatchObject({ errors: expect.any(Array) });
  });
});

describe('the exact profile catches drift in the double', () => {
  const user = (): JsonObject => JSON.parse(JSON.stringify(double.state.userJson(double.bot))) as JsonObject;

  it('a rendered user validates', () => {
    expect(validateDefinition('User', user())).toEqual([]);
  });

  it('a user without `username` does not', () => {
    const u = user();
    delete u['username'];
    expect(validateDefinition('User', u)).not.toEqual([]);
  });

  it('an unknown key fails exact but passes wire', () => {
    const u = { ...user(), pronouns: 'they/them' };
    expect(validateDefinition('User', u, 'exact').join()).toContain('pronouns');
    expect(validateDefinition('User', u, 'wire')).toEqual([]);
  });

  it('a missing field fails exact unless Go omits it when zero', () => {
    const pull = double.state.pullJson(pr, null);
    expect(validateDefinition('PullRequest', pull)).toEqual([]);
    const withoutAdditions = { ...pull };
    delete withoutAdditions['additions'];
    expect(validateDefinition('PullRequest', withoutAdditions)).toEqual([]);
    const withoutTitle = { ...pull };
    delete withoutTitle['title'];
    expect(validateDefinition('PullRequest', withoutTitle)).not.toEqual([]);
  });

  it('null is allowed only where Go may write it', () => {
    const body = JSON.parse(readExampleWebhookBytes().toString('utf8')) as { issue: JsonObject };
    expect(validateDefinition('IssueCommentPayload', body, 'exact')).toEqual([]);
    expect(validateDefinition('IssueCommentPayload', body, 'wire')).toEqual([]);
    body.issue['milestone'] = null;
    expect(validateDefinition('IssueCommentPayload', body)).toEqual([]);
    body.issue['title'] = null;
    expect(validateDefinition('IssueCommentPayload', body).join()).toContain('/issue/title');
  });

  it('an organisation with an empty e-mail validates; a malformed e-mail does not', () => {
    const org = double.state.userJson(double.state.requireUser('recipes'));
    expect(org['email']).toBe('');
    expect(validateDefinition('User', org)).toEqual([]);
    expect(validateDefinition('User', { ...org, email: 'not an address' })).not.toEqual([]);
  });
});

describe('requests that break the contract get 422 and are recorded', () => {
  const sha = (): string => pr.pull?.headSha ?? '';
  const cases: Array<[string, ForgeOperation, () => Promise<Answer>]> = [
    ['a status without state', 'repoCreateStatus', () => call('POST', `/repos/${REPO}/statuses/${sha()}`, { body: { context: 'cc-ci/cold' } })],
    ['a status without context', 'repoCreateStatus', () => call('POST', `/repos/${REPO}/statuses/${sha()}`, { body: { state: 'pending' } })],
    [
      'a status with state "skipped" (Gitea only)',
      'repoCreateStatus',
      () => call('POST', `/repos/${REPO}/statuses/${sha()}`, { body: { state: 'skipped', context: 'c' } }),
    ],
    [
      'a status with an unknown state',
      'repoCreateStatus',
      () => call('POST', `/repos/${REPO}/statuses/${sha()}`, { body: { state: 'running', context: 'c' } }),
    ],
    [
      'a status sent with the response key `status`',
      'repoCreateStatus',
      () => call('POST', `/repos/${REPO}/statuses/${sha()}`, { body: { status: 'pending', context: 'c' } }),
    ],
    ['a reaction without content', 'issuePostCommentReaction', () => call('POST', `/repos/${REPO}/issues/comments/${aliceComment}/reactions`, { body: {} })],
    [
      'a reaction with a number',
      'issuePostCommentReaction',
      () => call('POST', `/repos/${REPO}/issues/comments/${aliceComment}/reactions`, { body: { content: 1 } }),
    ],
    ['a comment without body', 'issueCreateComment', () => call('POST', `/repos/${REPO}/issues/${pr.index}/comments`, { body: {} })],
    ['an empty comment', 'issueCreateComment', () => call('POST', `/repos/${REPO}/issues/${pr.index}/comments`, { body: { body: '' } })],
    ['a comment that is not JSON', 'issueCreateComment', () => call('POST', `/repos/${REPO}/issues/${pr.index}/comments`, { rawBody: '{"body":' })],
    [
      'a comment sent as text/plain',
      'issueCreateComment',
      () => call('POST', `/repos/${REPO}/issues/${pr.index}/comments`, { rawBody: 'hello', contentType: 'text/plain' }),
    ],
    ['an edit with no body at all', 'issueEditComment', () => call('PATCH', `/repos/${REPO}/issues/comments/${aliceComment}`)],
    ['a non-numeric index', 'repoGetPullRequest', () => call('GET', `/repos/${REPO}/pulls/abc`)],
    ['a fractional comment id', 'issueEditComment', () => call('PATCH', `/repos/${REPO}/issues/comments/1.5`, { body: { body: 'x' } })],
    ['an unknown query parameter', 'issueGetComments', () => call('GET', `/repos/${REPO}/issues/${pr.index}/comments?page=2`)],
    ['a since without a time zone', 'issueGetRepoComments', () => call('GET', `/repos/${REPO}/issues/comments?since=2026-07-01T10:00:00`)],
    ['a non-integer limit', 'issueGetRepoComments', () => call('GET', `/repos/${REPO}/issues/comments?limit=ten`)],
    ['an unknown sort', 'repoListStatuses', () => call('GET', `/repos/${REPO}/statuses/${sha()}?sort=newest`)],
    ['a repeated query parameter', 'repoListStatuses', () => call('GET', `/repos/${REPO}/statuses/${sha()}?state=success&state=failure`)],
    ['a bad request without a token', 'repoCreateStatus', () => call('POST', `/repos/${REPO}/statuses/${sha()}`, { token: null, body: {} })],
  ];

  it.each(cases)('%s', async (_name, operation, send) => {
    const answer = await send();
    expect(answer.status).toBe(422);
    expect(answer.body).toMatchObject({ message: expect.any(String), url: expect.any(String) });
    expect(double.violations).toHaveLength(1);
    expect(double.violations[0]).toMatchObject({ direction: 'request', operation, status: 422 });
    expect(double.violations[0]?.errors.length).toBeGreaterThan(0);
  });

  it('a path outside the contract is a 404 and a violation', async () => {
    const answer = await call('DELETE', `/repos/${REPO}/issues/comments/${aliceComment}`);
    expect(answer.status).toBe(404);
    expect(double.violations).toEqual([expect.objectContaining({ direction: 'request', operation: null, method: 'DELETE' })]);
  });

  it('nothing was stored by a rejected request', async () => {
    await call('POST', `/repos/${REPO}/statuses/${sha()}`, { body: { context: 'cc-ci/cold' } });
    expect(double.statusesFor(REPO, sha())).toEqual([]);
  });
});

describe('authentication', () => {
  it.each<[string, () => { token?: string | null; authorization?: string }]>([
    ['no Authorization header', () => ({ token: null })],
    ['an unknown token', () => ({ token: 'wrong' })],
    ['the Bearer form (the contract names `token`)', () => ({ authorization: `Bearer ${double.botToken}` })],
    ['a token without its scheme', () => ({ authorization: double.botToken })],
  ])('401 for %s', async (_name, options) => {
    const answer = await call('GET', '/user', options());
    expect(answer.status).toBe(401);
    expectContract('userGetCurrent', answer);
  });

  it('each token acts as its user', async () => {
    expect((await call('GET', '/user')).body).toMatchObject({ login: 'cc-ci', username: 'cc-ci' });
    expect((await call('GET', '/user', { token: 'alice-token' })).body).toMatchObject({ login: 'alice' });
  });
});

describe('collaborator permission', () => {
  const ask = (login: string, token?: string) => call('GET', `/repos/${REPO}/collaborators/${login}/permission`, token ? { token } : {});

  it('a repository admin (the bot) may ask about anyone', async () => {
    expect((await ask('alice')).body).toMatchObject({ permission: 'write', role_name: 'write', user: { login: 'alice' } });
    expect((await ask('bob')).body).toMatchObject({ permission: 'read' }); // public repository, no explicit access
    expect((await ask('recipes')).body).toMatchObject({ permission: 'owner' });
  });

  it('a writer may ask only about itself', async () => {
    expect((await ask('alice', 'alice-token')).status).toBe(200);
    expect((await ask('bob', 'alice-token')).status).toBe(403);
  });

  it('a bot with only write access cannot ask about others', async () => {
    double.addRepo({ owner: 'recipes', name: 'other', botAccess: 'write' });
    expect((await call('GET', '/repos/recipes/other/collaborators/alice/permission')).status).toBe(403);
    expect((await call('GET', '/repos/recipes/other/collaborators/cc-ci/permission')).body).toMatchObject({ permission: 'write' });
  });

  it('a site admin may ask about anyone', async () => {
    expect((await ask('alice', 'root-token')).status).toBe(200);
  });

  it('a private repository is invisible (404) without access, and "none" for non-members', async () => {
    double.addRepo({ owner: 'recipes', name: 'secret', private: true });
    expect((await call('GET', '/repos/recipes/secret/collaborators/bob/permission', { token: 'bob-token' })).status).toBe(404);
    expect((await call('GET', '/repos/recipes/secret/collaborators/bob/permission')).body).toMatchObject({ permission: 'none' });
  });
});

describe('reactions', () => {
  const react = (content: string, token?: string) =>
    call('POST', `/repos/${REPO}/issues/comments/${aliceComment}/reactions`, { body: { content }, ...(token ? { token } : {}) });

  it('201 for a new reaction, 200 for a repeat, per user and content', async () => {
    expect((await react('eyes')).status).toBe(201);
    expect((await react('eyes')).status).toBe(200);
    expect((await react('rocket')).status).toBe(201);
    expect((await react('eyes', 'alice-token')).status).toBe(201);
    expect(double.comment(aliceComment)?.reactions.map((r) => `${r.user}:${r.content}`)).toEqual(['cc-ci:eyes', 'cc-ci:rocket', 'alice:eyes']);
  });

  it.each(['+1', '-1', 'laugh', 'hooray', 'confused', 'heart', 'rocket', 'eyes'])('%s is allowed', async (content) => {
    expect((await react(content)).status).toBe(201);
  });

  it.each(['thumbsup', '👀', 'EYES', ''])('%j is a 403, as the forge answers', async (content) => {
    const answer = await react(content);
    expect(answer.status).toBe(403);
    expect(double.violations).toEqual([]);
  });
});

describe('commit statuses', () => {
  const sha = (): string => pr.pull?.headSha ?? '';
  const post = (body: JsonObject, at = sha()) => call('POST', `/repos/${REPO}/statuses/${at}`, { body });

  it('answers with the state under `status`, and trims the text fields', async () => {
    const answer = await post({ state: 'pending', context: '  cc-ci/cold ', description: ' queued ', target_url: ' https://ci/1 ' });
    expect(answer.status).toBe(201);
    expect(answer.body).toMatchObject({ status: 'pending', context: 'cc-ci/cold', description: 'queued', target_url: 'https://ci/1' });
    expect(answer.body).not.toHaveProperty('state');
    expect(answer.body).toMatchObject({ url: `${double.url}/api/v1/repos/${REPO}/statuses/${sha()}`, creator: { login: 'cc-ci' } });
  });

  it('adds a row per POST; lists newest first by default, with X-Total-Count', async () => {
    await post({ state: 'pending', context: 'cc-ci/cold' });
    double.advanceTime(5);
    await post({ state: 'pending', context: 'cc-ci/quick' });
    double.advanceTime(5);
    await post({ state: 'success', context: 'cc-ci/cold' });
    const list = await call('GET', `/repos/${REPO}/statuses/${sha()}`);
    expect((list.body as JsonObject[]).map((s) => `${String(s['context'])}=${String(s['status'])}`)).toEqual([
      'cc-ci/cold=success',
      'cc-ci/quick=pending',
      'cc-ci/cold=pending',
    ]);
    expect(list.headers.get('x-total-count')).toBe('3');
    const oldest = await call('GET', `/repos/${REPO}/statuses/${sha()}?sort=oldest&limit=1&page=2`);
    expect((oldest.body as JsonObject[]).map((s) => s['context'])).toEqual(['cc-ci/quick']);
    const successes = await call('GET', `/repos/${REPO}/statuses/${sha()}?state=success`);
    expect(successes.body as JsonObject[]).toHaveLength(1);
    expect(successes.headers.get('x-total-count')).toBe('1');
  });

  it('resolves an abbreviated sha on POST and stores the full id', async () => {
    const answer = await post({ state: 'success', context: 'c' }, sha().slice(0, 7));
    expect(answer.status).toBe(201);
    expect(double.statusesFor(REPO, sha())).toHaveLength(1);
  });

  it('answers 500 for an unknown commit, as Gitea v1.26.3 does', async () => {
    expect((await post({ state: 'success', context: 'c' }, 'f'.repeat(40))).status).toBe(500);
  });

  it('needs write access', async () => {
    expect((await call('POST', `/repos/${REPO}/statuses/${sha()}`, { token: 'bob-token', body: { state: 'success', context: 'c' } })).status).toBe(403);
    expect((await call('POST', `/repos/${REPO}/statuses/${sha()}`, { token: 'alice-token', body: { state: 'success', context: 'c' } })).status).toBe(201);
  });
});

describe('comments', () => {
  const list = async (query = ''): Promise<number[]> =>
    ((await call('GET', `/repos/${REPO}/issues/${pr.index}/comments${query}`)).body as JsonObject[]).map((c) => Number(c['id']));

  it('are listed by creation time, then id', async () => {
    const late = double.addComment({ repo: REPO, index: pr.index, author: 'bob', body: 'late', at: new Date('2026-07-01T12:00:00Z') }).comment.id;
    const early = double.addComment({ repo: REPO, index: pr.index, author: 'bob', body: 'early', at: new Date('2026-07-01T08:00:00Z') }).comment.id;
    const tie = double.addComment({ repo: REPO, index: pr.index, author: 'bob', body: 'same second', at: new Date('2026-07-01T10:00:00Z') }).comment.id;
    expect(await list()).toEqual([early, aliceComment, tie, late]);
  });

  it('`since` and `before` compare inclusively with the updated time, in whole seconds', async () => {
    const at = (iso: string) => double.addComment({ repo: REPO, index: pr.index, author: 'bob', body: iso, at: new Date(iso) }).comment.id;
    const a = at('2026-07-01T11:00:00Z');
    const b = at('2026-07-01T11:00:30Z');
    const c = at('2026-07-01T11:01:00Z');
    expect(await list('?since=2026-07-01T11:00:00Z')).toEqual([a, b, c]);
    expect(await list('?since=2026-07-01T11:00:30.999Z')).toEqual([b, c]);
    expect(await list('?since=2026-07-01T11:00:00Z&before=2026-07-01T11:00:30Z')).toEqual([a, b]);
    expect(await list('?since=2026-07-01T13:00:30%2B02:00')).toEqual([b, c]);
  });

  it('an edit moves a comment into a later `since` window and fires an `edited` event', async () => {
    double.advanceTime(3600);
    const edit = await call('PATCH', `/repos/${REPO}/issues/comments/${aliceComment}`, { token: 'alice-token', body: { body: '!testme --quick' } });
    expect(edit.body).toMatchObject({ body: '!testme --quick', updated_at: '2026-07-01T11:00:00Z', created_at: '2026-07-01T10:00:00Z' });
    expect(await list('?since=2026-07-01T10:30:00Z')).toEqual([aliceComment]);
    expect(double.events.at(-1)).toMatchObject({ action: 'edited', commentId: aliceComment });
    expect((double.events.at(-1)?.payload['changes'] as JsonObject)['body']).toEqual({ from: '!testme' });
  });

  it('an unchanged edit fires nothing', async () => {
    await call('PATCH', `/repos/${REPO}/issues/comments/${aliceComment}`, { token: 'alice-token', body: { body: '!testme' } });
    expect(double.events).toEqual([]);
  });

  it('sets X-Total-Count on the issue list', async () => {
    const answer = await call('GET', `/repos/${REPO}/issues/${pr.index}/comments`);
    expect(answer.headers.get('x-total-count')).toBe('1');
  });

  it('pages the repository list and counts all matches', async () => {
    for (let i = 0; i < 4; i++) double.addComment({ repo: REPO, index: issue.index, author: 'bob', body: `c${i}` });
    const page = await call('GET', `/repos/${REPO}/issues/comments?limit=2&page=2`);
    expect((page.body as JsonObject[]).map((c) => c['body'])).toEqual(['c1', 'c2']);
    expect(page.headers.get('x-total-count')).toBe('5');
  });

  it('on an issue have issue_url and no pull_request_url; on a PR the reverse', async () => {
    double.addComment({ repo: REPO, index: issue.index, author: 'bob', body: 'on the issue' });
    const [onIssue] = (await call('GET', `/repos/${REPO}/issues/${issue.index}/comments`)).body as JsonObject[];
    const [onPr] = (await call('GET', `/repos/${REPO}/issues/${pr.index}/comments`)).body as JsonObject[];
    expect(onIssue).toMatchObject({ pull_request_url: '', issue_url: `${double.url}/${REPO}/issues/${issue.index}` });
    expect(onPr).toMatchObject({ issue_url: '', pull_request_url: `${double.url}/${REPO}/pulls/${pr.index}` });
    expect(onPr?.['html_url']).toBe(`${double.url}/${REPO}/pulls/${pr.index}#issuecomment-${aliceComment}`);
  });

  it('a comment created through the API fires a `created` event', async () => {
    const answer = await call('POST', `/repos/${REPO}/issues/${pr.index}/comments`, { body: { body: 'queued' } });
    expect(answer.status).toBe(201);
    expect(double.events).toEqual([
      expect.objectContaining({ eventType: 'pull_request_comment', action: 'created', commentId: (answer.body as JsonObject)['id'] }),
    ]);
  });
});

describe('pull requests', () => {
  it('carry head sha, ref and clone URL', async () => {
    const custom = double.addPullRequest({ repo: REPO, author: 'bob', headRef: 'x', headSha: 'a'.repeat(40), cloneUrl: 'file:///tmp/recipe.git' });
    const answer = await call('GET', `/repos/${REPO}/pulls/${custom.index}`);
    expect(answer.body).toMatchObject({ number: custom.index, head: { ref: 'x', sha: 'a'.repeat(40), repo: { clone_url: 'file:///tmp/recipe.git' } } });
    expectContract('repoGetPullRequest', answer);
  });
});

describe('fault injection', () => {
  it('failNext answers the next calls with the status, then recovers', async () => {
    double.failNext('userGetCurrent', 500, 3);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await call('GET', '/user')).status);
    expect(statuses).toEqual([500, 500, 500, 200]);
    expect(double.requestsFor('userGetCurrent').map((r) => r.injected)).toEqual([true, true, true, false]);
  });

  it('failNext touches only the named operation', async () => {
    double.failNext('repoGetPullRequest', 503);
    expect((await call('GET', '/user')).status).toBe(200);
    expect((await call('GET', `/repos/${REPO}/pulls/${pr.index}`)).status).toBe(503);
  });

  it('delayNext holds the answer', async () => {
    double.delayNext('userGetCurrent', 300);
    const started = performance.now();
    expect((await call('GET', '/user')).status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
  });

  it('setDown drops connections until it is lifted', async () => {
    double.setDown(true);
    await expect(call('GET', '/user')).rejects.toThrow();
    double.setDown(false);
    expect((await call('GET', '/user')).status).toBe(200);
  });

  it('refuses to inject into an operation outside the contract', () => {
    expect(() => double.failNext('repoDelete' as ForgeOperation, 500)).toThrow(/unknown operation/);
  });
});

// The OAuth2 provider has no shared contract (the OpenAPI file is /api/v1 only): these check the
// behaviour read in Gitea v1.26.3's source (test/support/forge-double/oauth.ts names the files),
// and that the API answers an OAuth token within the contract.
describe('OAuth2 provider', () => {
  const CALLBACK = 'https://ci.example.org/login/callback';
  const SECRET = 'gto_secret';
  const challengeOf = (verifier: string): string => createHash('sha256').update(verifier).digest('base64url');

  beforeEach(() => {
    double.addOAuthApp({ clientId: 'app-1', clientSecret: SECRET, redirectUris: [CALLBACK] });
  });

  async function authorize(params: Record<string, string>): Promise<{ status: number; location: URL | null; body: string }> {
    const url = new URL(`${double.url}/login/oauth/authorize`);
    url.search = new URLSearchParams({ client_id: 'app-1', redirect_uri: CALLBACK, response_type: 'code', state: 'st-1', ...params }).toString();
    const response = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(5_000) });
    const location = response.headers.get('location');
    return { status: response.status, location: location === null ? null : new URL(location, double.url), body: await response.text() };
  }

  async function codeFor(login: string, params: Record<string, string> = {}): Promise<string> {
    double.authorizeAs(login);
    const answer = await authorize(params);
    expect(answer.status).toBe(303);
    return answer.location?.searchParams.get('code') ?? '';
  }

  async function exchange(
    fields: Record<string, string>,
    options: { json?: boolean; basic?: string } = {},
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const all = { grant_type: 'authorization_code', client_id: 'app-1', client_secret: SECRET, redirect_uri: CALLBACK, ...fields };
    const body = Object.fromEntries(Object.entries(all).filter(([, v]) => v !== ''));
    const headers: Record<string, string> = { 'content-type': options.json ? 'application/json' : 'application/x-www-form-urlencoded' };
    if (options.basic) headers['authorization'] = `Basic ${Buffer.from(options.basic).toString('base64')}`;
    const response = await fetch(`${double.url}/login/oauth/access_token`, {
      method: 'POST',
      headers,
      body: options.json ? JSON.stringify(body) : new URLSearchParams(body).toString(),
      signal: AbortSignal.timeout(5_000),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  it('sends a browser nobody signed in to the forge login first', async () => {
    double.authorizeAs(null);
    const answer = await authorize({});
    expect(answer.status).toBe(303);
    expect(answer.location?.pathname).toBe('/user/login');
    expect(answer.location?.searchParams.get('redirect_to')).toMatch(/^\/login\/oauth\/authorize\?/);
  });

  it('answers an unknown client or an unregistered redirect URI with a page, never a redirect', async () => {
    double.authorizeAs('alice');
    expect(await authorize({ client_id: 'nope' })).toMatchObject({ status: 400, location: null, body: expect.stringContaining('Client ID not registered') });
    expect(await authorize({ redirect_uri: 'https://evil.example/cb' })).toMatchObject({ status: 400, location: null });
    // Case and one trailing slash aside, the redirect URI must match exactly.
    expect((await authorize({ redirect_uri: `${CALLBACK.toUpperCase()}/` })).status).toBe(303);
    expect((await authorize({ redirect_uri: `${CALLBACK}/x` })).status).toBe(400);
  });

  it('redirects other authorize errors back with error, description and state', async () => {
    double.authorizeAs('alice');
    const wrongType = await authorize({ response_type: 'token' });
    expect(Object.fromEntries(wrongType.location?.searchParams ?? [])).toEqual({
      error: 'unsupported_response_type',
      error_description: 'Only code response type is supported.',
      state: 'st-1',
    });
    expect((await authorize({ code_challenge_method: 'S512', code_challenge: 'x' })).location?.searchParams.get('error_description')).toBe(
      'unsupported code challenge method',
    );
    double.addOAuthApp({ clientId: 'public', clientSecret: 'unused', redirectUris: [CALLBACK], confidential: false });
    expect((await authorize({ client_id: 'public' })).location?.searchParams.get('error_description')).toBe('PKCE is required for public clients');
    double.authorizeAs('alice', { approve: false });
    expect((await authorize({})).location?.searchParams.get('error')).toBe('access_denied');
  });

  it('hands out a code with the state (none when no state was given)', async () => {
    double.authorizeAs('alice');
    const answer = await authorize({});
    expect(answer.location?.searchParams.get('state')).toBe('st-1');
    expect(answer.location?.searchParams.get('code')).toMatch(/^gta_[a-z2-7]{52}$/);
    expect((await authorize({ state: '' })).location?.searchParams.has('state')).toBe(false);
  });

  it('exchanges a code once, from a form, JSON, or with the client in Basic auth', async () => {
    for (const options of [{}, { json: true }]) {
      const code = await codeFor('alice');
      const first = await exchange({ code }, options);
      expect(first).toMatchObject({
        status: 200,
        body: { token_type: 'bearer', expires_in: 3600, access_token: expect.any(String), refresh_token: expect.any(String) },
      });
      expect(await exchange({ code }, options)).toEqual({ status: 400, body: { error: 'unauthorized_client', error_description: 'client is not authorized' } });
    }
    const code = await codeFor('alice');
    expect((await exchange({ code, client_id: '', client_secret: '' }, { basic: `app-1:${SECRET}` })).status).toBe(200);
    expect(double.oauth.requests.at(-1)).toMatchObject({ clientAuth: 'basic', params: { code: '<given>' } });
    expect(double.oauth.openCodes).toBe(0);
  });

  it('checks the client, the code, its age, its redirect URI and its PKCE verifier', async () => {
    const refused = async (fields: Record<string, string>, error: string, description: string): Promise<void> => {
      expect(await exchange(fields)).toEqual({ status: 400, body: { error, error_description: description } });
    };
    const code = await codeFor('alice');
    await refused({ code, client_secret: 'wrong' }, 'unauthorized_client', 'invalid client secret');
    await refused({ code, client_secret: '' }, 'unauthorized_client', 'invalid empty client secret');
    await refused({ code, client_id: 'nope' }, 'invalid_client', "cannot load client with client id: 'nope'");
    await refused({ code, grant_type: 'password' }, 'unsupported_grant_type', 'Only refresh_token or authorization_code grant type is supported');
    await refused({ code, redirect_uri: 'https://evil.example/cb' }, 'unauthorized_client', 'unexpected redirect URI');
    double.addOAuthApp({ clientId: 'app-2', clientSecret: SECRET, redirectUris: [CALLBACK] });
    await refused({ code, client_id: 'app-2' }, 'invalid_grant', 'invalid grant');

    const verifier = 'v'.repeat(43);
    const pkce = await codeFor('alice', { code_challenge: challengeOf(verifier), code_challenge_method: 'S256' });
    await refused({ code: pkce }, 'unauthorized_client', 'failed PKCE code challenge');
    await refused({ code: pkce, code_verifier: 'w'.repeat(43) }, 'unauthorized_client', 'failed PKCE code challenge');
    // A failed verifier does not use the code up.
    expect((await exchange({ code: pkce, code_verifier: verifier })).status).toBe(200);
    const plain = await codeFor('alice', { code_challenge: verifier, code_challenge_method: 'plain' });
    expect((await exchange({ code: plain, code_verifier: verifier })).status).toBe(200);

    const late = await codeFor('alice');
    double.advanceTime(600);
    await refused({ code: late }, 'invalid_grant', 'authorization code expired');
    await refused({ code: late }, 'unauthorized_client', 'client is not authorized');
  });

  it('lets the API answer an OAuth token as its user, within the contract, until it expires', async () => {
    const { body } = await exchange({ code: await codeFor('alice') });
    const token = String(body['access_token']);
    for (const authorization of [`Bearer ${token}`, `bearer ${token}`, `token ${token}`]) {
      const answer = await call('GET', '/user', { authorization });
      expect(answer.body).toMatchObject({ login: 'alice' });
      expectContract('userGetCurrent', answer);
    }
    double.advanceTime(3600);
    expect((await call('GET', '/user', { authorization: `Bearer ${token}` })).status).toBe(401);
    expect(double.violations).toEqual([]);
  });

  it('holds a token to the access scopes its grant named', async () => {
    const tokenFor = async (scope: string): Promise<string> => String((await exchange({ code: await codeFor('alice', { scope }) })).body['access_token']);
    expect((await call('GET', '/user', { authorization: `Bearer ${await tokenFor('read:user')}` })).status).toBe(200);
    expect((await call('GET', '/user', { authorization: `Bearer ${await tokenFor('openid profile')}` })).status).toBe(200);
    const narrow = await call('GET', '/user', { authorization: `Bearer ${await tokenFor('read:repository')}` });
    expect(narrow.status).toBe(403);
    expectContract('userGetCurrent', narrow);
    expect(narrow.body).toMatchObject({ message: expect.stringContaining('required=[read:user write:user]') });
  });
});
