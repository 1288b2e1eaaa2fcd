// The forge as an OAuth2 provider (docs/forge-double.md, "OAuth2 provider"): the authorize and
// access-token endpoints Gitea v1.26.3 serves under /login/oauth, and the OAuth access tokens they
// hand out, which the double's API accepts for the user they belong to.
//
// No shared contract covers these endpoints (the OpenAPI file is /api/v1 only). What is marked
// [verified] was read in go-gitea/gitea at tag v1.26.3 (commit 4aa0d704f2c7):
//   routers/web/web.go                       the routes: GET/POST /authorize behind reqSignIn,
//                                            POST /access_token
//   routers/web/auth/oauth2_provider.go      AuthorizeOAuth, GrantApplicationOAuth,
//                                            AccessTokenOAuth, handleAuthorizationCode, the errors
//   models/auth/oauth2.go                    ContainsRedirectURI, the code's lifetime and shape,
//                                            ValidateCodeChallenge, Invalidate
//   services/oauth2_provider/access_token.go the token answer and its errors, GrantAdditionalScopes
//   services/forms/user_form.go              AuthorizationForm, AccessTokenForm (form or JSON)
//   modules/auth/httpauth/httpauth.go        `Bearer` and `token`, either case, for API tokens
//   routers/api/v1/api.go                    tokenRequiresScopes (the 403 for a narrow token)
//   modules/web/middleware/cookie.go         RedirectLinkUserLogin (not signed in)
// What is marked [invented] has no counterpart there; the comment says why.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { ForgeState } from './model.js';

export interface OAuthApp {
  clientId: string;
  clientSecret: string;
  redirectUris: string[];
  /** A confidential client authenticates with its secret; a public one must use PKCE [verified]. */
  confidential: boolean;
}

interface AuthorizationCode {
  code: string;
  clientId: string;
  login: string;
  redirectUri: string;
  challenge: string;
  method: string;
  scope: string;
  /** Seconds on the double's clock. */
  validUntil: number;
}

interface OAuthToken {
  login: string;
  scope: string;
  expires: number;
}

/** One call of an OAuth endpoint, without its secrets (the code, the client secret, the verifier). */
export interface OAuthRequest {
  endpoint: 'authorize' | 'access_token';
  method: string;
  status: number;
  /** The RFC 6749 error code answered, if any. */
  error: string | null;
  /** The parameters sent, secrets replaced by `<given>`. */
  params: Record<string, string>;
  /** How the client authenticated at the token endpoint. */
  clientAuth: 'body' | 'basic' | null;
}

/** [verified] models/auth/oauth2.go oauth2AuthorizationCodeValidity */
const CODE_VALIDITY_SECONDS = 10 * 60;
/** [verified] modules/setting/oauth2.go ACCESS_TOKEN_EXPIRATION_TIME default */
const ACCESS_TOKEN_SECONDS = 3600;
const SECRET_PARAMS = new Set(['code', 'client_secret', 'code_verifier', 'refresh_token']);
/** [verified] services/oauth2_provider/access_token.go GrantAdditionalScopes: these say who, not what. */
const GENERAL_SCOPES = new Set(['openid', 'profile', 'email', 'groups']);

export class OAuthProvider {
  readonly apps = new Map<string, OAuthApp>();
  readonly requests: OAuthRequest[] = [];
  private readonly codes = new Map<string, AuthorizationCode>();
  private readonly tokens = new Map<string, OAuthToken>();
  private signedIn: { login: string; approve: boolean } | null = null;

  constructor(
    private readonly state: ForgeState,
    private readonly now: () => number,
  ) {}

  addApp(fields: { clientId?: string; clientSecret?: string; redirectUris: string[]; confidential?: boolean }): OAuthApp {
    // [verified] Gitea makes a UUID client id and a "gto_" secret; any text works here.
    const app: OAuthApp = {
      clientId: fields.clientId ?? randomUUID(),
      clientSecret: fields.clientSecret ?? `gto_${randomBase32(32)}`,
      redirectUris: [...fields.redirectUris],
      confidential: fields.confidential ?? true,
    };
    this.apps.set(app.clientId, app);
    return app;
  }

