import { createHash } from 'node:crypto';
import { parseAllDocuments } from 'yaml';
import { tooDeep } from './bounded-read.js';
import { z } from 'zod';
import { TIER_NAMES } from '../../state/types.js';

/**
 * The Run spec (docs/architecture.md, Objects): the one schema every entry point validates against — spec files,
 * `cc-ci apply`, `cc-ci run` and the forge intake all build or parse a Run through here.
 */

const NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

/** A run or recipe name as the spec allows it (at most 63 characters of [a-z0-9-]): checked
 *  before a name from a URL or a file touches the store, the disk or a page. */
export function isName(name: string): boolean {
  return name.length <= 63 && NAME.test(name);
}

/** A git ref as a user may write it: a commit, tag or branch. Mirrors `git check-ref-format`
 *  closely enough that nothing reaching git can be read as an option or a revision range. */
export function refProblem(ref: string): string | null {
  if (ref.length === 0) return 'is empty';
  if (ref.length > 255) return 'is longer than 255 characters';
  if (ref.startsWith('-')) return 'must not start with "-"';
  if (/[\x00-\x20\x7f~^:?*[\\]/.test(ref)) return 'contains a character git does not allow in a ref (space, ~ ^ : ? * [ \\ or a control character)';
  if (ref.includes('..')) return 'must not contain ".."';
  if (ref.includes('@{')) return 'must not contain "@{"';
  if (ref.endsWith('/') || ref.endsWith('.') || ref.endsWith('.lock')) return 'must not end with "/", "." or ".lock"';
  if (ref.startsWith('/') || ref.includes('//')) return 'must not start with "/" or contain "//"';
  return null;
}

/** A repository is a URL git understands or a local path; never something git would parse as a flag. */
export function repoProblem(repo: string): string | null {
  if (repo.trim() !== repo || repo.length === 0) return 'is empty or has surrounding whitespace';
  if (repo.startsWith('-')) return 'must not start with "-"';
  if (/[\x00-\x1f\x7f]/.test(repo)) return 'contains a control character';
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(repo) && !/^(https?|ssh|git|file):\/\//i.test(repo)) {
    return 'uses a URL scheme git should not be given (allowed: https, http, ssh, git, file, or a path)';
  }
  if (repo.startsWith('ext::') || /^[a-z]+::/i.test(repo)) return 'uses a git remote helper, which is not allowed';
  const isUrl = /^[a-z][a-z0-9+.-]*:\/\//i.test(repo) || /^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:/.test(repo);
  if (!isUrl && !repo.startsWith('/')) return 'must be a URL or an absolute path (a relative path means nothing to the controller)';
  return null;
}

export const nameSchema = z
  .string()
  .max(63, 'must be at most 63 characters')
  .regex(NAME, 'must be lowercase letters, digits and "-", starting and ending with a letter or digit');

export const recipeNameSchema = z
  .string()
  .max(63, 'must be at most 63 characters')
  .regex(NAME, 'must be lowercase letters, digits and "-" (a Co-op Cloud recipe name)');

export const repoSchema = z.string().superRefine((v, ctx) => {
  const p = repoProblem(v);
  if (p) ctx.addIssue({ code: 'custom', message: p });
});

export const refSchema = z.string().superRefine((v, ctx) => {
  const p = refProblem(v);
  if (p) ctx.addIssue({ code: 'custom', message: p });
});

const forgeTrigger = z.strictObject({
  owner: z.string().min(1),
  repo: z.string().min(1),
  pr: z.number().int().positive(),
  comment: z.number().int().nonnegative().optional(),
  by: z.string().min(1).optional(),
  sha: z
    .string()
    .regex(/^[0-9a-f]{7,64}$/)
    .optional(),
  delivery: z.string().optional(),
});

export const runSpecSchema = z.strictObject({
  apiVersion: z.literal('cc-ci/v1', { error: 'must be "cc-ci/v1"' }),
  kind: z.literal('Run', { error: 'must be "Run"' }),
  metadata: z.strictObject({
    name: nameSchema,
    labels: z.record(z.string(), z.string()).optional(),
  }),
  spec: z.strictObject({
    recipe: recipeNameSchema,
    source: z.strictObject({ repo: repoSchema, ref: refSchema }),
    lane: z.enum(['cold', 'quick']).default('cold'),
    tiers: z
      .array(z.enum(TIER_NAMES))
      .min(1, 'must name at least one tier')
      .refine((t) => new Set(t).size === t.length, 'must not repeat a tier')
      .optional(),
    trigger: z
      .strictObject({
        kind: z.enum(['comment', 'cli', 'file', 'schedule']),
        forge: forgeTrigger.optional(),
      })
      .optional(),
    /** This run reruns another (controller/runtime/run-actions.ts): all its tiers, or from the first that failed. */
    rerun: z
      .strictObject({
        of: nameSchema,
        tiers: z.enum(['all', 'failed']),
        by: z.string().min(1).max(200),
      })
      .optional(),
  }),
});

