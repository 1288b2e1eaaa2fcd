import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GitError } from '../../controller/clients/git.js';
import { Redactor, withoutCredentials } from '../../controller/model/redact.js';
import { maskEvidence } from '../../reconcilers/evidence-mask.js';
import { maskDirective } from '../../reconcilers/hooks.js';
import { Store } from '../../state/store.js';
import { testRunContext } from '../support/run-context.js';

const dir = mkdtempSync(join(tmpdir(), 'ccci-redact-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('redaction', () => {
  it('masks every value it was given, wherever it stands, but not values too short to be secrets', () => {
    const r = new Redactor();
    r.add('correct-horse-battery');
    r.add('abc');
    expect(r.apply('token=correct-horse-battery; again correct-horse-battery')).toBe('token=***; again ***');
    expect(r.apply('abc stays')).toBe('abc stays');
  });

  it('drops the credentials of any URL in a text, and leaves URLs without them alone', () => {
    expect(withoutCredentials('https://bot:s3cret@git.example.org/a/b.git')).toBe('https://***@git.example.org/a/b.git');
    expect(withoutCredentials("fatal: unable to access 'https://x:y@h/r.git/': refused, and http://u:p@h2/")).toBe(
      "fatal: unable to access 'https://***@h/r.git/': refused, and http://***@h2/",
    );
    expect(withoutCredentials('https://git.example.org/a/b.git')).toBe('https://git.example.org/a/b.git');
    expect(withoutCredentials('/srv/recipes/x and git@host:a/b')).toBe('/srv/recipes/x and git@host:a/b');
    expect(new Redactor().apply('clone https://t:tok123456@h/r')).toBe('clone https://***@h/r');
  });

  it("git errors never carry a URL's credentials", () => {
    expect(new GitError('could not clone https://bot:tok@h/r.git').message).toBe('could not clone https://***@h/r.git');
  });
});

describe('a secret in its encodings and in the places credentials stand', () => {
  const secret = 'Zq8-vN2/pW4+kR7!';
  const r = new Redactor();
  r.add(secret);

  it('is masked URL-encoded, JSON-escaped, and in base64 (standard and URL-safe) at every alignment', () => {
    expect(r.apply(`q=${encodeURIComponent(secret)}&x=1`)).toBe('q=***&x=1');
    expect(r.apply(JSON.stringify({ password: `a"${secret}` }))).not.toContain(JSON.stringify(secret).slice(1, -1));
    for (const prefix of ['', 'u', 'us', 'user:']) {
      const basic = Buffer.from(`${prefix}${secret}`).toString('base64');
      const url = Buffer.from(`${prefix}${secret}`).toString('base64url');
      for (const encoded of [basic, url]) {
        const out = r.apply(`payload ${encoded} end`);
        // What stays are at most the few characters the secret shares with its neighbours.
        expect(out).toContain('***');
        expect(out.replace(/\*\*\*/, '').length).toBeLessThan(`payload  end`.length + 12);
      }
    }
  });

  it('masks credentials in query strings, Authorization and cookie headers even when never registered', () => {
    const plain = new Redactor();
    expect(plain.apply('GET https://h/api?access_token=abc123def&page=2')).toBe('GET https://h/api?access_token=***&page=2');
    expect(plain.apply('> Authorization: token 0123456789abcdef')).toBe('> Authorization: token ***');
    expect(plain.apply('{"authorization":"Bearer eyJhbGciOi.x.y"}')).toBe('{"authorization":"Bearer ***"}');
    expect(plain.apply('Cookie: session=s3cr3t; other=1')).toBe('Cookie: ***');
    expect(plain.apply('X-Gitea-Signature: 9f86d081884c7d65')).toBe('X-Gitea-Signature: ***');
    expect(plain.apply('the forge refused the authorization of the bot')).toBe('the forge refused the authorization of the bot');
  });
});

describe("a run's redactor", () => {
  const context = (store: Store, name: string, config: Record<string, unknown> = {}) => testRunContext(store, join(dir, 'state'), name, config);

  it('knows the forge token and webhook secret from its first line, and what it learnt after a restart', () => {
    const token = join(dir, 'token');
    const hook = join(dir, 'hook-secret');
    writeFileSync(token, 'f0rge-t0ken-0123456789\n');
    writeFileSync(hook, 'webhook-s3cret-value');
    const config = { forge: { url: 'https://git.example.org', tokenFile: token, webhookSecretFile: hook } };
    const store = new Store(join(dir, 'r.db'));
    const ctx = context(store, 'leaky', config);
    ctx.log('out', 'token f0rge-t0ken-0123456789 and webhook-s3cret-value');
    ctx.redactor.add('generated-app-password');
    expect(maskDirective(ctx, '::add-mask::hook-chosen-password')).toBe(true);
    expect(maskDirective(ctx, 'an ordinary line')).toBe(false);
    // The masks file holds only what the run learnt (not the server's secrets), privately.
    const masks = readFileSync(join(ctx.dir, 'masks'), 'utf8').trim().split('\n');
    expect(masks.map((l) => Buffer.from(l, 'base64').toString())).toEqual(['generated-app-password', 'hook-chosen-password']);
    expect(statSync(join(ctx.dir, 'masks')).mode & 0o777).toBe(0o600);
    // A restarted controller's context (a resumed attempt, the teardown) masks all of it.
    const again = context(store, 'leaky', config);
    again.log('err', 'generated-app-password hook-chosen-password f0rge-t0ken-0123456789');
    const texts = store.eventsSince('leaky', 0, 100).map((e) => e.text);
    expect(texts).toEqual(['token *** and ***', '*** *** ***']);
    store.close();
  });
});

describe('evidence', () => {
  it('is masked in place when it is text, withheld when it cannot be masked, and holds no links', () => {
    const root = join(dir, 'evidence');
    mkdirSync(join(root, 'playwright', 'trace'), { recursive: true });
    writeFileSync(join(root, 'junit.xml'), '<failure message="login as admin:hunter2-hunter2 failed"/>');
    writeFileSync(join(root, 'playwright', 'trace', 'trace.zip'), Buffer.concat([Buffer.from([0x50, 0x4b, 3, 4, 0, 0xff]), Buffer.from('hunter2-hunter2')]));
    writeFileSync(join(root, 'playwright', 'shot.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]));
    symlinkSync('/etc/passwd', join(root, 'passwd'));
    const r = new Redactor();
    r.add('hunter2-hunter2');
    const summary = maskEvidence(root, r);
    expect(readFileSync(join(root, 'junit.xml'), 'utf8')).toBe('<failure message="login as admin:*** failed"/>');
    expect(summary.withheld).toEqual([join(root, 'playwright', 'trace', 'trace.zip')]);
    expect(readdirSync(join(root, 'playwright', 'trace'))).toEqual(['trace.zip.withheld.txt']);
    expect(readdirSync(join(root, 'playwright')).sort()).toEqual(['shot.png', 'trace']);
    expect(readdirSync(root).sort()).toEqual(['junit.xml', 'playwright']);
  });
});
