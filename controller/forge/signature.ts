// Webhook signatures as Gitea and Forgejo compute them (services/webhook/deliver.go addDefaultHeaders,
// Forgejo services/webhook/shared/payloader.go AddDefaultHeaders): HMAC over the exact payload bytes,
// keyed with the webhook secret's UTF-8 bytes. The signature covers no timestamp, so a verified
// delivery can still be a replay: callers deduplicate on the delivery id (see webhook.ts).
import { createHmac, timingSafeEqual } from 'node:crypto';

/** Header bag as Node gives it (`IncomingHttpHeaders`) or as a test builds it. */
export type HeaderBag = Readonly<Record<string, string | readonly string[] | undefined>>;

/**
 * Headers that carry the HMAC-SHA256, in the order we look at them. The first one present decides:
 * all three carry the same value when a real forge sends them, so looking further would only let a
 * tampered duplicate header be skipped over.
 */
const SIGNATURE_HEADERS = [
  { name: 'x-forgejo-signature', prefix: '' },
  { name: 'x-gitea-signature', prefix: '' },
  { name: 'x-hub-signature-256', prefix: 'sha256=' },
] as const;

const SHA256_HEX = /^[0-9a-f]{64}$/i;

export type SignatureCheck =
  | { valid: true; header: string }
  | {
      valid: false;
      reason: 'no-secret-configured' | 'missing-header' | 'empty-header' | 'malformed-header' | 'mismatch';
      header?: string;
    };

/**
 * Reads one header case-insensitively. Node lowercases incoming names, but test code and other
 * adapters may not. A repeated header (array) is returned as null: a signature is one value.
 */
export function readHeader(headers: HeaderBag, name: string): string | null | undefined {
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() !== wanted || value === undefined) continue;
    if (typeof value === 'string') return value;
    return value.length === 1 ? (value[0] ?? null) : null;
  }
  return undefined;
}

/**
 * Verifies a delivery. `rawBody` must be the bytes as received, before any JSON parsing: the forge
 * signs its own `json.MarshalIndent` output, which re-serialising in JavaScript does not reproduce.
 * An empty secret is treated as "not configured" and never verifies: cc-ci does not accept unsigned
 * webhooks (a forge with an empty secret sends empty signature headers).
 */
export function verifySignature(secret: string, rawBody: Buffer, headers: HeaderBag): SignatureCheck {
  if (secret.length === 0) return { valid: false, reason: 'no-secret-configured' };

  for (const { name, prefix } of SIGNATURE_HEADERS) {
    const value = readHeader(headers, name);
    if (value === undefined) continue;
    if (value === null) return { valid: false, reason: 'malformed-header', header: name };
    const trimmed = value.trim();
    if (trimmed === '' || trimmed === prefix) return { valid: false, reason: 'empty-header', header: name };
    if (!trimmed.startsWith(prefix)) return { valid: false, reason: 'malformed-header', header: name };
    const hex = trimmed.slice(prefix.length);
    if (!SHA256_HEX.test(hex)) return { valid: false, reason: 'malformed-header', header: name };

    // Both buffers are 32 bytes here (regex above), which timingSafeEqual requires.
    const expected = createHmac('sha256', secret).update(rawBody).digest();
    const received = Buffer.from(hex, 'hex');
    return timingSafeEqual(expected, received) ? { valid: true, header: name } : { valid: false, reason: 'mismatch', header: name };
  }
  return { valid: false, reason: 'missing-header' };
}

export type ForgeFlavour = 'gitea' | 'forgejo';

/**
 * The signature headers a forge sends for `body`, named as on the wire. Gitea does not send
 * `X-Forgejo-Signature`; Forgejo sends every name. With an empty secret the forge computes no HMAC
 * but still adds the headers with empty values (`X-Hub-Signature-256: sha256=`), and so do we.
 */
export function sign(secret: string, body: Buffer | string, flavour: ForgeFlavour = 'gitea'): Record<string, string> {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const sig256 = secret === '' ? '' : createHmac('sha256', secret).update(bytes).digest('hex');
  const sig1 = secret === '' ? '' : createHmac('sha1', secret).update(bytes).digest('hex');
  const headers: Record<string, string> = {};
  if (flavour === 'forgejo') headers['X-Forgejo-Signature'] = sig256;
  headers['X-Gitea-Signature'] = sig256;
  headers['X-Gogs-Signature'] = sig256;
  headers['X-Hub-Signature-256'] = `sha256=${sig256}`;
  headers['X-Hub-Signature'] = `sha1=${sig1}`;
  return headers;
}
