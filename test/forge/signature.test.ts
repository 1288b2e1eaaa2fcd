import { describe, expect, it } from 'vitest';
import { readHeader, sign, verifySignature } from '../../controller/forge/signature.js';
import { readExampleWebhookBytes } from '../support/forge-double/index.js';

// The contract's test vector (README §3), computed with Python hmac, openssl and Node.
const SECRET = 'example-webhook-secret';
const SHA256 = 'c150543269a529920dac9a455e73f753f910d9b1cbb4bc7c16034b8ff1f3f636';
const SHA1 = 'b65525a5632dc5f36b1187e84cea78af4a38fef8';

const body = readExampleWebhookBytes();

describe('the contract test vector', () => {
  it('uses the exact 15,943 bytes of the example body, without a trailing newline', () => {
    expect(body.length).toBe(15_943);
    expect(body.at(-1)).toBe('}'.charCodeAt(0));
  });

  it('signs to the published HMAC-SHA256 and HMAC-SHA1', () => {
    const headers = sign(SECRET, body);
    expect(headers['X-Gitea-Signature']).toBe(SHA256);
    expect(headers['X-Gogs-Signature']).toBe(SHA256);
    expect(headers['X-Hub-Signature-256']).toBe(`sha256=${SHA256}`);
    expect(headers['X-Hub-Signature']).toBe(`sha1=${SHA1}`);
  });

  it('verifies with each header the forges send', () => {
    for (const header of ['x-forgejo-signature', 'x-gitea-signature']) {
      expect(verifySignature(SECRET, body, { [header]: SHA256 })).toEqual({ valid: true, header });
    }
    expect(verifySignature(SECRET, body, { 'x-hub-signature-256': `sha256=${SHA256}` })).toEqual({
      valid: true,
      header: 'x-hub-signature-256',
    });
  });
});

describe('sign', () => {
  it('adds X-Forgejo-Signature only for Forgejo', () => {
    expect(sign(SECRET, body, 'gitea')).not.toHaveProperty('X-Forgejo-Signature');
    expect(sign(SECRET, body, 'forgejo')['X-Forgejo-Signature']).toBe(SHA256);
  });

  it('sends empty signature headers for an empty secret, as the forge does', () => {
    expect(sign('', body)).toEqual({
      'X-Gitea-Signature': '',
      'X-Gogs-Signature': '',
      'X-Hub-Signature-256': 'sha256=',
      'X-Hub-Signature': 'sha1=',
    });
  });

  it('treats a string body as its UTF-8 bytes', () => {
    expect(sign(SECRET, 'é')).toEqual(sign(SECRET, Buffer.from('é', 'utf8')));
  });
});

describe('verifySignature rejects', () => {
  const cases: Array<[string, string, Buffer, Record<string, string | string[] | undefined>, string]> = [
    ['a wrong secret', 'another-secret', body, { 'x-gitea-signature': SHA256 }, 'mismatch'],
    ['a body with a trailing newline', SECRET, Buffer.concat([body, Buffer.from('\n')]), { 'x-gitea-signature': SHA256 }, 'mismatch'],
    ['a re-serialised body', SECRET, Buffer.from(JSON.stringify(JSON.parse(body.toString()))), { 'x-gitea-signature': SHA256 }, 'mismatch'],
    ['no signature header', SECRET, body, { 'x-gitea-event': 'issue_comment' }, 'missing-header'],
    ['an undefined header', SECRET, body, { 'x-gitea-signature': undefined }, 'missing-header'],
    ['an empty header', SECRET, body, { 'x-gitea-signature': '' }, 'empty-header'],
    ['"sha256=" with nothing after it', SECRET, body, { 'x-hub-signature-256': 'sha256=' }, 'empty-header'],
    ['the hub header without its prefix', SECRET, body, { 'x-hub-signature-256': SHA256 }, 'malformed-header'],
    ['the sha1 prefix on the sha256 header', SECRET, body, { 'x-hub-signature-256': `sha1=${SHA256}` }, 'malformed-header'],
    ['a prefix on the Gitea header', SECRET, body, { 'x-gitea-signature': `sha256=${SHA256}` }, 'malformed-header'],
    ['a signature one digit short', SECRET, body, { 'x-gitea-signature': SHA256.slice(1) }, 'malformed-header'],
    ['a signature one digit long', SECRET, body, { 'x-gitea-signature': `${SHA256}0` }, 'malformed-header'],
    ['non-hex characters', SECRET, body, { 'x-gitea-signature': `${SHA256.slice(0, 63)}z` }, 'malformed-header'],
    ['the sha1 signature in the sha256 header', SECRET, body, { 'x-gitea-signature': SHA1 }, 'malformed-header'],
    ['a repeated header', SECRET, body, { 'x-gitea-signature': [SHA256, SHA256] }, 'malformed-header'],
    ['a correct header when no secret is configured', '', body, { 'x-gitea-signature': SHA256 }, 'no-secret-configured'],
  ];

  it.each(cases)('%s', (_name, secret, bytes, headers, reason) => {
    const result = verifySignature(secret, bytes, headers);
    expect(result.valid).toBe(false);
    expect(result).toMatchObject({ reason });
  });

  it('a wrong signature in the first header present, even if a later one is right', () => {
    const wrong = SHA256.replace(/^c/, 'd');
    expect(verifySignature(SECRET, body, { 'x-forgejo-signature': wrong, 'x-gitea-signature': SHA256 })).toMatchObject({
      valid: false,
      reason: 'mismatch',
      header: 'x-forgejo-signature',
    });
  });
});

describe('verifySignature accepts', () => {
  it('headers named in any case, and uppercase hex', () => {
    expect(verifySignature(SECRET, body, { 'X-Gitea-Signature': SHA256.toUpperCase() }).valid).toBe(true);
  });

  it('everything sign() produces, for both flavours', () => {
    for (const flavour of ['gitea', 'forgejo'] as const) {
      expect(verifySignature(SECRET, body, sign(SECRET, body, flavour)).valid).toBe(true);
    }
  });

  it('a delivery signed by sign() alone (X-Hub-Signature-256) after the other headers are stripped', () => {
    const { 'X-Hub-Signature-256': hub } = sign(SECRET, body);
    expect(verifySignature(SECRET, body, { 'x-hub-signature-256': hub })).toMatchObject({ valid: true });
  });
});

describe('readHeader', () => {
  it('is case-insensitive and returns one value', () => {
    expect(readHeader({ 'X-Gitea-Delivery': 'abc' }, 'x-gitea-delivery')).toBe('abc');
    expect(readHeader({ 'x-a': ['one'] }, 'X-A')).toBe('one');
    expect(readHeader({ 'x-a': ['one', 'two'] }, 'x-a')).toBeNull();
    expect(readHeader({}, 'x-a')).toBeUndefined();
  });
});
