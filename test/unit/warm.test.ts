import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { statePaths } from '../../controller/model/paths.js';
import { parseWarmText } from '../../controller/model/warm.js';
import { promotionRunName, readWarmFile, warmKeys } from '../../reconcilers/warm.js';
import { Store } from '../../state/store.js';
import { WarmStore } from '../../state/warm-store.js';
import { writeFileSync, mkdirSync } from 'node:fs';

const dir = mkdtempSync(join(tmpdir(), 'ccci-warm-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const warmYaml = (extra = '') => `apiVersion: cc-ci/v1
kind: Warm
metadata: { name: custom-html }
spec:
  recipe: custom-html
  source: { repo: https://git.example.org/recipes/custom-html.git${extra} }
`;

describe('the Warm object', () => {
  it('parses the documented shape; the branch defaults to main', () => {
    const r = parseWarmText(warmYaml(', branch: trunk'));
    expect(r.ok && r.spec.spec.source).toEqual({ repo: 'https://git.example.org/recipes/custom-html.git', branch: 'trunk' });
    const d = parseWarmText(warmYaml());
    expect(d.ok && d.spec.spec.source.branch).toBe('main');
  });

  it('says what is wrong, field by field', () => {
    const bad = (text: string) => {
      const r = parseWarmText(text);
      return r.ok ? 'ok' : r.error;
    };
    expect(bad(warmYaml().replace('metadata: { name: custom-html }', 'metadata: { name: other }'))).toMatch(/metadata.name: must be the recipe name/);
    expect(bad(warmYaml(', branch: "-x"'))).toMatch(/spec.source.branch: must not start with "-"/);
    expect(bad(warmYaml().replace('recipe: custom-html', 'recipe: custom-html\n  lane: quick'))).toMatch(/spec: unknown field "lane"/);
    expect(bad(warmYaml().replace('https://git.example.org/recipes/custom-html.git', 'ext::sh -c id'))).toMatch(/remote helper/);
    expect(bad('kind: Warm\n---\nkind: Warm\n')).toMatch(/expected one document, found 2/);
  });

  it('is read from <state>/warm/<recipe>.yaml; a file named after another recipe is invalid', () => {
    const paths = statePaths(join(dir, 'state'));
    mkdirSync(paths.warm, { recursive: true });
    writeFileSync(join(paths.warm, 'custom-html.yaml'), warmYaml());
    writeFileSync(join(paths.warm, 'other.yaml'), warmYaml());
    writeFileSync(join(paths.warm, '.custom-html.yaml.tmp'), 'half a file');
    expect(readWarmFile(paths, 'custom-html').kind).toBe('present');
    expect(readWarmFile(paths, 'other')).toMatchObject({ kind: 'invalid', error: expect.stringMatching(/must be named after its recipe/) });
    expect(readWarmFile(paths, 'nothing').kind).toBe('absent');
    const store = new Store(join(dir, 'keys.db'));
    new WarmStore(store).insert('gone-file', '{}', '/x');
    expect(warmKeys(paths, store)).toEqual(['custom-html', 'gone-file', 'other']);
    store.close();
  });
});

describe('warm status and promotion names', () => {
  it('stores, patches (null clears) and forgets a status row', () => {
    const store = new Store(join(dir, 'status.db'));
    const ws = new WarmStore(store);
    ws.insert('webnotes', '{"a":1}', '/state/warm/webnotes.yaml');
    ws.insert('webnotes', '{"b":2}', '/elsewhere');
    expect(ws.get('webnotes')).toMatchObject({ specJson: '{"a":1}', health: 'unknown', promotedCommit: null });
    ws.update('webnotes', { candidateCommit: 'abc', candidateRun: 'r1', health: 'absent', healthReason: 'why' });
    ws.update('webnotes', { candidateRun: null });
    expect(ws.get('webnotes')).toMatchObject({ candidateCommit: 'abc', candidateRun: null, health: 'absent', healthReason: 'why' });
    ws.delete('webnotes');
    expect(ws.list()).toEqual([]);
    store.close();
  });

  it('names a promotion run after its recipe and commit, within a run name', () => {
    const sha = 'a'.repeat(40);
    expect(promotionRunName('webnotes', sha)).toBe('webnotes-promote-aaaaaaaaaaaa');
    const long = promotionRunName(`${'x'.repeat(39)}-yyyy`, sha);
    expect(long.length).toBeLessThanOrEqual(63);
    expect(long).toMatch(/^x{39}-promote-a{12}$/);
  });
});

describe('holding a warm app', () => {
  it('lends a healthy warm app to one quick run at a time, and a hold that ends asks for a return', () => {
    const store = new Store(join(dir, 'hold.db'));
    const warm = new WarmStore(store);
    expect(warm.tryHold('custom-html', 'q-1')).toEqual({ held: false, wait: false, why: 'custom-html has no Warm object' });
    warm.insert('custom-html', '{}', '/x');
    // Nothing promoted and gated yet: nothing to wait for, the run falls back to cold.
    expect(warm.tryHold('custom-html', 'q-1')).toMatchObject({ held: false, wait: false, why: 'warm-custom-html is unknown' });
    warm.update('custom-html', { health: 'healthy', healthReason: 'created', canonicalCommit: 'a'.repeat(40) });
    expect(warm.tryHold('custom-html', 'q-1')).toEqual({ held: true });
    // Asked again by its holder (a second look at admission): still its own.
    expect(warm.tryHold('custom-html', 'q-1')).toEqual({ held: true });
    expect(warm.tryHold('custom-html', 'q-2')).toEqual({ held: false, wait: true, why: 'waiting for warm-custom-html (held by q-1)' });
    expect(warm.heldBy('q-1')?.recipe).toBe('custom-html');
    // Only the holder ends its hold; ending it records the return before anything is undone.
    expect(warm.endHold('custom-html', 'q-2')).toBe(false);
    expect(warm.endHold('custom-html', 'q-1')).toBe(true);
    expect(warm.get('custom-html')).toMatchObject({ holder: null, heldSince: null, returnPending: 'q-1' });
    expect(warm.tryHold('custom-html', 'q-2')).toEqual({
      held: false,
      wait: true,
      why: 'waiting for warm-custom-html (being returned to canonical after q-1)',
    });
    warm.update('custom-html', { returnPending: null, upkeep: 'upgrading aaaaaaaaaaaa → bbbbbbbbbbbb' });
    expect(warm.tryHold('custom-html', 'q-2')).toEqual({
      held: false,
      wait: true,
      why: 'waiting for warm-custom-html (upgrading aaaaaaaaaaaa → bbbbbbbbbbbb)',
    });
    warm.update('custom-html', { upkeep: null, health: 'unhealthy', healthReason: 'the probe failed' });
    expect(warm.tryHold('custom-html', 'q-2')).toEqual({ held: false, wait: false, why: 'warm-custom-html is unhealthy (the probe failed)' });
    store.close();
  });

  it('keeps the warm app port out of every run lease, and the snapshot and gate as JSON', () => {
    const store = new Store(join(dir, 'ports.db'));
    const warm = new WarmStore(store);
    warm.insert('custom-html', '{}', '/x');
    warm.update('custom-html', {
      appPort: 21001,
      snapshot: { kind: 'abra', id: 'abc123', commit: 'a'.repeat(40), at: 1 },
      gate: { services: ['s_app'], healthPath: '/', healthStatuses: [200] },
    });
    expect(store.livePorts().has(21001)).toBe(true);
    expect(warm.get('custom-html')).toMatchObject({ snapshot: { kind: 'abra', id: 'abc123' }, gate: { services: ['s_app'] } });
    warm.update('custom-html', { snapshot: null });
    expect(warm.get('custom-html')?.snapshot).toBeNull();
    store.close();
  });
});
