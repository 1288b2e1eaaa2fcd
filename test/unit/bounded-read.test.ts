import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readBoundedFile, tooDeep, yamlDepth } from '../../controller/model/bounded-read.js';
import { ComposeError, readComposeFile } from '../../controller/model/compose-model.js';
import { configSchema } from '../../controller/model/config.js';
import { createLogger } from '../../controller/model/log.js';
import { parseDocument } from '../../controller/model/spec.js';
import { SpecSync } from '../../controller/runtime/spec-sync.js';
import { Store } from '../../state/store.js';

/**
 * Files someone else put there and YAML from pull requests, bounded before they are read or
 * parsed (docs/security.md): a FIFO or a link to /dev/zero in `specs/` is recorded invalid, never
 * a hang; nesting that would exhaust the parser's stack is refused unparsed; a seconds setting
 * cannot become a timer Node fires at once.
 */

const dir = mkdtempSync(join(tmpdir(), 'ccci-bounded-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const brackets = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;

describe('reading a file someone else put there', () => {
  it('reads a regular file; refuses a FIFO, a symbolic link, a directory and a file past the limit, at once', () => {
    const file = join(dir, 'ok.yaml');
    writeFileSync(file, 'a: 1\n');
    expect(readBoundedFile(file, 1024)).toBe('a: 1\n');
    const fifo = join(dir, 'fifo.yaml');
    execFileSync('mkfifo', [fifo]);
    const zero = join(dir, 'zero.yaml');
    symlinkSync('/dev/zero', zero);
    const big = join(dir, 'big.yaml');
    writeFileSync(big, 'x'.repeat(2048));
    const started = Date.now();
    expect(() => readBoundedFile(fifo, 1024)).toThrow(/not a regular file/);
    expect(() => readBoundedFile(zero, 1024)).toThrow(/symbolic link/);
    expect(() => readBoundedFile(dir, 1024)).toThrow(/not a regular file/);
    expect(() => readBoundedFile(big, 1024)).toThrow(/larger than 1 KiB/);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('records a FIFO and a link to /dev/zero in specs/ as invalid, with the reason, and goes on', () => {
    const specs = join(dir, 'specs');
    mkdirSync(specs);
    execFileSync('mkfifo', [join(specs, 'hang.yaml')]);
    symlinkSync('/dev/zero', join(specs, 'zero.yaml'));
    const store = new Store(join(dir, 'specs.db'));
    const sync = new SpecSync(store, specs, createLogger('silent'), { enqueue: () => undefined, accepted: () => undefined, cancel: () => undefined });
    const started = Date.now();
    sync.resync();
    expect(Date.now() - started).toBeLessThan(2000);
    const files = Object.fromEntries(store.listSpecFiles().map((f) => [f.path.split('/').pop(), f]));
    expect(files['hang.yaml']).toMatchObject({ status: 'invalid', error: expect.stringMatching(/not a regular file/) });
    expect(files['zero.yaml']).toMatchObject({ status: 'invalid', error: expect.stringMatching(/symbolic link/) });
    store.close();
  });
});

describe('YAML nesting, refused unparsed', () => {
  it('measures flow brackets, stacked block indicators and indentation; quotes and comments do not count', () => {
    expect(yamlDepth('a: 1\nb: [1, {c: 2}]\n')).toBe(2);
    expect(yamlDepth(`a: "${'['.repeat(500)}"\n# ${'{'.repeat(500)}\nb: it's [fine]\n`)).toBe(1);
    expect(yamlDepth(`${'- '.repeat(300)}x\n`)).toBe(300);
    expect(yamlDepth('a:\n  b:\n    c:\n      - d\n')).toBe(4);
  });

  it('refuses three 2 KB files of nested brackets — as a spec, a compose file — quickly and with a reason', () => {
    const started = Date.now();
    for (let i = 0; i < 3; i++) {
      const text = brackets(1024);
      expect(parseDocument(text)).toEqual({
        ok: false,
        error: expect.stringMatching(/^the file nests deeper than 64 levels \(about 1024\); refused unparsed$/),
      });
      const recipe = join(dir, `recipe-${i}`);
      mkdirSync(recipe);
      writeFileSync(join(recipe, 'compose.yml'), `services:\n  app:\n    x: ${text}\n`);
      expect(() => readComposeFile(recipe, 'compose.yml')).toThrow(ComposeError);
      expect(() => readComposeFile(recipe, 'compose.yml')).toThrow(/nests deeper than 64 levels/);
    }
    expect(Date.now() - started).toBeLessThan(2000);
    // An open bracket never closed nests the rest of the file too.
    expect(tooDeep(`a: ${'['.repeat(40)}\nb: ${'{'.repeat(40)}\n`)).toMatch(/nests deeper/);
  });

  it('lets every compose file and settings file of the bundled recipes and the zoo through', () => {
    const found: string[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d)) {
        const p = join(d, e);
        if (statSync(p).isDirectory()) walk(p);
        else if (/\.ya?ml$/.test(e)) found.push(p);
      }
    };
    walk(join(process.cwd(), 'fixtures'));
    walk(join(process.cwd(), 'recipes'));
    expect(found.length).toBeGreaterThan(10);
    for (const f of found) expect(tooDeep(readFileSync(f, 'utf8')), f).toBeNull();
  });
});

describe('seconds settings', () => {
  it('refuses a timer longer than Node can time, and keeps ages unbounded by it', () => {
    const r = configSchema.safeParse({ timeouts: { deploySeconds: 3_000_000 } });
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toMatch(/must be at most 2000000/);
    expect(configSchema.safeParse({ timeouts: { deploySeconds: 1_999_999 } }).success).toBe(true);
    expect(configSchema.safeParse({ janitor: { unknownOwnerAgeSeconds: 10 * 365 * 24 * 3600 } }).success).toBe(true);
  });
});

describe('a stray quote', () => {
  it('cannot hide deep nesting on the lines after it', () => {
    expect(tooDeep(`a: |\n  "\nb: ${brackets(200)}\n`)).toMatch(/nests deeper/);
    expect(tooDeep(`a: |\n  '\nb: ${brackets(200)}\n`)).toMatch(/nests deeper/);
  });
});
