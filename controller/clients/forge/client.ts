// A typed client for exactly the forge operations cc-ci uses (contract: gitea-openapi-subset.json,
// `x-operations-included`). It is built on gitea-js, whose methods are generated from Gitea's own
// OpenAPI file, so paths and request shapes come from the forge rather than from us.
//
// What this layer adds on top of gitea-js, and why:
// * `Authorization: token <TOKEN>`. gitea-js's own `giteaApi(url, { token })` sends
//   `Bearer <TOKEN>`; the contract names the `token` form (AuthorizationHeaderToken), which both
//   Gitea and Forgejo accept, so we build the `Api` class ourselves with a securityWorker.
// * Path segments are URL-encoded here: gitea-js interpolates them verbatim.
// * A timeout on every attempt (AbortSignal.timeout) and a bounded retry with exponential backoff
//   on 5xx, timeouts and network errors. Never on 4xx: those do not get better by asking again.
//   Note for callers: a POST that timed out may still have been applied by the forge. Retrying
//   statuses and reactions is harmless (latest status per context wins; a repeated reaction is a
//   200), but a retried createComment can leave a duplicate comment; the reporter should find its
//   own comment (e.g. by a marker in the body) rather than trust that one POST made one comment.
// * Responses are checked with zod for the fields cc-ci reads and mapped to small camelCase types,
//   so the rest of cc-ci never handles a half-filled forge object.
// * Errors are one small type, ForgeError, and the token never appears in one (messages are
//   redacted in case a server echoes it; no request object is attached).
import { Api, type HttpResponse, type RequestParams } from 'gitea-js';
import { z } from 'zod';

export const FORGE_OPERATIONS = [
  'issueCreateComment',
  'issueGetComments',
  'issueEditComment',
  'issueGetRepoComments',
  'issueGetCommentsAndTimeline',
  'repoGetPullRequest',
  'repoCreateStatus',
  'repoListStatuses',
  'repoGetRepoPermissions',
  'issuePostCommentReaction',
  'userGetCurrent',
] as const;
export type ForgeOperation = (typeof FORGE_OPERATIONS)[number];

/** The five states both Gitea and Forgejo know (Gitea alone also has `skipped`). */
export const COMMIT_STATUS_STATES = ['pending', 'success', 'error', 'failure', 'warning'] as const;
export type CommitStatusState = (typeof COMMIT_STATUS_STATES)[number];

/** The forges' default `[ui] REACTIONS`; anything else is a 403. */
export const REACTIONS = ['+1', '-1', 'laugh', 'hooray', 'confused', 'heart', 'rocket', 'eyes'] as const;
export type Reaction = (typeof REACTIONS)[number];

export const ACCESS_MODES = ['none', 'read', 'write', 'admin', 'owner'] as const;
export type AccessMode = (typeof ACCESS_MODES)[number];

export interface RepoRef {
  owner: string;
  repo: string;
}

export interface ForgeUser {
  id: number;
  login: string;
}

export interface ForgeComment {
  id: number;
  body: string;
  user: ForgeUser | null;
  htmlUrl: string;
  createdAt: string;
  updatedAt: string;
  /** Index of the issue or PR the comment belongs to, read from its URL; null if unreadable. */
  issueIndex: number | null;
  isOnPullRequest: boolean;
}

/** A push to a pull request's head branch, from its timeline (a `pull_push` row). */
export interface ForgePush {
  id: number;
  createdAt: string;
  pusher: string | null;
  isForcePush: boolean;
  commitIds: string[];
}

export interface ForgePullRequest {
  number: number;
  title: string;
  state: 'open' | 'closed';
  merged: boolean;
  draft: boolean;
  htmlUrl: string;
  author: string | null;
  headSha: string;
  headRef: string;
  /** Null when the head repository is gone (deleted fork). */
  headRepoFullName: string | null;
  cloneUrl: string | null;
  baseRef: string;
  baseSha: string;
  isFork: boolean;
}

