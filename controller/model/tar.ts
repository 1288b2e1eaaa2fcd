import { buffer } from 'node:stream/consumers';
import { extract, pack } from 'tar-stream';

/**
 * One small file in and out of a tar stream, the form `docker cp -` takes and gives: cc-ci writes
 * and reads test markers inside containers without a shell in the image. tar-stream does the
 * format (as in controller/clients/backup-archive.ts).
 */

/** A tar archive holding one regular file. */
export async function tarOneFile(name: string, content: Buffer, mode = 0o644): Promise<Buffer> {
  const archive = pack();
  archive.entry({ name, mode, size: content.length, mtime: new Date() }, content);
  archive.finalize();
  return buffer(archive);
}

export interface TarEntry {
  name: string;
  type: 'file' | 'directory' | 'other';
  /** The entry's bytes, at most `maxEntryBytes` of them. */
  content: Buffer;
}

/** The entries of an uncompressed tar stream, each entry's content cut at `maxEntryBytes`. */
export async function readTar(buf: Buffer, maxEntryBytes = 64 * 1024): Promise<TarEntry[]> {
  const ex = extract();
  const entries: TarEntry[] = [];
  const reading = (async () => {
    for await (const entry of ex) {
      const parts: Buffer[] = [];
      let kept = 0;
      for await (const chunk of entry as AsyncIterable<Buffer>) {
        if (kept < maxEntryBytes) parts.push(chunk.subarray(0, maxEntryBytes - kept));
        kept += chunk.length;
      }
      const t = entry.header.type;
      entries.push({ name: entry.header.name, type: t === 'file' ? 'file' : t === 'directory' ? 'directory' : 'other', content: Buffer.concat(parts) });
    }
  })();
  ex.end(buf);
  await reading;
  return entries;
}
