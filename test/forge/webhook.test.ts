import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifySignature } from '../../controller/forge/signature.js';
import { classifyDelivery, classifyRawDelivery, isFromBot, type ClassifiedDelivery, type PrCommentCreated } from '../../controller/forge/webhook.js';
import { ForgeClient } from '../../controller/clients/forge/client.js';
import {
  deliverWebhook,
  readExampleWebhookBytes,
  startForgeDouble,
  validateDefinition,
  webhookBytes,
  webhookHeaders,
  type DeliveryOptions,
  type ForgeDouble,
  type JsonObject,
} from '../support/forge-double/index.js';

const SECRET = 'example-webhook-secret';

/** Headers as Node hands them to a handler: lowercase names. */
function nodeHeaders(body: Buffer, options: Omit<DeliveryOptions, 'secret'> = {}): Record<string, string> {
  const headers = webhookHeaders(body, { secret: SECRET, ...options });
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]));
}

function classifyObject(payload: object, options: Omit<DeliveryOptions, 'secret'> = {}): ClassifiedDelivery {
  const bytes = webhookBytes(payload);
  return classifyRawDelivery(nodeHeaders(bytes, options), bytes);
}

function expectCreated(result: ClassifiedDelivery): PrCommentCreated {
  if (result.kind !== 'pr-comment-created') throw new Error(`expected a PR comment, got ${JSON.stringify(result)}`);
  return result;
}

const exampleBytes = readExampleWebhookBytes();
const example = (): JsonObject => JSON.parse(exampleBytes.toString('utf8')) as JsonObject;

const DELETE = Symbol('delete');

/** The example body with the value at `path` replaced (or deleted). */
function exampleWith(path: string, value: unknown): JsonObject {
  const body = example();
  const keys = path.split('.');
  let node: unknown = body;
  for (const key of keys.slice(0, -1)) node = (node as JsonObject)[key];
  const last = keys.at(-1) as string;
  if (value === DELETE) delete (node as JsonObject)[last];
  else (node as JsonObject)[last] = value;
  return body;
}

describe('the contract example body', () => {
  it('is a created PR comment with every field cc-ci needs', () => {
    const headers = nodeHeaders(exampleBytes, { deliveryId: 'f6266f16-1bf3-46a5-9ea4-602e06ead473' });
    expect(classifyRawDelivery(headers, exampleBytes)).toEqual({
      kind: 'pr-comment-created',
      delivery: 'f6266f16-1bf3-46a5-9ea4-602e06ead473',
      owner: 'recipes',
      repo: 'custom-html',
      pr: 42,
      commentId: 1234,
      body: '!testme',
      commenter: 'alice',
      sender: 'alice',
      htmlUrl: 'https://git.example.org/recipes/custom-html/pulls/42#issuecomment-1234',
      prHtmlUrl: 'https://git.example.org/recipes/custom-html/pulls/42',
      prState: 'open',
      merged: false,
      draft: false,
      headSha: '9b8a7c6d5e4f30211203f4e5d6c7b8a9f0e1d2c3',
      headRef: 'bump-2.1.0',
      cloneUrl: 'https://git.example.org/recipes/custom-html.git',
      headRepoFullName: 'recipes/custom-html',
      isFork: false,
      baseRef: 'main',
    });
  });

  it('is classified the same from Forgejo-flavoured headers', () => {
    const result = expectCreated(classifyRawDelivery(nodeHeaders(exampleBytes, { flavour: 'forgejo', deliveryId: 'd-1' }), exampleBytes));
    expect(result.delivery).toBe('d-1');
    expect(result.commentId).toBe(1234);
  });

  it('is classified from Forgejo-only header names (no X-Gitea-*)', () => {
    const headers = {
      'x-forgejo-event': 'issue_comment',
      'x-forgejo-event-type': 'pull_request_comment',
      'x-forgejo-delivery': 'd-2',
    };
    expect(expectCreated(classifyRawDelivery(headers, exampleBytes)).delivery).toBe('d-2');
  });

  it('is classified from headers in any letter case', () => {
    const headers = { 'X-Gitea-Event': 'issue_comment', 'X-Gitea-Event-Type': 'pull_request_comment' };
    expect(classifyDelivery(headers, example()).kind).toBe('pr-comment-created');
  });
});

