// Logging in through the forge (controller/http/forge-login.ts) against the forge double's OAuth2
// provider: the whole flow, what is refused on the way, sessions and their cookies, who may act,
// form tokens, logout, and the operator's "login for everything". In process (fastify inject) for
// cc-ci, over real HTTP for the forge; no swarm.
import { chromium } from '@playwright/test';
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ForgeClient } from '../../controller/clients/forge/client.js';
import { EnrolledRepos } from '../../controller/forge/enrolled.js';
import { Auth, type ActionTarget } from '../../controller/http/auth.js';
import {
  FORM_TOKEN_FIELD,
  ForgeLogin,
  registerForgeLogin,
  sameSitePath,
  forgeLoginOptions,
  SESSION_COOKIE,
  type ForgeLoginOptions,
} from '../../controller/http/forge-login.js';
import { Metrics } from '../../controller/http/metrics.js';
import { buildApp } from '../../controller/http/server.js';
import { configSchema, loadConfig } from '../../controller/model/config.js';
import { createLogger } from '../../controller/model/log.js';
import { ensureStateDirs, statePaths } from '../../controller/model/paths.js';
import { Store } from '../../state/store.js';
import { startForgeDouble, type ForgeDouble, type OAuthApp } from '../support/forge-double/index.js';

const PUBLIC = 'https://ci.example.org';
const CALLBACK = `${PUBLIC}/login/callback`;
const SECRET = 'gto_client-secret-7c1d2e';
const TARGET: ActionTarget = { recipe: 'custom-html', forgeRepo: { owner: 'recipes', repo: 'custom-html' } };

let double: ForgeDouble;
let oauthApp: OAuthApp;
let app: FastifyInstance;
let login: ForgeLogin;
let clock: number;

function options(overrides: Partial<ForgeLoginOptions> = {}): ForgeLoginOptions {
  return {
    forgeUrl: double.url,
    publicUrl: PUBLIC,
    clientId: oauthApp.clientId,
    clientSecret: SECRET,
    sessionHours: 12,
    allowList: ['Carol'],
    repos: new EnrolledRepos(['recipes/custom-html', { name: 'mirrors/webnotes-src', recipe: 'webnotes' }]),
    permissions: new ForgeClient({ baseUrl: double.url, token: double.botToken, timeoutMs: 2_000, retry: { attempts: 1 } }),
    logger: createLogger('silent'),
    timeoutMs: 2_000,
    now: () => clock,
    ...overrides,
  };
}

beforeEach(async () => {
  clock = Date.parse('2026-07-01T10:00:00Z');
  double = await startForgeDouble({ botLogin: 'cc-ci' });
  for (const user of ['alice', 'bob', 'carol', 'dave', 'mallory']) double.addUser({ login: user });
  double.addRepo({ owner: 'recipes', name: 'custom-html', permissions: { alice: 'write', bob: 'read' } });
  double.addRepo({ owner: 'mirrors', name: 'webnotes-src', private: true, permissions: { dave: 'admin' } });
  oauthApp = double.addOAuthApp({ clientId: 'cc-ci-app', clientSecret: SECRET, redirectUris: [CALLBACK] });
  app = Fastify();
  app.get('/runs', async () => 'runs');
  login = registerForgeLogin(app, options());
  await app.ready();
});

afterEach(async () => {
  await app.close();
  await double.close();
});

// ---- helpers ----------------------------------------------------------------------------------------

function setCookies(res: LightMyRequestResponse): string[] {
  const header = res.headers['set-cookie'];
  return header === undefined ? [] : Array.isArray(header) ? header : [header];
}

/** name=value of the Set-Cookie for `name` (the last one), or undefined. */
function cookieFrom(res: LightMyRequestResponse, name: string): string | undefined {
  return setCookies(res)
    .filter((c) => c.startsWith(`${name}=`))
    .map((c) => c.split(';')[0])
    .at(-1);
}

/** The browser's part up to the forge's answer: /login, then the forge's authorize page. */
async function begin(next = '/runs/webnotes-pr1-1', target: FastifyInstance = app): Promise<{ loginCookie: string; authorize: URL; callback: URL }> {
  const start = await target.inject({ url: `/login?next=${encodeURIComponent(next)}` });
  expect(start.statusCode).toBe(302);
  const loginCookie = cookieFrom(start, 'ccci_login');
  expect(loginCookie).toBeDefined();
  const authorize = new URL(String(start.headers.location));
  const answer = await fetch(authorize, { redirect: 'manual', signal: AbortSignal.timeout(5_000) });
  expect(answer.status).toBe(303);
  return { loginCookie: loginCookie ?? '', authorize, callback: new URL(answer.headers.get('location') ?? '') };
}

