// Classifies a verified webhook delivery from Gitea or Forgejo. Only one kind of delivery matters to
// cc-ci: a comment newly created in a pull request's conversation. Everything else is reported as
// ignored with a reason, never thrown, because the sender is a remote system and its bodies are
// untrusted input even after the signature check (a signature proves who sent it, not its shape).
//
// Event names (the forge contract: test/fixtures/forge-contract/README.md §2): comments arrive with X-*-Event-Type `issue_comment` (on an issue)
// or `pull_request_comment` (in a PR's conversation). A review submitted as a comment arrives as
// X-*-Event `pull_request_comment` / X-*-Event-Type `pull_request_review_comment` with a
// PullRequestPayload body; that is a review, not a command, so it is ignored.
import { z } from 'zod';
import { readHeader, type HeaderBag } from './signature.js';

export type IgnoredReason =
  | 'unknown-event'
  | 'issue-comment'
  | 'review-comment'
  | 'comment-edited'
  | 'comment-deleted'
  | 'unknown-action'
  | 'malformed-body'
  | 'inconsistent-pr-markers'
  | 'head-repo-missing';

export interface PrCommentCreated {
  kind: 'pr-comment-created';
  /** X-Forgejo-Delivery / X-Gitea-Delivery: a UUID per hook task, for dropping replays. */
  delivery: string | null;
  owner: string;
  repo: string;
  /** The PR index, as used by /issues/{index}/comments and /pulls/{index}. */
  pr: number;
  commentId: number;
  body: string;
  /** Author of the comment text: the user whose permission decides whether a run may start. */
  commenter: string;
  /** Who caused the delivery; the same user as `commenter` for a created comment. */
  sender: string;
  /** Web URL of the comment (…/pulls/42#issuecomment-1234). */
  htmlUrl: string;
  prHtmlUrl: string;
  prState: 'open' | 'closed';
  merged: boolean;
  draft: boolean;
  /**
   * The head commit at the time of the comment. The webhook is a snapshot: re-read the PR
   * (GET /pulls/{index}) before testing to be sure it is still the head.
   */
  headSha: string;
  headRef: string;
  /**
   * Clone URL of the head repository: the fork's, for a PR from a fork. Null when the head
   * repository is gone (a deleted fork): the intake then clones from config `cloneUrl`, or says why not.
   */
  cloneUrl: string | null;
  headRepoFullName: string | null;
  isFork: boolean;
  baseRef: string;
}

export interface IgnoredDelivery {
  kind: 'ignored';
  reason: IgnoredReason;
  /** Human-readable; never contains body text, so it is safe to log. */
  detail: string;
  delivery: string | null;
}

export type ClassifiedDelivery = PrCommentCreated | IgnoredDelivery;

// Only the fields cc-ci reads are declared; zod strips the rest. Nullable where the contract's
// x-go-json-semantics says Go may write null.
const userSchema = z.object({ id: z.number().int(), login: z.string().min(1) });

// Gitea repositories use SHA-1 (40 hex) or SHA-256 (64 hex) object names. The sha later reaches git
// and URL paths, so anything else is refused here.
const commitShaSchema = z.string().regex(/^(?:[0-9a-f]{40}|[0-9a-f]{64})$/);

const branchSchema = z.object({
  ref: z.string().min(1),
  sha: commitShaSchema,
  repo_id: z.number().int(),
  repo: z.object({ id: z.number().int(), full_name: z.string().min(1), clone_url: z.string().min(1) }).nullable(),
});

const prCommentPayloadSchema = z.object({
  action: z.literal('created'),
  issue: z.object({
    number: z.number().int().positive(),
    html_url: z.string(),
    pull_request: z.object({ merged: z.boolean(), draft: z.boolean(), html_url: z.string() }).nullable(),
  }),
  pull_request: z
    .object({
      number: z.number().int().positive(),
      state: z.enum(['open', 'closed']),
      merged: z.boolean(),
      draft: z.boolean(),
      html_url: z.string(),
      head: branchSchema.nullable(),
      base: branchSchema.nullable(),
    })
    .optional(),
  comment: z.object({
    id: z.number().int().positive(),
    body: z.string(),
    html_url: z.string(),
    pull_request_url: z.string(),
    issue_url: z.string(),
    user: userSchema.nullable(),
  }),
  repository: z.object({ name: z.string().min(1), full_name: z.string().min(1), owner: userSchema.nullable() }),
  sender: userSchema,
  is_pull: z.boolean(),
});

const actionOnlySchema = z.object({ action: z.string() });

/** Reads a header by its Forgejo name first, then its Gitea name (Forgejo sends both). */
function forgeHeader(headers: HeaderBag, suffix: string): string | null {
  for (const prefix of ['x-forgejo-', 'x-gitea-']) {
    const value = readHeader(headers, prefix + suffix);
    if (typeof value === 'string' && value.trim() !== '') return value.trim();
  }
  return null;
}

/** A header value quoted for a log line: short, printable. */
function quoted(value: string): string {
  return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value);
}