describe('deliveries that are ignored', () => {
  const eventHeaders = (event: string, type: string) => ({ 'x-gitea-event': event, 'x-gitea-event-type': type });

  it('a review comment, by its headers', () => {
    expect(classifyDelivery(eventHeaders('pull_request_comment', 'pull_request_review_comment'), example())).toMatchObject({
      kind: 'ignored',
      reason: 'review-comment',
    });
  });

  it('an issue comment, by its header', () => {
    expect(classifyDelivery(eventHeaders('issue_comment', 'issue_comment'), example())).toMatchObject({ reason: 'issue-comment' });
  });

  it.each([
    ['push', 'push'],
    ['pull_request', 'pull_request'],
    ['issues', 'issues'],
  ])('an unrelated event (%s)', (event, type) => {
    expect(classifyDelivery(eventHeaders(event, type), example())).toMatchObject({ reason: 'unknown-event' });
  });

  it('a delivery without event headers', () => {
    expect(classifyDelivery({ 'content-type': 'application/json' }, example())).toMatchObject({ reason: 'unknown-event' });
  });

  it.each([
    ['edited', 'comment-edited'],
    ['deleted', 'comment-deleted'],
    ['reviewed', 'unknown-action'],
  ])('action %s', (action, reason) => {
    expect(classifyObject(exampleWith('action', action))).toMatchObject({ kind: 'ignored', reason });
  });

  it('never echoes a long header value in full', () => {
    const result = classifyDelivery(eventHeaders('x', 'y'.repeat(1000)), example());
    expect(result.kind === 'ignored' && result.detail.length).toBeLessThan(120);
  });
});

describe('malformed bodies are ignored, never thrown', () => {
  const headers = nodeHeaders(exampleBytes);

  it.each<[string, unknown]>([
    ['null', null],
    ['an array', [1, 2]],
    ['a string', '!testme'],
    ['a number', 42],
    ['an empty object', {}],
    ['only an action', { action: 'created' }],
    ['a non-string action', { ...example(), action: 1 }],
  ])('%s', (_name, body) => {
    expect(classifyDelivery(headers, body)).toMatchObject({ kind: 'ignored', reason: 'malformed-body' });
  });

  it.each<[string, unknown]>([
    ['comment.id missing', exampleWith('comment.id', DELETE)],
    ['comment.id a string', exampleWith('comment.id', '1234')],
    ['comment.body null', exampleWith('comment.body', null)],
    ['issue.number zero', exampleWith('issue.number', 0)],
    ['head sha not hex', exampleWith('pull_request.head.sha', 'main; rm -rf /')],
    ['head sha abbreviated', exampleWith('pull_request.head.sha', '9b8a7c6')],
    ['sender missing', exampleWith('sender', DELETE)],
    ['repository name empty', exampleWith('repository.name', '')],
    ['is_pull a string', exampleWith('is_pull', 'true')],
  ])('%s', (_name, body) => {
    expect(classifyDelivery(headers, body)).toMatchObject({ kind: 'ignored', reason: 'malformed-body' });
  });

  it('a body that is not JSON', () => {
    expect(classifyRawDelivery(headers, Buffer.from('payload=%7B%7D'))).toMatchObject({ reason: 'malformed-body' });
  });

  it('any top-level key removed or nulled: ignored or classified, never thrown', () => {
    for (const key of Object.keys(example())) {
      for (const change of ['delete', 'null', 'array', 'string'] as const) {
        const body = example();
        if (change === 'delete') delete body[key];
        else body[key] = change === 'null' ? null : change === 'array' ? [] : 'x';
        const result = classifyDelivery(headers, body);
        expect(['ignored', 'pr-comment-created']).toContain(result.kind);
      }
    }
  });

  it('every nested object nulled: never thrown', () => {
    const paths: string[][] = [];
    const walk = (node: unknown, path: string[]): void => {
      if (typeof node !== 'object' || node === null) return;
      for (const [key, value] of Object.entries(node)) {
        paths.push([...path, key]);
        if (path.length < 3) walk(value, [...path, key]);
      }
    };
    walk(example(), []);
    expect(paths.length).toBeGreaterThan(200);
    for (const path of paths) {
      expect(() => classifyDelivery(headers, exampleWith(path.join('.'), null))).not.toThrow();
    }
  });
});

