import { XMLParser } from 'fast-xml-parser';
import { readBoundedFile } from '../model/bounded-read.js';

/**
 * The JUnit files among a run's evidence, read for the run page's results table: cc-ci's own per
 * tier, and the recipe's tests' (junit-custom.xml) — which come from pull-request code, so they
 * are read as hostile: bounded in size and in cases, entities not expanded (only the five XML
 * ones and character references are decoded), every text cut short. fast-xml-parser does the
 * parsing (a well-kept parser without native code); what it gives back is checked field by field.
 */

export interface JUnitRow {
  suite: string;
  name: string;
  classname: string;
  timeSeconds: number | null;
  state: 'failed' | 'error' | 'skipped' | 'passed';
  message: string | null;
}

export interface JUnitFile {
  file: string;
  cases: JUnitRow[];
  /** Cases past MAX_CASES, not shown. */
  more: number;
  /** Why the file could not be read, if it could not. */
  problem: string | null;
}

const MAX_BYTES = 2 * 1024 * 1024;
const MAX_CASES = 1_000;
const MAX_TEXT = 2_000;

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  processEntities: false,
  parseTagValue: false,
  parseAttributeValue: false,
  isArray: (name) => ['testsuite', 'testcase', 'failure', 'error', 'skipped'].includes(name),
});

function decode(s: string): string {
  return s
    .replace(/&#x([0-9a-f]{1,6});/gi, (_m, h: string) => safeChar(parseInt(h, 16)))
    .replace(/&#(\d{1,7});/g, (_m, d: string) => safeChar(Number(d)))
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
}

function safeChar(code: number): string {
  return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : '';
}

function text(v: unknown): string {
  const s = typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '';
  const d = decode(s);
  return d.length > MAX_TEXT ? `${d.slice(0, MAX_TEXT)}…` : d;
}

type Node = Record<string, unknown>;
const nodes = (v: unknown): Node[] => (Array.isArray(v) ? v.filter((x): x is Node => typeof x === 'object' && x !== null) : []);

function outcome(c: Node): { state: JUnitRow['state']; message: string | null } {
  for (const state of ['failure', 'error'] as const) {
    const f = nodes(c[state])[0] ?? (Array.isArray(c[state]) && (c[state] as unknown[]).length ? {} : undefined);
    if (f) return { state: state === 'failure' ? 'failed' : 'error', message: text(f.message) || text(f['#text']) || null };
  }
  if (Array.isArray(c.skipped)) return { state: 'skipped', message: text(nodes(c.skipped)[0]?.message) || null };
  return { state: 'passed', message: null };
}

/** Reads one JUnit file: its cases, failures and errors first, each with its message. */
export function readJUnit(path: string, file: string): JUnitFile {
  let xml: string;
  try {
    xml = readBoundedFile(path, MAX_BYTES);
  } catch (e) {
    return { file, cases: [], more: 0, problem: `${(e as Error).message}: not read` };
  }
  let doc: Node;
  try {
    doc = parser.parse(xml) as Node;
  } catch (e) {
    return { file, cases: [], more: 0, problem: `is not XML cc-ci can read: ${(e as Error).message.split('\n')[0]}` };
  }
  const root = (doc.testsuites as Node | undefined) ?? doc;
  const suites = nodes(root.testsuite);
  const rows: JUnitRow[] = [];
  let total = 0;
  for (const s of suites) {
    for (const c of nodes(s.testcase)) {
      total++;
      if (rows.length >= MAX_CASES) continue;
      const time = Number(c.time);
      rows.push({ suite: text(s.name), name: text(c.name), classname: text(c.classname), timeSeconds: Number.isFinite(time) ? time : null, ...outcome(c) });
    }
  }
  const rank = { failed: 0, error: 1, skipped: 2, passed: 3 } as const;
  rows.sort((a, b) => rank[a.state] - rank[b.state]);
  return { file, cases: rows, more: total - rows.length, problem: null };
}
