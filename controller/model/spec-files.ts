import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { StatePaths } from './paths.js';
import type { RunSpec } from './spec.js';

/** Writes a run spec into `<state>/specs/` atomically (temp file, then rename), so the
 *  watcher never reads half a file. Every way in ends here (docs/architecture.md, Objects). */
export function writeSpecFile(paths: StatePaths, spec: RunSpec): string {
  const file = join(paths.specs, `${spec.metadata.name}.yaml`);
  const tmp = join(paths.specs, `.${spec.metadata.name}.yaml.tmp`);
  writeFileSync(tmp, stringify(spec), { mode: 0o600 });
  renameSync(tmp, file);
  return file;
}
