import { readdirSync, realpathSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { projectRoot } from '../controller/model/project-root.js';

/**
 * Where the custom tier's tests come from. Three layers, lowest first:
 *   1. `<recipe repo>/.cc-ci/{playwright,functional}/`  the recipe maintainers' own tests
 *   2. `recipes/<recipe>/{playwright,functional}/`       cc-ci's bundled tests of that recipe
 *   3. `<config.recipesDir>/<recipe>/{playwright,functional}/` the operator's
 * Files are matched by name within a kind: a file in a higher layer replaces the same-named
 * file of a lower one; differently named files add up. A run reads the recipe repository's
 * layer from the copy of the head's `.cc-ci/` it took at prepare (reconcilers/workspace.ts). docs/testing-custom.md says the same
 * for recipe maintainers; keep the two in step.
 */

export type TestLayerSource = 'recipe-repo' | 'bundled' | 'operator';

export type TestKind = 'playwright' | 'functional';

export interface TestLayer {
  source: TestLayerSource;
  /** The layer's directory (it may not exist). */
  dir: string;
}

export interface CustomTestFile {
  kind: TestKind;
  /** The file name, the key precedence goes by. */
  name: string;
  path: string;
  source: TestLayerSource;
}

export interface IgnoredFile {
  path: string;
  source: TestLayerSource;
  why: string;
}

export interface ReplacedFile {
  /** The file that is not used. */
  path: string;
  source: TestLayerSource;
  /** The layer whose same-named file is used instead. */
  by: TestLayerSource;
}

export interface CustomTests {
  layers: TestLayer[];
  /** Playwright spec files (`*.spec.ts`, `*.spec.js`), by name. */
  specs: CustomTestFile[];
  /** Other files next to the specs (helpers, fixture data): copied along, never run by themselves. */
  support: CustomTestFile[];
  /** Executable functional checks, by name. */
  functional: CustomTestFile[];
  /** Files that are in a test directory but are not used, with the reason. */
  ignored: IgnoredFile[];
  /** Files a higher layer replaced. */
  replaced: ReplacedFile[];
}

/** The recipe repository's own layer: its `.cc-ci/` directory, and the directory its links
 *  must stay inside (the checkout, or the copy of `.cc-ci/` a run takes at prepare). */
export interface RecipeLayer {
  dir: string;
  root: string;
}

export interface CustomTestSources {
  recipe: string;
  /** The recipe's checkout: its `.cc-ci/` is the recipe-repo layer (unless recipeLayer says otherwise). */
  recipeDir?: string | undefined;
  /** The recipe-repo layer, when it is not `<recipeDir>/.cc-ci` (a run's copy of the head's). */
  recipeLayer?: RecipeLayer | undefined;
  /** The operator's directory of recipe customisations (config `recipesDir`). */
  operatorDir?: string | undefined;
  /** The bundled recipes/ directory (default: the one shipped with cc-ci). */
  bundledDir?: string | undefined;
}

/** The directory names inside a layer. */
export const KIND_DIRS: Record<TestKind, string> = { playwright: 'playwright', functional: 'functional' };

const SPEC_RE = /\.spec\.(ts|js)$/;

/** The recipe-repo layer the sources name, if any. */
export function recipeLayerOf(s: { recipeDir?: string | undefined; recipeLayer?: RecipeLayer | undefined }): RecipeLayer | null {
  if (s.recipeLayer) return s.recipeLayer;
  return s.recipeDir ? { dir: join(s.recipeDir, '.cc-ci'), root: s.recipeDir } : null;
}

/** Whether `path` (after following links) lies inside `root`. */
export function staysInside(path: string, root: string): boolean {
  try {
    const rel = relative(realpathSync(root), realpathSync(path));
    return !(rel.startsWith('..') || rel.startsWith(sep) || rel === '');
  } catch {
    return false;
  }
}

/** The layers, lowest first (whether or not their directories exist). */
export function testLayers(s: CustomTestSources): TestLayer[] {
  const bundled = s.bundledDir ?? join(projectRoot(), 'recipes');
  const own = recipeLayerOf(s);
  return [
    ...(own ? [{ source: 'recipe-repo' as const, dir: own.dir }] : []),
    { source: 'bundled', dir: join(bundled, s.recipe) },
    ...(s.operatorDir ? [{ source: 'operator' as const, dir: join(s.operatorDir, s.recipe) }] : []),
  ];
}

/** Finds the custom tier's tests in every layer and applies the precedence. */
export function discoverCustomTests(s: CustomTestSources): CustomTests {
  const layers = testLayers(s);
  const own = recipeLayerOf(s);
  const out: CustomTests = { layers, specs: [], support: [], functional: [], ignored: [], replaced: [] };
  // name -> file, per kind; Playwright specs and their support files share one namespace,
  // since they are copied into one directory.
  const chosen: Record<TestKind, Map<string, CustomTestFile>> = { playwright: new Map(), functional: new Map() };

  for (const layer of layers) {
    for (const kind of ['playwright', 'functional'] as const) {
      const dir = join(layer.dir, KIND_DIRS[kind]);
      for (const entry of listDir(dir)) {
        if (entry.startsWith('.')) continue; // .gitkeep and the like
        const path = join(dir, entry);
        const problem = fileProblem(path, kind, layer, own?.root);
        if (problem) {
          out.ignored.push({ path, source: layer.source, why: problem });
          continue;
        }
        const previous = chosen[kind].get(entry);
        if (previous) out.replaced.push({ path: previous.path, source: previous.source, by: layer.source });
        chosen[kind].set(entry, { kind, name: entry, path, source: layer.source });
      }
    }
  }

  const byName = (a: CustomTestFile, b: CustomTestFile) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  const pw = [...chosen.playwright.values()].sort(byName);
  out.specs = pw.filter((f) => SPEC_RE.test(f.name));
  out.support = pw.filter((f) => !SPEC_RE.test(f.name));
  out.functional = [...chosen.functional.values()].sort(byName);
  return out;
}

function listDir(dir: string): string[] {
  try {
    if (!statSync(dir).isDirectory()) return [];
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

/** Why a file in a test directory cannot be used, or null when it can. */
function fileProblem(path: string, kind: TestKind, layer: TestLayer, recipeRoot: string | undefined): string | null {
  let st;
  try {
    st = statSync(path);
  } catch {
    return 'a link to nothing';
  }
  if (st.isDirectory()) return 'a directory (only files directly in the directory are used)';
  if (!st.isFile()) return 'not a regular file';
  // A link in the recipe repository must stay inside the recipe's checkout.
  if (layer.source === 'recipe-repo' && recipeRoot && !staysInside(path, recipeRoot)) return 'a link that leaves the recipe repository';
  if (kind === 'functional' && (st.mode & 0o111) === 0) {
    return 'not executable (a functional check must be an executable file with a #! line: chmod +x, and commit the mode)';
  }
  return null;
}

/** Where a file comes from, for the log: `bundled recipes/webnotes/playwright/notes.spec.ts`. */
export function describeFile(f: { path: string; source: TestLayerSource }, layers: TestLayer[]): string {
  const layer = layers.find((l) => l.source === f.source);
  const rel = layer ? relative(layer.dir, f.path) : f.path;
  const where = f.source === 'recipe-repo' ? `.cc-ci/${rel}` : rel;
  return `${where} (${f.source})`;
}

/** A one-line summary of what was found, for the tier's n/a reason or the log. */
export function describeCustomTests(t: CustomTests): string {
  const parts: string[] = [];
  if (t.specs.length) parts.push(`Playwright: ${t.specs.map((f) => describeFile(f, t.layers)).join(', ')}`);
  if (t.support.length) parts.push(`support: ${t.support.map((f) => describeFile(f, t.layers)).join(', ')}`);
  if (t.functional.length) parts.push(`functional: ${t.functional.map((f) => describeFile(f, t.layers)).join(', ')}`);
  if (t.replaced.length) parts.push(`replaced: ${t.replaced.map((r) => `${describeFile(r, t.layers)} by ${r.by}`).join(', ')}`);
  if (t.ignored.length) parts.push(`ignored: ${t.ignored.map((i) => `${describeFile(i, t.layers)}: ${i.why}`).join('; ')}`);
  return parts.join('; ') || 'nothing';
}
