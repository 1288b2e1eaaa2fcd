import { randomBytes } from 'node:crypto';

/**
 * App domains and stack names. A run's app is `<up to 4 chars of recipe>-<6 hex>.<base>`: short,
 * so stack and secret names stay inside Docker's limits, and recognisable by one strict pattern,
 * so the janitor can never mistake a warm, infrastructure or human app for a test app.
 */

/** abra truncates sanitised app names to this many characters (docs/abra-double.md, The contract). */
export const MAX_STACK_NAME = 45;
/** Docker's limit on secret and config names. */
export const MAX_SECRET_NAME = 64;

/** Warm canonical apps are `warm-<recipe>…` (docs/architecture.md, Objects): no test app may ever look like one,
 *  since `warm-facade` is four characters, a dash and six hex digits. */
export const RESERVED_PREFIX = 'warm';

export function recipePrefix(recipe: string): string {
  const p = recipe.replace(/[^a-z0-9]/g, '').slice(0, 4);
  if (p === RESERVED_PREFIX) return 'wrm';
  return p.length > 0 ? p : 'app';
}

export function newAppDomain(recipe: string, base: string): string {
  return `${recipePrefix(recipe)}-${randomBytes(3).toString('hex')}.${base}`;
}

/** The `<prefix>-<6 hex>` part of a test app's domain, as a regular expression source. */
export const TEST_APP_LABEL = `(?!${RESERVED_PREFIX}-)[a-z0-9]{1,4}-[0-9a-f]{6}`;

export function testAppPattern(base: string): RegExp {
  return new RegExp(`^${TEST_APP_LABEL}\\.${escapeRegExp(base)}$`);
}

export function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** abra's SanitiseAppName: dots become underscores, then truncation (docs/abra-double.md, The contract). */
export function stackName(domain: string): string {
  return domain.replace(/\./g, '_').slice(0, MAX_STACK_NAME);
}

/** A run name from the CLI: `<recipe>-<ref slug>-<4 hex>`, valid as metadata.name. */
export function cliRunName(recipe: string, ref: string): string {
  const slug = ref
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 12)
    .replace(/-+$/, '');
  const suffix = randomBytes(3).toString('hex');
  const head = `${recipe}-${slug || 'ref'}`.slice(0, 63 - suffix.length - 1).replace(/-+$/, '');
  return `${head}-${suffix}`;
}
