import { watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';

/**
 * Watches one directory, not its subdirectories, through a single inotify watch (node's
 * fs.watch): a name that appeared, changed or vanished is reported once it has been still for
 * `settleMs` (a writer that writes in pieces is read once it is done). The reports are hints —
 * the caller looks at the file and finds out what happened — and the periodic resync stays the
 * truth. chokidar, which the spec directory was watched with before, keeps a watch and state per
 * file: with ten thousand spec files that cost some 65 MB and a second and a half at each start.
 */

/** Names waiting to settle at most; past it they are dropped and `overflow` asks for a full look. */
const MAX_WAITING = 1_000;

export interface DirWatch {
  close(): void;
}

export function watchDir(dir: string, o: { settleMs: number; changed: (path: string) => void; overflow: () => void; error: (e: Error) => void }): DirWatch {
  const waiting = new Map<string, NodeJS.Timeout>();
  const watcher: FSWatcher = watch(dir, (_event, name) => {
    // No name (the kernel's queue overflowed): only a full look can tell what changed.
    if (!name) return o.overflow();
    const before = waiting.get(name);
    if (before) clearTimeout(before);
    else if (waiting.size >= MAX_WAITING) {
      for (const t of waiting.values()) clearTimeout(t);
      waiting.clear();
      return o.overflow();
    }
    waiting.set(
      name,
      setTimeout(() => {
        waiting.delete(name);
        o.changed(join(dir, name));
      }, o.settleMs),
    );
  });
  watcher.on('error', o.error);
  return {
    close: () => {
      watcher.close();
      for (const t of waiting.values()) clearTimeout(t);
      waiting.clear();
    },
  };
}