export type RunSpec = z.infer<typeof runSpecSchema>;
export type RunSpecInput = z.input<typeof runSpecSchema>;

/** A run spec is a dozen lines; anything this large is a mistake, not a spec. */
export const MAX_SPEC_CHARS = 256 * 1024;

export type SpecParse = { ok: true; spec: RunSpec; hash: string } | { ok: false; error: string; name: string | null };

/** Formats zod issues as `field.path: message` lines a person can act on. */
export function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => {
      const where = i.path.length ? `${i.path.join('.')}: ` : '';
      if (i.code === 'unrecognized_keys') return `${where}unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `"${k}"`).join(', ')}`;
      return `${where}${i.message}`;
    })
    .join('; ');
}

/** A stable hash of the validated spec: two files meaning the same run hash the same. */
export function specHash(spec: RunSpec): string {
  return createHash('sha256').update(stableStringify(spec)).digest('hex').slice(0, 16);
}

function stableStringify(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableStringify(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

export function validateSpec(doc: unknown): SpecParse {
  const r = runSpecSchema.safeParse(doc);
  if (!r.success) {
    const name = guessName(doc);
    return { ok: false, error: formatIssues(r.error), name };
  }
  return { ok: true, spec: r.data, hash: specHash(r.data) };
}

/** One YAML or JSON document (JSON is YAML) of a desired-state file, or why it is not one. Never throws. */
export function parseDocument(text: string): { ok: true; value: unknown } | { ok: false; error: string } {
  if (text.trim() === '') return { ok: false, error: 'the file is empty' };
  if (text.length > MAX_SPEC_CHARS) return { ok: false, error: `the file is larger than ${MAX_SPEC_CHARS / 1024} KiB; a spec is a few lines` };
  const deep = tooDeep(text);
  if (deep) return { ok: false, error: `the file ${deep}` };
  let docs;
  try {
    docs = parseAllDocuments(text, { prettyErrors: true, uniqueKeys: true, logLevel: 'error' });
  } catch (e) {
    return { ok: false, error: `not valid YAML or JSON: ${(e as Error).message}` };
  }
  if (!Array.isArray(docs)) return { ok: false, error: 'not valid YAML or JSON' };
  if (docs.length !== 1) return { ok: false, error: `expected one document, found ${docs.length}` };
  const [doc] = docs;
  if (!doc) return { ok: false, error: 'the file is empty' };
  if (doc.errors.length > 0) return { ok: false, error: `not valid YAML or JSON: ${doc.errors.map((e) => e.message.split('\n')[0]).join('; ')}` };
  try {
    // An alias bomb (a few lines expanding to millions of nodes) is refused here, not expanded.
    return { ok: true, value: doc.toJS({ maxAliasCount: 10 }) };
  } catch (e) {
    return { ok: false, error: `not a usable YAML document: ${(e as Error).message}` };
  }
}

/** The `kind` a parsed document says it is, if it says. */
export function kindOf(doc: unknown): string | null {
  const k = doc && typeof doc === 'object' ? (doc as { kind?: unknown }).kind : undefined;
  return typeof k === 'string' ? k : null;
}

/** Parses a spec file's text (YAML or JSON: JSON is YAML) and validates it. Never throws. */
export function parseSpecText(text: string): SpecParse {
  const doc = parseDocument(text);
  return doc.ok ? validateSpec(doc.value) : { ok: false, error: doc.error, name: null };
}

export function guessName(doc: unknown): string | null {
  if (!doc || typeof doc !== 'object') return null;
  const md = (doc as { metadata?: unknown }).metadata;
  if (!md || typeof md !== 'object') return null;
  const n = (md as { name?: unknown }).name;
  return typeof n === 'string' && isName(n) ? n : null;
}

/** The spec a run was accepted with. Spec sync validated it and stored the parsed, defaulted
 *  form (controller/runtime/spec-sync.ts), so it is read back as stored. */
export function acceptedSpec(run: { specJson: string }): RunSpec {
  return JSON.parse(run.specJson) as RunSpec;
}