export interface ForgeCommitStatus {
  id: number;
  /** Sent as `state`, returned by the forge under the key `status`. */
  state: CommitStatusState | 'skipped';
  context: string;
  description: string;
  targetUrl: string;
  createdAt: string;
  updatedAt: string;
  creator: string | null;
}

export interface ForgePermission {
  permission: AccessMode;
  roleName: string;
  user: ForgeUser | null;
}

export interface ForgeReaction {
  content: string;
  user: ForgeUser | null;
  createdAt: string;
  /** True for a new reaction (201), false when the bot had already reacted so (200). */
  created: boolean;
}

export interface NewCommitStatus {
  state: CommitStatusState;
  context: string;
  description?: string;
  targetUrl?: string;
}

export interface Page<T> {
  items: T[];
  /** X-Total-Count: all matches across pages; null if the forge did not send it. */
  totalCount: number | null;
}

export type ForgeErrorKind = 'http' | 'timeout' | 'network' | 'invalid-response';

export class ForgeError extends Error {
  override readonly name = 'ForgeError';
  constructor(
    readonly operation: ForgeOperation,
    /** HTTP status, or null when no response arrived (timeout, network). */
    readonly status: number | null,
    message: string,
    readonly kind: ForgeErrorKind,
    readonly attempts: number,
  ) {
    super(message);
  }

  /** 5xx, timeouts and network failures may pass; 4xx and unreadable answers will not. */
  get retryable(): boolean {
    if (this.kind === 'timeout' || this.kind === 'network') return true;
    return this.kind === 'http' && this.status !== null && this.status >= 500;
  }

  /** A 4xx the forge will answer again however often it is asked. 401 (a token that may be
   *  fixed) and 429 (rate limited) are not: asking later may well go through. */
  get lastingRefusal(): boolean {
    return this.kind === 'http' && this.status !== null && this.status >= 400 && this.status < 500 && this.status !== 401 && this.status !== 429;
  }
}

/** The subset of pino's logger we use, so tests can pass a recorder. */
export interface ForgeLogger {
  warn(fields: Record<string, unknown>, message: string): void;
}

export interface RetryPolicy {
  /** Total attempts including the first; 1 disables retries. */
  attempts: number;
  /** Delay before the second attempt; doubled for each one after, up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
}

export interface ForgeClientOptions {
  /** Instance root, e.g. https://git.coopcloud.tech (without /api/v1). */
  baseUrl: string;
  /** The bot's API token, read from a file by the caller. */
  token: string;
  /** Per attempt. Default 10 s. */
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  fetch?: typeof fetch;
  logger?: ForgeLogger;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const MIN_REDACTED_TOKEN_LENGTH = 8;
const DEFAULT_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 500, maxDelayMs: 8_000 };

// ---- response schemas: only what we read; nullable where Go may write null -----------------------

const userSchema = z.object({ id: z.number().int(), login: z.string() });

// Only what cc-ci uses is required of an answer: a Gitea-compatible server that leaves out a
// field cc-ci never reads (html_url, timestamps of a write's echo) has still done the write, and
// taking its 2xx for a failure would repeat it.
const commentSchema = z.object({
  id: z.number().int(),
  body: z.string().default(''),
  user: userSchema.nullable().default(null),
  html_url: z.string().default(''),
  pull_request_url: z.string().default(''),
  issue_url: z.string().default(''),
  created_at: z.string().default(''),
  updated_at: z.string().default(''),
});

const timelineRowSchema = z.object({
  id: z.number().int(),
  type: z.string(),
  body: z.string().default(''),
  user: userSchema.nullable().default(null),
  created_at: z.string().default(''),
});

/** The body of a `pull_push` row (Gitea's PushActionContent); unreadable means "a push, commits unknown". */
const pushContentSchema = z.object({ is_force_push: z.boolean().default(false), commit_ids: z.array(z.string()).default([]) });

function toPush(raw: z.infer<typeof timelineRowSchema>): ForgePush {
  let content: z.infer<typeof pushContentSchema> = { is_force_push: false, commit_ids: [] };
  try {
    const parsed = pushContentSchema.safeParse(JSON.parse(raw.body));
    if (parsed.success) content = parsed.data;
  } catch {
    // Not JSON: still a push; only its commits are unknown.
  }
  return { id: raw.id, createdAt: raw.created_at, pusher: raw.user?.login ?? null, isForcePush: content.is_force_push, commitIds: content.commit_ids };
}