describe('bodies inconsistent with a PR comment', () => {
  const headers = nodeHeaders(exampleBytes);
  const issueStyleUrls = (): JsonObject => {
    const body = exampleWith('comment.pull_request_url', '');
    (body['comment'] as JsonObject)['issue_url'] = 'https://git.example.org/recipes/custom-html/issues/42';
    return body;
  };

  it.each<[string, unknown, string]>([
    ['is_pull false', exampleWith('is_pull', false), 'is_pull'],
    ['issue.pull_request null', exampleWith('issue.pull_request', null), 'issue.pull_request'],
    ['no pull_request key', exampleWith('pull_request', DELETE), 'pull_request key'],
    ['issue-style comment URLs', issueStyleUrls(), 'issue comment'],
    ['an /issues/ html_url', exampleWith('issue.html_url', 'https://git.example.org/recipes/custom-html/issues/42'), '/pulls/'],
    ['a different PR number', exampleWith('pull_request.number', 43), 'number'],
  ])('%s', (_name, body, detail) => {
    const result = classifyDelivery(headers, body);
    expect(result).toMatchObject({ kind: 'ignored', reason: 'inconsistent-pr-markers' });
    expect(result.kind === 'ignored' && result.detail).toContain(detail);
  });
});

describe('deliveries built by the forge double', () => {
  let double: ForgeDouble;
  beforeAll(async () => {
    double = await startForgeDouble({ botLogin: 'cc-ci', time: new Date('2026-07-01T10:15:30Z') });
    double.addUser({ login: 'alice' });
    double.addUser({ login: 'bob' });
    double.addRepo({ owner: 'recipes', name: 'custom-html', permissions: { alice: 'write' } });
    double.addRepo({ owner: 'bob', name: 'custom-html', parent: 'recipes/custom-html' });
  });
  afterAll(() => double.close());

  it('a created PR comment validates against the contract and is classified', () => {
    const pr = double.addPullRequest({ repo: 'recipes/custom-html', author: 'bob', headRef: 'bump' });
    const { comment, payload } = double.addComment({ repo: 'recipes/custom-html', index: pr.index, author: 'alice', body: '!testme --quick' });
    expect(validateDefinition('IssueCommentPayload', payload)).toEqual([]);
    const result = expectCreated(classifyObject(payload));
    expect(result).toMatchObject({ pr: pr.index, commentId: comment.id, body: '!testme --quick', commenter: 'alice', headRef: 'bump', isFork: false });
    expect(result.headSha).toBe(pr.pull?.headSha);
  });

  it('has the same keys in the same order as the example body', () => {
    const pr = double.addPullRequest({ repo: 'recipes/custom-html', author: 'bob' });
    const { payload } = double.addComment({ repo: 'recipes/custom-html', index: pr.index, author: 'alice', body: '!testme' });
    const keyPaths = (node: unknown, prefix = ''): string[] =>
      typeof node !== 'object' || node === null || Array.isArray(node)
        ? []
        : Object.entries(node).flatMap(([k, v]) => [`${prefix}${k}`, ...keyPaths(v, `${prefix}${k}.`)]);
    expect(keyPaths(payload)).toEqual(keyPaths(example()));
  });

  it('an edited comment (Gitea and Forgejo changes) is ignored', () => {
    const pr = double.addPullRequest({ repo: 'recipes/custom-html', author: 'bob' });
    const { comment } = double.addComment({ repo: 'recipes/custom-html', index: pr.index, author: 'alice', body: '!testme' });
    for (const flavour of ['gitea', 'forgejo'] as const) {
      const edited = double.commentPayload(comment.id, 'edited', { previousBody: 'typo', flavour });
      expect(validateDefinition('IssueCommentPayload', edited)).toEqual([]);
      expect(edited['changes']).toEqual(
        flavour === 'gitea' ? { body: { from: 'typo' }, added_labels: null, removed_labels: null } : { body: { from: 'typo' } },
      );
      expect(classifyObject(edited, { flavour })).toMatchObject({ kind: 'ignored', reason: 'comment-edited' });
    }
  });

  it('a deleted comment is ignored', () => {
    const pr = double.addPullRequest({ repo: 'recipes/custom-html', author: 'bob' });
    const { comment } = double.addComment({ repo: 'recipes/custom-html', index: pr.index, author: 'alice', body: '!testme' });
    const deleted = double.commentPayload(comment.id, 'deleted');
    expect(validateDefinition('IssueCommentPayload', deleted)).toEqual([]);
    expect(classifyObject(deleted)).toMatchObject({ kind: 'ignored', reason: 'comment-deleted' });
  });

  it('an issue comment is ignored, whatever event type it is sent with', () => {
    const issue = double.addIssue({ repo: 'recipes/custom-html', author: 'bob' });
    const { payload } = double.addComment({ repo: 'recipes/custom-html', index: issue.index, author: 'alice', body: '!testme' });
    expect(validateDefinition('IssueCommentPayload', payload)).toEqual([]);
    expect(payload).not.toHaveProperty('pull_request');
    expect(payload['is_pull']).toBe(false);
    expect(classifyObject(payload, { eventType: 'issue_comment' })).toMatchObject({ reason: 'issue-comment' });
    expect(classifyObject(payload, { eventType: 'pull_request_comment' })).toMatchObject({ reason: 'inconsistent-pr-markers' });
  });

  it('a review comment (PullRequestPayload) is ignored', () => {
    const pr = double.addPullRequest({ repo: 'recipes/custom-html', author: 'bob' });
    const review = double.reviewCommentPayload({ repo: 'recipes/custom-html', index: pr.index, reviewer: 'alice', content: '!testme' });
    expect(validateDefinition('PullRequest', review['pull_request'])).toEqual([]);
    expect(classifyObject(review, { eventType: 'pull_request_review_comment' })).toMatchObject({ reason: 'review-comment' });
  });

  it("the bot's own comment is classified, and isFromBot tells it apart", async () => {
    const pr = double.addPullRequest({ repo: 'recipes/custom-html', author: 'bob' });
    const client = new ForgeClient({ baseUrl: double.url, token: double.botToken });
    const posted = await client.createComment({ owner: 'recipes', repo: 'custom-html' }, pr.index, '!testme');
    const event = double.events.find((e) => e.commentId === posted.id);
    expect(event?.eventType).toBe('pull_request_comment');
    const result = expectCreated(classifyObject(event?.payload ?? {}));
    expect(result.commenter).toBe('cc-ci');
    expect(isFromBot(result, 'cc-ci')).toBe(true);
    expect(isFromBot(result, 'CC-CI')).toBe(true);

    const { payload } = double.addComment({ repo: 'recipes/custom-html', index: pr.index, author: 'alice', body: '!testme' });
    expect(isFromBot(expectCreated(classifyObject(payload)), 'cc-ci')).toBe(false);
    expect(double.violations).toEqual([]);
  });

  it('a PR from a fork carries the fork clone URL', () => {
    const pr = double.addPullRequest({ repo: 'recipes/custom-html', author: 'bob', headRepo: 'bob/custom-html', headRef: 'patch-1' });
    const { payload } = double.addComment({ repo: 'recipes/custom-html', index: pr.index, author: 'alice', body: '!testme' });
    expect(validateDefinition('IssueCommentPayload', payload)).toEqual([]);
    const result = expectCreated(classifyObject(payload));
    expect(result).toMatchObject({ isFork: true, headRepoFullName: 'bob/custom-html', owner: 'recipes', repo: 'custom-html' });
    expect(result.cloneUrl).toBe(`${double.url}/bob/custom-html.git`);
  });

  it('a PR whose head repository is gone is passed on with no clone URL (the intake decides)', () => {
    const pr = double.addPullRequest({ repo: 'recipes/custom-html', author: 'bob' });
    const { payload } = double.addComment({ repo: 'recipes/custom-html', index: pr.index, author: 'alice', body: '!testme' });
    ((payload['pull_request'] as JsonObject)['head'] as JsonObject)['repo'] = null;
    expect(validateDefinition('IssueCommentPayload', payload)).toEqual([]);
    const result = expectCreated(classifyObject(payload));
    expect(result).toMatchObject({ cloneUrl: null, headRepoFullName: null, headSha: pr.pull?.headSha, commentId: expect.any(Number) });
  });

  it('a PR with no head branch at all is ignored', () => {
    const pr = double.addPullRequest({ repo: 'recipes/custom-html', author: 'bob' });
    const { payload } = double.addComment({ repo: 'recipes/custom-html', index: pr.index, author: 'alice', body: '!testme' });
    (payload['pull_request'] as JsonObject)['head'] = null;
    expect(classifyObject(payload)).toMatchObject({ reason: 'head-repo-missing' });
  });
});

