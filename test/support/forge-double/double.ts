// The forge double: a fastify app serving the contract's operations (the copy and additions.json) under /api/v1 from
// in-memory state, checking every request cc-ci sends and every response it returns against the
// contract. See docs/forge-double.md for what it models and where it differs from a real forge.
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { randomBytes } from 'node:crypto';
import { REACTIONS, type AccessMode, type CommitStatusState, type ForgeOperation } from '../../../controller/clients/forge/client.js';
import { BASE_PATH, operations, type OperationContract } from './contract.js';
import {
  atLeast,
  byCreationThenId,
  ForgeState,
  randomSha,
  repoKey,
  type DoubleComment,
  type DoubleIssue,
  type DoublePush,
  type DoubleRepo,
  type DoubleStatus,
  type DoubleUser,
  type JsonObject,
} from './model.js';
import { OAuthProvider, scopeRefusal, type OAuthApp } from './oauth.js';
import { issueCommentPayload, reviewCommentPayload, type CommentAction, type ForgeFlavour } from './payloads.js';

export interface ContractViolation {
  direction: 'request' | 'response';
  /** null: the request matched no operation of the contract. */
  operation: ForgeOperation | null;
  method: string;
  url: string;
  status?: number;
  errors: string[];
}

export interface RecordedRequest {
  operation: ForgeOperation | null;
  method: string;
  url: string;
  status: number;
  /** Login the token belonged to; null when unauthenticated. */
  caller: string | null;
  /** True when the answer came from failNext rather than the handler. */
  injected: boolean;
}

/** A webhook the forge would have sent because of an API call (e.g. the bot's own comment). */
export interface ForgeEvent {
  eventType: 'pull_request_comment' | 'issue_comment';
  action: CommentAction;
  commentId: number;
  payload: JsonObject;
}

export interface ForgeDoubleOptions {
  botLogin?: string;
  /** Default: random hex. */
  botToken?: string;
  /** Instance URL used in html_url/clone_url etc.; default the double's own address. */
  publicUrl?: string;
  /** Start the clock here (frozen); default: follow real time. */
  time?: Date;
  /**
   * Answer successful writes as a sparse Gitea-compatible server did when tried (security
   * findings): a created or edited comment is `{"id": N}`, a reaction and a status an empty body.
   * Those answers are off the contract on purpose and are not recorded as violations.
   */
  minimalWriteBodies?: boolean;
}

interface HandlerContext {
  caller: DoubleUser;
  params: Record<string, unknown>;
  query: Record<string, unknown>;
  body: unknown;
}

interface DoubleReply {
  status: number;
  /** null sends an empty body. */
  body: unknown;
  headers?: Record<string, string>;
}

/** Thrown inside handlers to answer with an error; caught by the route wrapper. */
class HttpFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly emptyBody = false,
  ) {
    super(message);
  }
}

/** Markers the body parsers leave for the request validator. */
class UnparsableBody {
  constructor(readonly reason: string) {}
}

const DEFAULT_PAGE_SIZE = 30; // [api] DEFAULT_PAGING_NUM
const MAX_PAGE_SIZE = 50; // [api] MAX_RESPONSE_ITEMS

type Fault = { kind: 'fail'; status: number; remaining: number } | { kind: 'delay'; ms: number; remaining: number };

export class ForgeDouble {
  readonly violations: ContractViolation[] = [];
  readonly requests: RecordedRequest[] = [];
  readonly events: ForgeEvent[] = [];
  readonly bot: DoubleUser;
  readonly botToken: string;
  readonly state: ForgeState;
  /** The forge as an OAuth2 provider: apps, codes, tokens, and the calls of its endpoints (oauth.ts). */
  readonly oauth: OAuthProvider;

  private readonly tokens = new Map<string, string>();
  private readonly faults = new Map<ForgeOperation, Fault[]>();
  private down = false;
  private readonly holds = new Set<() => void>();
  private frozenTime: number | null;
  private readonly minimalWriteBodies: boolean;
  private app: FastifyInstance | null = null;
  private address = '';

