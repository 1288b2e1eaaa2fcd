import { execa } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { buildRecipeRepo, listRecipes, zooDir, type RecipeRepo } from '../fixtures/recipe-repo.js';

/**
 * The recipe zoo's repositories (fixtures/zoo/README.md): built the way each real layout is
 * released — annotated `X.Y.Z+U` tags, `v`-prefixed ones, lightweight ones, or none — and kept
 * deployable: a swarm config never changes content under the same versioned name.
 */

const EXPECTED: Record<string, { tags: string[]; lightweight: boolean; variants: string[] }> = {
  hotline: { tags: [], lightweight: false, variants: [] },
  minimal: { tags: ['0.1.0+1.35.0', '0.2.0+1.35.0'], lightweight: false, variants: [] },
  multicompose: { tags: ['1.0.0+1.35.0', '1.1.0+1.35.0'], lightweight: false, variants: ['hook-fails'] },
  noversion: { tags: ['0.1.0+1.35.0'], lightweight: false, variants: ['unhealthy'] },
  oldtags: { tags: ['v2.4.7', 'v2.4.8'], lightweight: true, variants: [] },
  rollout: { tags: ['v1.0.0', 'v1.1.0'], lightweight: false, variants: [] },
  socketproxy: { tags: [], lightweight: false, variants: [] },
};

let work: string;
const repos: Record<string, RecipeRepo> = {};
const git = async (dir: string, args: string[]) => (await execa('git', args, { cwd: dir, timeout: 30_000 })).stdout.trim();

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'ccci-zoo-repos-'));
  for (const r of Object.keys(EXPECTED)) repos[r] = await buildRecipeRepo(r, join(work, r), { recipesDir: zooDir() });
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('the recipe zoo', () => {
  it('has the recipes its README describes', async () => {
    expect(await listRecipes(zooDir())).toEqual(Object.keys(EXPECTED).sort());
  });

  for (const [recipe, want] of Object.entries(EXPECTED)) {
    it(`${recipe}: releases tagged as its layout tags them, variants one commit on head`, async () => {
      const r = repos[recipe]!;
      expect(r.tags).toEqual(want.tags);
      for (const tag of want.tags) expect(await git(r.path, ['cat-file', '-t', `refs/tags/${tag}`])).toBe(want.lightweight ? 'commit' : 'tag');
      expect(Object.keys(r.branches)).toEqual(want.variants);
      for (const sha of Object.values(r.branches)) expect(await git(r.path, ['rev-parse', `${sha}^`])).toBe(r.head);
      expect(await git(r.path, ['rev-list', '--count', 'main'])).toBe(String(Math.max(1, want.tags.length + 1)));
      // a second build gives the same ids
      const again = await buildRecipeRepo(recipe, join(work, `${recipe}-again`), { recipesDir: zooDir() });
      expect({ ...again, path: r.path }).toEqual(r);
    });

    it(`${recipe}: a swarm config never changes without its version in abra.sh`, async () => {
      const r = repos[recipe]!;
      const seen = new Map<string, string>();
      for (const ref of [...want.tags, 'main', ...want.variants]) {
        const show = (p: string) => git(r.path, ['show', `${ref}:${p}`]);
        const exports = Object.fromEntries(
          (await show('abra.sh')).split('\n').flatMap((l) => {
            const m = /^export\s+(\w+)=(\S+)$/.exec(l);
            return m ? [[m[1]!, m[2]!]] : [];
          }),
        );
        const files = (await git(r.path, ['ls-tree', '--name-only', ref])).split('\n').filter((f) => /^compose.*\.yml$/.test(f));
        for (const f of files) {
          const doc = parseYaml(await show(f), { merge: true }) as { configs?: Record<string, { name: string; file: string }> };
          for (const [key, c] of Object.entries(doc.configs ?? {})) {
            const name = c.name.replace(/\$\{(\w+)\}/g, (_, v: string) => (v === 'STACK_NAME' ? '' : (exports[v] ?? `<${v} unset>`)));
            expect(name, `${recipe}@${ref} ${key}`).not.toContain('unset');
            const content = await show(c.file);
            const before = seen.get(name);
            if (before !== undefined) expect(content, `${recipe}@${ref}: ${c.file} changed under ${name}`).toBe(before);
            seen.set(name, content);
          }
        }
      }
    });
  }
});
