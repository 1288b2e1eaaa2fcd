import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

// What `npm pack` would ship: the controller and its recipes' data, never the test doubles or
// the tests (they are built into dist/ too, for the set-up from a checkout).
describe('the package', () => {
  it('ships the CLI and the controller, not dist/test, dist/bench or dist/fixtures', () => {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { encoding: 'utf8', timeout: 60_000 });
    const files = (JSON.parse(out) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
    expect(files).toContain('dist/controller/cli/main.js');
    expect(files).toContain('dist/reconcilers/run.js');
    expect(files.filter((f) => /^(dist\/)?(test|bench|fixtures)\//.test(f))).toEqual([]);
  });
});