  private constructor(options: ForgeDoubleOptions) {
    this.frozenTime = options.time ? Math.floor(options.time.getTime() / 1000) : null;
    this.minimalWriteBodies = options.minimalWriteBodies ?? false;
    this.state = new ForgeState(options.publicUrl ?? 'http://127.0.0.1/', () => this.nowSeconds());
    this.botToken = options.botToken ?? randomBytes(20).toString('hex');
    this.bot = this.addUser({ login: options.botLogin ?? 'cc-ci', fullName: 'cc-ci bot', token: this.botToken });
    this.oauth = new OAuthProvider(this.state, () => this.nowSeconds());
  }

  static async start(options: ForgeDoubleOptions = {}): Promise<ForgeDouble> {
    const double = new ForgeDouble(options);
    const app = double.buildApp();
    double.address = await app.listen({ host: '127.0.0.1', port: 0 });
    double.app = app;
    if (options.publicUrl === undefined) double.state.baseUrl = `${double.address}/`;
    return double;
  }

  /** Instance root for ForgeClient's baseUrl (no trailing slash, no /api/v1). */
  get url(): string {
    return this.address;
  }

  async close(): Promise<void> {
    for (const release of [...this.holds]) release();
    await this.app?.close();
  }

  // ---- clock ------------------------------------------------------------------------------------

  private nowSeconds(): number {
    return this.frozenTime ?? Math.floor(Date.now() / 1000);
  }

  /** Freezes the clock at `date` (whole seconds, as the forge stores them). */
  setTime(date: Date): void {
    this.frozenTime = Math.floor(date.getTime() / 1000);
  }

  advanceTime(seconds: number): void {
    this.frozenTime = this.nowSeconds() + seconds;
  }

  // ---- seeding ----------------------------------------------------------------------------------

  addUser(fields: { login: string; fullName?: string; isAdmin?: boolean; token?: string }): DoubleUser {
    const user = this.state.addUser(fields.login, { fullName: fields.fullName ?? '', isAdmin: fields.isAdmin ?? false });
    if (fields.token !== undefined) this.tokens.set(fields.token, user.login);
    return user;
  }

  /**
   * Adds a repository; its owner becomes an organisation if no such user exists. The bot gets
   * `botAccess` (default admin: the access cc-ci needs to read commenters' permissions).
   */
  addRepo(fields: {
    owner: string;
    name: string;
    private?: boolean;
    archived?: boolean;
    parent?: string;
    permissions?: Record<string, AccessMode>;
    botAccess?: AccessMode;
  }): DoubleRepo {
    const repo = this.state.addRepo(fields.owner, fields.name, fields);
    repo.permissions.set(this.bot.login.toLowerCase(), fields.botAccess ?? 'admin');
    for (const [login, mode] of Object.entries(fields.permissions ?? {})) this.setPermission(`${fields.owner}/${fields.name}`, login, mode);
    return repo;
  }

  /** An OAuth2 application, as a user registers one in the forge's settings (a confidential client unless said). */
  addOAuthApp(fields: { clientId?: string; clientSecret?: string; redirectUris: string[]; confidential?: boolean }): OAuthApp {
    return this.oauth.addApp(fields);
  }

  /**
   * Who is signed in to the forge when a browser opens the authorize page, and whether they
   * approve: the page then redirects straight back with a code (or `access_denied`). null: nobody
   * is signed in, and the page sends the browser to the forge's login.
   */
  authorizeAs(login: string | null, options: { approve?: boolean } = {}): void {
    this.oauth.authorizeAs(login, options);
  }

  setPermission(repoName: string, login: string, mode: AccessMode): void {
    this.state.requireUser(login);
    this.state.requireRepo(repoName).permissions.set(login.toLowerCase(), mode);
  }