  /**
   * [invented] Who is signed in to the forge in the browser that opens the authorize page, and
   * whether they press "Authorize" (the double has no browser UI). Gitea shows a consent page and
   * redirects after its form is posted; for a confidential client the user already granted it
   * redirects at once. Both end in the same 303 this models.
   */
  authorizeAs(login: string | null, options: { approve?: boolean } = {}): void {
    if (login !== null) this.state.requireUser(login);
    this.signedIn = login === null ? null : { login, approve: options.approve ?? true };
  }

  /** The user and scope of an OAuth access token sent to the API, or null. */
  userOfToken(authorization: string | undefined): { login: string; scope: string } | null {
    // [verified] httpauth.ParseAuthorizationHeader: two fields, `token` or `bearer` in any case.
    const parts = (authorization ?? '').trim().split(/\s+/);
    if (parts.length !== 2 || !/^(token|bearer)$/i.test(parts[0] ?? '')) return null;
    const token = this.tokens.get(parts[1] ?? '');
    if (!token || token.expires <= this.now()) return null;
    return { login: token.login, scope: token.scope };
  }

  /** The access tokens handed out, so a test can look for them where they must not be. */
  get issuedAccessTokens(): string[] {
    return [...this.tokens.keys()];
  }

  /** Codes issued and not yet used (tests look at their count). */
  get openCodes(): number {
    return this.codes.size;
  }