function callback(url: URL, cookie: string | null, target: FastifyInstance = app): Promise<LightMyRequestResponse> {
  return target.inject({ url: `${url.pathname}${url.search}`, headers: cookie === null ? {} : { cookie } });
}

/** A whole login as `user`; returns the session cookie (name=value). */
async function logIn(user: string, target: FastifyInstance = app): Promise<string> {
  double.authorizeAs(user);
  const { loginCookie, callback: back } = await begin('/runs', target);
  const res = await callback(back, loginCookie, target);
  expect(res.statusCode).toBe(303);
  const session = cookieFrom(res, SESSION_COOKIE);
  expect(session).toMatch(/^ccci_session=[A-Za-z0-9_-]{43}$/);
  return session ?? '';
}

const requestWith = (cookie: string, headers: Record<string, string> = {}) => ({ headers: { cookie, host: 'ci.example.org', ...headers } }) as never;

// ---- the flow -----------------------------------------------------------------------------------------

describe('logging in through the forge', () => {
  it('goes to the forge with PKCE, comes back with a session, and keeps no forge token', async () => {
    double.authorizeAs('alice');
    const { loginCookie, authorize, callback: back } = await begin('/runs/webnotes-pr1-1?all=1');

    expect(`${authorize.origin}${authorize.pathname}`).toBe(`${double.url}/login/oauth/authorize`);
    const q = authorize.searchParams;
    expect(q.get('client_id')).toBe('cc-ci-app');
    expect(q.get('redirect_uri')).toBe(CALLBACK);
    expect(q.get('response_type')).toBe('code');
    expect(q.get('scope')).toBe('read:user');
    expect(q.get('code_challenge_method')).toBe('S256');
    expect(q.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(q.get('state')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(`${back.origin}${back.pathname}`).toBe(CALLBACK);
    expect(back.searchParams.get('state')).toBe(q.get('state'));

    const res = await callback(back, loginCookie);
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/runs/webnotes-pr1-1?all=1');
    const set = setCookies(res).find((c) => c.startsWith(`${SESSION_COOKIE}=`)) ?? '';
    expect(set).toMatch(/; Max-Age=43200; Path=\/; HttpOnly; SameSite=Lax; Secure$/);
    // The login cookie is spent.
    expect(setCookies(res).find((c) => c.startsWith('ccci_login='))).toMatch(/^ccci_login=; Max-Age=0; Path=\/login;/);

    const session = cookieFrom(res, SESSION_COOKIE) ?? '';
    expect(await login.actorOf(requestWith(session))).toEqual({ via: 'forge', login: 'alice' });

    // The forge saw the secret in the body, a verifier, and asked who the token is with it.
    const token = double.oauth.requests.find((r) => r.endpoint === 'access_token');
    expect(token).toMatchObject({ status: 200, clientAuth: 'body', params: { code_verifier: '<given>', redirect_uri: CALLBACK } });
    expect(double.requestsFor('userGetCurrent')).toEqual([expect.objectContaining({ status: 200, caller: 'alice' })]);
    expect(double.violations).toEqual([]);

    // Neither the forge's access token nor the session id is held anywhere in the login's state.
    const held = inspect(login, { depth: 10, showHidden: true });
    const [accessToken] = double.oauth.issuedAccessTokens;
    expect(accessToken).toBeDefined();
    expect(held).not.toContain(accessToken);
    expect(held).not.toContain(session.split('=')[1]);
    expect(login.sessionCount).toBe(1);
  });

  it('refuses a code the forge does not know, and makes no session', async () => {
    double.authorizeAs('alice');
    const { loginCookie, callback: back } = await begin();
    back.searchParams.set('code', 'gta_notarealcode');
    const res = await callback(back, loginCookie);
    expect(res.statusCode).toBe(502);
    expect(res.body).toContain('client is not authorized');
    expect(cookieFrom(res, SESSION_COOKIE)).toBeUndefined();
    expect(login.sessionCount).toBe(0);
  });

  it('refuses a code used twice (the forge deletes it when it is used)', async () => {
    double.authorizeAs('alice');
    const { loginCookie, callback: back } = await begin();
    expect((await callback(back, loginCookie)).statusCode).toBe(303);
    const again = await callback(back, loginCookie);
    expect(again.statusCode).toBe(502);
    expect(again.body).toContain('client is not authorized');
    expect(login.sessionCount).toBe(1);
  });

  it('refuses a code past its ten minutes', async () => {
    double.authorizeAs('alice');
    const { loginCookie, callback: back } = await begin();
    double.advanceTime(601);
    const res = await callback(back, loginCookie);
    expect(res.statusCode).toBe(502);
    expect(res.body).toContain('authorization code expired');
    expect(login.sessionCount).toBe(0);
  });

  it('refuses a state that is not the one its login cookie carries, before asking the forge', async () => {
    double.authorizeAs('alice');
    const first = await begin();
    const second = await begin();
    // The callback of the first login with the cookie of the second: a forged or crossed login.
    const res = await callback(first.callback, second.loginCookie);
    expect(res.statusCode).toBe(400);
    expect(res.body).toContain('state does not match');
    expect(double.oauth.requests.filter((r) => r.endpoint === 'access_token')).toEqual([]);
    expect(login.sessionCount).toBe(0);
  });

  it('refuses a callback without its login cookie, with a tampered one, or one older than ten minutes', async () => {
    double.authorizeAs('alice');
    const { loginCookie, callback: back } = await begin();
    expect((await callback(back, null)).statusCode).toBe(400);
    const [name, value] = loginCookie.split('=') as [string, string];
    const [body, mac] = value.split('.') as [string, string];
    const flipped = `${mac.slice(0, -2)}${mac.at(-2) === 'A' ? 'B' : 'A'}${mac.at(-1)}`;
    expect((await callback(back, `${name}=${body}.${flipped}`)).statusCode).toBe(400);
    // A body rewritten to go elsewhere, with the old MAC.
    const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(body, 'base64url').toString()), n: '/api/runs' })).toString('base64url');
    expect((await callback(back, `${name}=${forged}.${mac}`)).statusCode).toBe(400);
    clock += 601_000;
    const late = await callback(back, loginCookie);
    expect(late.statusCode).toBe(400);
    expect(late.body).toContain('longer than 10 minutes');
    expect(double.oauth.requests.filter((r) => r.endpoint === 'access_token')).toEqual([]);
  });

  it('says so when the person declines on the forge', async () => {
    double.authorizeAs('alice', { approve: false });
    const { loginCookie, callback: back } = await begin();
    expect(back.searchParams.get('error')).toBe('access_denied');
    const res = await callback(back, loginCookie);
    expect(res.statusCode).toBe(403);
    expect(res.body).toContain('access_denied (the request is denied)');
    expect(login.sessionCount).toBe(0);
    // A made-up link puts no words on cc-ci's page: without this login's state the text is not shown.
    const made = await app.inject({ url: '/login/callback?error=access_denied&error_description=Call+0800+for+help&state=x' });
    expect(made.statusCode).toBe(400);
    expect(made.body).not.toContain('0800');
  });

  it('refuses an oversized code or state without asking the forge', async () => {
    double.authorizeAs('alice');
    const { loginCookie, callback: back } = await begin();
    const longCode = new URL(back);
    longCode.searchParams.set('code', 'c'.repeat(600));
    expect((await callback(longCode, loginCookie)).statusCode).toBe(400);
    const longState = new URL(back);
    longState.searchParams.set('state', 's'.repeat(200));
    expect((await callback(longState, loginCookie)).statusCode).toBe(400);
    expect(double.oauth.requests.filter((r) => r.endpoint === 'access_token')).toEqual([]);
  });

  it('says so when the forge does not answer, without a session', async () => {
    double.authorizeAs('alice');
    const { loginCookie, callback: back } = await begin();
    double.setDown(true);
    const res = await callback(back, loginCookie);
    double.setDown(false);
    expect(res.statusCode).toBe(502);
    expect(res.body).toContain('could not be reached');
    expect(login.sessionCount).toBe(0);
  });

  it('refuses when the client secret is wrong (the forge says so)', async () => {
    await app.close();
    app = Fastify();
    login = registerForgeLogin(app, options({ clientSecret: 'gto_wrong' }));
    double.authorizeAs('alice');
    const { loginCookie, callback: back } = await begin();
    const res = await callback(back, loginCookie);
    expect(res.statusCode).toBe(502);
    expect(res.body).toContain('invalid client secret');
    // The page never shows the secret it sent.
    expect(res.body).not.toContain('gto_wrong');
  });

  it.each(['//evil.example/x', '/\\evil.example', 'https://evil.example/', '/\t/evil.example', 'javascript:alert(1)', '/login?next=/runs'])(
    'goes to /runs, not to next=%j',
    async (next) => {
      double.authorizeAs('alice');
      const { loginCookie, callback: back } = await begin(next);
      const res = await callback(back, loginCookie);
      expect(res.statusCode).toBe(303);
      expect(res.headers.location).toBe('/runs');
    },
  );

  it('takes only same-site paths for next', () => {
    expect(sameSitePath('/runs/x?y=1#z')).toBe('/runs/x?y=1#z');
    for (const bad of ['', 'runs', '//evil', '/\\evil', '/a\\b', '/a b', '/a\nb', '/a\u007f', `/${'a'.repeat(1100)}`, null])
      expect(sameSitePath(bad)).toBeNull();
  });
});

