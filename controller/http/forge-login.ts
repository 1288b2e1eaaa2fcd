import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readBoundedBody } from '../clients/bounded-body.js';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ForgeError, type ForgeClient } from '../clients/forge/client.js';
import { readSecretFile } from '../clients/forge/secrets.js';
import { EnrolledRepos } from '../forge/enrolled.js';
import { grantsWrite, onAllowList } from '../forge/intake.js';
import type { Config } from '../model/config.js';
import type { Logger } from '../model/log.js';
import { crossSiteProblem, type ActionTarget, type Actor, type Auth, type AuthSource } from './auth.js';
import { esc, page } from './html.js';

/**
 * People log in to cc-ci through the forge (docs/security.md, "Who may act"): Gitea and Forgejo
 * are OAuth2 providers, so `/login` sends the browser to the forge's authorize page, the forge
 * sends it back to `/login/callback` with a code, and cc-ci trades the code (with its client
 * secret and the PKCE verifier) for an access token, asks the forge once who that token belongs
 * to, and forgets the token. What stays is a session: a random id in the `ccci_session` cookie,
 * kept here only as its SHA-256, with the login and an expiry.
 *
 * Sessions live in this process's memory. A restart logs everyone out, which costs a person one
 * trip to the forge (one click, or none once the forge remembers the grant); in exchange nothing
 * about sessions is written to the state directory, and there is no table to migrate or sweep.
 * The same per-process key signs the short-lived login cookie, derives the PKCE verifier and the
 * form tokens, so they all end together.
 *
 * Whether a login may act on a run is the `!testme` rule (docs/forge.md): the allow-list, or write
 * access to the recipe's repository, asked of the forge with the bot's client at the time of the
 * action (a permission taken away on the forge counts at once).
 */

export const SESSION_COOKIE = 'ccci_session';
/** The field that carries the form token in cc-ci's own forms: POST /logout, and the run actions (actions.ts reads the same). */
export const FORM_TOKEN_FIELD = '_form';

const LOGIN_COOKIE = 'ccci_login';
/** From /login to the callback: the forge's authorization code lives 10 minutes (docs/forge-double.md). */
const LOGIN_TTL_SECONDS = 600;
/** What cc-ci asks the forge to allow: reading the user, nothing else (Gitea and Forgejo narrow
 *  the token to the access scopes its grant names; docs/forge-double.md, "OAuth2 provider"). */
const SCOPE = 'read:user';

// Bounds on what a browser or the forge hands us. A Gitea code is "gta_" and 52 base32 characters,
// a state ours is 43; cookies ours are under 400 characters.
const MAX_COOKIE_HEADER = 8192;
const MAX_COOKIE_VALUE = 1024;
const MAX_CODE = 512;
const MAX_STATE = 128;
const MAX_NEXT = 1024;
const MAX_FORM_TOKEN = 128;
const MAX_FORGE_ANSWER_BYTES = 64 * 1024;
/** Sessions kept at most; past it the oldest goes first (each one took a successful forge login). */
const DEFAULT_MAX_SESSIONS = 10_000;

export interface ForgeLoginOptions {
  /** The forge's base URL (config forge.url). */
  forgeUrl: string;
  /** How people reach cc-ci (config http.publicUrl): the redirect URI is `<publicUrl>/login/callback`. */
  publicUrl: string;
  clientId: string;
  /** The OAuth2 application's secret, read from `login.clientSecretFile`; never logged or shown. */
  clientSecret: string;
  sessionHours: number;
  /** config forge.allowList */
  allowList: readonly string[];
  /** config repos: where a run's recipe lives when the run did not come from a pull request. */
  repos: EnrolledRepos;
  /** The bot's client: it asks the forge for a login's permission, as the `!testme` intake does. */
  permissions: Pick<ForgeClient, 'getCollaboratorPermission'>;
  logger: Logger;
  /** One call to the forge's token or user endpoint (default 10 s). */
  timeoutMs?: number;
  /** A refusal is decided within this, retries included; past it the answer says the forge did not answer (default 15 s). */
  decideWithinMs?: number;
  maxSessions?: number;
  /** Tests move the clock. */
  now?: () => number;
  fetch?: typeof fetch;
}

