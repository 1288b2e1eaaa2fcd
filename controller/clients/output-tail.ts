import { StringDecoder } from 'node:string_decoder';

/**
 * A child's output as lines, in bounded memory: however much a program prints (200 MB of it, or
 * one line that never ends), the caller keeps at most `keepChars` of its last lines, and no line
 * longer than `maxLineChars` is ever held (a longer one is cut into pieces of that size). Lines
 * are handed on in batches — every line of one chunk the pipe delivered — so a log writer can
 * store a chunk in one transaction.
 */

/** What a caller keeps of one stream by default: enough for any output cc-ci parses (docker's
 *  JSON, `docker stack config`), far less than a flood. */
export const DEFAULT_KEEP_CHARS = 8 * 1024 * 1024;
export const DEFAULT_MAX_LINE_CHARS = 64 * 1024;

export class OutputTail {
  private readonly lines: string[] = [];
  private head = 0;
  private chars = 0;
  /** Lines dropped from the front to stay within keepChars. */
  dropped = 0;

  constructor(private readonly keepChars = DEFAULT_KEEP_CHARS) {}

  push(batch: readonly string[]): void {
    for (const line of batch) {
      this.lines.push(line);
      this.chars += line.length + 1;
    }
    while (this.chars > this.keepChars && this.head < this.lines.length) {
      this.chars -= (this.lines[this.head] ?? '').length + 1;
      // Let go of it now: a thousand dropped 64 KiB lines waiting for the compaction below would
      // be 64 MiB held for nothing.
      this.lines[this.head] = '';
      this.head++;
      this.dropped++;
    }
    // Compact now and then, so the array itself does not grow without end.
    if (this.head > 1024 && this.head * 2 > this.lines.length) {
      this.lines.splice(0, this.head);
      this.head = 0;
    }
  }

  text(): string {
    return this.lines.slice(this.head).join('\n');
  }
}

/** Splits decoded chunks into lines (\n, \r\n), cutting any line at `maxLineChars`. */
export class LineSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private partial = '';

  constructor(private readonly maxLineChars = DEFAULT_MAX_LINE_CHARS) {}

  /** The complete lines of this chunk (with what was pending before it). */
  push(chunk: Buffer | string): string[] {
    const text = this.partial + (typeof chunk === 'string' ? chunk : this.decoder.write(chunk));
    const parts = text.split('\n');
    this.partial = parts.pop() ?? '';
    const out: string[] = [];
    for (const p of parts) this.cut(p.endsWith('\r') ? p.slice(0, -1) : p, out);
    while (this.partial.length > this.maxLineChars) {
      out.push(this.partial.slice(0, this.maxLineChars));
      this.partial = this.partial.slice(this.maxLineChars);
    }
    return out;
  }

  /** What is left when the stream ends. */
  end(): string[] {
    const rest = this.partial + this.decoder.end();
    this.partial = '';
    const out: string[] = [];
    if (rest) this.cut(rest, out);
    return out;
  }

  private cut(line: string, out: string[]): void {
    if (line.length <= this.maxLineChars) out.push(line);
    else for (let i = 0; i < line.length; i += this.maxLineChars) out.push(line.slice(i, i + this.maxLineChars));
  }
}
