/** A row as better-sqlite3 hands it back, and readers of its cells: SQLite gives strings, numbers and nulls. */
export type Row = Record<string, unknown>;

export const strOrNull = (v: unknown): string | null => (typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'bigint' ? String(v) : null);
export const str = (v: unknown): string => strOrNull(v) ?? '';
export const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
