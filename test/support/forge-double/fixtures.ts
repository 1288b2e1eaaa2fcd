// Finds the copied forge contract (test/fixtures/forge-contract) from wherever this module runs:
// from the TypeScript source under vitest, or from dist/ after tsc (which does not copy the files).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const RELATIVE = join('test', 'fixtures', 'forge-contract');

function findContractDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, RELATIVE);
    if (existsSync(join(candidate, 'gitea-openapi-subset.json'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find ${RELATIVE} above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

export const CONTRACT_DIR = findContractDir();

/** The example PR-comment webhook body, exactly as the forge signs it (no trailing newline). */
export function readExampleWebhookBytes(): Buffer {
  return readFileSync(join(CONTRACT_DIR, 'webhook-issue-comment-pr.json'));
}

export function readContractSpecText(): string {
  return readFileSync(join(CONTRACT_DIR, 'gitea-openapi-subset.json'), 'utf8');
}

/**
 * cc-ci's additions to the copied contract (additions.json: operations read from the same Gitea
 * tag, kept apart so the copy stays byte for byte what SOURCE.md says it is).
 */
export function readContractAdditionsText(): string {
  return readFileSync(join(CONTRACT_DIR, 'additions.json'), 'utf8');
}
