import type { Config } from '../model/config.js';

/**
 * The repositories cc-ci serves (config `repos`). A comment anywhere else is ignored with a log
 * line. Names compare case-insensitively, as the forge's do.
 */

export interface EnrolledRepo {
  owner: string;
  name: string;
  /** `owner/name` as configured. */
  fullName: string;
  /** The recipe the repository holds: configured, or the repository's name. */
  recipe: string;
  /** Clone from here instead of the pull request's head repository. */
  cloneUrl: string | null;
}

const RECIPE_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

export class EnrolledRepos {
  private readonly byName = new Map<string, EnrolledRepo>();
  /** Entries that cannot be served, with why (logged at start). */
  readonly problems: string[] = [];

  constructor(entries: Config['repos']) {
    for (const entry of entries) {
      const e = typeof entry === 'string' ? { name: entry } : entry;
      const [owner = '', name = ''] = e.name.split('/');
      // A repository name is not always a valid recipe name (capitals, dots); say so rather than guess.
      const recipe = e.recipe ?? name.toLowerCase();
      if (!RECIPE_NAME.test(recipe) || recipe.length > 63) {
        this.problems.push(`${e.name}: "${recipe}" is not a recipe name ([a-z0-9-]); map it with {name: ${e.name}, recipe: <recipe>}`);
        continue;
      }
      const key = e.name.toLowerCase();
      if (this.byName.has(key)) {
        this.problems.push(`${e.name}: enrolled twice; the first entry is used`);
        continue;
      }
      this.byName.set(key, { owner, name, fullName: e.name, recipe, cloneUrl: e.cloneUrl ?? null });
    }
  }

  lookup(owner: string, repo: string): EnrolledRepo | undefined {
    return this.byName.get(`${owner}/${repo}`.toLowerCase());
  }

  list(): EnrolledRepo[] {
    return [...this.byName.values()];
  }
}