const branchSchema = z.object({
  ref: z.string(),
  sha: z.string(),
  repo_id: z.number().int(),
  repo: z.object({ full_name: z.string(), clone_url: z.string() }).nullable(),
});

const pullRequestSchema = z.object({
  number: z.number().int(),
  title: z.string().default(''),
  state: z.enum(['open', 'closed']),
  merged: z.boolean(),
  draft: z.boolean().default(false),
  html_url: z.string().default(''),
  user: userSchema.nullable().default(null),
  head: branchSchema,
  base: branchSchema,
});

const commitStatusSchema = z.object({
  id: z.number().int().default(0),
  status: z.enum([...COMMIT_STATUS_STATES, 'skipped']),
  context: z.string(),
  description: z.string().default(''),
  target_url: z.string().default(''),
  created_at: z.string().default(''),
  updated_at: z.string().default(''),
  creator: userSchema.nullable().default(null),
});

/** A status write's echo: what it leaves out is what cc-ci just sent. */
const createdStatusSchema = z.object({
  id: z.number().int().optional(),
  status: z.enum([...COMMIT_STATUS_STATES, 'skipped']).optional(),
  context: z.string().optional(),
  description: z.string().optional(),
  target_url: z.string().optional(),
  created_at: z.string().optional(),
  updated_at: z.string().optional(),
  creator: userSchema.nullable().optional(),
});

const permissionSchema = z.object({
  permission: z.enum(ACCESS_MODES),
  role_name: z.string().default(''),
  user: userSchema.nullable().default(null),
});

const reactionSchema = z.object({ content: z.string().optional(), user: userSchema.nullable().default(null), created_at: z.string().default('') });

// ---- mapping ------------------------------------------------------------------------------------

function toUser(user: z.infer<typeof userSchema> | null): ForgeUser | null {
  return user === null ? null : { id: user.id, login: user.login };
}

function toComment(raw: z.infer<typeof commentSchema>): ForgeComment {
  const url = raw.pull_request_url !== '' ? raw.pull_request_url : raw.issue_url;
  const index = /\/(\d+)\/?$/.exec(url)?.[1];
  return {
    id: raw.id,
    body: raw.body,
    user: toUser(raw.user),
    htmlUrl: raw.html_url,
    createdAt: raw.created_at,
    updatedAt: raw.updated_at,
    issueIndex: index === undefined ? null : Number(index),
    isOnPullRequest: raw.pull_request_url !== '',
  };
}

function toPullRequest(raw: z.infer<typeof pullRequestSchema>): ForgePullRequest {
  return {
    number: raw.number,
    title: raw.title,
    state: raw.state,
    merged: raw.merged,
    draft: raw.draft,
    htmlUrl: raw.html_url,
    author: raw.user?.login ?? null,
    headSha: raw.head.sha,
    headRef: raw.head.ref,
    headRepoFullName: raw.head.repo?.full_name ?? null,
    cloneUrl: raw.head.repo?.clone_url ?? null,
    baseRef: raw.base.ref,
    baseSha: raw.base.sha,
    isFork: raw.head.repo_id !== raw.base.repo_id,
  };
}

function toCommitStatus(raw: z.infer<typeof commitStatusSchema>): ForgeCommitStatus {
  return {
    id: raw.id,
    state: raw.status,
    context: raw.context,
    description: raw.description,
    targetUrl: raw.target_url,
    createdAt: raw.created_at,
    updatedAt: raw.updated_at,
    creator: raw.creator?.login ?? null,
  };
}

/** RFC3339 in whole seconds: the forge truncates to seconds anyway. */
function rfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function totalCount(response: Response): number | null {
  const header = response.headers.get('x-total-count');
  if (header === null || !/^\d+$/.test(header.trim())) return null;
  return Number(header.trim());
}

