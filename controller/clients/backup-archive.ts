import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import { extract, type Headers } from 'tar-stream';

/**
 * Reads a backup archive as `abra app backup download` writes it, without unpacking it to disk
 * or holding it in memory: a `.tar.gz` that holds one nested `<stack>_<volume>.tar` per volume
 * (backup-bot-two's download, docs/abra-double.md, The contract) — or the volume files directly (a flat archive)
 * — and, when abra was not asked for volumes only, a `<domain>.json` of the app's secrets, which
 * is never read. What comes out is a listing of names and sizes (the evidence a run keeps; the
 * archive itself is not kept) and the contents of the one file asked for, bounded in size.
 */

export interface ArchiveEntry {
  /** `<outer entry>!<inner entry>` for files inside a nested volume tar. */
  name: string;
  size: number;
}

export interface ArchiveScan {
  files: number;
  bytes: number;
  /** The first entries (at most `maxListed`), for the evidence listing. */
  listed: ArchiveEntry[];
  /** Nested volume tars found at the top level. */
  volumes: string[];
  /** Top-level `.json` files, left unread: abra's download puts the app's secrets in one. */
  secretsFiles: string[];
  /** Every copy of the file asked for (by basename), with its content. */
  found: { name: string; content: string }[];
}

export interface ScanOptions {
  /** Basename of the file whose contents are wanted (the test marker). */
  want: string;
  maxListed?: number;
  /** Content beyond this many bytes of a wanted file is not read. */
  maxWantBytes?: number;
}

async function drain(stream: Readable): Promise<void> {
  for await (const _ of stream) void _;
}

async function readBounded(stream: Readable, max: number): Promise<string> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const chunk of stream) {
    const b = chunk as Buffer;
    if (n < max) parts.push(b.subarray(0, max - n));
    n += b.length;
  }
  return Buffer.concat(parts).toString('utf8');
}

/** Whether the stream starts with gzip's magic bytes. */
function isGzip(head: Buffer): boolean {
  return head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b;
}

async function scanTar(input: Readable, prefix: string, scan: ArchiveScan, o: Required<ScanOptions>, top: boolean): Promise<void> {
  const ex = extract();
  const done = (async () => {
    for await (const entry of ex) {
      const header: Headers = entry.header;
      const name = header.name.replace(/^\.\//, '');
      if (header.type !== 'file' && header.type !== 'contiguous-file') {
        await drain(entry);
        continue;
      }
      const size = header.size ?? 0;
      if (top && /\.tar(\.gz)?$/.test(name)) {
        scan.volumes.push(name);
        const inner = /\.gz$/.test(name) ? entry.pipe(createGunzip()) : entry;
        await scanTar(inner, `${name}!`, scan, o, false);
        continue;
      }
      if (top && /\.json$/.test(name) && !name.includes('/')) {
        scan.secretsFiles.push(name);
        await drain(entry);
        continue;
      }
      scan.files++;
      scan.bytes += size;
      if (scan.listed.length < o.maxListed) scan.listed.push({ name: `${prefix}${name}`, size });
      if (basename(name) === o.want) scan.found.push({ name: `${prefix}${name}`, content: await readBounded(entry, o.maxWantBytes) });
      else await drain(entry);
    }
  })();
  await Promise.all([pipeline(input, ex), done]);
}

/** Scans a `.tar.gz` (or plain `.tar`) backup archive. Throws when it is not one. */
export async function scanBackupArchive(file: string, options: ScanOptions): Promise<ArchiveScan> {
  const o: Required<ScanOptions> = { maxListed: 500, maxWantBytes: 4096, ...options };
  const scan: ArchiveScan = { files: 0, bytes: 0, listed: [], volumes: [], secretsFiles: [], found: [] };
  const head = await new Promise<Buffer>((resolve, reject) => {
    const s = createReadStream(file, { start: 0, end: 1 });
    const parts: Buffer[] = [];
    s.on('data', (c) => parts.push(c as Buffer));
    s.on('end', () => resolve(Buffer.concat(parts)));
    s.on('error', reject);
  });
  const raw = createReadStream(file);
  await scanTar(isGzip(head) ? raw.pipe(createGunzip()) : raw, '', scan, o, true);
  return scan;
}

/** The listing kept as evidence: what the snapshot held, never its contents. */
export function archiveListing(scan: ArchiveScan, what: string): string {
  const lines = [
    `# ${what}: ${scan.files} file(s), ${scan.bytes} bytes${scan.volumes.length ? ` in ${scan.volumes.length} volume archive(s): ${scan.volumes.join(', ')}` : ''}`,
    ...scan.secretsFiles.map((f) => `# ${f}: the app's secrets (abra puts them in a download unless asked for volumes only); not read, not kept`),
    ...scan.listed.map((e) => `${String(e.size).padStart(10)}  ${e.name}`),
  ];
  if (scan.files > scan.listed.length) lines.push(`… and ${scan.files - scan.listed.length} more`);
  return `${lines.join('\n')}\n`;
}
