import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LineSplitter, OutputTail } from '../../controller/clients/output-tail.js';
import { runProcess } from '../../controller/clients/process.js';
import { Store } from '../../state/store.js';
import { heldBytes } from '../support/memory.js';
import { testRunContext } from '../support/run-context.js';

/**
 * A recipe's program that prints without end must not grow the server (docs/security.md, "What is
 * bounded"): the child's output is kept as a bounded tail, no line is held past a bound, and the
 * run's log writes each chunk in one transaction up to its own bound. The figure is printed.
 */

const dir = mkdtempSync(join(tmpdir(), 'ccci-output-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('output in bounded memory', () => {
  it('keeps only the tail of the lines, and cuts a line that never ends', () => {
    const tail = new OutputTail(100);
    for (let i = 0; i < 1000; i++) tail.push([`line ${i}`]);
    expect(tail.text().length).toBeLessThanOrEqual(100);
    expect(tail.text().endsWith('line 999')).toBe(true);
    expect(tail.dropped).toBeGreaterThan(980);
    const split = new LineSplitter(10);
    expect(split.push('abc\r\ndefghijklmnopq')).toEqual(['abc', 'defghijklm']);
    expect(split.push(Buffer.from([0xc3]))).toEqual([]); // half of "é": kept for the next chunk
    expect(split.push(Buffer.from([0xa9, 0x0a]))).toEqual(['nopqé']);
    expect(split.end()).toEqual([]);
  });

  it('200 MB of output (lines, then one endless line) through a run log leaves less than 32 MB held, and peaks below 256 MB', async () => {
    const store = new Store(join(dir, 'flood.db'));
    const ctx = testRunContext(store, join(dir, 'state'), 'flood');
    const script = [
      "const line = 'x'.repeat(199) + '\\n';",
      'const block = line.repeat(5000);', // 1 MB of lines
      "const endless = 'y'.repeat(1 << 20);", // 1 MB of one line, no newline
      'let n = 0;',
      'function more() {',
      '  while (n < 200) { const chunk = n < 100 ? block : endless; n++; if (!process.stdout.write(chunk)) return process.stdout.once("drain", more); }',
      '}',
      'more();',
    ].join('\n');
    const heldBefore = heldBytes();
    const before = process.memoryUsage();
    let peakRss = before.rss;
    let peakHeap = before.heapUsed + before.external + before.arrayBuffers;
    const sample = setInterval(() => {
      const m = process.memoryUsage();
      peakRss = Math.max(peakRss, m.rss);
      peakHeap = Math.max(peakHeap, m.heapUsed + m.external + m.arrayBuffers);
    }, 20);
    const t0 = Date.now();
    const r = await runProcess({
      cmd: process.execPath,
      args: ['-e', script],
      timeoutMs: 120_000,
      onLines: (stream, lines) => ctx.logLines(stream, lines),
    });
    clearInterval(sample);
    const heldMB = (heldBytes() - heldBefore) / 2 ** 20;
    const rssMB = (peakRss - before.rss) / 2 ** 20;
    const heapMB = (peakHeap - (before.heapUsed + before.external + before.arrayBuffers)) / 2 ** 20;
    console.log(
      `200 MB of output in ${((Date.now() - t0) / 1000).toFixed(1)} s: peak RSS +${rssMB.toFixed(1)} MB, peak heap+external +${heapMB.toFixed(1)} MB, ` +
        `held after it (the result's tail included) +${heldMB.toFixed(1)} MB; ` +
        `kept ${(r.stdout.length / 2 ** 20).toFixed(1)} MB of stdout, log holds ${(store.outputBytes('flood') / 2 ** 20).toFixed(1)} MB`,
    );
    expect(r.exitCode).toBe(0);
    expect(r.stdout.length).toBeLessThanOrEqual(8 * 2 ** 20 + 64 * 1024);
    expect(r.stdout.endsWith('y')).toBe(true);
    expect(store.outputBytes('flood')).toBeLessThan(21 * 2 ** 20);
    expect(heldMB).toBeLessThan(32);
    expect(rssMB).toBeLessThan(256);
    store.close();
  }, 180_000);
});
