/** `https://user:secret@host/x` → `https://***@host/x`, wherever such a URL stands in a text:
 *  a clone URL may carry a token, and git repeats the URL in its messages. */
export function withoutCredentials(text: string): string {
  // The scheme is bounded (no real one is longer): unbounded, a long run of letters is tried from
  // every position, which is quadratic in the line's length.
  return text.replace(/([a-z][a-z0-9+.-]{0,31}:\/\/)[^/@\s]*@/gi, '$1***@');
}

/**
 * What is masked whether or not its value was registered: the value of a query parameter or a
 * header that carries credentials by its name. A program that prints a URL or a request it made
 * (curl -v, a stack trace, Playwright's network log) would otherwise print a token cc-ci never saw.
 */
const CREDENTIAL_QUERY = /([?&](?:access_token|private_token|token|password|passwd|secret|api_key|apikey|client_secret|sig|signature)=)[^&\s#"'<>]+/gi;
const AUTH_HEADER = /\b((?:proxy-)?authorization)(["']?\s*[:=]\s*["']?)(?:(basic|bearer|token|digest)\s+)?[^\s"',;]+/gi;
const OPAQUE_HEADER = /\b(cookie|set-cookie|x-api-key|x-auth-token|x-(?:gitea|forgejo|gogs|hub)-signature(?:-256)?)(["']?\s*:\s*)[^\r\n"']+/gi;

function withoutCredentialFields(text: string): string {
  return text
    .replace(CREDENTIAL_QUERY, '$1***')
    .replace(AUTH_HEADER, (_m, name: string, sep: string, scheme: string | undefined) => `${name}${sep}${scheme ? `${scheme} ` : ''}***`)
    .replace(OPAQUE_HEADER, '$1$2***');
}

/** Registered values shorter than this are not masked: they would mask ordinary words. */
const MIN_SECRET = 6;
/** A base64 fragment shorter than this could occur by chance. */
const MIN_BASE64_FRAGMENT = 8;

/**
 * The forms a secret takes once a program has encoded it: as is, URL-encoded, JSON-escaped, and
 * base64 (standard and URL-safe) wherever it stands in the encoded text — base64 of a longer
 * string holds the secret's encoding at one of three alignments, minus the characters it shares
 * with its neighbours, so each alignment's fully determined middle is masked.
 */
export function encodedForms(value: string): string[] {
  const forms = new Set<string>([value, encodeURIComponent(value), JSON.stringify(value).slice(1, -1)]);
  const bytes = Buffer.from(value, 'utf8');
  for (let offset = 0; offset < 3; offset++) {
    const encoded = Buffer.concat([Buffer.alloc(offset), bytes]).toString('base64');
    const start = offset === 0 ? 0 : 4;
    const end = Math.floor((offset + bytes.length) / 3) * 4;
    const middle = encoded.slice(start, end);
    if (middle.length < MIN_BASE64_FRAGMENT) continue;
    forms.add(middle);
    forms.add(middle.replace(/\+/g, '-').replace(/\//g, '_'));
  }
  return [...forms].filter((f) => f.length >= MIN_SECRET).sort((a, b) => b.length - a.length);
}

export interface RedactorOptions {
  /** Told about each value the first time it is registered (a run keeps them for its restart). */
  onAdd?: (value: string) => void;
}

/**
 * Keeps secret values out of run logs and evidence. The server's own secrets (forge token, webhook
 * secret), the app secrets abra generates, the operator's extraEnv values and what a hook declares
 * with `::add-mask::` are registered; any later text containing one of them, in any of its
 * encodings, is masked before it is stored, printed or served. Credentials in URLs, query strings
 * and headers are masked whether registered or not.
 */
export class Redactor {
  private readonly values = new Set<string>();
  private forms: string[] = [];

  constructor(private readonly options: RedactorOptions = {}) {}

  /** `remember`: tell `onAdd` (false for values that are known again anyway, e.g. after a restart). */
  add(value: string, remember = true): void {
    if (value.length < MIN_SECRET || this.values.has(value)) return;
    this.values.add(value);
    this.forms = [...new Set([...this.forms, ...encodedForms(value)])].sort((a, b) => b.length - a.length);
    if (remember) this.options.onAdd?.(value);
  }

  /** Whether `bytes` hold any registered value in any of its forms (for files that cannot be masked). */
  holdsSecret(bytes: Buffer): boolean {
    return this.forms.some((f) => bytes.includes(f, 0, 'utf8'));
  }

  apply(text: string): string {
    let out = withoutCredentialFields(withoutCredentials(text));
    for (const f of this.forms) if (out.includes(f)) out = out.split(f).join('***');
    return out;
  }
}
