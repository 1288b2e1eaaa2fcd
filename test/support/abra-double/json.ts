// Narrowing helpers for parsed JSON/YAML (everything arrives as `unknown`).

export type Dict = Record<string, unknown>;

export function isDict(x: unknown): x is Dict {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}

export function dict(x: unknown): Dict {
  return isDict(x) ? x : {};
}

export function str(x: unknown): string | undefined {
  if (typeof x === 'string') return x;
  if (typeof x === 'number' || typeof x === 'boolean') return String(x);
  return undefined;
}

export function arr(x: unknown): unknown[] {
  return Array.isArray(x) ? x : [];
}

/** Labels/environment in list form (`K=V`) or map form → map of strings (null for a bare `K`). */
export function kvMap(x: unknown): Map<string, string | null> {
  const out = new Map<string, string | null>();
  if (Array.isArray(x)) {
    for (const item of x) {
      const s = str(item);
      if (s === undefined) continue;
      const eq = s.indexOf('=');
      if (eq < 0) out.set(s, null);
      else out.set(s.slice(0, eq), s.slice(eq + 1));
    }
  } else if (isDict(x)) {
    for (const [k, v] of Object.entries(x)) out.set(k, v === null ? null : (str(v) ?? JSON.stringify(v)));
  }
  return out;
}

/** Parses newline-separated JSON objects (docker `--format '{{json .}}'`). */
export function jsonLines(text: string): Dict[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .map((l) => dict(JSON.parse(l) as unknown));
}