// ---- sessions ------------------------------------------------------------------------------------------

describe('sessions', () => {
  it('a forged, tampered, oversized, repeated or malformed cookie is nobody, and never throws', async () => {
    const session = await logIn('alice');
    const id = session.split('=')[1] ?? '';
    const tampered = `${id.slice(0, 10)}${id[10] === 'A' ? 'B' : 'A'}${id.slice(11)}`;
    const cookies = [
      `${SESSION_COOKIE}=${'A'.repeat(43)}`,
      `${SESSION_COOKIE}=${tampered}`,
      `${SESSION_COOKIE}=${id}x`,
      `${SESSION_COOKIE}=${id}; ${SESSION_COOKIE}=${id}`,
      `${SESSION_COOKIE}=%%%; =; ;;`,
      `${SESSION_COOKIE}=${id}; pad=${'x'.repeat(9000)}`,
      `other=${id}`,
      '',
    ];
    for (const cookie of cookies) expect(await login.actorOf(requestWith(cookie)), cookie.slice(0, 80)).toBeNull();
    expect(await login.actorOf({ headers: {} } as never)).toBeNull();
    // The real one still works beside other cookies.
    expect(await login.actorOf(requestWith(`theme=dark; ${session}; x=1`))).toEqual({ via: 'forge', login: 'alice' });
  });

  it('ends after sessionHours', async () => {
    const session = await logIn('alice');
    clock += 12 * 3600_000 - 1000;
    expect(await login.actorOf(requestWith(session))).not.toBeNull();
    clock += 2000;
    expect(await login.actorOf(requestWith(session))).toBeNull();
  });

  it('keeps at most maxSessions, dropping the oldest', async () => {
    await app.close();
    app = Fastify();
    login = registerForgeLogin(app, options({ maxSessions: 2 }));
    const first = await logIn('alice');
    const second = await logIn('bob');
    const third = await logIn('carol');
    expect(login.sessionCount).toBe(2);
    expect(await login.actorOf(requestWith(first))).toBeNull();
    expect(await login.actorOf(requestWith(second))).toEqual({ via: 'forge', login: 'bob' });
    expect(await login.actorOf(requestWith(third))).toEqual({ via: 'forge', login: 'carol' });
  });

  it('is not Secure when cc-ci is served over plain HTTP', async () => {
    await app.close();
    double.addOAuthApp({ clientId: 'plain', clientSecret: SECRET, redirectUris: ['http://ci.internal:8080/login/callback'] });
    app = Fastify();
    login = registerForgeLogin(app, options({ publicUrl: 'http://ci.internal:8080', clientId: 'plain' }));
    double.authorizeAs('alice');
    const { loginCookie, callback: back } = await begin();
    const res = await callback(back, loginCookie);
    expect(setCookies(res).find((c) => c.startsWith(`${SESSION_COOKIE}=`))).toMatch(/; HttpOnly; SameSite=Lax$/);
  });
});