  register(app: FastifyInstance): void {
    void app.register(async (scope) => {
      // [verified] the forms bind from a urlencoded form or from JSON (AccessTokenForm has json tags).
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 64 * 1024 }, (_request, body, done) => {
        done(null, Object.fromEntries(new URLSearchParams(String(body))));
      });
      scope.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: 64 * 1024 }, (_request, body, done) => {
        try {
          done(null, JSON.parse(String(body)));
        } catch {
          done(null, {});
        }
      });
      // [unsure] any other type binds nothing, so the fields are empty.
      scope.addContentTypeParser('*', { parseAs: 'string' }, (_request, _body, done) => done(null, {}));
      scope.get('/login/oauth/authorize', async (request, reply) => this.authorize(request, reply));
      scope.post('/login/oauth/access_token', async (request, reply) => this.accessToken(request, reply));
    });
  }

  // ---- /login/oauth/authorize -------------------------------------------------------------------

  private authorize(request: FastifyRequest, reply: FastifyReply): FastifyReply {
    const q = stringFields(request.query);
    const record = (status: number, error: string | null): void => {
      this.requests.push({ endpoint: 'authorize', method: request.method, status, error, params: withoutSecrets(q), clientAuth: null });
    };
    // [verified] reqSignIn: not signed in, the browser goes to the login page first.
    if (!this.signedIn) {
      record(303, null);
      return reply.redirect(`/user/login?redirect_to=${encodeURIComponent(request.url)}`, 303);
    }
    const clientId = q['client_id'] ?? '';
    const redirectUri = q['redirect_uri'] ?? '';
    const state = q['state'] ?? '';
    // [verified] the form's `binding` tags are not enforced here: an unknown or missing client id
    // and an unregistered redirect URI are answered with an HTML error page, never a redirect.
    const app = this.apps.get(clientId);
    if (!app) {
      record(400, 'unauthorized_client');
      return reply.code(400).type('text/html; charset=utf-8').send('<p>unauthorized_client: Client ID not registered</p>');
    }
    if (!containsRedirectUri(app, redirectUri)) {
      record(400, 'invalid_request');
      return reply.code(400).type('text/html; charset=utf-8').send('<p>invalid_request: Unregistered Redirect URI</p>');
    }
    const fail = (error: string, description: string): FastifyReply => {
      record(303, error);
      // [verified] handleAuthorizeError sets error, error_description and state (even empty).
      const target = new URL(redirectUri);
      target.searchParams.set('error', error);
      target.searchParams.set('error_description', description);
      target.searchParams.set('state', state);
      return reply.redirect(target.toString(), 303);
    };
    if (q['response_type'] !== 'code') return fail('unsupported_response_type', 'Only code response type is supported.');
    const method = q['code_challenge_method'] ?? '';
    if (method === '' && !app.confidential) return fail('invalid_request', 'PKCE is required for public clients');
    if (method !== '' && method !== 'S256' && method !== 'plain') return fail('invalid_request', 'unsupported code challenge method');
    if (!this.signedIn.approve) return fail('access_denied', 'the request is denied');
    // [verified] "gta_" and 32 random bytes in lowercase base32, valid 10 minutes.
    const code: AuthorizationCode = {
      code: `gta_${randomBase32(32)}`,
      clientId: app.clientId,
      login: this.signedIn.login,
      redirectUri,
      challenge: q['code_challenge'] ?? '',
      method,
      scope: q['scope'] ?? '',
      validUntil: this.now() + CODE_VALIDITY_SECONDS,
    };
    this.codes.set(code.code, code);
    // [verified] GenerateRedirectURI: the redirect URI's own query kept, `state` only when given.
    const target = new URL(redirectUri);
    if (state !== '') target.searchParams.set('state', state);
    target.searchParams.set('code', code.code);
    record(303, null);
    return reply.redirect(target.toString(), 303);
  }

  // ---- /login/oauth/access_token ----------------------------------------------------------------

  private accessToken(request: FastifyRequest, reply: FastifyReply): FastifyReply {
    const form = stringFields(request.body);
    let clientAuth: OAuthRequest['clientAuth'] = form['client_id'] && form['client_secret'] ? 'body' : null;
    const answer = (status: number, body: Record<string, unknown>): FastifyReply => {
      const error = typeof body['error'] === 'string' ? body['error'] : null;
      this.requests.push({ endpoint: 'access_token', method: request.method, status, error, params: withoutSecrets(form), clientAuth });
      return reply.code(status).header('content-type', 'application/json;charset=utf-8').send(JSON.stringify(body));
    };
    // [verified] errors are 400 {error, error_description}.
    const refuse = (error: string, description: string): FastifyReply => answer(400, { error, error_description: description });

    // [verified] client_id and client_secret may come in HTTP Basic auth instead of the body.
    if (!form['client_id'] || !form['client_secret']) {
      const header = request.headers.authorization;
      if (header) {
        const basic = parseBasic(header);
        if (!basic) return refuse('invalid_request', 'cannot parse basic auth header');
        if (form['client_id'] && form['client_id'] !== basic.user)
          return refuse('invalid_request', 'client_id in request body inconsistent with Authorization header');
        if (form['client_secret'] && form['client_secret'] !== basic.password) {
          return refuse('invalid_request', 'client_secret in request body inconsistent with Authorization header');
        }
        form['client_id'] = basic.user;
        form['client_secret'] = basic.password;
        clientAuth = 'basic';
      }
    }
    const grantType = form['grant_type'] ?? '';
    // [invented] refresh tokens are handed out but not taken back: cc-ci never refreshes.
    if (grantType === 'refresh_token') return refuse('unsupported_grant_type', 'the forge double does not model refresh_token');
    if (grantType !== 'authorization_code') return refuse('unsupported_grant_type', 'Only refresh_token or authorization_code grant type is supported');

    // [verified] handleAuthorizationCode, in its order.
    const clientId = form['client_id'] ?? '';
    const app = this.apps.get(clientId);
    if (!app) return refuse('invalid_client', `cannot load client with client id: '${clientId}'`);
    const secret = form['client_secret'] ?? '';
    if (app.confidential && !sameText(secret, app.clientSecret)) {
      return refuse('unauthorized_client', secret === '' ? 'invalid empty client secret' : 'invalid client secret');
    }
    const redirectUri = form['redirect_uri'] ?? '';
    if (redirectUri !== '' && !containsRedirectUri(app, redirectUri)) return refuse('unauthorized_client', 'unexpected redirect URI');
    const code = this.codes.get(form['code'] ?? '');
    // A used code was deleted, so it is "not authorized", not "already used" (that is only a race).
    if (!code) return refuse('unauthorized_client', 'client is not authorized');
    if (code.validUntil <= this.now()) {
      this.codes.delete(code.code);
      return refuse('invalid_grant', 'authorization code expired');
    }
    // A failed verifier leaves the code usable, as Gitea does.
    if (!validCodeChallenge(code, form['code_verifier'] ?? '')) return refuse('unauthorized_client', 'failed PKCE code challenge');
    if (code.redirectUri !== '' && redirectUri !== code.redirectUri)
      return refuse('invalid_grant', 'redirect_uri differs from the original authorization request');
    if (code.clientId !== app.clientId) return refuse('invalid_grant', 'invalid grant');
    this.codes.delete(code.code);

    // [invented shape] Gitea's tokens are signed JWTs (three dot-separated parts); cc-ci treats them as opaque.
    const accessToken = `${randomBase64url(24)}.${randomBase64url(48)}.${randomBase64url(32)}`;
    this.tokens.set(accessToken, { login: code.login, scope: code.scope, expires: this.now() + ACCESS_TOKEN_SECONDS });
    // [verified] AccessTokenResponse; id_token only with the openid scope, which the double does not sign.
    return answer(200, {
      access_token: accessToken,
      token_type: 'bearer',
      expires_in: ACCESS_TOKEN_SECONDS,
      refresh_token: `${randomBase64url(24)}.${randomBase64url(48)}.${randomBase64url(32)}`,
    });
  }
}

