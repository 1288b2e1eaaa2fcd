import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';

/**
 * Reading a file that someone else put there (a spec file dropped into `specs/`, a compose file or
 * `.cc-ci/settings.yaml` from a pull request) without letting it hang or exhaust the server: the
 * path is opened without following a final symbolic link and without blocking (a FIFO would
 * otherwise wait for a writer forever), only a regular file is read, and at most `maxBytes`.
 */

export class UnreadableFileError extends Error {}

export function readBoundedFile(path: string, maxBytes: number): string {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new UnreadableFileError('is a symbolic link; only regular files are read');
    throw e;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new UnreadableFileError('is not a regular file (a FIFO, device or directory); only regular files are read');
    if (st.size > maxBytes) throw new UnreadableFileError(`is larger than ${Math.round(maxBytes / 1024)} KiB`);
    // Read to the limit and one byte past it: a file that grows while being read is refused too.
    // The buffer starts at the size the file has (a spec is a few hundred bytes: a resync of ten
    // thousand must not zero a megabyte for each) and grows, up to the limit, if the file does.
    let buf = Buffer.alloc(Math.min(st.size, maxBytes) + 1);
    let got = 0;
    for (;;) {
      if (got === buf.length) {
        const bigger = Buffer.alloc(Math.min(buf.length * 2, maxBytes + 1));
        buf.copy(bigger, 0, 0, got);
        buf = bigger;
      }
      const n = readSync(fd, buf, got, buf.length - got, null);
      if (n === 0) break;
      got += n;
      if (got > maxBytes) throw new UnreadableFileError(`is larger than ${Math.round(maxBytes / 1024)} KiB`);
    }
    return buf.subarray(0, got).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** How deep YAML (or JSON) text may nest before it is refused unparsed: far past any spec,
 *  compose file or settings file, far short of what exhausts the parser's stack. */
export const MAX_YAML_DEPTH = 64;

/**
 * The deepest nesting the text could build, estimated without parsing it: flow collections
 * (`[` `{`, outside quotes and comments), plus the block-sequence and block-mapping indicators a
 * line can stack (`- - - x`, `? ? x`), plus indentation (a block level needs at least one column).
 * An overestimate only refuses absurd documents; it never lets a deep one through.
 */
export function yamlDepth(text: string): number {
  let max = 0;
  let flow = 0;
  let quote: '"' | "'" | null = null;
  for (const line of text.split('\n')) {
    let i = 0;
    let block = 0;
    if (flow === 0) {
      while (line[i] === ' ') i++;
      const indent = i;
      while ((line[i] === '-' || line[i] === '?') && (line[i + 1] === ' ' || line[i + 1] === undefined)) {
        block++;
        i += 2;
        while (line[i] === ' ') i++;
      }
      // Two spaces per level is YAML's habit; one is its minimum.
      block += Math.ceil(indent / 2);
    }
    for (; i < line.length; i++) {
      const c = line[i];
      if (quote) {
        if (c === '\\' && quote === '"') i++;
        else if (c === quote) quote = null;
        continue;
      }
      if (c === '#' && (i === 0 || line[i - 1] === ' ' || line[i - 1] === '\t')) break;
      // A quote opens a quoted scalar only where a scalar can start; inside a plain scalar (`it's`)
      // it is a character.
      if ((c === '"' || c === "'") && (i === 0 || ' \t[{,:-?'.includes(line[i - 1]!))) quote = c;
      else if (c === '[' || c === '{') {
        flow++;
        max = Math.max(max, flow + block);
      } else if ((c === ']' || c === '}') && flow > 0) flow--;
    }
    // A quoted scalar may span lines, but taking it to end here only overestimates (brackets in its
    // continuation count); carrying it on would let one stray quote hide the rest of the file.
    quote = null;
    max = Math.max(max, flow + block);
  }
  return max;
}

/** Why `text` is refused before parsing, or null. */
export function tooDeep(text: string, limit = MAX_YAML_DEPTH): string | null {
  const d = yamlDepth(text);
  return d > limit ? `nests deeper than ${limit} levels (about ${d}); refused unparsed` : null;
}
