import { readFileSync, writeFileSync, renameSync } from 'node:fs';

/**
 * Edits an abra app `.env` in place, line by line, so comments, order and the generation
 * modifiers on `SECRET_*_VERSION=v1 # length=32` lines survive (docs/abra-double.md, The contract).
 */

const ASSIGN = /^(\s*)(export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/;

export class EnvFile {
  private lines: string[];

  constructor(
    private readonly path: string,
    text?: string,
  ) {
    this.lines = (text ?? readFileSync(path, 'utf8')).split('\n');
    if (this.lines.length > 0 && this.lines[this.lines.length - 1] === '') this.lines.pop();
  }

  /** The value of an active (uncommented) assignment, unquoted, without a trailing comment. */
  get(key: string): string | undefined {
    let value: string | undefined;
    for (const line of this.lines) {
      const m = ASSIGN.exec(line);
      if (m && m[3] === key) value = unquote(stripComment(m[4] ?? ''));
    }
    return value;
  }

  /** Sets every active assignment of `key` (keeping a trailing comment), or appends one. */
  set(key: string, value: string): void {
    let found = false;
    this.lines = this.lines.map((line) => {
      const m = ASSIGN.exec(line);
      if (!m || m[3] !== key) return line;
      found = true;
      const comment = trailingComment(m[4] ?? '');
      return `${m[1] ?? ''}${m[2] ?? ''}${key}=${quoteIfNeeded(value)}${comment}`;
    });
    if (!found) this.lines.push(`${key}=${quoteIfNeeded(value)}`);
  }

  /** Appends a raw line (e.g. `COMPOSE_FILE="$COMPOSE_FILE:x.yml"`, the recipes' own idiom). */
  appendLine(line: string): void {
    this.lines.push(line);
  }

  /**
   * The value of `key` as abra's dotenv loader sees it: assignments evaluated in order, with
   * `$VAR`/`${VAR}` expanded in unquoted and double-quoted values (bonfire's
   * `COMPOSE_FILE="$COMPOSE_FILE:compose.postgres.yml"` relies on this).
   */
  resolved(key: string): string | undefined {
    return this.values().get(key);
  }

  /** Every active key with its value as abra's dotenv loader sees it (see `resolved`). */
  values(): Map<string, string> {
    const vars = new Map<string, string>();
    for (const line of this.lines) {
      const m = ASSIGN.exec(line);
      if (!m?.[3]) continue;
      const raw = stripComment(m[4] ?? '');
      const value = raw.startsWith("'")
        ? unquote(raw)
        : unquote(raw).replace(
            /\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
            (_, a: string | undefined, b: string | undefined) => vars.get((a ?? b) as string) ?? '',
          );
      vars.set(m[3], value);
    }
    return vars;
  }

  /** The trailing comment of the last active assignment of `key`, without `#` (the generation
   *  modifiers of `SECRET_X_VERSION=v1 # length=64 charset=hex`), or '' when it has none. */
  comment(key: string): string {
    let comment = '';
    for (const line of this.lines) {
      const m = ASSIGN.exec(line);
      if (m && m[3] === key)
        comment = trailingComment(m[4] ?? '')
          .replace(/^\s*#\s*/, '')
          .trim();
    }
    return comment;
  }

  toString(): string {
    return `${this.lines.join('\n')}\n`;
  }

  /** Writes atomically: a crash never leaves a half-written .env behind. */
  save(): void {
    const tmp = `${this.path}.ccci-tmp`;
    writeFileSync(tmp, this.toString(), { mode: 0o600 });
    renameSync(tmp, this.path);
  }
}

function stripComment(v: string): string {
  const t = v.trim();
  if (t.startsWith('"') || t.startsWith("'")) {
    const q = t[0] as string;
    const end = t.indexOf(q, 1);
    return end > 0 ? t.slice(0, end + 1) : t;
  }
  const hash = t.search(/\s#/);
  return hash >= 0 ? t.slice(0, hash).trim() : t;
}

function trailingComment(v: string): string {
  const t = v.trim();
  const valueEnd = stripComment(t).length;
  const rest = t.slice(valueEnd);
  return rest.trim().startsWith('#') ? ` ${rest.trim()}` : '';
}

function unquote(v: string): string {
  if (v.length >= 2 && ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'")))) {
    return v.slice(1, -1);
  }
  return v;
}

function quoteIfNeeded(v: string): string {
  return /[\s#"'$`\\]/.test(v) ? `"${v.replace(/(["\\])/g, '\\$1')}"` : v;
}
