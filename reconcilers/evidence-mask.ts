import { copyFileSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { Redactor } from '../controller/model/redact.js';

/**
 * Evidence a recipe's tests wrote (Playwright's report, traces and screenshots, JUnit, what a
 * functional check put in EVIDENCE_DIR) is served to anyone who can read the run page, so it goes
 * through the run's masking before it is kept: text files are masked in place; a file that cannot
 * be masked without breaking it (an image, a zip of a trace) and holds a secret is withheld, and a
 * note stands in its place. Links are removed (evidence is served from inside evidence/ only, but a
 * link is never evidence). Walks at most MAX_FILES files, MAX_DEPTH deep.
 */

const TEXT = new Set(['.txt', '.log', '.xml', '.json', '.html', '.htm', '.md', '.csv', '.yaml', '.yml', '.js', '.css', '.svg', '']);
/** A text file larger than this is withheld if it holds a secret rather than read whole into memory twice. */
const MAX_TEXT_BYTES = 64 * 1024 * 1024;
const MAX_FILES = 10_000;
/** What one tier's sandboxed code may leave as evidence, in all. */
const MAX_EVIDENCE_BYTES = 256 * 1024 * 1024;
const MAX_DEPTH = 16;

export interface MaskSummary {
  masked: number;
  withheld: string[];
}

export function maskEvidence(root: string, redactor: Redactor): MaskSummary {
  const summary: MaskSummary = { masked: 0, withheld: [] };
  let budget = MAX_FILES;
  const walk = (dir: string, depth: number): void => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) {
      if (budget-- <= 0) return;
      const path = join(dir, name);
      const st = lstatSync(path);
      if (st.isSymbolicLink()) rmSync(path, { force: true });
      else if (st.isDirectory()) {
        if (depth < MAX_DEPTH) walk(path, depth + 1);
        else rmSync(path, { recursive: true, force: true });
      } else if (st.isFile()) maskFile(path, st.size, redactor, summary);
      else rmSync(path, { force: true });
    }
  };
  walk(root, 0);
  return summary;
}

function maskFile(path: string, size: number, redactor: Redactor, summary: MaskSummary): void {
  const bytes = readFileSync(path);
  const text = TEXT.has(extname(path).toLowerCase()) && size <= MAX_TEXT_BYTES ? bytes.toString('utf8') : null;
  if (text !== null && Buffer.from(text, 'utf8').equals(bytes)) {
    const masked = redactor.apply(text);
    if (masked !== text) {
      writeFileSync(path, masked);
      summary.masked++;
    }
    return;
  }
  if (!redactor.holdsSecret(bytes)) return;
  rmSync(path, { force: true });
  writeFileSync(`${path}.withheld.txt`, 'cc-ci withheld this file: it held a secret of the run, and it cannot be masked without breaking it.\n');
  summary.withheld.push(path);
}

/**
 * Copies what sandboxed code left in `from` into the run's evidence at `to`: regular files and
 * directories only (a link it made is not followed), at most MAX_FILES files, MAX_DEPTH deep and
 * MAX_EVIDENCE_BYTES in all (what does not fit is left behind). The caller masks the evidence
 * afterwards (maskEvidence).
 */
export function copyEvidence(from: string, to: string): number {
  let budget = MAX_FILES;
  let bytes = MAX_EVIDENCE_BYTES;
  let copied = 0;
  const walk = (src: string, dest: string, depth: number): void => {
    let names: string[];
    try {
      names = readdirSync(src);
    } catch {
      return;
    }
    mkdirSync(dest, { recursive: true });
    for (const name of names) {
      if (budget-- <= 0) return;
      const path = join(src, name);
      const st = lstatSync(path);
      if (st.isDirectory() && depth < MAX_DEPTH) walk(path, join(dest, name), depth + 1);
      else if (st.isFile() && st.size <= bytes) {
        bytes -= st.size;
        copyFileSync(path, join(dest, name));
        copied++;
      }
    }
  };
  walk(from, to, 0);
  return copied;
}