describe('end to end: signed delivery to a receiver', () => {
  let receiver: FastifyInstance;
  let url: string;
  const received: Array<{ valid: boolean; result: ClassifiedDelivery }> = [];

  beforeAll(async () => {
    receiver = Fastify();
    // The raw bytes are what is signed: parse nothing before verifying.
    receiver.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
    receiver.post('/hooks/forge', async (request, reply) => {
      const raw = request.body as Buffer;
      const check = verifySignature(SECRET, raw, request.headers);
      received.push({ valid: check.valid, result: classifyRawDelivery(request.headers, raw) });
      return reply.code(check.valid ? 202 : 401).send();
    });
    url = `${await receiver.listen({ host: '127.0.0.1', port: 0 })}/hooks/forge`;
  });
  afterAll(() => receiver.close());

  it.each(['gitea', 'forgejo'] as const)('%s flavour: verified and classified', async (flavour) => {
    received.length = 0;
    const response = await deliverWebhook(url, exampleBytes, { secret: SECRET, flavour, deliveryId: `id-${flavour}` });
    expect(response.status).toBe(202);
    expect(response.sentBody.equals(exampleBytes)).toBe(true);
    expect(received).toHaveLength(1);
    expect(received[0]?.valid).toBe(true);
    expect(expectCreated(received[0]?.result as ClassifiedDelivery).delivery).toBe(`id-${flavour}`);
  });

  it('sends every header of the contract table for Gitea', () => {
    const headers = webhookHeaders(exampleBytes, { secret: SECRET, deliveryId: 'u' });
    expect(Object.keys(headers).sort()).toEqual(
      [
        'Content-Type',
        'X-Gitea-Delivery',
        'X-Gogs-Delivery',
        'X-GitHub-Delivery',
        'X-Gitea-Event',
        'X-Gogs-Event',
        'X-GitHub-Event',
        'X-Gitea-Event-Type',
        'X-Gogs-Event-Type',
        'X-GitHub-Event-Type',
        'X-Gitea-Signature',
        'X-Gogs-Signature',
        'X-Hub-Signature-256',
        'X-Hub-Signature',
        'X-Gitea-Hook-Installation-Target-Type',
        'X-GitHub-Hook-Installation-Target-Type',
      ].sort(),
    );
    expect(headers['X-Gitea-Event']).toBe('issue_comment');
    expect(headers['X-Gitea-Event-Type']).toBe('pull_request_comment');
  });

  it('sends the X-Forgejo-* headers and no installation target for Forgejo', () => {
    const headers = webhookHeaders(exampleBytes, { secret: SECRET, flavour: 'forgejo' });
    expect(headers).toHaveProperty('X-Forgejo-Delivery');
    expect(headers['X-Forgejo-Event']).toBe('issue_comment');
    expect(headers['X-Forgejo-Event-Type']).toBe('pull_request_comment');
    expect(headers['X-Forgejo-Signature']).toBe(headers['X-Gitea-Signature']);
    expect(headers).not.toHaveProperty('X-Gitea-Hook-Installation-Target-Type');
  });

  it('a review comment goes out as event pull_request_comment', () => {
    const headers = webhookHeaders(exampleBytes, { secret: SECRET, eventType: 'pull_request_review_comment' });
    expect(headers['X-Gitea-Event']).toBe('pull_request_comment');
  });

  it('a tampered body fails verification', async () => {
    received.length = 0;
    const tampered = Buffer.from(exampleBytes.toString('utf8').replace('"!testme"', '"!testme --quick"'));
    const signedFor = webhookHeaders(exampleBytes, { secret: SECRET });
    const response = await fetch(url, { method: 'POST', headers: signedFor, body: tampered });
    expect(response.status).toBe(401);
    expect(received[0]?.valid).toBe(false);
  });

  it('a delivery signed with another secret fails verification', async () => {
    received.length = 0;
    const response = await deliverWebhook(url, exampleBytes, { secret: 'not-the-secret' });
    expect(response.status).toBe(401);
  });
});
