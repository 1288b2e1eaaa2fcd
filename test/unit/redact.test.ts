import { describe, expect, it } from 'vitest';
import { GitError } from '../../controller/clients/git.js';
import { Redactor, withoutCredentials } from '../../controller/model/redact.js';

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
