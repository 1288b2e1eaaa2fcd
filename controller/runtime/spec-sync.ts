import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { readBoundedFile } from '../model/bounded-read.js';
import { basename, join } from 'node:path';
import type { Logger } from '../model/log.js';
import { MAX_SPEC_CHARS, parseSpecText } from '../model/spec.js';
import type { Store } from '../../state/store.js';

/**
 * Keeps the store's view of `<state>/specs/` in step with the files. A valid file becomes a
 * run (once: a run's spec is fixed at admission); an invalid one is recorded with its reason
 * and left where it is; a deleted file cancels its run (the finalizer).
 */

export const SPEC_EXTENSIONS = ['.yaml', '.yml', '.json'];

export function isSpecFile(path: string): boolean {
  const b = basename(path);
  return !b.startsWith('.') && SPEC_EXTENSIONS.some((e) => b.endsWith(e));
}

export interface SpecSyncHooks {
  /** A run was created or may need another look. */
  enqueue(name: string): void;
  /** A new run was accepted (supersede older runs of the same pull request and lane). */
  accepted(name: string): void;
  /** A run's spec file is gone: cancel it. */
  cancel(name: string, reason: string): void;
}

export class SpecSync {
  constructor(
    private readonly store: Store,
    private readonly dir: string,
    private readonly logger: Logger,
    private readonly hooks: SpecSyncHooks,
  ) {}

  /** Looks at one file (after an add or change event, or during a resync). Never throws: a
   *  file that cannot be taken in is recorded with the reason, and the controller goes on. */
  syncFile(path: string): void {
    if (!isSpecFile(path)) return;
    try {
      this.take(path);
    } catch (e) {
      const error = `could not be taken in: ${(e as Error).message}`;
      this.logger.error({ file: path, error }, 'run spec file could not be taken in (left in place)');
      try {
        this.store.recordSpecFile({ path, name: null, status: 'invalid', error, hash: null });
      } catch {
        // The store itself failed: the log line above is all that can be done; the next resync looks again.
      }
    }
  }

  private take(path: string): void {
    let text: string;
    try {
      // Opened without following links or blocking, a regular file only, read to the limit: a FIFO
      // or a link to /dev/zero dropped into specs/ is recorded invalid, never a hang.
      text = readBoundedFile(path, MAX_SPEC_CHARS * 4);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return this.removed(path);
      this.store.recordSpecFile({ path, name: null, status: 'invalid', error: `cannot read: ${(e as Error).message}`, hash: null });
      return;
    }
    const fileHash = createHash('sha256').update(text).digest('hex').slice(0, 16);
    const known = this.store.getSpecFile(path);
    if (known && known.hash === fileHash) return;

    const parsed = parseSpecText(text);
    if (!parsed.ok) {
      this.store.recordSpecFile({ path, name: parsed.name, status: 'invalid', error: parsed.error, hash: fileHash });
      this.logger.warn({ file: path, error: parsed.error }, 'invalid run spec file (left in place)');
      return;
    }
    const { spec } = parsed;
    const name = spec.metadata.name;
    const clash = this.store.listSpecFiles().find((f) => f.name === name && f.path !== path && f.status === 'valid');
    if (clash) {
      const error = `metadata.name "${name}" is already used by ${basename(clash.path)}; run names must be unique`;
      this.store.recordSpecFile({ path, name, status: 'invalid', error, hash: fileHash });
      this.logger.warn({ file: path, error }, 'duplicate run name (file left in place)');
      return;
    }

    const run = this.store.getRun(name);
    if (!run) {
      this.store.insertRun({
        name,
        specJson: JSON.stringify(spec),
        specHash: parsed.hash,
        specPath: path,
        recipe: spec.spec.recipe,
        lane: spec.spec.lane,
      });
      this.store.recordSpecFile({ path, name, status: 'valid', error: null, hash: fileHash });
      this.store.appendEvent(name, 'info', `accepted from ${basename(path)}: ${spec.spec.recipe} @ ${spec.spec.source.ref} (${spec.spec.lane})`);
      this.hooks.accepted(name);
      this.hooks.enqueue(name);
      return;
    }
    if (run.specHash !== parsed.hash) {
      // A run is not edited in flight: its spec was fixed when it was accepted.
      const error = `the run "${name}" was accepted with a different spec; changes are ignored — use a new name to run again`;
      this.store.recordSpecFile({ path, name, status: 'invalid', error, hash: fileHash });
      this.logger.warn({ file: path, run: name }, 'spec changed after acceptance (ignored)');
      return;
    }
    this.store.recordSpecFile({ path, name, status: 'valid', error: null, hash: fileHash });
    if (run.specPath !== path) this.store.updateRun(name, { specPath: path });
  }

  /** A file is gone: forget it, and cancel its run if it is not finished. */
  removed(path: string): void {
    const rec = this.store.getSpecFile(path);
    this.store.forgetSpecFile(path);
    if (!rec?.name || rec.status !== 'valid') return;
    const run = this.store.getRun(rec.name);
    if (!run || run.specPath !== path) return;
    this.store.updateRun(run.name, { specPath: null });
    if (run.phase !== 'Done') this.hooks.cancel(run.name, `spec file ${basename(path)} was deleted`);
  }

  /** Reads the whole directory: new and changed files are synced, vanished ones removed. */
  resync(): void {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      names = [];
    }
    const present = new Set(names.map((n) => join(this.dir, n)).filter(isSpecFile));
    for (const p of present) this.syncFile(p);
    for (const f of this.store.listSpecFiles()) if (!present.has(f.path)) this.removed(f.path);
  }
}