/**
 * The options of `registerForgeLogin` from the config, or null when `login` is not configured
 * (no login for people: API tokens only). Reads the client secret file; an unreadable one throws
 * (SecretFileError, naming the file, never its content), like the forge token at start.
 */
export function forgeLoginOptions(
  config: Config,
  deps: { permissions: Pick<ForgeClient, 'getCollaboratorPermission'>; logger: Logger },
): ForgeLoginOptions | null {
  const { login, forge, http } = config;
  if (!login) return null;
  if (!forge || !http.publicUrl) throw new Error('login needs forge.url and http.publicUrl (loadConfig checks this)');
  return {
    forgeUrl: forge.url,
    publicUrl: http.publicUrl,
    clientId: login.clientId,
    clientSecret: readSecretFile(login.clientSecretFile, 'OAuth2 client secret'),
    sessionHours: login.sessionHours,
    allowList: forge.allowList,
    repos: new EnrolledRepos(config.repos),
    permissions: deps.permissions,
    logger: deps.logger,
    timeoutMs: forge.timeoutSeconds * 1000,
  };
}

/** Registers /login, /login/callback and /logout, and returns the source that knows their sessions. */
export function registerForgeLogin(app: FastifyInstance, o: ForgeLoginOptions): ForgeLogin {
  const login = new ForgeLogin(o);
  login.register(app);
  return login;
}

interface Session {
  login: string;
  /** ms since the epoch */
  expiresAt: number;
}

/** What the login cookie carries from /login to the callback, signed. */
const pendingSchema = z.strictObject({ s: z.string().min(1).max(MAX_STATE), n: z.string().max(MAX_NEXT), e: z.number().int() });
type Pending = z.infer<typeof pendingSchema>;

const tokenAnswerSchema = z.object({ access_token: z.string().min(1).max(16_384), token_type: z.string().max(64) });
const tokenErrorSchema = z.object({ error: z.string().max(200), error_description: z.string().optional() });
const userAnswerSchema = z.object({ login: z.string() });
/** Gitea's and Forgejo's user names: alphanumerics, '-', '_', '.'. */
const LOGIN_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;

/** A login that cannot go on, with the sentence the person sees. */
class LoginFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export class ForgeLogin implements AuthSource {
  private readonly sessions = new Map<string, Session>();
  private readonly key = randomBytes(32);
  private readonly forgeBase: string;
  private readonly redirectUri: string;
  private readonly secure: boolean;
  private readonly now: () => number;
  private readonly fetch: typeof fetch;
  private readonly timeoutMs: number;
  private readonly decideWithinMs: number;
  private readonly maxSessions: number;
  private readonly sessionSeconds: number;

  constructor(private readonly o: ForgeLoginOptions) {
    this.forgeBase = o.forgeUrl.replace(/\/+$/, '');
    const publicBase = o.publicUrl.replace(/\/+$/, '');
    this.redirectUri = `${publicBase}/login/callback`;
    this.secure = new URL(publicBase).protocol === 'https:';
    this.now = o.now ?? Date.now;
    // Looked up per call, so a test that replaces globalThis.fetch is honoured.
    this.fetch = o.fetch ?? ((...args: Parameters<typeof fetch>) => fetch(...args));
    this.timeoutMs = o.timeoutMs ?? 10_000;
    this.decideWithinMs = o.decideWithinMs ?? 15_000;
    this.maxSessions = o.maxSessions ?? DEFAULT_MAX_SESSIONS;
    this.sessionSeconds = Math.floor(o.sessionHours * 3600);
  }

  /** Sessions held now (expired ones are dropped as new ones are made). */
  get sessionCount(): number {
    return this.sessions.size;
  }

  // ---- AuthSource ---------------------------------------------------------------------------------

  async actorOf(request: FastifyRequest): Promise<Actor | null> {
    const found = this.sessionOf(request);
    return found ? { via: 'forge', login: found.session.login } : null;
  }

