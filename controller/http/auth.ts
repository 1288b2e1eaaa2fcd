import type { FastifyRequest } from 'fastify';

/**
 * Who may act on runs through the HTTP server (docs/security.md, "Actions"). Reading stays open
 * unless the operator asks for a login; cancel and rerun need an actor, and the actor must be
 * allowed on the run. Two ways to be one: an operator-issued API token (`Authorization: Bearer`,
 * for the CLI and scripts: api-tokens.ts) and a login through the forge (forge-login.ts), whose
 * rule is the one `!testme` follows — write access to the recipe's repository, or the allow-list.
 */

export interface Actor {
  /** How the request proved who it is: a bearer token, or a session from a forge login. */
  via: 'token' | 'forge';
  /** The token's name, or the forge login. Recorded in the run's log beside what they did. */
  login: string;
}

/** What an action needs to know of the run it acts on to decide who may. */
export interface ActionTarget {
  recipe: string;
  /** The pull request's repository when the run came from the forge. */
  forgeRepo: { owner: string; repo: string } | null;
}

/** One way a request can prove who sent it. */
export interface AuthSource {
  /** The actor behind the request, or null when this source does not recognise it. Never throws on input. */
  actorOf(request: FastifyRequest): Promise<Actor | null>;
  /** Why `actor` (recognised by this source) may not act on `target`; null when it may. */
  refusal(actor: Actor, target: ActionTarget): Promise<string | null>;
  /** For a session kept in a cookie: the token a form of this request's session carries
   *  (a synchronizer token against cross-site requests); null when the request has no session. */
  formToken?(request: FastifyRequest): string | null;
  /** Whether `token` is the form token of this request's session. */
  formTokenValid?(request: FastifyRequest, token: string): boolean;
}

/** The sources in order: the first that recognises a request speaks for it. */
export class Auth {
  constructor(private readonly sources: readonly AuthSource[]) {}

  async actorOf(request: FastifyRequest): Promise<{ actor: Actor; source: AuthSource } | null> {
    for (const source of this.sources) {
      const actor = await source.actorOf(request);
      if (actor) return { actor, source };
    }
    return null;
  }

  formToken(request: FastifyRequest): string | null {
    for (const s of this.sources) {
      const t = s.formToken?.(request);
      if (t) return t;
    }
    return null;
  }
}

/**
 * A request that changes something must come from cc-ci's own pages or from a client that is not
 * a browser. A bearer token is never sent by a browser on its own, so it needs nothing more; a
 * cookie is, so a request carried by one must say it comes from this origin (Origin, else
 * Sec-Fetch-Site) and carry its session's form token. Returns why the request is refused, or null.
 */
export function crossSiteProblem(request: FastifyRequest, actor: Actor, source: AuthSource, formToken: string | undefined): string | null {
  if (actor.via === 'token') return null;
  const origin = request.headers.origin;
  const host = request.headers.host;
  if (typeof origin === 'string' && origin !== 'null') {
    let originHost: string;
    try {
      originHost = new URL(origin).host;
    } catch {
      return 'the request names an origin that is not a URL';
    }
    if (originHost !== host) return `a request from another site (${origin}) cannot act here`;
  } else {
    const site = request.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin' && site !== 'none') return `a request from another site (${String(site)}) cannot act here`;
    if (site === undefined) return 'a browser request must say where it comes from (no Origin header)';
  }
  if (!formToken || !source.formTokenValid?.(request, formToken)) return 'the form is stale or not from this site: reload the page and try again';
  return null;
}