/**
 * [verified] tokenRequiresScopes with GrantAdditionalScopes: a token whose grant named access
 * scopes (not only openid/profile/email/groups) may use only those; without any it may use all.
 * `category` is the route group's (user, repository, issue); `write` for POST/PUT/PATCH/DELETE.
 * Returns the 403 message, or null when allowed.
 */
export function scopeRefusal(scope: string, category: string, write: boolean): string | null {
  const access = scope.split(' ').filter((s) => s !== '' && !GENERAL_SCOPES.has(s));
  if (access.length === 0 || access.includes('all')) return null;
  const required = write ? [`write:${category}`] : [`read:${category}`, `write:${category}`];
  if (required.some((r) => access.includes(r))) return null;
  return `token does not have at least one of required scope(s), required=[${required.join(' ')}], token scope=${access.join(',')}`;
}

/** [verified] ContainsRedirectURI: exact, but ASCII case and one trailing slash aside; a public
 *  client's loopback URI may name any port. */
function containsRedirectUri(app: OAuthApp, uri: string): boolean {
  const normal = (u: string): string => u.toLowerCase().replace(/\/$/, '');
  const candidates = [uri];
  if (!app.confidential) {
    try {
      const parsed = new URL(uri);
      if (parsed.protocol === 'http:' && parsed.port !== '' && /^(127\.\d+\.\d+\.\d+|\[::1\])$/.test(parsed.hostname)) {
        parsed.port = '';
        candidates.push(parsed.toString());
      }
    } catch {
      // not a URL: only the exact comparison
    }
  }
  return candidates.some((c) => app.redirectUris.some((r) => normal(r) === normal(c)));
}

/** [verified] ValidateCodeChallenge: no challenge, nothing to check; S256 or plain, compared in constant time. */
function validCodeChallenge(code: AuthorizationCode, verifier: string): boolean {
  if (code.method === '' && code.challenge === '') return true;
  if (verifier === '' || code.method === '') return false;
  const expected = code.method === 'S256' ? createHash('sha256').update(verifier).digest('base64url') : code.method === 'plain' ? verifier : null;
  return expected !== null && sameText(expected, code.challenge);
}

function parseBasic(header: string): { user: string; password: string } | null {
  const parts = header.trim().split(/\s+/);
  if (parts.length !== 2 || (parts[0] ?? '').toLowerCase() !== 'basic') return null;
  const decoded = Buffer.from(parts[1] ?? '', 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? null : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function stringFields(value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null) return {};
  return Object.fromEntries(Object.entries(value).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

function withoutSecrets(fields: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, SECRET_PARAMS.has(k) && v !== '' ? '<given>' : v]));
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** Lowercase base32 without padding, as Gitea writes codes and secrets. */
function randomBase32(bytes: number): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of randomBytes(bytes)) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

function randomBase64url(bytes: number): string {
  return randomBytes(bytes).toString('base64url');
}