  async refusal(actor: Actor, target: ActionTarget): Promise<string | null> {
    if (actor.via !== 'forge') return `${actor.login} did not log in through the forge`;
    const login = actor.login;
    if (onAllowList(this.o.allowList, login)) return null;
    const repos = target.forgeRepo
      ? [target.forgeRepo]
      : this.o.repos
          .list()
          .filter((r) => r.recipe === target.recipe)
          .map((r) => ({ owner: r.owner, repo: r.name }));
    if (repos.length === 0) {
      return `${login} is not on the allow-list, and no enrolled repository holds ${target.recipe} (config repos), so the forge cannot say whether ${login} may act on it`;
    }
    const answers: string[] = [];
    for (const repo of repos) {
      const answer = await this.permissionOn(repo, login);
      if ('mode' in answer && grantsWrite(answer.mode)) return null;
      answers.push('mode' in answer ? `${login} has ${answer.mode === 'none' ? 'no' : answer.mode} access to ${repo.owner}/${repo.repo}` : answer.problem);
    }
    return `${answers.join('; ')}; cancelling and rerunning need write access or the allow-list`;
  }

  formToken(request: FastifyRequest): string | null {
    const found = this.sessionOf(request);
    return found ? this.formTokenOf(found.hash) : null;
  }

  formTokenValid(request: FastifyRequest, token: string): boolean {
    const found = this.sessionOf(request);
    if (!found || token.length === 0 || token.length > MAX_FORM_TOKEN) return false;
    return sameText(token, this.formTokenOf(found.hash));
  }

  // ---- routes -------------------------------------------------------------------------------------