export function classifyDelivery(headers: HeaderBag, body: unknown): ClassifiedDelivery {
  const delivery = forgeHeader(headers, 'delivery');
  const ignored = (reason: IgnoredReason, detail: string): IgnoredDelivery => ({
    kind: 'ignored',
    reason,
    detail,
    delivery,
  });

  const eventType = forgeHeader(headers, 'event-type');
  const event = forgeHeader(headers, 'event');
  if (eventType === null) return ignored('unknown-event', 'no X-Forgejo-Event-Type or X-Gitea-Event-Type header');
  // Checked before anything else: X-*-Event `pull_request_comment` means a review comment, even
  // though the same words name PR conversation comments in X-*-Event-Type.
  if (eventType === 'pull_request_review_comment' || event === 'pull_request_comment') {
    return ignored('review-comment', `event ${quoted(event ?? '')}, type ${quoted(eventType)}`);
  }
  if (eventType === 'issue_comment') return ignored('issue-comment', 'comment on an issue, not a pull request');
  if (eventType !== 'pull_request_comment') return ignored('unknown-event', `event type ${quoted(eventType)}`);

  const withAction = actionOnlySchema.safeParse(body);
  if (!withAction.success) return ignored('malformed-body', 'body is not an object with a string "action"');
  const action = withAction.data.action;
  if (action === 'edited') return ignored('comment-edited', 'edits never trigger; only new comments do');
  if (action === 'deleted') return ignored('comment-deleted', 'comment was deleted');
  if (action !== 'created') return ignored('unknown-action', `action ${quoted(action)}`);

  const parsed = prCommentPayloadSchema.safeParse(body);
  if (!parsed.success) {
    const where = parsed.error.issues.slice(0, 5).map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
    return ignored('malformed-body', where.join('; '));
  }
  const payload = parsed.data;

  // The contract's five markers of a PR comment, all set by the forge for every PR comment. The
  // header agreed already (marker 1); a body that disagrees with it is not trusted either way.
  const failed: string[] = [];
  if (!payload.is_pull) failed.push('is_pull is not true');
  if (payload.issue.pull_request === null) failed.push('issue.pull_request is null');
  if (payload.pull_request === undefined) failed.push('pull_request key is missing');
  if (payload.comment.pull_request_url === '' || payload.comment.issue_url !== '') {
    failed.push('comment.pull_request_url/issue_url are those of an issue comment');
  }
  if (!payload.issue.html_url.includes('/pulls/')) failed.push('issue.html_url has no /pulls/');
  const pull = payload.pull_request;
  if (pull !== undefined && pull.number !== payload.issue.number) failed.push('pull_request.number differs from issue.number');
  if (failed.length > 0 || pull === undefined) return ignored('inconsistent-pr-markers', failed.join('; '));

  const head = pull.head;
  const base = pull.base;
  // A deleted fork leaves head.repo null but head.sha set (the forge keeps refs/pull/N/head), so
  // only a missing head or base branch is unusable here.
  if (head === null || base === null) {
    return ignored('head-repo-missing', 'the PR head or base branch is missing');
  }

  const [ownerFromFullName] = payload.repository.full_name.split('/');
  const commenter = payload.comment.user?.login ?? payload.sender.login;
  return {
    kind: 'pr-comment-created',
    delivery,
    owner: payload.repository.owner?.login ?? ownerFromFullName ?? '',
    repo: payload.repository.name,
    pr: payload.issue.number,
    commentId: payload.comment.id,
    body: payload.comment.body,
    commenter,
    sender: payload.sender.login,
    htmlUrl: payload.comment.html_url,
    prHtmlUrl: pull.html_url,
    prState: pull.state,
    merged: pull.merged,
    draft: pull.draft,
    headSha: head.sha,
    headRef: head.ref,
    cloneUrl: head.repo?.clone_url ?? null,
    headRepoFullName: head.repo?.full_name ?? null,
    isFork: head.repo_id !== base.repo_id,
    baseRef: base.ref,
  };
}

/**
 * The same, from the raw body bytes (after the signature check). A body that is not JSON is
 * `malformed-body`. Form-encoded deliveries (`payload=...`) are not supported: configure the
 * webhook with content type application/json (their signature covers the inner JSON, not the body).
 */
export function classifyRawDelivery(headers: HeaderBag, rawBody: Buffer): ClassifiedDelivery {
  let body: unknown;
  try {
    body = JSON.parse(rawBody.toString('utf8'));
  } catch {
    return {
      kind: 'ignored',
      reason: 'malformed-body',
      detail: 'body is not JSON (is the webhook content type application/json?)',
      delivery: forgeHeader(headers, 'delivery'),
    };
  }
  return classifyDelivery(headers, body);
}

/**
 * True when cc-ci itself wrote the comment. Its own report comments fire `created` webhooks too,
 * and must never be read as commands. Logins are case-insensitive in Gitea and Forgejo.
 */
export function isFromBot(event: Pick<PrCommentCreated, 'commenter' | 'sender'>, botLogin: string): boolean {
  const bot = botLogin.toLowerCase();
  return event.commenter.toLowerCase() === bot || event.sender.toLowerCase() === bot;
}