  /** A pull request from `headRepo` (default: the same repository) branch `headRef`. */
  addPullRequest(fields: {
    repo: string;
    author: string;
    title?: string;
    body?: string;
    headRef?: string;
    headSha?: string;
    headRepo?: string;
    baseRef?: string;
    baseSha?: string;
    cloneUrl?: string;
    draft?: boolean;
  }): DoubleIssue {
    return this.state.addIssue(fields.repo, {
      author: fields.author,
      title: fields.title ?? 'Bump image',
      body: fields.body ?? '',
      pull: {
        headRepo: repoKey(...splitName(fields.headRepo ?? fields.repo)),
        headRef: fields.headRef ?? 'feature',
        headSha: fields.headSha ?? randomSha(),
        baseRef: fields.baseRef ?? 'main',
        baseSha: fields.baseSha ?? randomSha(),
        draft: fields.draft ?? false,
        merged: false,
        cloneUrl: fields.cloneUrl ?? null,
      },
    });
  }

  addIssue(fields: { repo: string; author: string; title?: string; body?: string }): DoubleIssue {
    return this.state.addIssue(fields.repo, fields);
  }

  /** A push to the pull request's head branch: its head becomes `sha`, and the timeline says when. */
  pushToPullRequest(fields: { repo: string; index: number; pusher: string; sha?: string; force?: boolean; at?: Date }): string {
    const sha = fields.sha ?? randomSha();
    const at = fields.at ? Math.floor(fields.at.getTime() / 1000) : undefined;
    this.state.pushToPull(fields.repo, fields.index, fields.pusher, sha, { ...(fields.force ? { force: true } : {}), ...(at === undefined ? {} : { at }) });
    return sha;
  }

  /** Makes a commit known to the repository (statuses can only be set on known commits). */
  addCommit(repoName: string, sha: string): void {
    this.state.requireRepo(repoName).commits.add(sha);
  }

  /**
   * Adds a comment as if `author` wrote it in the web UI, and returns the `created` webhook body
   * the forge would send for it.
   */
  addComment(fields: { repo: string; index: number; author: string; body: string; at?: Date }): { comment: DoubleComment; payload: JsonObject } {
    const at = fields.at ? Math.floor(fields.at.getTime() / 1000) : undefined;
    const comment = this.state.addComment(fields.repo, fields.index, fields.author, fields.body, at);
    return { comment, payload: issueCommentPayload(this.state, comment, 'created') };
  }

  /** The webhook body for an action on an existing comment (e.g. `edited` with the old text). */
  commentPayload(commentId: number, action: CommentAction, options: { previousBody?: string; sender?: string; flavour?: ForgeFlavour } = {}): JsonObject {
    return issueCommentPayload(this.state, this.requireComment(commentId), action, options);
  }

  /** The webhook body of a review submitted as a comment (a PullRequestPayload). */
  reviewCommentPayload(fields: { repo: string; index: number; reviewer: string; content: string }): JsonObject {
    return reviewCommentPayload(this.state, fields.repo, fields.index, fields.reviewer, fields.content);
  }

  // ---- inspection -------------------------------------------------------------------------------

  comment(id: number): DoubleComment | undefined {
    return this.state.comments.get(id);
  }

  commentsOn(repoName: string, index: number): DoubleComment[] {
    const issue = this.state.issue(repoName, index);
    return issue ? this.state.commentsOf(issue) : [];
  }

  statusesFor(repoName: string, sha: string): DoubleStatus[] {
    const key = repoName.toLowerCase();
    return this.state.statuses.filter((s) => s.repo === key && s.sha === sha);
  }

  requestsFor(operation: ForgeOperation): RecordedRequest[] {
    return this.requests.filter((r) => r.operation === operation);
  }

  // ---- fault injection --------------------------------------------------------------------------

  /** The next `times` calls of `operation` get `status` (after request validation). */
  failNext(operation: ForgeOperation, status: number, times = 1): void {
    this.pushFault(operation, { kind: 'fail', status, remaining: times });
  }

