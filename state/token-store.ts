import { createHash, randomBytes } from 'node:crypto';
import type { Store } from './store.js';
import { numOrNull, str, type Row } from './rows.js';

/**
 * API tokens (migration 8): issued by the operator on the host (`cc-ci token create NAME`), shown
 * once, kept only as their SHA-256. A token acts as the operator: it may cancel and rerun any run.
 */

export interface TokenRecord {
  name: string;
  createdAt: number;
  lastUsedAt: number | null;
}

/** The prefix makes a leaked token recognisable to secret scanners and people alike. */
const PREFIX = 'ccci_';

export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export class TokenStore {
  constructor(private readonly store: Store) {}

  /** A new token named `name`; null when the name is taken. The token is returned once and never stored. */
  create(name: string, now = Date.now()): string | null {
    const token = `${PREFIX}${randomBytes(32).toString('base64url')}`;
    const r = this.store.db
      .prepare('INSERT INTO api_tokens (name, hash, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING')
      .run(name, tokenHash(token), now);
    return r.changes === 1 ? token : null;
  }

  revoke(name: string): boolean {
    return this.store.db.prepare('DELETE FROM api_tokens WHERE name = ?').run(name).changes === 1;
  }

  list(): TokenRecord[] {
    return (this.store.db.prepare('SELECT name, created_at, last_used_at FROM api_tokens ORDER BY name').all() as Row[]).map((r) => ({
      name: str(r.name),
      createdAt: Number(r.created_at),
      lastUsedAt: numOrNull(r.last_used_at),
    }));
  }

  /** The name of the token, or null; a token that is used is marked so (at most once a minute). */
  nameOf(token: string, now = Date.now()): string | null {
    if (!token.startsWith(PREFIX) || token.length > 128) return null;
    const hash = tokenHash(token);
    const row = this.store.db.prepare('SELECT name, last_used_at FROM api_tokens WHERE hash = ?').get(hash) as Row | undefined;
    if (!row) return null;
    const last = numOrNull(row.last_used_at);
    if (last === null || now - last > 60_000) this.store.db.prepare('UPDATE api_tokens SET last_used_at = ? WHERE hash = ?').run(now, hash);
    return str(row.name);
  }
}