/** What gitea-js throws for a non-2xx answer: the Response, with the parsed body in `error`. */
function isHttpFailure(thrown: unknown): thrown is { status: number; error: unknown } {
  return typeof thrown === 'object' && thrown !== null && 'status' in thrown && typeof thrown.status === 'number' && 'ok' in thrown && thrown.ok === false;
}

function serverMessage(body: unknown): string {
  if (typeof body === 'object' && body !== null && 'message' in body && typeof body.message === 'string') {
    return body.message.slice(0, 300);
  }
  return '';
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class ForgeClient {
  private readonly api: Api<null>;
  private readonly timeoutMs: number;
  private readonly retry: RetryPolicy;
  private readonly logger: ForgeLogger | undefined;
  // Kept only to scrub it out of error text; never logged or put in a message.
  readonly #token: string;

  constructor(options: ForgeClientOptions) {
    this.#token = options.token;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    if (!Number.isInteger(this.retry.attempts) || this.retry.attempts < 1) {
      throw new RangeError('retry.attempts must be an integer >= 1');
    }
    this.logger = options.logger;
    // Looked up per call, not captured, so a test that replaces globalThis.fetch is honoured.
    const fetchImpl = options.fetch ?? ((...args: Parameters<typeof fetch>) => fetch(...args));
    const authorization = `token ${options.token}`;
    this.api = new Api<null>({
      baseUrl: `${options.baseUrl.replace(/\/+$/, '')}/api/v1`,
      baseApiParams: { format: 'json' },
      securityWorker: () => ({ headers: { Authorization: authorization } }),
      customFetch: fetchImpl,
    });
  }

  // ---- the operations -----------------------------------------------------------------------------

  async getCurrentUser(): Promise<ForgeUser> {
    return this.call(
      'userGetCurrent',
      (params) => this.api.user.userGetCurrent(params),
      (response) => {
        const user = toUser(parseBody('userGetCurrent', userSchema, response));
        if (user === null) throw invalidResponse('userGetCurrent', response.status, 'no user');
        return user;
      },
    );
  }

  async getPullRequest(ref: RepoRef, index: number): Promise<ForgePullRequest> {
    const { owner, repo } = encodeRef(ref);
    return this.call(
      'repoGetPullRequest',
      (params) => this.api.repos.repoGetPullRequest(owner, repo, index, params),
      (response) => toPullRequest(parseBody('repoGetPullRequest', pullRequestSchema, response)),
    );
  }

  /** All plain comments of one issue or PR, oldest first; `since`/`before` compare with updated_at. */
  async listIssueComments(ref: RepoRef, index: number, window: { since?: Date; before?: Date } = {}): Promise<ForgeComment[]> {
    const { owner, repo } = encodeRef(ref);
    const query = { since: window.since && rfc3339(window.since), before: window.before && rfc3339(window.before) };
    return this.call(
      'issueGetComments',
      (params) => this.api.repos.issueGetComments(owner, repo, index, query, params),
      (response) => parseBody('issueGetComments', z.array(commentSchema), response).map(toComment),
    );
  }

  /** One page of the comments on every issue and PR of a repository. */
  async listRepoComments(ref: RepoRef, options: { since?: Date; before?: Date; page?: number; limit?: number } = {}): Promise<Page<ForgeComment>> {
    const { owner, repo } = encodeRef(ref);
    const query = {
      since: options.since && rfc3339(options.since),
      before: options.before && rfc3339(options.before),
      page: options.page,
      limit: options.limit,
    };
    return this.call(
      'issueGetRepoComments',
      (params) => this.api.repos.issueGetRepoComments(owner, repo, query, params),
      (response) => ({
        items: parseBody('issueGetRepoComments', z.array(commentSchema), response).map(toComment),
        totalCount: totalCount(response),
      }),
    );
  }

  /**
   * One page of the pushes to a pull request's head branch recorded in its timeline at or after
   * `since` (whole seconds, inclusive). `rows` is the page's length before filtering, for paging.
   */
  async listPullPushes(ref: RepoRef, index: number, options: { since: Date; page: number; limit: number }): Promise<{ pushes: ForgePush[]; rows: number }> {
    const { owner, repo } = encodeRef(ref);
    const query = { since: rfc3339(options.since), page: options.page, limit: options.limit };
    return this.call(
      'issueGetCommentsAndTimeline',
      (params) => this.api.repos.issueGetCommentsAndTimeline(owner, repo, index, query, params),
      (response) => {
        const rows = parseBody('issueGetCommentsAndTimeline', z.array(timelineRowSchema), response);
        return { pushes: rows.filter((row) => row.type === 'pull_push').map(toPush), rows: rows.length };
      },
    );
  }

  async createComment(ref: RepoRef, index: number, body: string): Promise<ForgeComment> {
    const { owner, repo } = encodeRef(ref);
    return this.call(
      'issueCreateComment',
      (params) => this.api.repos.issueCreateComment(owner, repo, index, { body }, params),
      (response) => toComment(parseBody('issueCreateComment', commentSchema, response)),
    );
  }

  async editComment(ref: RepoRef, commentId: number, body: string): Promise<ForgeComment> {
    const { owner, repo } = encodeRef(ref);
    return this.call(
      'issueEditComment',
      (params) => this.api.repos.issueEditComment(owner, repo, commentId, { body }, params),
      (response) => {
        // 204 is the forge's answer for comment types without content; ours always have content.
        if (response.status === 204) throw invalidResponse('issueEditComment', 204, 'comment has no editable content');
        return toComment(parseBody('issueEditComment', commentSchema, response));
      },
    );
  }

  async addCommentReaction(ref: RepoRef, commentId: number, content: Reaction): Promise<ForgeReaction> {
    const { owner, repo } = encodeRef(ref);
    return this.call(
      'issuePostCommentReaction',
      (params) => this.api.repos.issuePostCommentReaction(owner, repo, commentId, { content }, params),
      (response) => {
        const raw = parseBody('issuePostCommentReaction', reactionSchema, response, {});
        return { content: raw.content ?? content, user: toUser(raw.user), createdAt: raw.created_at, created: response.status === 201 };
      },
    );
  }

  /** Adds a status row; the forge shows the latest row per `context`. */
  async createCommitStatus(ref: RepoRef, sha: string, status: NewCommitStatus): Promise<ForgeCommitStatus> {
    const { owner, repo } = encodeRef(ref);
    const body = {
      state: status.state,
      context: status.context,
      description: status.description ?? '',
      target_url: status.targetUrl ?? '',
    };
    return this.call(
      'repoCreateStatus',
      (params) => this.api.repos.repoCreateStatus(owner, repo, encodeURIComponent(sha), body, params),
      (response) => {
        const raw = parseBody('repoCreateStatus', createdStatusSchema, response, {});
        return toCommitStatus(
          commitStatusSchema.parse({
            ...raw,
            status: raw.status ?? status.state,
            context: raw.context ?? status.context,
            description: raw.description ?? body.description,
            target_url: raw.target_url ?? body.target_url,
          }),
        );
      },
    );
  }

  async listCommitStatuses(
    ref: RepoRef,
    sha: string,
    options: {
      sort?: 'oldest' | 'recentupdate' | 'leastupdate' | 'leastindex' | 'highestindex';
      state?: CommitStatusState;
      page?: number;
      limit?: number;
    } = {},
  ): Promise<Page<ForgeCommitStatus>> {
    const { owner, repo } = encodeRef(ref);
    return this.call(
      'repoListStatuses',
      (params) => this.api.repos.repoListStatuses(owner, repo, encodeURIComponent(sha), options, params),
      (response) => ({
        items: parseBody('repoListStatuses', z.array(commitStatusSchema), response).map(toCommitStatus),
        totalCount: totalCount(response),
      }),
    );
  }

  /**
   * The user's access to the repository. The forge answers 403 unless the bot is a site admin or
   * a repository admin (or asks about itself), so give the bot admin on the recipe repositories.
   */
  async getCollaboratorPermission(ref: RepoRef, login: string): Promise<ForgePermission> {
    const { owner, repo } = encodeRef(ref);
    return this.call(
      'repoGetRepoPermissions',
      (params) => this.api.repos.repoGetRepoPermissions(owner, repo, encodeURIComponent(login), params),
      (response) => {
        const raw = parseBody('repoGetRepoPermissions', permissionSchema, response);
        return { permission: raw.permission, roleName: raw.role_name, user: toUser(raw.user) };
      },
    );
  }

  // ---- timeout, retry, errors -------------------------------------------------------------------

  private async call<T>(
    operation: ForgeOperation,
    invoke: (params: RequestParams) => Promise<HttpResponse<unknown, unknown>>,
    read: (response: HttpResponse<unknown, unknown>) => T,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const signal = AbortSignal.timeout(this.timeoutMs);
      let failure: ForgeError;
      try {
        const response = await invoke({ signal });
        // gitea-js swallows a failure while reading a 2xx body (data stays null); if our timer
        // fired meanwhile, that was a timeout, not a malformed answer.
        if (signal.aborted) throw signal.reason;
        return read(response);
      } catch (thrown) {
        failure = this.toForgeError(operation, thrown, signal, attempt);
      }
      if (!failure.retryable || attempt >= this.retry.attempts) throw failure;
      const delayMs = this.backoff(attempt);
      this.logger?.warn({ operation, attempt, status: failure.status, kind: failure.kind, delayMs }, 'forge call failed, retrying');
      await sleep(delayMs);
    }
  }

  /** base × 2^(attempt-1), capped, minus up to 10 % jitter so restarted clients do not align. */
  private backoff(attempt: number): number {
    const exponential = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** (attempt - 1));
    return Math.round(exponential * (1 - Math.random() * 0.1));
  }

  private toForgeError(operation: ForgeOperation, thrown: unknown, signal: AbortSignal, attempt: number): ForgeError {
    const make = (status: number | null, message: string, kind: ForgeErrorKind): ForgeError =>
      new ForgeError(operation, status, this.redact(message), kind, attempt);

    if (thrown instanceof ForgeError) return make(thrown.status, thrown.message, thrown.kind);
    if (isHttpFailure(thrown)) {
      const detail = serverMessage(thrown.error);
      return make(thrown.status, `${operation}: HTTP ${thrown.status}${detail ? `: ${detail}` : ''}`, 'http');
    }
    if (signal.aborted) return make(null, `${operation}: no answer within ${this.timeoutMs} ms`, 'timeout');
    // fetch rejects with a TypeError ("fetch failed") whose cause names the socket error.
    const cause = thrown instanceof Error && thrown.cause instanceof Error ? thrown.cause.message : '';
    const text = thrown instanceof Error ? thrown.message : String(thrown);
    return make(null, `${operation}: network error: ${text}${cause ? ` (${cause})` : ''}`, 'network');
  }

  private redact(text: string): string {
    // A "token" of a few characters (tests, misconfiguration) would shred every message and is
    // no secret; real forge tokens are 40 hex digits.
    if (this.#token.length < MIN_REDACTED_TOKEN_LENGTH) return text;
    return text.split(this.#token).join('[REDACTED]');
  }
}

function encodeRef(ref: RepoRef): RepoRef {
  return { owner: encodeURIComponent(ref.owner), repo: encodeURIComponent(ref.repo) };
}

function invalidResponse(operation: ForgeOperation, status: number, detail: string): ForgeError {
  return new ForgeError(operation, status, `${operation}: unexpected response: ${detail}`, 'invalid-response', 1);
}

/** `emptyIs`: what an answer with no body stands for, for a write whose echo cc-ci does not need. */
function parseBody<S extends z.ZodType>(operation: ForgeOperation, schema: S, response: HttpResponse<unknown, unknown>, emptyIs?: unknown): z.infer<S> {
  const empty = response.data === null || response.data === undefined || response.data === '';
  const parsed = schema.safeParse(empty && emptyIs !== undefined ? emptyIs : response.data);
  if (parsed.success) return parsed.data;
  const where = parsed.error.issues.slice(0, 3).map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
  throw invalidResponse(operation, response.status, where.join('; '));
}