  register(app: FastifyInstance): void {
    app.get('/login', async (request, reply) => this.start(request, reply));
    app.get('/login/callback', async (request, reply) => this.callback(request, reply));
    void app.register(async (scope) => {
      // In this scope only: a form body, small. Other content types are refused (415).
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 }, (_request, body, done) => {
        done(null, Object.fromEntries(new URLSearchParams(String(body))));
      });
      scope.post('/logout', async (request, reply) => this.logout(request, reply));
    });
  }

  private async start(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const next = afterLogin(queryValue(request, 'next'));
    const state = base64url(randomBytes(32));
    const pending: Pending = { s: state, n: next, e: this.now() + LOGIN_TTL_SECONDS * 1000 };
    const url = new URL(`${this.forgeBase}/login/oauth/authorize`);
    url.search = new URLSearchParams({
      client_id: this.o.clientId,
      redirect_uri: this.redirectUri,
      response_type: 'code',
      scope: SCOPE,
      state,
      code_challenge: base64url(createHash('sha256').update(this.verifierFor(state)).digest()),
      code_challenge_method: 'S256',
    }).toString();
    reply.header('set-cookie', this.cookie(LOGIN_COOKIE, this.sign(pending), LOGIN_TTL_SECONDS, '/login'));
    return reply.header('cache-control', 'no-store').redirect(url.toString(), 302);
  }

  private async callback(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    // The login cookie is for this one callback, whatever comes of it.
    reply.header('set-cookie', this.cookie(LOGIN_COOKIE, '', 0, '/login'));
    reply.header('cache-control', 'no-store');
    try {
      const pending = this.pendingOf(request);
      const state = queryValue(request, 'state');
      if (state === null || state.length > MAX_STATE) throw new LoginFailure(400, 'The forge sent you back without a usable state.');
      if (!pending) throw new LoginFailure(400, 'This login was not started here, or took longer than 10 minutes.');
      if (!sameText(state, pending.s)) throw new LoginFailure(400, 'This login was not started here: its state does not match.');
      // Only the forge's answer to this very login is shown (its text escaped): a made-up link
      // cannot put words on cc-ci's page.
      const error = queryValue(request, 'error');
      if (error !== null) {
        const code = /^[a-z_]{1,64}$/.test(error) ? error : 'an error';
        const description = (queryValue(request, 'error_description') ?? '').slice(0, 300);
        throw new LoginFailure(403, `The forge did not log you in: ${code}${description ? ` (${description})` : ''}.`);
      }
      const code = queryValue(request, 'code');
      if (code === null || code.length === 0 || code.length > MAX_CODE) throw new LoginFailure(400, 'The forge sent you back without a usable code.');
      const token = await this.exchange(code, this.verifierFor(pending.s));
      // The access token is used for this one question and then dropped: cc-ci needs to know
      // who logged in, not to act as them (docs/security.md).
      const login = await this.whoIs(token);
      const previous = this.sessionOf(request);
      if (previous) this.sessions.delete(previous.hash);
      const id = this.createSession(login);
      reply.header('set-cookie', this.cookie(SESSION_COOKIE, id, this.sessionSeconds, '/'));
      this.o.logger.info({ login }, 'logged in through the forge');
      return reply.redirect(pending.n, 303);
    } catch (e) {
      if (!(e instanceof LoginFailure)) throw e;
      return reply
        .code(e.status)
        .type('text/html; charset=utf-8')
        .send(page('Login', `<h1>Login</h1><p>${esc(e.message)}</p><p><a href="/login">Log in again</a></p>`));
    }
  }

  private async logout(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const found = this.sessionOf(request);
    if (found) {
      const body = request.body;
      const field = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[FORM_TOKEN_FIELD] : undefined;
      const problem = crossSiteProblem(request, { via: 'forge', login: found.session.login }, this, typeof field === 'string' ? field : undefined);
      if (problem) return reply.code(403).type('text/plain; charset=utf-8').send(`${problem}\n`);
      this.sessions.delete(found.hash);
    }
    reply.header('set-cookie', this.cookie(SESSION_COOKIE, '', 0, '/'));
    return reply.redirect('/runs', 303);
  }

  // ---- the forge ----------------------------------------------------------------------------------

  /** The authorization code for an access token (RFC 6749 §4.1.3, with the PKCE verifier). */
  private async exchange(code: string, verifier: string): Promise<string> {
    const body = new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: this.redirectUri,
      client_id: this.o.clientId,
      client_secret: this.o.clientSecret,
      code_verifier: verifier,
    });
    const answer = await this.call('token', `${this.forgeBase}/login/oauth/access_token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: body.toString(),
    });
    if (answer.status !== 200) {
      const refusal = tokenErrorSchema.safeParse(answer.json);
      const why = refusal.success
        ? `${refusal.data.error}${refusal.data.error_description ? `: ${refusal.data.error_description.slice(0, 300)}` : ''}`
        : `HTTP ${answer.status}`;
      this.o.logger.warn({ status: answer.status, error: refusal.success ? refusal.data.error : null }, 'the forge refused a login code');
      throw new LoginFailure(502, `The forge did not accept the login (${why}).`);
    }
    const token = tokenAnswerSchema.safeParse(answer.json);
    if (!token.success || token.data.token_type.toLowerCase() !== 'bearer') {
      this.o.logger.warn({ status: answer.status }, 'the forge answered the token request with something that is not a bearer token');
      throw new LoginFailure(502, 'The forge answered the login with something cc-ci does not understand.');
    }
    return token.data.access_token;
  }

  /** Who the access token belongs to: GET /api/v1/user as that user. */
  private async whoIs(accessToken: string): Promise<string> {
    const answer = await this.call('user', `${this.forgeBase}/api/v1/user`, {
      method: 'GET',
      headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json' },
    });
    const user = userAnswerSchema.safeParse(answer.json);
    if (answer.status !== 200 || !user.success || !LOGIN_NAME.test(user.data.login)) {
      this.o.logger.warn({ status: answer.status }, 'the forge did not say who logged in');
      throw new LoginFailure(502, `The forge did not say who you are (HTTP ${answer.status}).`);
    }
    return user.data.login;
  }

  /** One request to the forge, with a time limit and a bounded answer; errors never carry what was sent. */
  private async call(what: 'token' | 'user', url: string, init: RequestInit): Promise<{ status: number; json: unknown }> {
    let response: Response;
    try {
      response = await this.fetch(url, { ...init, redirect: 'error', signal: AbortSignal.timeout(this.timeoutMs) });
      return { status: response.status, json: await readBoundedJson(response) };
    } catch (e) {
      if (e instanceof LoginFailure) throw e;
      const timedOut = e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError');
      this.o.logger.warn({ call: what, timedOut }, 'the forge could not be reached for a login');
      throw new LoginFailure(
        502,
        timedOut ? `The forge did not answer within ${this.timeoutMs / 1000} s; try again.` : 'The forge could not be reached; try again.',
      );
    }
  }

  /** A login's access mode on one repository, or why it could not be had. */
  private async permissionOn(repo: { owner: string; repo: string }, login: string): Promise<{ mode: string } | { problem: string }> {
    const name = `${repo.owner}/${repo.repo}`;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), this.decideWithinMs);
    });
    try {
      // The client retries a forge that fails; a person waiting on a button gets an answer in time.
      const answer = await Promise.race([this.o.permissions.getCollaboratorPermission(repo, login), deadline]);
      if (answer === 'late')
        return { problem: `the forge did not say within ${this.decideWithinMs / 1000} s whether ${login} may act on ${name}; try again later` };
      return { mode: answer.permission };
    } catch (e) {
      if (e instanceof ForgeError && e.status === 404) return { mode: 'none' };
      if (e instanceof ForgeError && e.status === 403) {
        return {
          problem: `the forge refused to tell cc-ci ${login}'s permission on ${name}: the bot account needs admin on that repository (docs/enroll-recipe.md)`,
        };
      }
      const detail = e instanceof ForgeError ? e.message : 'an unexpected error';
      return { problem: `the forge could not be asked whether ${login} may act on ${name} (${detail}); try again later` };
    } finally {
      clearTimeout(timer);
    }
  }

  // ---- sessions and cookies -----------------------------------------------------------------------

  private createSession(login: string): string {
    const now = this.now();
    for (const [hash, s] of this.sessions) if (s.expiresAt <= now) this.sessions.delete(hash);
    while (this.sessions.size >= this.maxSessions) {
      const oldest = this.sessions.keys().next();
      if (oldest.done) break;
      this.sessions.delete(oldest.value);
    }
    const id = base64url(randomBytes(32));
    this.sessions.set(sha256(id), { login, expiresAt: now + this.sessionSeconds * 1000 });
    return id;
  }

  private sessionOf(request: FastifyRequest): { hash: string; session: Session } | null {
    const id = readCookie(request, SESSION_COOKIE);
    if (id === null || !/^[A-Za-z0-9_-]{43}$/.test(id)) return null;
    const hash = sha256(id);
    const session = this.sessions.get(hash);
    if (!session) return null;
    if (session.expiresAt <= this.now()) {
      this.sessions.delete(hash);
      return null;
    }
    return { hash, session };
  }

  private formTokenOf(sessionHash: string): string {
    return base64url(createHmac('sha256', this.key).update(`form\0${sessionHash}`).digest());
  }

  /** The PKCE verifier of a login: derived from its state, so it need not be stored (43 characters, RFC 7636 §4.1). */
  private verifierFor(state: string): string {
    return base64url(createHmac('sha256', this.key).update(`pkce\0${state}`).digest());
  }

  private sign(pending: Pending): string {
    const body = base64url(Buffer.from(JSON.stringify(pending)));
    return `${body}.${this.mac(body)}`;
  }

  private pendingOf(request: FastifyRequest): Pending | null {
    const value = readCookie(request, LOGIN_COOKIE);
    const [body, mac, ...rest] = value?.split('.') ?? [];
    if (body === undefined || mac === undefined || rest.length > 0 || !sameText(mac, this.mac(body))) return null;
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    } catch {
      return null;
    }
    const pending = pendingSchema.safeParse(parsed);
    return pending.success && pending.data.e > this.now() ? pending.data : null;
  }

  private mac(text: string): string {
    return base64url(createHmac('sha256', this.key).update(`login\0${text}`).digest());
  }

  private cookie(name: string, value: string, maxAgeSeconds: number, path: string): string {
    return `${name}=${value}; Max-Age=${maxAgeSeconds}; Path=${path}; HttpOnly; SameSite=Lax${this.secure ? '; Secure' : ''}`;
  }
}

