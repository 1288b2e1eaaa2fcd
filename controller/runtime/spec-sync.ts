import { createHash } from 'node:crypto';
import { lstatSync, readdirSync } from 'node:fs';
import { readBoundedFile } from '../model/bounded-read.js';
import { basename, join } from 'node:path';
import type { Logger } from '../model/log.js';
import { MAX_SPEC_CHARS, parseSpecText } from '../model/spec.js';
import type { Store } from '../../state/store.js';
import { RunHistory } from '../../state/history.js';

/**
 * Keeps the store's view of `<state>/specs/` in step with the files. A valid file becomes a
 * run (once: a run's spec is fixed at admission); an invalid one is recorded with its reason
 * and left where it is; a deleted file cancels its run (the finalizer).
 *
 * A resync reads only what may have changed: a file is read again only when its fingerprint
 * (inode, size, mtime, ctime, mode, by lstat: a link is not followed) differs from the one
 * recorded when it was last read. And while the directory itself is unchanged since the last full
 * look — no file added, removed or renamed — only the files whose content still matters are
 * looked at: invalid ones and those of unfinished runs (a finished run's spec was fixed when it
 * was accepted; an edit in place is caught by the watcher, and would only be refused). Ten
 * thousand finished runs' files then cost one lstat of the directory.
 */

/** A directory modified this recently may change again within its timestamp's granularity: not trusted as unchanged. */
const DIR_SETTLE_MS = 2_000;

/** A file's fingerprint, from lstat (a link is its own file, never followed), or null when it is gone. */
function statKey(path: string): string | null {
  const st = lstatSync(path, { throwIfNoEntry: false });
  return st ? `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}:${st.mode}` : null;
}

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
    // Taken before reading: a file that changes after this is read again by the next resync.
    const key = statKey(path);
    let text: string;
    try {
      // Opened without following links or blocking, a regular file only, read to the limit: a FIFO
      // or a link to /dev/zero dropped into specs/ is recorded invalid, never a hang.
      text = readBoundedFile(path, MAX_SPEC_CHARS * 4);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return this.removed(path);
      this.store.recordSpecFile({ path, name: null, status: 'invalid', error: `cannot read: ${(e as Error).message}`, hash: null }, key);
      return;
    }
    const fileHash = createHash('sha256').update(text).digest('hex').slice(0, 16);
    const known = this.store.getSpecFile(path);
    if (known && known.hash === fileHash) {
      this.store.setSpecFileStat(path, key);
      return;
    }

    const parsed = parseSpecText(text);
    if (!parsed.ok) {
      this.store.recordSpecFile({ path, name: parsed.name, status: 'invalid', error: parsed.error, hash: fileHash }, key);
      this.logger.warn({ file: path, error: parsed.error }, 'invalid run spec file (left in place)');
      return;
    }
    const { spec } = parsed;
    const name = spec.metadata.name;
    const clash = this.store.specFileNamed(name, path);
    if (clash) {
      const error = `metadata.name "${name}" is already used by ${basename(clash)}; run names must be unique`;
      this.store.recordSpecFile({ path, name, status: 'invalid', error, hash: fileHash }, key);
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
      this.store.recordSpecFile({ path, name, status: 'valid', error: null, hash: fileHash }, key);
      this.store.appendEvent(name, 'info', `accepted from ${basename(path)}: ${spec.spec.recipe} @ ${spec.spec.source.ref} (${spec.spec.lane})`);
      this.hooks.accepted(name);
      this.hooks.enqueue(name);
      return;
    }
    if (run.specHash !== parsed.hash) {
      // A run is not edited in flight: its spec was fixed when it was accepted.
      const error = `the run "${name}" was accepted with a different spec; changes are ignored — use a new name to run again`;
      this.store.recordSpecFile({ path, name, status: 'invalid', error, hash: fileHash }, key);
      this.logger.warn({ file: path, run: name }, 'spec changed after acceptance (ignored)');
      return;
    }
    const prunedAt = new RunHistory(this.store).prunedAt(name);
    if (prunedAt !== null) {
      // Retention forgot this run's files (reconcilers/retention.ts); its file coming back neither
      // runs it again nor makes it a run with a spec file to cancel.
      const error = `the run "${name}" finished and its files were removed by retention on ${new Date(prunedAt).toISOString()}; use a new name to run again`;
      this.store.recordSpecFile({ path, name, status: 'invalid', error, hash: fileHash }, key);
      return;
    }
    this.store.recordSpecFile({ path, name, status: 'valid', error: null, hash: fileHash }, key);
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

  /** The directory's fingerprint after the last full look, when it had been still long enough to trust. */
  private dirKey: string | null = null;

  /** Reads the whole directory: new and changed files are synced, vanished ones removed. */
  resync(): void {
    if (this.dirKey !== null && this.dirKey === statKey(this.dir)) {
      for (const [p, key] of this.store.unsettledSpecFiles()) if (key === null || key !== statKey(p)) this.syncFile(p);
      return;
    }
    const started = Date.now();
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      names = [];
    }
    const known = this.store.specFileStats();
    const present = new Set<string>();
    for (const n of names) {
      const p = join(this.dir, n);
      if (!isSpecFile(p)) continue;
      present.add(p);
      const recorded = known.get(p);
      if (recorded && recorded === statKey(p)) continue;
      this.syncFile(p);
    }
    for (const p of known.keys()) if (!present.has(p)) this.removed(p);
    const dir = lstatSync(this.dir, { throwIfNoEntry: false });
    this.dirKey = dir && dir.mtimeMs < started - DIR_SETTLE_MS && dir.ctimeMs < started - DIR_SETTLE_MS ? statKey(this.dir) : null;
  }
}
