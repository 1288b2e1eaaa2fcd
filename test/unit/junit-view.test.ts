import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { junitXml } from '../../controller/model/junit.js';
import { readJUnit } from '../../controller/views/junit-view.js';

/** The run page's results table reads JUnit from cc-ci and from a recipe's tests (hostile input). */

const dir = mkdtempSync(join(tmpdir(), 'ccci-junit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

describe('readJUnit', () => {
  it("reads cc-ci's own files back: failures first, with their messages", () => {
    const xml = junitXml('install', [
      { name: 'converges', classname: 'install', timeSeconds: 3.2 },
      { name: 'serves', classname: 'install', timeSeconds: 0.4, failure: { message: 'GET /health answered 502 & <then> nothing' } },
      { name: 'upgrade', classname: 'ladder', timeSeconds: 0, skipped: 'install failed' },
    ]);
    const r = readJUnit(file('junit-install.xml', xml), 'junit-install.xml');
    expect(r.problem).toBeNull();
    expect(r.cases.map((c) => `${c.state} ${c.name}`)).toEqual(['failed serves', 'skipped upgrade', 'passed converges']);
    expect(r.cases[0]).toMatchObject({ message: 'GET /health answered 502 & <then> nothing', timeSeconds: 0.4 });
  });

  it('reads a Playwright report (several suites, an error without a message) and expands no entity a file declares', () => {
    const xml = `<?xml version="1.0"?>
<!DOCTYPE lol [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>
<testsuites><testsuite name="home.spec.ts"><testcase name="loads" classname="home" time="1.25"/>
<testcase name="&b;" classname="home" time="x"><error type="Timeout">page.goto: Timeout 30000ms exceeded &#x3C;script&#62;</error></testcase></testsuite>
<testsuite name="login.spec.ts"><testcase name="logs in" classname="login" time="2"><failure message="expected 200"/></testcase></testsuite></testsuites>`;
    const r = readJUnit(file('junit-custom.xml', xml), 'junit-custom.xml');
    expect(r.cases.map((c) => `${c.state} ${c.suite} ${c.name}`)).toEqual([
      'failed login.spec.ts logs in',
      'error home.spec.ts &b;',
      'passed home.spec.ts loads',
    ]);
    expect(r.cases[1]).toMatchObject({ message: 'page.goto: Timeout 30000ms exceeded <script>', timeSeconds: null });
  });

  it('refuses what is too large or not XML, saying why, and caps the cases shown', () => {
    const big = readJUnit(file('big.xml', `<testsuites>${' '.repeat(3 * 1024 * 1024)}</testsuites>`), 'big.xml');
    expect(big.problem).toMatch(/larger than 2048 KiB: not read/);
    const bad = readJUnit(file('bad.xml', '<testsuites><testsuite'), 'bad.xml');
    expect(bad.cases).toEqual([]);
    const many = readJUnit(file('many.xml', `<testsuite name="s">${'<testcase name="c"/>'.repeat(1500)}</testsuite>`), 'many.xml');
    expect(many.cases).toHaveLength(1000);
    expect(many.more).toBe(500);
  });
});