/**
 * Every page and API read needs an actor when the operator says so (http.requireLogin). Open
 * still: /healthz (probes), /metrics (counts by phase and outcome, no recipe, run or person; a
 * scraper has no login), the forge's webhook (it proves itself with its signature), the login
 * routes, and badges, which forge READMEs embed as images — a viewer's browser sends them no
 * session. An API or stream read without one is a 401; a page is a redirect to the login when
 * there is one.
 */
export function registerReadLogin(app: FastifyInstance, auth: Pick<Auth, 'actorOf'>, o: { requireLogin: boolean; loginPath: string | null }): void {
  if (!o.requireLogin) return;
  const open = new Set(['/healthz', '/metrics', '/hooks/forge', '/login', '/login/callback', '/logout', '/badge/:recipe.svg']);
  app.addHook('onRequest', async (request, reply) => {
    // The route that matched, not the raw path: an encoded or dotted path cannot pass for an open
    // one, and a path that matches no route needs a login too (what exists is not told).
    const route = request.routeOptions.url;
    if (route !== undefined && open.has(route)) return;
    if (await auth.actorOf(request)) return;
    const path = request.url.split('?')[0] ?? '';
    const wantsPage =
      (request.method === 'GET' || request.method === 'HEAD') &&
      !path.startsWith('/api/') &&
      !String(request.headers.accept ?? '').includes('text/event-stream');
    reply.header('cache-control', 'no-store');
    if (wantsPage && o.loginPath !== null) return reply.redirect(loginHref(request.url, o.loginPath), 302);
    reply.header('www-authenticate', 'Bearer realm="cc-ci"');
    if (wantsPage) return reply.code(401).type('text/plain; charset=utf-8').send('This cc-ci needs a login to read, and takes API tokens only.\n');
    return reply.code(401).send({ error: 'login required', ...(o.loginPath === null ? {} : { login: o.loginPath }) });
  });
}

