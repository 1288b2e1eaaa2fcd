// Dotenv files as abra uses them (app `.env`, recipe `.env.sample`, `export` lines of `abra.sh`).
// Parsing keeps every line verbatim so a rewrite touches only the value of the key being set:
// comments, blank lines, order and trailing modifiers (`# length=32`, `# generate=false`) survive.
//
// Value syntax (godotenv-like): `"..."` (escapes \n \" \\, `$VAR`/`${VAR}` expanded from earlier
// keys of the same file), `'...'` (literal), unquoted (up to ` #`, `$VAR` expanded). A later
// definition of a key wins (recipes write `COMPOSE_FILE="$COMPOSE_FILE:compose.x.yml"`).

export interface EnvEntry {
  key: string;
  value: string;
  /** Text of the trailing `# ...` comment without the `#`, trimmed; "" when none. */
  comment: string;
}

interface Line {
  raw: string;
  key?: string;
  /** Everything before the value: indentation, optional `export `, key and `=`. */
  head?: string;
  /** The value as written (quotes included). */
  rawValue?: string;
  /** Everything after the value: whitespace and comment. */
  tail?: string;
}

const KEY_RE = /^(\s*(?:export\s+)?)([A-Za-z_][A-Za-z0-9_.]*)(\s*=\s*)(.*)$/;

function splitValue(rest: string): { rawValue: string; tail: string } {
  if (rest.startsWith('"') || rest.startsWith("'")) {
    const q = rest[0] ?? '"';
    let i = 1;
    while (i < rest.length) {
      const ch = rest[i];
      if (q === '"' && ch === '\\') {
        i += 2;
        continue;
      }
      if (ch === q) break;
      i++;
    }
    const end = Math.min(i + 1, rest.length);
    return { rawValue: rest.slice(0, end), tail: rest.slice(end) };
  }
  const m = /\s+#/.exec(rest);
  if (m) return { rawValue: rest.slice(0, m.index), tail: rest.slice(m.index) };
  if (rest.startsWith('#')) return { rawValue: '', tail: rest };
  const trimmed = rest.replace(/\s+$/, '');
  return { rawValue: trimmed, tail: rest.slice(trimmed.length) };
}

function expandVars(s: string, vars: ReadonlyMap<string, string>): string {
  return s.replace(/\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g, (_m, a: string | undefined, b: string | undefined) => {
    const name = a ?? b ?? '';
    return vars.get(name) ?? '';
  });
}

function decodeValue(rawValue: string, vars: ReadonlyMap<string, string>): string {
  if (rawValue.startsWith("'")) {
    return rawValue.endsWith("'") && rawValue.length >= 2 ? rawValue.slice(1, -1) : rawValue.slice(1);
  }
  if (rawValue.startsWith('"')) {
    const inner = rawValue.endsWith('"') && rawValue.length >= 2 ? rawValue.slice(1, -1) : rawValue.slice(1);
    // Expand variables first, then unescape, so `\$` survives as a literal dollar.
    const protectedDollar = inner.replace(/\\\$/g, '\u0000');
    const expanded = expandVars(protectedDollar, vars);
    return expanded
      .replace(/\\n/g, '\n')
      .replace(/\\"/g, '"')
      .replace(/\\\\/g, '\\')
      .replace(/\u0000/g, '$');
  }
  return expandVars(rawValue, vars);
}

function commentOf(tail: string): string {
  const idx = tail.indexOf('#');
  return idx >= 0 ? tail.slice(idx + 1).trim() : '';
}

function encodeValue(value: string): string {
  if (/^[A-Za-z0-9_.:/+@,%=-]*$/.test(value)) return value;
  if (!value.includes("'")) return `'${value}'`;
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\$/g, '\\$').replace(/\n/g, '\\n')}"`;
}

export class EnvFile {
  private readonly lines: Line[];
  private readonly trailingNewline: boolean;

  private constructor(lines: Line[], trailingNewline: boolean) {
    this.lines = lines;
    this.trailingNewline = trailingNewline;
  }

  static parse(text: string): EnvFile {
    const trailingNewline = text.endsWith('\n');
    const body = trailingNewline ? text.slice(0, -1) : text;
    const lines: Line[] =
      body === '' && !trailingNewline
        ? []
        : body.split('\n').map((raw) => {
            const m = KEY_RE.exec(raw);
            if (!m || raw.trimStart().startsWith('#')) return { raw };
            const { rawValue, tail } = splitValue(m[4] ?? '');
            return { raw, key: m[2] ?? '', head: `${m[1] ?? ''}${m[2] ?? ''}${m[3] ?? ''}`, rawValue, tail };
          });
    return new EnvFile(lines, trailingNewline);
  }

  /** Decoded entries in file order; a later duplicate key overrides the earlier one. */
  entries(): Map<string, EnvEntry> {
    const vars = new Map<string, string>();
    const out = new Map<string, EnvEntry>();
    for (const line of this.lines) {
      if (line.key === undefined || line.rawValue === undefined) continue;
      const value = decodeValue(line.rawValue, vars);
      vars.set(line.key, value);
      out.set(line.key, { key: line.key, value, comment: commentOf(line.tail ?? '') });
    }
    return out;
  }

  values(): Map<string, string> {
    const m = new Map<string, string>();
    for (const [k, e] of this.entries()) m.set(k, e.value);
    return m;
  }

  get(key: string): string | undefined {
    return this.entries().get(key)?.value;
  }

  has(key: string): boolean {
    return this.lines.some((l) => l.key === key);
  }

  /** Modifiers from the trailing comment: `# length=32 generate=false` → {length: "32", generate: "false"}. */
  modifiers(key: string): Record<string, string> {
    const comment = this.entries().get(key)?.comment ?? '';
    const mods: Record<string, string> = {};
    for (const tok of comment.split(/\s+/)) {
      const eq = tok.indexOf('=');
      if (eq > 0) mods[tok.slice(0, eq)] = tok.slice(eq + 1);
    }
    return mods;
  }

  /** Replaces the value of the last definition of `key`, keeping its prefix and trailing comment; appends if absent. */
  set(key: string, value: string): void {
    const encoded = encodeValue(value);
    for (let i = this.lines.length - 1; i >= 0; i--) {
      const line = this.lines[i];
      if (line && line.key === key) {
        const tail = line.tail ?? '';
        const head = line.head ?? `${key}=`;
        this.lines[i] = { raw: `${head}${encoded}${tail}`, key, head, rawValue: encoded, tail };
        return;
      }
    }
    this.lines.push({ raw: `${key}=${encoded}`, key, head: `${key}=`, rawValue: encoded, tail: '' });
  }

  toString(): string {
    const body = this.lines.map((l) => l.raw).join('\n');
    return this.trailingNewline || this.lines.length === 0 ? `${body}\n` : `${body}\n`;
  }
}

/** `export K=V` lines of a recipe's abra.sh. The script is parsed, never executed. */
export function parseAbraSh(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const m = /^\s*export\s+([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(raw);
    if (!m) continue;
    const { rawValue } = splitValue(m[2] ?? '');
    out.set(m[1] ?? '', decodeValue(rawValue, out));
  }
  return out;
}
