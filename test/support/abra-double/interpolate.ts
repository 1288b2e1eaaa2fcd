// Compose-file variable interpolation, as docker's compose loader does it: `$$`, `$VAR`, `${VAR}`,
// `${VAR:-default}`, `${VAR-default}`, `${VAR:?err}`, `${VAR?err}`, `${VAR:+alt}`, `${VAR+alt}`.
// Defaults may nest further `${...}`. Unset variables become "".
import { fatal } from './log.js';

export type Lookup = (name: string) => string | undefined;

function findClose(s: string, open: number): number {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    if (s[i] === '{') depth++;
    else if (s[i] === '}') {
      depth--;
      if (depth === 0) return i;
    }
  }
  return -1;
}

export function interpolate(s: string, lookup: Lookup): string {
  let out = '';
  let i = 0;
  while (i < s.length) {
    const ch = s[i];
    if (ch !== '$') {
      out += ch;
      i++;
      continue;
    }
    const next = s[i + 1];
    if (next === '$') {
      out += '$';
      i += 2;
      continue;
    }
    if (next === '{') {
      const close = findClose(s, i + 1);
      if (close < 0) fatal(`invalid interpolation format for ${JSON.stringify(s)}`);
      const body = s.slice(i + 2, close);
      out += expandBraced(body, lookup, s);
      i = close + 1;
      continue;
    }
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(i + 1));
    if (m) {
      out += lookup(m[0]) ?? '';
      i += 1 + m[0].length;
      continue;
    }
    out += '$';
    i++;
  }
  return out;
}

function expandBraced(body: string, lookup: Lookup, whole: string): string {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([\s\S]*))?$/.exec(body);
  if (!m) fatal(`invalid interpolation format for ${JSON.stringify(whole)}`);
  const name = m[1] ?? '';
  const op = m[2];
  const arg = m[3] ?? '';
  const value = lookup(name);
  const unset = value === undefined;
  const empty = unset || value === '';
  switch (op) {
    case undefined:
      return value ?? '';
    case ':-':
      return empty ? interpolate(arg, lookup) : (value ?? '');
    case '-':
      return unset ? interpolate(arg, lookup) : (value ?? '');
    case ':?':
      if (empty) fatal(`required variable ${name} is missing a value: ${interpolate(arg, lookup)}`);
      return value ?? '';
    case '?':
      if (unset) fatal(`required variable ${name} is missing a value: ${interpolate(arg, lookup)}`);
      return value ?? '';
    case ':+':
      return empty ? '' : interpolate(arg, lookup);
    case '+':
      return unset ? '' : interpolate(arg, lookup);
    default:
      return value ?? '';
  }
}

/** Names of the variables a template refers to, in order of appearance. */
export function referencedVars(s: string): string[] {
  const names: string[] = [];
  const re = /\$(?:\{([A-Za-z_][A-Za-z0-9_]*)|([A-Za-z_][A-Za-z0-9_]*))/g;
  for (const m of s.replace(/\$\$/g, '').matchAll(re)) {
    const name = m[1] ?? m[2];
    if (name) names.push(name);
  }
  return names;
}

/** Escapes a literal value for a compose file that docker will interpolate again. */
export function escapeForCompose(s: string): string {
  return s.replace(/\$/g, '$$$$');
}

/** Interpolates every string value (not map keys) of a parsed YAML document, like docker does. */
export function interpolateDeep(node: unknown, lookup: Lookup): unknown {
  if (typeof node === 'string') return interpolate(node, lookup);
  if (Array.isArray(node)) return node.map((n) => interpolateDeep(n, lookup));
  if (node !== null && typeof node === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) out[k] = interpolateDeep(v, lookup);
    return out;
  }
  return node;
}
