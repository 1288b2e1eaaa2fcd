import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { StatePaths } from './paths.js';
import type { RunSpec } from './spec.js';

/** Where the spec file of the run `name` lives (or would): `<state>/specs/<name>.yaml`. */
export function specFilePath(paths: StatePaths, name: string): string {
  return join(paths.specs, `${name}.yaml`);
}

/** Writes a run spec into `<state>/specs/` atomically (temp file, then rename), so the
 *  watcher never reads half a file. Every way in ends here (docs/architecture.md, Objects). */
export function writeSpecFile(paths: StatePaths, spec: RunSpec): string {
  return writeDesiredFile(paths.specs, spec.metadata.name, spec);
}

/** Writes `<dir>/<name>.yaml` atomically: a temp file the watchers ignore (a dot file), then a rename. */
export function writeDesiredFile(dir: string, name: string, value: unknown): string {
  const file = join(dir, `${name}.yaml`);
  const tmp = join(dir, `.${name}.yaml.tmp`);
  writeFileSync(tmp, stringify(value), { mode: 0o600 });
  renameSync(tmp, file);
  return file;
}