  /** The next `times` calls of `operation` are held for `ms` before being answered. */
  delayNext(operation: ForgeOperation, ms: number, times = 1): void {
    this.pushFault(operation, { kind: 'delay', ms, remaining: times });
  }

  /** While down, every connection is dropped without an answer (a network error for the client). */
  setDown(down: boolean): void {
    this.down = down;
  }

  private pushFault(operation: ForgeOperation, fault: Fault): void {
    if (!operations.has(operation)) throw new Error(`unknown operation ${operation}`);
    const list = this.faults.get(operation) ?? [];
    list.push(fault);
    this.faults.set(operation, list);
  }

  private takeFault(operation: ForgeOperation, kind: Fault['kind']): Fault | undefined {
    const list = this.faults.get(operation) ?? [];
    const fault = list.find((f) => f.kind === kind && f.remaining > 0);
    if (fault) fault.remaining -= 1;
    return fault;
  }

  // ---- HTTP -------------------------------------------------------------------------------------

  private buildApp(): FastifyInstance {
    // forceCloseConnections: close() must not wait for keep-alive sockets or held (delayed) calls.
    const app = Fastify({ logger: false, forceCloseConnections: true });

    // Our own parsers: a body that is not JSON must reach the validator (and be recorded as a
    // violation) instead of being answered by fastify's own 400/415.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, text, done) => {
      try {
        done(null, JSON.parse(String(text)));
      } catch {
        done(null, new UnparsableBody('body is not valid JSON'));
      }
    });
    app.addContentTypeParser('*', { parseAs: 'string' }, (request, _text, done) => {
      done(null, new UnparsableBody(`unsupported content type ${JSON.stringify(request.headers['content-type'] ?? '')}`));
    });

    app.addHook('onRequest', async (request, reply) => {
      if (!this.down) return;
      reply.hijack();
      request.raw.socket.destroy();
    });

    this.oauth.register(app);

    for (const contract of operations.values()) {
      app.route({
        method: contract.method,
        url: BASE_PATH + contract.path.replace(/\{(\w+)\}/g, ':$1'),
        handler: (request, reply) => this.serve(contract, request, reply),
      });
    }

    app.setNotFoundHandler(async (request, reply) => {
      const errors = ['no operation of the contract has this method and path'];
      this.violations.push({ direction: 'request', operation: null, method: request.method, url: request.url, errors });
      this.requests.push({ operation: null, method: request.method, url: request.url, status: 404, caller: null, injected: false });
      return reply.code(404).send({ message: 'not found', url: this.swaggerUrl(), errors: [] });
    });
    return app;
  }

  /** Waits `ms`, or less if the client hangs up or the double closes: nobody is left to answer. */
  private hold(ms: number, reply: FastifyReply): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.holds.delete(done);
        reply.raw.off('close', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.holds.add(done);
      // The response closing before we answered means the client hung up (e.g. its timeout).
      reply.raw.once('close', done);
    });
  }

  private swaggerUrl(): string {
    return `${this.state.baseUrl}api/swagger`;
  }

  private async serve(contract: OperationContract, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const record = (status: number, caller: string | null, injected = false): void => {
      this.requests.push({ operation: contract.operation, method: request.method, url: request.url, status, caller, injected });
    };
    const send = (status: number, body: unknown, headers: Record<string, string> = {}): FastifyReply => {
      reply.code(status).headers(headers);
      if (body === null) return reply.send();
      return reply.header('content-type', 'application/json;charset=utf-8').send(JSON.stringify(body));
    };

    // 1. The request against the contract. Checked before anything else so that a bad request is
    //    recorded even when a fault or an auth failure would have answered it.
    const parsedBody = request.body;
    const checked = contract.validateRequest({
      params: request.params as Record<string, string>,
      query: request.query as Record<string, unknown>,
      body: parsedBody instanceof UnparsableBody ? undefined : parsedBody,
    });
    const errors = parsedBody instanceof UnparsableBody ? [parsedBody.reason, ...checked.errors] : checked.errors;
    if (errors.length > 0) {
      this.violations.push({ direction: 'request', operation: contract.operation, method: request.method, url: request.url, status: 422, errors });
      record(422, null);
      return send(422, { message: errors.join('; '), url: this.swaggerUrl() });
    }

    // 2. Injected faults.
    const delay = this.takeFault(contract.operation, 'delay');
    if (delay?.kind === 'delay') await this.hold(delay.ms, reply);
    const failure = this.takeFault(contract.operation, 'fail');
    if (failure?.kind === 'fail') {
      record(failure.status, null, true);
      return send(failure.status, { message: `injected failure of ${contract.operation}`, url: this.swaggerUrl() });
    }

    // 3. Authentication: only `Authorization: token <TOKEN>`, the form the contract names.
    const match = /^token (\S+)$/.exec(request.headers.authorization ?? '');
    const login = match?.[1] === undefined ? undefined : this.tokens.get(match[1]);
    // An OAuth access token (a login through the forge) may come as `Bearer` too (oauth.ts).
    const oauth = login === undefined ? this.oauth.userOfToken(request.headers.authorization) : null;
    const caller = this.state.user(login ?? oauth?.login ?? '');
    if (!caller) {
      record(401, null);
      return send(401, { message: 'token is required or invalid', url: this.swaggerUrl() });
    }
    const narrow = oauth ? scopeRefusal(oauth.scope, scopeCategory(contract.operation), request.method !== 'GET') : null;
    if (narrow !== null) {
      record(403, caller.login);
      return send(403, { message: narrow, url: this.swaggerUrl() });
    }

    // 4. The handler, and its answer against the contract.
    let answer: DoubleReply;
    try {
      answer = this.handle(contract.operation, { caller, params: checked.params, query: checked.query, body: parsedBody });
    } catch (thrown) {
      if (!(thrown instanceof HttpFailure)) throw thrown;
      const body = thrown.emptyBody
        ? null
        : { message: thrown.message, url: this.swaggerUrl(), ...(thrown.status === 404 ? { errors: [thrown.message] } : {}) };
      answer = { status: thrown.status, body };
    }
    if (this.minimalWriteBodies && request.method !== 'GET' && answer.status >= 200 && answer.status < 300) {
      const id = typeof answer.body === 'object' && answer.body !== null && 'id' in answer.body ? answer.body.id : undefined;
      const isComment = contract.operation === 'issueCreateComment' || contract.operation === 'issueEditComment';
      record(answer.status, caller.login);
      return send(answer.status, isComment ? { id } : null);
    }
    const responseErrors = contract.validateResponse(answer.status, answer.body);
    if (responseErrors.length > 0) {
      this.violations.push({
        direction: 'response',
        operation: contract.operation,
        method: request.method,
        url: request.url,
        status: answer.status,
        errors: responseErrors,
      });
    }
    record(answer.status, caller.login);
    return send(answer.status, answer.body, answer.headers);
  }

  private handle(operation: ForgeOperation, ctx: HandlerContext): DoubleReply {
    switch (operation) {
      case 'userGetCurrent':
        return { status: 200, body: this.state.userJson(ctx.caller) };
      case 'repoGetPullRequest':
        return this.getPullRequest(ctx);
      case 'issueGetComments':
        return this.listIssueComments(ctx);
      case 'issueGetRepoComments':
        return this.listRepoComments(ctx);
      case 'issueGetCommentsAndTimeline':
        return this.listTimeline(ctx);
      case 'issueCreateComment':
        return this.createComment(ctx);
      case 'issueEditComment':
        return this.editComment(ctx);
      case 'issuePostCommentReaction':
        return this.postReaction(ctx);
      case 'repoCreateStatus':
        return this.createStatus(ctx);
      case 'repoListStatuses':
        return this.listStatuses(ctx);
      case 'repoGetRepoPermissions':
        return this.getPermission(ctx);
    }
  }

  // ---- handlers (behaviour from the contract's x-notes and README §1, §4) -------------------------

  /** The repository of the path; 404 unless it exists and the caller may read it (like the forge). */
  private readableRepo(ctx: HandlerContext): DoubleRepo {
    const repo = this.state.repo(`${String(ctx.params['owner'])}/${String(ctx.params['repo'])}`);
    if (!repo || !atLeast(this.state.accessMode(repo, ctx.caller.login), 'read')) throw new HttpFailure(404, 'repository not found');
    return repo;
  }

  private issueOf(repo: DoubleRepo, ctx: HandlerContext): DoubleIssue {
    const issue = this.state.issue(repoKey(repo.owner, repo.name), Number(ctx.params['index']));
    if (!issue) throw new HttpFailure(404, 'issue not found');
    return issue;
  }

  private commentOf(repo: DoubleRepo, ctx: HandlerContext): DoubleComment {
    const comment = this.state.comments.get(Number(ctx.params['id']));
    if (!comment || comment.repo !== repoKey(repo.owner, repo.name)) throw new HttpFailure(404, 'comment not found');
    return comment;
  }

  private requireComment(id: number): DoubleComment {
    const comment = this.state.comments.get(id);
    if (!comment) throw new Error(`no comment ${id}`);
    return comment;
  }

  private getPullRequest(ctx: HandlerContext): DoubleReply {
    const repo = this.readableRepo(ctx);
    const issue = this.issueOf(repo, ctx);
    if (!issue.pull) throw new HttpFailure(404, 'pull request not found');
    return { status: 200, body: this.state.pullJson(issue, ctx.caller.login) };
  }

  /** `since`/`before`: RFC3339, cut to whole seconds, compared inclusively with updated time. */
  private timeWindow(ctx: HandlerContext): (c: { updated: number }) => boolean {
    const bound = (name: string): number | null => {
      const value = ctx.query[name];
      if (value === undefined) return null;
      const ms = Date.parse(String(value));
      if (Number.isNaN(ms)) throw new HttpFailure(422, `invalid ${name}`);
      return Math.floor(ms / 1000);
    };
    const since = bound('since');
    const before = bound('before');
    return (c) => (since === null || c.updated >= since) && (before === null || c.updated <= before);
  }

  private listIssueComments(ctx: HandlerContext): DoubleReply {
    const issue = this.issueOf(this.readableRepo(ctx), ctx);
    const inWindow = this.timeWindow(ctx);
    const comments = this.state.commentsOf(issue).filter(inWindow);
    return { status: 200, body: comments.map((c) => this.state.commentJson(c)), headers: { 'X-Total-Count': String(comments.length) } };
  }

  private listRepoComments(ctx: HandlerContext): DoubleReply {
    const repo = this.readableRepo(ctx);
    const inWindow = this.timeWindow(ctx);
    const key = repoKey(repo.owner, repo.name);
    const all = [...this.state.comments.values()].filter((c) => c.repo === key && inWindow(c)).sort(byCreationThenId);
    const page = paginate(all, ctx.query);
    return { status: 200, body: page.map((c) => this.state.commentJson(c)), headers: { 'X-Total-Count': String(all.length) } };
  }

  /** Comments and pushes of one issue, by creation then id, windowed and paginated (additions.json x-notes). */
  private listTimeline(ctx: HandlerContext): DoubleReply {
    const issue = this.issueOf(this.readableRepo(ctx), ctx);
    const inWindow = this.timeWindow(ctx);
    type Row =
      | { kind: 'comment'; comment: DoubleComment; created: number; updated: number; id: number }
      | { kind: 'push'; push: DoublePush; created: number; updated: number; id: number };
    const rows: Row[] = [
      ...this.state.commentsOf(issue).map((comment): Row => ({ kind: 'comment', comment, created: comment.created, updated: comment.updated, id: comment.id })),
      ...this.state.pushes
        .filter((p) => p.repo === issue.repo && p.index === issue.index)
        .map((push): Row => ({ kind: 'push', push, created: push.created, updated: push.created, id: push.id })),
    ]
      .filter((row) => inWindow(row))
      .sort((a, b) => a.created - b.created || a.id - b.id);
    return { status: 200, body: paginate(rows, ctx.query).map((row) => this.state.timelineJson(row)) };
  }

  private createComment(ctx: HandlerContext): DoubleReply {
    const repo = this.readableRepo(ctx);
    const issue = this.issueOf(repo, ctx);
    if (repo.archived) throw new HttpFailure(423, 'repository is archived');
    const body = readString(ctx.body, 'body');
    const comment = this.state.addComment(issue.repo, issue.index, ctx.caller.login, body);
    this.recordEvent(comment, 'created');
    return { status: 201, body: this.state.commentJson(comment) };
  }

  private editComment(ctx: HandlerContext): DoubleReply {
    const repo = this.readableRepo(ctx);
    const comment = this.commentOf(repo, ctx);
    const isPoster = comment.author.toLowerCase() === ctx.caller.login.toLowerCase();
    if (!isPoster && !atLeast(this.state.accessMode(repo, ctx.caller.login), 'write')) {
      throw new HttpFailure(403, 'forbidden', true); // the forge sends this 403 with no body
    }
    if (repo.archived) throw new HttpFailure(423, 'repository is archived');
    const body = readString(ctx.body, 'body');
    if (body !== comment.body) {
      const previousBody = comment.body;
      comment.body = body;
      comment.updated = this.nowSeconds();
      this.recordEvent(comment, 'edited', previousBody);
    }
    return { status: 200, body: this.state.commentJson(comment) };
  }

  private postReaction(ctx: HandlerContext): DoubleReply {
    const repo = this.readableRepo(ctx);
    const comment = this.commentOf(repo, ctx);
    const content = readString(ctx.body, 'content');
    if (!(REACTIONS as readonly string[]).includes(content)) throw new HttpFailure(403, `'${content}' is not an allowed reaction`);
    const existing = comment.reactions.find((r) => r.content === content && r.user.toLowerCase() === ctx.caller.login.toLowerCase());
    if (existing) return { status: 200, body: this.state.reactionJson(existing) };
    const reaction = { user: ctx.caller.login, content, created: this.nowSeconds() };
    comment.reactions.push(reaction);
    return { status: 201, body: this.state.reactionJson(reaction) };
  }

  private createStatus(ctx: HandlerContext): DoubleReply {
    const repo = this.readableRepo(ctx);
    if (!atLeast(this.state.accessMode(repo, ctx.caller.login), 'write')) throw new HttpFailure(403, 'user should have write access to the repository code');
    const sha = resolveCommit(repo, String(ctx.params['sha']));
    // Gitea v1.26.3 answers any CreateCommitStatus error, an unknown commit included, with 500.
    if (sha === null) throw new HttpFailure(500, `object does not exist [id: ${String(ctx.params['sha'])}]`);
    const status = this.state.addStatus(repo, sha, ctx.caller.login, {
      state: readString(ctx.body, 'state') as CommitStatusState,
      context: readString(ctx.body, 'context').trim(),
      description: readOptionalString(ctx.body, 'description').trim(),
      targetUrl: readOptionalString(ctx.body, 'target_url').trim(),
    });
    return { status: 201, body: this.state.statusJson(status) };
  }

  private listStatuses(ctx: HandlerContext): DoubleReply {
    const repo = this.readableRepo(ctx);
    // Listing does not resolve abbreviations: rows are stored under the full id and matched exactly.
    const sha = String(ctx.params['sha']);
    const key = repoKey(repo.owner, repo.name);
    const wantedState = ctx.query['state'];
    const matching = this.state.statuses.filter((s) => s.repo === key && s.sha === sha && (wantedState === undefined || s.state === wantedState));
    const sorted = sortStatuses(matching, ctx.query['sort']);
    return { status: 200, body: paginate(sorted, ctx.query).map((s) => this.state.statusJson(s)), headers: { 'X-Total-Count': String(matching.length) } };
  }

  private getPermission(ctx: HandlerContext): DoubleReply {
    const repo = this.readableRepo(ctx);
    const asked = String(ctx.params['collaborator']);
    const callerMode = this.state.accessMode(repo, ctx.caller.login);
    const self = asked.toLowerCase() === ctx.caller.login.toLowerCase();
    if (!ctx.caller.isAdmin && !atLeast(callerMode, 'admin') && !self) {
      throw new HttpFailure(403, 'Only admins can query all permissions, repo admins can query all repo permissions, collaborators can query only their own');
    }
    const user = this.state.user(asked);
    if (!user) throw new HttpFailure(404, 'user does not exist');
    const mode = this.state.accessMode(repo, user.login);
    return { status: 200, body: { permission: mode, role_name: mode, user: this.state.userJson(user) } };
  }

  private recordEvent(comment: DoubleComment, action: CommentAction, previousBody?: string): void {
    const issue = this.state.issue(comment.repo, comment.index);
    this.events.push({
      eventType: issue?.pull ? 'pull_request_comment' : 'issue_comment',
      action,
      commentId: comment.id,
      payload: issueCommentPayload(this.state, comment, action, previousBody === undefined ? {} : { previousBody }),
    });
  }
}

