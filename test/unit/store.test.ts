import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { migrations } from '../../state/migrations.js';
import { Store } from '../../state/store.js';
import { ROOT } from '../support/harness.js';

/**
 * The state store on real SQLite: WAL, versioned migrations applied exactly once (also when
 * several processes open a new database at the same moment), a newer schema refused, the log
 * numbered without gaps across writers, and leases that cannot be taken twice.
 */

let dir: string;
let file: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ccci-store-'));
  file = join(dir, 'cc-ci.db');
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

function insert(store: Store, name: string): void {
  store.insertRun({ name, specJson: '{}', specHash: 'h', specPath: null, recipe: 'webnotes', lane: 'cold' });
}

describe('state store', () => {
  it('is in WAL mode and applies every migration once, also when reopened', () => {
    const a = new Store(file);
    expect(a.db.pragma('journal_mode', { simple: true })).toBe('wal');
    const newest = Math.max(...migrations.map((m) => m.version));
    expect(a.schemaVersion()).toBe(newest);
    a.close();
    const b = new Store(file);
    const rows = b.db.prepare('SELECT version FROM schema_migrations ORDER BY version').all() as { version: number }[];
    expect(rows.map((r) => r.version)).toEqual(migrations.map((m) => m.version));
    b.close();
  });

  it('several processes opening a new database at once all succeed, and each migration is applied once', async () => {
    const storeJs = join(ROOT, 'dist', 'state', 'store.js');
    const script = `const { Store } = await import(${JSON.stringify(storeJs)}); const s = new Store(process.argv[1]); console.log(s.schemaVersion()); s.close();`;
    const opens = await Promise.all(
      Array.from({ length: 6 }, () => execa('node', ['--input-type=module', '-e', script, file], { reject: false, timeout: 60_000 })),
    );
    for (const o of opens) expect(o.exitCode, o.stderr).toBe(0);
    const s = new Store(file);
    const rows = s.db.prepare('SELECT version, COUNT(*) AS n FROM schema_migrations GROUP BY version').all() as { version: number; n: number }[];
    expect(rows).toHaveLength(migrations.length);
    for (const r of rows) expect(r.n).toBe(1);
    s.close();
  });

  it('refuses a database written by a newer cc-ci, saying so', () => {
    const s = new Store(file);
    s.db.prepare('INSERT INTO schema_migrations VALUES (?, ?, ?)').run(999, 'from the future', Date.now());
    s.close();
    expect(() => new Store(file)).toThrow(/schema version 999, newer than this cc-ci knows/);
  });

  it("numbers a run's log without gaps or repeats when two handles write in turn", () => {
    const a = new Store(file);
    const b = new Store(file);
    insert(a, 'r1');
    const seqs: number[] = [];
    for (let i = 0; i < 20; i++) seqs.push((i % 2 ? a : b).appendEvent('r1', 'info', `line ${i}`).seq);
    expect(seqs).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(a.eventsSince('r1', 15).map((e) => e.text)).toEqual(['line 15', 'line 16', 'line 17', 'line 18', 'line 19']);
    a.close();
    b.close();
  });

  it('never leases one domain, or one live port, twice', () => {
    const s = new Store(file);
    insert(s, 'r1');
    insert(s, 'r2');
    const lease = (run: string, domain: string, port: number) =>
      s.leaseApp({ domain, run, attempt: 1, purpose: 'install', stack: domain.replace(/\./g, '_'), server: 'default', abraDir: dir, port });
    expect(lease('r1', 'webn-aaaaaa.ci.localhost', 20001)).toBe(true);
    expect(lease('r2', 'webn-aaaaaa.ci.localhost', 20002)).toBe(false);
    expect(lease('r2', 'webn-bbbbbb.ci.localhost', 20001)).toBe(false);
    // Once released, the port may be leased again.
    s.setAppState('webn-aaaaaa.ci.localhost', 'released');
    expect(lease('r2', 'webn-bbbbbb.ci.localhost', 20001)).toBe(true);
    expect(s.livePorts()).toEqual(new Set([20001]));
    s.close();
  });
});

describe('the state files are private', () => {
  it('creates the database and its WAL 0600 and the state directory 0700, and tightens an older install', async () => {
    const { chmodSync, mkdirSync, statSync, writeFileSync } = await import('node:fs');
    const { ensureStateDirs, statePaths } = await import('../../controller/model/paths.js');
    const root = mkdtempSync(join(tmpdir(), 'ccci-private-'));
    try {
      const paths = statePaths(join(root, 'state'));
      mkdirSync(paths.root, { mode: 0o755 });
      chmodSync(paths.root, 0o755);
      ensureStateDirs(paths);
      expect(statSync(paths.root).mode & 0o777).toBe(0o700);
      const s = new Store(paths.db);
      s.db.exec('CREATE TABLE IF NOT EXISTS t (x)');
      s.db.exec('INSERT INTO t VALUES (1)');
      for (const f of [paths.db, `${paths.db}-wal`]) expect(statSync(f).mode & 0o777, f).toBe(0o600);
      s.close();
      const old = join(root, 'old.db');
      writeFileSync(old, '');
      chmodSync(old, 0o644);
      new Store(old).close();
      expect(statSync(old).mode & 0o777).toBe(0o600);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
