import type { FastifyRequest } from 'fastify';
import type { Store } from '../../state/store.js';
import { TokenStore } from '../../state/token-store.js';
import type { Actor, AuthSource } from './auth.js';

/**
 * Bearer tokens the operator issued (`cc-ci token create NAME`, state/token-store.ts): for the CLI
 * and scripts. A token stands for the operator, so it may act on any run; what it did is recorded
 * under the token's name.
 */
export function apiTokenSource(store: Store): AuthSource {
  const tokens = new TokenStore(store);
  return {
    async actorOf(request: FastifyRequest): Promise<Actor | null> {
      const header = request.headers.authorization;
      if (typeof header !== 'string' || header.length > 256) return null;
      const m = /^Bearer\s+(\S+)$/i.exec(header);
      const name = m ? tokens.nameOf(m[1]!) : null;
      return name ? { via: 'token', login: `token:${name}` } : null;
    },
    async refusal(): Promise<string | null> {
      return null;
    },
  };
}
