import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyRawDelivery } from '../../controller/forge/webhook.js';
import { parseTrigger } from '../../controller/forge/trigger.js';
import { ComposeError, readComposeFile } from '../../controller/model/compose-model.js';
import { parseSpecText } from '../../controller/model/spec.js';
import { loadCustomization, SettingsError } from '../../recipes/customization.js';
import { readExampleWebhookBytes } from '../support/forge-double/index.js';

/**
 * Fuzzers of what anyone can send cc-ci, with bounded counts so the suite stays fast: webhook
 * bodies (bytes, and the real payload with fields replaced), `!testme` comments, spec files, and
 * the YAML a pull request carries (compose files, `.cc-ci/settings.yaml`). Each input must end in
 * an answer or the module's own error — never another exception, never a hang (fast-check's
 * `interruptAfterTimeLimit` would report one as a failure by the time limit of each property).
 */

const RUNS = 1500;

/** YAML-ish text: the characters and words that make parsers work hardest. */
const yamlish = fc
  .array(
    fc.oneof(
      fc.constantFrom('[', ']', '{', '}', ':', '- ', '\n', '  ', '&a ', '*a', '<<: *a', '!!binary ', '|', '>', '"', "'", '#', ',', '?', '%YAML 1.2\n', '---\n'),
      fc.constantFrom(
        'apiVersion',
        'kind',
        'Run',
        'Warm',
        'metadata',
        'name',
        'spec',
        'recipe',
        'source',
        'repo',
        'ref',
        'tiers',
        'services',
        'app',
        'image',
        'volumes',
        'deployTimeoutSeconds',
      ),
      fc.string({ maxLength: 12 }),
      fc.integer().map(String),
    ),
    { maxLength: 200 },
  )
  .map((parts) => parts.join(''));

const deepNesting = fc.tuple(fc.integer({ min: 50, max: 20_000 }), fc.constantFrom('[', '{', '- ', '{a: ')).map(([n, open]) => open.repeat(n));

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ccci-fuzz-'));
  mkdirSync(join(dir, 'bundled'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('fuzzing what anyone can send', () => {
  it('spec files: every text is a valid spec or an error, never a throw', () => {
    fc.assert(
      fc.property(fc.oneof(yamlish, deepNesting, fc.string({ maxLength: 2000 })), (text) => {
        const r = parseSpecText(text);
        expect(typeof r.ok).toBe('boolean');
        if (!r.ok) expect(typeof r.error).toBe('string');
      }),
      { numRuns: RUNS },
    );
  });

  it('webhook bodies: random bytes and the real payload with fields replaced are classified, never thrown', () => {
    const example = JSON.parse(readExampleWebhookBytes().toString('utf8')) as Record<string, unknown>;
    const headers = { 'x-gitea-event': 'issue_comment', 'x-gitea-delivery': 'd', 'content-type': 'application/json' };
    const anyJson = fc.jsonValue({ maxDepth: 4 });
    const mutated = fc
      .tuple(fc.constantFrom('action', 'issue', 'comment', 'repository', 'sender', 'is_pull'), anyJson)
      .map(([key, value]) => Buffer.from(JSON.stringify({ ...example, [key]: value })));
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 4096 }).map((b) => Buffer.from(b)),
          mutated,
          deepNesting.map((t) => Buffer.from(t)),
        ),
        (body) => {
          const d = classifyRawDelivery(headers, body);
          expect(['ignored', 'pr-comment']).toContain(d.kind);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('!testme comments: any text is a command or not, in time linear in its length', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 500 }),
          fc.array(fc.constantFrom('!testme', ' ', '--quick', '\n', '`', '```', '> ', 'abc1234', '!', '-'), { maxLength: 300 }).map((p) => p.join('')),
        ),
        (text) => {
          const t = parseTrigger(text);
          expect(typeof t).toBe('object');
        },
      ),
      { numRuns: RUNS },
    );
    // A long crafted comment: the parser's time grows with the length, not its square.
    const time = (n: number) => {
      const text = '!testme '.repeat(n / 8) + '`'.repeat(n / 8);
      const t0 = performance.now();
      parseTrigger(text);
      return performance.now() - t0;
    };
    time(10_000);
    const small = Math.max(time(20_000), 0.5);
    const big = time(200_000);
    console.log(`parseTrigger: 20 K chars ${small.toFixed(1)} ms, 200 K chars ${big.toFixed(1)} ms`);
    expect(big).toBeLessThan(small * 10 * 5);
  });

  it("a pull request's compose files and settings: parsed or refused with the module's own error", () => {
    const recipe = join(dir, 'recipe');
    mkdirSync(join(recipe, '.cc-ci'), { recursive: true });
    fc.assert(
      fc.property(fc.oneof(yamlish, deepNesting), (text) => {
        writeFileSync(join(recipe, 'compose.yml'), text);
        try {
          readComposeFile(recipe, 'compose.yml');
        } catch (e) {
          expect(e).toBeInstanceOf(ComposeError);
        }
        writeFileSync(join(recipe, '.cc-ci', 'settings.yaml'), text);
        try {
          loadCustomization({
            recipe: 'fuzz',
            recipeDir: recipe,
            bundledDir: join(dir, 'bundled'),
            defaults: { deployTimeoutSeconds: 60, httpTimeoutSeconds: 30 },
          });
        } catch (e) {
          expect(e).toBeInstanceOf(SettingsError);
        }
      }),
      { numRuns: 600 },
    );
  });
});
