import { z } from 'zod';
import type { StatePaths } from './paths.js';
import { writeDesiredFile } from './spec-files.js';
import { formatIssues, guessName, nameSchema, parseDocument, recipeNameSchema, refSchema, repoSchema } from './spec.js';

/**
 * The Warm object: the desired state of one recipe's warm canonical app — a long-lived deployment
 * at the recipe's last good version, which `!testme --quick` borrows (docs/warm.md). One file per
 * recipe in `<state>/warm/`, named after it; deleting the file tears the warm app down.
 */

export const warmSpecSchema = z
  .strictObject({
    apiVersion: z.literal('cc-ci/v1', { error: 'must be "cc-ci/v1"' }),
    kind: z.literal('Warm', { error: 'must be "Warm"' }),
    metadata: z.strictObject({ name: nameSchema, labels: z.record(z.string(), z.string()).optional() }),
    spec: z.strictObject({
      recipe: recipeNameSchema,
      /** Where the recipe's default branch is: its head, once a cold run passes on it, is promoted. */
      source: z.strictObject({ repo: repoSchema, branch: refSchema.default('main') }),
    }),
  })
  .refine((w) => w.metadata.name === w.spec.recipe, {
    message: 'must be the recipe name (one Warm object per recipe)',
    path: ['metadata', 'name'],
  });

export type WarmSpec = z.infer<typeof warmSpecSchema>;

export type WarmParse = { ok: true; spec: WarmSpec } | { ok: false; error: string; name: string | null };

export function validateWarm(doc: unknown): WarmParse {
  const r = warmSpecSchema.safeParse(doc);
  return r.success ? { ok: true, spec: r.data } : { ok: false, error: formatIssues(r.error), name: guessName(doc) };
}

/** Parses a Warm file's text (YAML or JSON) and validates it. Never throws. */
export function parseWarmText(text: string): WarmParse {
  const doc = parseDocument(text);
  return doc.ok ? validateWarm(doc.value) : { ok: false, error: doc.error, name: null };
}

/** The recipe a file of `<state>/warm/` is named for, or null for anything else (a dot file such
 *  as the atomic writer's temp file, another extension). */
export function recipeOfWarmFile(fileName: string): string | null {
  const m = /^([^.][^/]*)\.(ya?ml|json)$/.exec(fileName);
  return m ? m[1]! : null;
}

/** Writes a Warm object into `<state>/warm/<recipe>.yaml` atomically (temp file, then rename). */
export function writeWarmFile(paths: StatePaths, spec: WarmSpec): string {
  return writeDesiredFile(paths.warm, spec.metadata.name, spec);
}