/** The link that logs in and comes back to `next` (a page's own path and query), for pages to show. */
export function loginHref(next: string, loginPath = '/login'): string {
  return `${loginPath}?${new URLSearchParams({ next: sameSitePath(next) ?? '/runs' }).toString()}`;
}

/** A path on this site (`/runs/x?y`), or null: not `//host` or `/\host` (which browsers take for
 *  another site), no whitespace or control characters (which browsers drop), bounded. */
export function sameSitePath(value: string | null): string | null {
  if (value === null || value.length === 0 || value.length > MAX_NEXT) return null;
  if (!value.startsWith('/') || value.startsWith('//') || value.includes('\\')) return null;
  if (/[\x00-\x20\x7f]/.test(value)) return null;
  return value;
}

/** Where the login ends: the page asked for, unless it is not this site's or would log in again. */
function afterLogin(next: string | null): string {
  const path = sameSitePath(next);
  if (path === null || /^\/log(in|out)(\/|\?|$)/.test(path)) return '/runs';
  return path;
}

function queryValue(request: FastifyRequest, name: string): string | null {
  const query = request.query as Record<string, unknown> | undefined;
  const value = query?.[name];
  return typeof value === 'string' ? value : null;
}

/** One cookie's value; null when absent, repeated, oversized or not of our alphabet. Never throws. */
function readCookie(request: FastifyRequest, name: string): string | null {
  const header = request.headers.cookie;
  if (typeof header !== 'string' || header.length > MAX_COOKIE_HEADER) return null;
  let found: string | null = null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    // Two cookies of one name (one set for a parent path or domain): trust neither.
    if (found !== null) return null;
    found = part.slice(eq + 1).trim();
  }
  if (found === null || found.length === 0 || found.length > MAX_COOKIE_VALUE || !/^[A-Za-z0-9_.-]+$/.test(found)) return null;
  return found;
}

async function readBoundedJson(response: Response): Promise<unknown> {
  const body = await readBoundedBody(response, MAX_FORGE_ANSWER_BYTES);
  if (body === null) throw new LoginFailure(502, 'The forge answered the login with far more than cc-ci asked for.');
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    return null;
  }
}

/** Constant-time comparison of two short texts (tokens, states, MACs). */
function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function base64url(bytes: Buffer): string {
  return bytes.toString('base64url');
}