export const startForgeDouble = (options?: ForgeDoubleOptions): Promise<ForgeDouble> => ForgeDouble.start(options);

/** The scope category of an operation's route group in Gitea's routers/api/v1/api.go. */
function scopeCategory(operation: ForgeOperation): string {
  if (operation === 'userGetCurrent') return 'user';
  return operation.startsWith('issue') ? 'issue' : 'repository';
}

function splitName(fullName: string): [string, string] {
  const [owner, name] = fullName.split('/');
  if (!owner || !name) throw new Error(`expected owner/name, got ${fullName}`);
  return [owner, name];
}

function readString(body: unknown, key: string): string {
  const value = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[key] : undefined;
  if (typeof value !== 'string') throw new HttpFailure(422, `${key} is required`);
  return value;
}

function readOptionalString(body: unknown, key: string): string {
  const value = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[key] : undefined;
  return typeof value === 'string' ? value : '';
}

/** A full id, or an abbreviation of at least 4 hex digits naming exactly one known commit. */
function resolveCommit(repo: DoubleRepo, sha: string): string | null {
  const wanted = sha.trim().toLowerCase();
  if (!/^[0-9a-f]{4,64}$/.test(wanted)) return null;
  const matches = [...repo.commits].filter((c) => c.startsWith(wanted));
  return matches.length === 1 ? (matches[0] ?? null) : null;
}

