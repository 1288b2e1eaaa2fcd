import { z } from 'zod';
import type { Cursor, RunFilter } from '../../state/history.js';
import { RESULTS } from '../../state/types.js';
import { formatIssues, isName } from '../model/spec.js';

/**
 * What a runs list is asked for — by the pages, the JSON API and `cc-ci get runs` alike: a page
 * size, where the page starts (a cursor: the last run of the page before), and filters. One
 * schema, so a bad value is refused with the same clear words everywhere.
 */

export const PAGE_SIZE = 50;
/** The most one request may list: a page, not the history. */
export const MAX_PAGE_SIZE = 200;

export interface RunQuery {
  limit: number;
  before: Cursor | null;
  filter: RunFilter;
}

/** A cursor is the last run shown: `<created-at ms>.<name>` (a run name has no dot). */
export function formatCursor(c: Cursor): string {
  return `${c.createdAt}.${c.name}`;
}

function parseCursor(s: string): Cursor | null {
  const m = /^(\d{1,15})\.(.+)$/.exec(s);
  return m?.[1] && m[2] && isName(m[2]) ? { createdAt: Number(m[1]), name: m[2] } : null;
}

// An empty value (a form's empty field) means "not given".
const blank = (v: unknown): unknown => (v === '' ? undefined : v);
const optional = <T extends z.ZodType>(t: T) => z.preprocess(blank, t.optional());

const schema = (maxLimit: number) =>
  z.strictObject({
    limit: optional(
      z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(maxLimit, `must be at most ${maxLimit}`),
    ),
    cursor: optional(z.string().refine((s) => parseCursor(s) !== null, 'is not a cursor this server handed out (<created-at>.<run name>)')),
    recipe: optional(z.string().refine(isName, 'must be a recipe name (lowercase letters, digits and dashes)')),
    result: optional(z.enum(RESULTS, { error: `must be one of ${RESULTS.join(', ')}` })),
    lane: optional(z.enum(['cold', 'quick'], { error: 'must be cold or quick' })),
    pr: optional(
      z.coerce
        .number({ error: 'must be a pull request number' })
        .int('must be a pull request number')
        .min(1, 'must be a pull request number')
        .max(2 ** 31 - 1, 'must be a pull request number'),
    ),
    repo: optional(
      z
        .string()
        .max(200, 'is too long')
        .regex(/^[^/\s]+\/[^/\s]+$/, 'must be owner/name'),
    ),
  });

/** Parses query parameters (strings, or a CLI's options); `maxLimit` caps the page. */
export function parseRunQuery(raw: unknown, maxLimit = MAX_PAGE_SIZE): { ok: true; query: RunQuery } | { ok: false; error: string } {
  const flat =
    raw && typeof raw === 'object'
      ? Object.fromEntries(Object.entries(raw as Record<string, unknown>).map(([k, v]) => [k, Array.isArray(v) ? v.at(-1) : v]))
      : {};
  const r = schema(maxLimit).safeParse(flat);
  if (!r.success) return { ok: false, error: formatIssues(r.error) };
  const { limit, cursor, ...rest } = r.data;
  const filter: RunFilter = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined));
  return { ok: true, query: { limit: limit ?? PAGE_SIZE, before: cursor ? parseCursor(cursor) : null, filter } };
}

/** The query string of a filter (and a cursor), for the links between pages. */
export function queryString(filter: RunFilter, extra: Record<string, string> = {}): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(filter)) if (v !== undefined) p.set(k, String(v));
  for (const [k, v] of Object.entries(extra)) p.set(k, v);
  const s = p.toString();
  return s ? `?${s}` : '';
}

/** Whether a run (as a row shows it) is one the filter lets through. */
export function matches(filter: RunFilter, r: { recipe: string; result: string | null; lane: string; forge: { repo: string; pr: number } | null }): boolean {
  return (
    (filter.recipe === undefined || r.recipe === filter.recipe) &&
    (filter.result === undefined || r.result === filter.result) &&
    (filter.lane === undefined || r.lane === filter.lane) &&
    (filter.pr === undefined || r.forge?.pr === filter.pr) &&
    (filter.repo === undefined || r.forge?.repo.toLowerCase() === filter.repo.toLowerCase())
  );
}
