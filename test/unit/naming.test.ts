import { describe, expect, it } from 'vitest';
import { newAppDomain, recipePrefix, testAppPattern } from '../../controller/model/naming.js';

describe('test app names', () => {
  const pattern = testAppPattern('ci.localhost');

  it('match the strict pattern', () => {
    expect(pattern.test('webn-0a1b2c.ci.localhost')).toBe(true);
    expect(pattern.test(newAppDomain('webnotes', 'ci.localhost'))).toBe(true);
    expect(pattern.test('webn-0a1b2c.other.localhost')).toBe(false);
    expect(pattern.test('traefik.ci.localhost')).toBe(false);
  });

  it('never match a warm canonical, even one that looks like <4 chars>-<6 hex>', () => {
    // `facade`, `decade`, `beaded` are six hex digits: warm-<recipe> can take the test-app shape.
    for (const warm of ['warm-facade.ci.localhost', 'warm-decade.ci.localhost', 'warm-0a1b2c.ci.localhost']) {
      expect(pattern.test(warm), warm).toBe(false);
    }
  });

  it('are never given the reserved warm prefix, whatever the recipe is called', () => {
    expect(recipePrefix('warm')).not.toBe('warm');
    expect(recipePrefix('warmup')).not.toBe('warm');
    expect(recipePrefix('w-a-r-m-x')).not.toBe('warm');
    for (let i = 0; i < 50; i++) {
      const d = newAppDomain('warmup', 'ci.localhost');
      expect(d.startsWith('warm-')).toBe(false);
      expect(pattern.test(d), d).toBe(true);
    }
    expect(recipePrefix('webnotes')).toBe('webn');
  });
});