function paginate<T>(items: readonly T[], query: Record<string, unknown>): T[] {
  const page = Math.max(1, Number(query['page'] ?? 1));
  const requested = Number(query['limit'] ?? 0);
  const size = requested > 0 ? Math.min(requested, MAX_PAGE_SIZE) : DEFAULT_PAGE_SIZE;
  return items.slice((page - 1) * size, page * size);
}

/** Gitea's GetCommitStatuses orders; the default is newest first. */
function sortStatuses(statuses: readonly DoubleStatus[], sort: unknown): DoubleStatus[] {
  const by = (key: (s: DoubleStatus) => number, direction: 1 | -1) => (a: DoubleStatus, b: DoubleStatus) => direction * (key(a) - key(b) || a.id - b.id);
  switch (sort) {
    case 'oldest':
      return [...statuses].sort(by((s) => s.created, 1));
    case 'recentupdate':
      return [...statuses].sort(by((s) => s.updated, -1));
    case 'leastupdate':
      return [...statuses].sort(by((s) => s.updated, 1));
    case 'leastindex':
      return [...statuses].sort(by((s) => s.id, 1));
    case 'highestindex':
      return [...statuses].sort(by((s) => s.id, -1));
    default:
      return [...statuses].sort(by((s) => s.created, -1));
  }
}