// ---- who may act ---------------------------------------------------------------------------------------

describe('refusal: the !testme rule', () => {
  const actor = (name: string) => ({ via: 'forge' as const, login: name });

  it('lets write access through, and says why read access is not enough', async () => {
    expect(await login.refusal(actor('alice'), TARGET)).toBeNull();
    expect(await login.refusal(actor('bob'), TARGET)).toBe(
      'bob has read access to recipes/custom-html; cancelling and rerunning need write access or the allow-list',
    );
  });

  it('lets the allow-list through (any case) without asking the forge', async () => {
    expect(await login.refusal(actor('carol'), TARGET)).toBeNull();
    expect(await login.refusal(actor('CAROL'), TARGET)).toBeNull();
    expect(double.requestsFor('repoGetRepoPermissions')).toEqual([]);
  });

  it('asks about the enrolled repository of the recipe when the run did not come from the forge', async () => {
    const local: ActionTarget = { recipe: 'webnotes', forgeRepo: null };
    expect(await login.refusal(actor('dave'), local)).toBeNull();
    expect(await login.refusal(actor('bob'), local)).toMatch(/^bob has no access to mirrors\/webnotes-src; /);
    expect(double.requestsFor('repoGetRepoPermissions').map((r) => r.url)).toContain('/api/v1/repos/mirrors/webnotes-src/collaborators/dave/permission');
    expect(await login.refusal(actor('alice'), { recipe: 'unknown', forgeRepo: null })).toMatch(/no enrolled repository holds unknown/);
  });

  it('refuses, saying so, when the forge cannot answer', async () => {
    double.failNext('repoGetRepoPermissions', 500);
    expect(await login.refusal(actor('alice'), TARGET)).toMatch(/^the forge could not be asked whether alice may act on recipes\/custom-html \(.*500/);
    double.setDown(true);
    expect(await login.refusal(actor('alice'), TARGET)).toMatch(/^the forge could not be asked whether alice may act/);
    double.setDown(false);
    double.addRepo({ owner: 'recipes', name: 'no-admin', botAccess: 'write', permissions: { alice: 'write' } });
    expect(await login.refusal(actor('alice'), { recipe: 'no-admin', forgeRepo: { owner: 'recipes', repo: 'no-admin' } })).toMatch(
      /the bot account needs admin on that repository/,
    );
  });

  it('answers in time when the forge is slow', async () => {
    await app.close();
    app = Fastify();
    login = registerForgeLogin(app, options({ decideWithinMs: 200 }));
    double.delayNext('repoGetRepoPermissions', 1_500);
    const started = Date.now();
    expect(await login.refusal(actor('alice'), TARGET)).toMatch(/did not say within 0.2 s whether alice may act/);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('is not for an actor it did not log in', async () => {
    expect(await login.refusal({ via: 'token', login: 'deploy-bot' }, TARGET)).toMatch(/did not log in through the forge/);
  });
});

// ---- form tokens and logout -------------------------------------------------------------------------------

describe('form tokens', () => {
  it('are per session and checked exactly', async () => {
    const alice = await logIn('alice');
    const bob = await logIn('bob');
    const aliceToken = login.formToken(requestWith(alice));
    const bobToken = login.formToken(requestWith(bob));
    expect(aliceToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(bobToken).not.toBe(aliceToken);
    expect(login.formTokenValid(requestWith(alice), aliceToken ?? '')).toBe(true);
    expect(login.formTokenValid(requestWith(alice), bobToken ?? '')).toBe(false);
    expect(login.formTokenValid(requestWith(alice), `${aliceToken}x`)).toBe(false);
    expect(login.formTokenValid(requestWith(alice), '')).toBe(false);
    expect(login.formTokenValid(requestWith(alice), 'x'.repeat(10_000))).toBe(false);
    expect(login.formToken(requestWith('nothing=here'))).toBeNull();
    expect(login.formTokenValid(requestWith('nothing=here'), aliceToken ?? '')).toBe(false);
  });

  it('is what Auth hands a page', async () => {
    const alice = await logIn('alice');
    const auth = new Auth([login]);
    expect(auth.formToken(requestWith(alice))).toBe(login.formToken(requestWith(alice)));
    expect(await auth.actorOf(requestWith(alice))).toMatchObject({ actor: { via: 'forge', login: 'alice' }, source: login });
  });
});

describe('POST /logout', () => {
  const logout = (cookie: string, form: Record<string, string>, origin = PUBLIC) =>
    app.inject({
      method: 'POST',
      url: '/logout',
      headers: { cookie, host: 'ci.example.org', origin, 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams(form).toString(),
    });

  it('ends the session with the form token from this site', async () => {
    const session = await logIn('alice');
    const token = login.formToken(requestWith(session)) ?? '';
    const res = await logout(session, { [FORM_TOKEN_FIELD]: token });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/runs');
    expect(setCookies(res)).toContainEqual(expect.stringMatching(/^ccci_session=; Max-Age=0; Path=\/;/));
    expect(await login.actorOf(requestWith(session))).toBeNull();
    expect(login.sessionCount).toBe(0);
  });

  it('refuses without the form token, with another session’s, or from another site', async () => {
    const session = await logIn('alice');
    const other = await logIn('bob');
    const token = login.formToken(requestWith(session)) ?? '';
    expect((await logout(session, {})).statusCode).toBe(403);
    expect((await logout(session, { [FORM_TOKEN_FIELD]: login.formToken(requestWith(other)) ?? '' })).statusCode).toBe(403);
    const crossSite = await logout(session, { [FORM_TOKEN_FIELD]: token }, 'https://evil.example');
    expect(crossSite.statusCode).toBe(403);
    expect(crossSite.body).toContain('another site');
    expect(await login.actorOf(requestWith(session))).toEqual({ via: 'forge', login: 'alice' });
  });

  it('without a session just clears the cookie', async () => {
    const res = await logout(`${SESSION_COOKIE}=${'A'.repeat(43)}`, {});
    expect(res.statusCode).toBe(303);
    expect(cookieFrom(res, SESSION_COOKIE)).toBe('ccci_session=');
  });
});

// ---- reading with http.requireLogin -------------------------------------------------------------------------

describe('http.requireLogin', () => {
  let dir: string;
  let store: Store;
  let server: FastifyInstance;

  /** The server as `cc-ci serve` builds it (buildApp wires the login and the read check itself). */
  async function serve(requireLogin: boolean, withLogin = true): Promise<void> {
    const config = configSchema.parse({
      forge: { url: double.url, tokenFile: '/dev/null', webhookSecretFile: '/dev/null' },
      http: { publicUrl: PUBLIC, requireLogin },
    });
    server = buildApp(
      {
        store,
        paths: statePaths(dir),
        config,
        logger: createLogger('silent'),
        metrics: new Metrics(store),
        webhook: null,
        ...(withLogin ? { loginOptions: options() } : {}),
      },
      new AbortController().signal,
    );
    await server.ready();
  }

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ccci-login-'));
    ensureStateDirs(statePaths(dir));
    store = new Store(statePaths(dir).db);
  });

  afterEach(async () => {
    await server.close();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('on: the API answers 401, a page sends to the login, and the open routes stay open', async () => {
    await serve(true);
    const api = await server.inject({ url: '/api/runs' });
    expect(api.statusCode).toBe(401);
    expect(api.json()).toEqual({ error: 'login required', login: '/login' });
    expect(api.headers['www-authenticate']).toBe('Bearer realm="cc-ci"');

    const page = await server.inject({ url: '/runs?recipe=webnotes' });
    expect(page.statusCode).toBe(302);
    expect(page.headers.location).toBe(`/login?next=${encodeURIComponent('/runs?recipe=webnotes')}`);
    // A path that matches nothing is not told apart from one that exists.
    expect((await server.inject({ url: '/no/such/page' })).statusCode).toBe(302);
    expect((await server.inject({ url: '/events/runs', headers: { accept: 'text/event-stream' } })).statusCode).toBe(401);

    expect((await server.inject({ url: '/healthz' })).json()).toEqual({ ok: true });
    expect((await server.inject({ url: '/metrics' })).statusCode).toBe(200);
    const hook = await server.inject({ method: 'POST', url: '/hooks/forge', payload: {} });
    expect(hook.json()).toMatchObject({ error: expect.stringContaining('webhook intake is off') });
    const badge = await server.inject({ url: '/badge/webnotes.svg' });
    expect(badge.statusCode).toBe(200);
    expect(badge.headers['content-type']).toContain('image/svg+xml');
    expect((await server.inject({ url: '/login?next=/runs' })).headers.location).toMatch(/\/login\/oauth\/authorize\?/);
  });

  it('on: a session reads everything, until it logs out', async () => {
    await serve(true);
    const session = await logIn('bob', server);
    expect((await server.inject({ url: '/api/runs', headers: { cookie: session } })).statusCode).toBe(200);
    const page = await server.inject({ url: '/runs', headers: { cookie: session } });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toContain('text/html');
    // The session's form token is on a run page's action forms; logging out beside the run
    // actions' own form parser.
    store.insertRun({
      name: 'r1',
      specJson: JSON.stringify({ spec: { recipe: 'webnotes', source: { repo: '/r', ref: 'main' }, lane: 'cold' } }),
      specHash: 'h',
      specPath: null,
      recipe: 'webnotes',
      lane: 'cold',
    });
    const runPage = (await server.inject({ url: '/runs/r1', headers: { cookie: session } })).body;
    expect(runPage).toContain('as bob');
    const formToken = /name="_form" value="([^"]+)"/.exec(runPage)?.[1] ?? '';
    expect(formToken).not.toBe('');
    const out = await server.inject({
      method: 'POST',
      url: '/logout',
      headers: { cookie: session, host: 'ci.example.org', origin: PUBLIC, 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ [FORM_TOKEN_FIELD]: formToken }).toString(),
    });
    expect(out.statusCode).toBe(303);
    expect((await server.inject({ url: '/api/runs', headers: { cookie: session } })).statusCode).toBe(401);
  });

  it('on, without a forge login (tokens only): a page is a 401 saying so', async () => {
    await serve(true, false);
    const page = await server.inject({ url: '/runs' });
    expect(page.statusCode).toBe(401);
    expect(page.body).toContain('API tokens only');
    expect((await server.inject({ url: '/api/runs' })).json()).toEqual({ error: 'login required' });
  });

  it('off: reading is open', async () => {
    await serve(false);
    expect((await server.inject({ url: '/api/runs' })).statusCode).toBe(200);
    expect((await server.inject({ url: '/runs' })).statusCode).toBe(200);
  });
});

// ---- actions with a session --------------------------------------------------------------------------------

describe('the run actions with a forge session', () => {
  let dir: string;
  let store: Store;
  let server: FastifyInstance;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ccci-login-act-'));
    ensureStateDirs(statePaths(dir));
    store = new Store(statePaths(dir).db);
    const config = configSchema.parse({ forge: { url: double.url, tokenFile: '/dev/null', webhookSecretFile: '/dev/null' }, http: { publicUrl: PUBLIC } });
    server = buildApp(
      { store, paths: statePaths(dir), config, logger: createLogger('silent'), metrics: new Metrics(store), webhook: null, loginOptions: options() },
      new AbortController().signal,
    );
    await server.ready();
    const spec = {
      apiVersion: 'cc-ci/v1',
      kind: 'Run',
      metadata: { name: 'pr-run' },
      spec: {
        recipe: 'custom-html',
        source: { repo: 'https://git.example.org/recipes/custom-html.git', ref: 'main' },
        lane: 'cold',
        trigger: { kind: 'comment', forge: { owner: 'recipes', repo: 'custom-html', pr: 3, comment: 30, by: 'alice' } },
      },
    };
    store.insertRun({ name: 'pr-run', specJson: JSON.stringify(spec), specHash: 'h', specPath: null, recipe: 'custom-html', lane: 'cold' });
    store.updateRun('pr-run', { phase: 'Testing' });
  });

  afterEach(async () => {
    await server.close();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The run page as `cookie` sees it, and the form token its forms carry. */
  async function runPage(cookie: string): Promise<{ body: string; form: string }> {
    const body = (await server.inject({ url: '/runs/pr-run', headers: { cookie } })).body;
    return { body, form: /name="_form" value="([^"]+)"/.exec(body)?.[1] ?? '' };
  }

  const postForm = (cookie: string, fields: Record<string, string>, origin = PUBLIC) =>
    server.inject({
      method: 'POST',
      url: '/runs/pr-run/cancel',
      headers: { cookie, host: 'ci.example.org', origin, 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams(fields).toString(),
    });

  it('a writer cancels from the page; the log says who', async () => {
    const session = await logIn('alice', server);
    const { body, form } = await runPage(session);
    expect(body).toMatch(/<button type="submit">Cancel<\/button>/);
    expect(body).toContain('as alice');
    const res = await postForm(session, { _form: form });
    expect(res.statusCode, res.body).toBe(303);
    expect(res.headers.location).toBe('/runs/pr-run');
    expect(store.getRun('pr-run')).toMatchObject({ cancelRequested: true, cancelReason: 'cancelled by alice' });
  });

  it('refused: a reader, another site, a stale form, a bad token beside a good cookie — and nothing changes', async () => {
    const reader = await logIn('bob', server);
    const asReader = await postForm(reader, { _form: (await runPage(reader)).form });
    expect(asReader.statusCode).toBe(403);
    expect(asReader.body).toMatch(/bob has read access to recipes\/custom-html/);
    const writer = await logIn('alice', server);
    const { form } = await runPage(writer);
    const crossSite = await postForm(writer, { _form: form }, 'https://evil.example');
    expect(crossSite.statusCode).toBe(403);
    expect(crossSite.body).toContain('another site');
    expect((await postForm(writer, { _form: 'stale' })).statusCode).toBe(403);
    const badToken = await server.inject({
      method: 'POST',
      url: '/api/v1/runs/pr-run/cancel',
      headers: { cookie: writer, authorization: 'Bearer ccci_forged', host: 'ci.example.org', origin: PUBLIC },
    });
    expect(badToken.statusCode).toBe(401);
    expect(store.getRun('pr-run')?.cancelRequested).toBe(false);
  });

  it('anonymous: the page offers to log in, not a form', async () => {
    const body = (await server.inject({ url: '/runs/pr-run' })).body;
    expect(body).toContain(`<a href="/login?next=%2Fruns%2Fpr-run">Log in</a> to cancel or rerun`);
    expect(body).not.toMatch(/<form method="post"/);
  });
});

// ---- one real browser ---------------------------------------------------------------------------------------

describe('in Chromium', () => {
  it('a whole login across two sites ends on the page asked for, with an HttpOnly, SameSite=Lax session cookie', async () => {
    // cc-ci on "localhost", the forge on 127.0.0.1: two sites, as in production.
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const a = probe.address();
        probe.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
      });
    });
    const base = `http://localhost:${port}`;
    double.addOAuthApp({ clientId: 'browser', clientSecret: SECRET, redirectUris: [`${base}/login/callback`] });
    double.authorizeAs('alice');
    const web = Fastify();
    const source = registerForgeLogin(web, options({ publicUrl: base, clientId: 'browser' }));
    web.get('/runs', async (request) => ({ actor: await source.actorOf(request) }));
    await web.listen({ host: '127.0.0.1', port });
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu'] });
    try {
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(`${base}/login?next=/runs`);
      expect(page.url()).toBe(`${base}/runs`);
      expect(JSON.parse((await page.textContent('body')) ?? '')).toEqual({ actor: { via: 'forge', login: 'alice' } });
      const cookies = await context.cookies(base);
      expect(cookies.map((c) => c.name)).toEqual([SESSION_COOKIE]);
      expect(cookies[0]).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/', secure: false });
    } finally {
      await browser.close();
      await web.close();
    }
  });
});

// ---- from the config ----------------------------------------------------------------------------------------

describe('the login config', () => {
  it('reads the client secret file, and is off without `login`', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ccci-login-config-'));
    try {
      writeFileSync(join(dir, 'secret'), `${SECRET}\n`);
      writeFileSync(
        join(dir, 'config.yaml'),
        [
          `forge: { url: '${double.url}', tokenFile: /dev/null, mode: poll, allowList: [Carol] }`,
          `http: { publicUrl: '${PUBLIC}' }`,
          `login: { clientId: cc-ci-app, clientSecretFile: ${join(dir, 'secret')} }`,
          'repos: [recipes/custom-html]',
        ].join('\n'),
      );
      const deps = { permissions: options().permissions, logger: createLogger('silent') };
      const o = forgeLoginOptions(loadConfig(join(dir, 'config.yaml')), deps);
      expect(o).toMatchObject({ clientId: 'cc-ci-app', clientSecret: SECRET, sessionHours: 12, publicUrl: PUBLIC, allowList: ['Carol'] });
      expect(o?.repos.lookup('recipes', 'custom-html')?.recipe).toBe('custom-html');
      expect(forgeLoginOptions(configSchema.parse({}), deps)).toBeNull();

      writeFileSync(
        join(dir, 'no-url.yaml'),
        `forge: { url: '${double.url}', tokenFile: /dev/null, mode: poll }\nlogin: { clientId: x, clientSecretFile: /nope }\n`,
      );
      expect(() => loadConfig(join(dir, 'no-url.yaml'))).toThrow(/login needs http.publicUrl/);
      const missing = configSchema.parse({
        forge: { url: double.url, tokenFile: '/dev/null', mode: 'poll' },
        http: { publicUrl: PUBLIC },
        login: { clientId: 'x', clientSecretFile: join(dir, 'absent') },
      });
      expect(() => forgeLoginOptions(missing, deps)).toThrow(/cannot read the OAuth2 client secret file .*absent: ENOENT/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
