import { describe, expect, it } from 'vitest';
import { goMarshalIndent, goMarshalIndentBytes, readExampleWebhookBytes } from '../support/forge-double/index.js';

describe('goMarshalIndent', () => {
  it('reproduces the example webhook body byte for byte', () => {
    const bytes = readExampleWebhookBytes();
    expect(goMarshalIndentBytes(JSON.parse(bytes.toString('utf8'))).equals(bytes)).toBe(true);
  });

  it("escapes <, > and & as Go's HTML-safe encoder does", () => {
    expect(goMarshalIndent({ body: '<b>a & b</b>' })).toBe('{\n  "body": "\\u003cb\\u003ea \\u0026 b\\u003c/b\\u003e"\n}');
  });

  it('escapes U+2028 and U+2029, and keeps other non-ASCII text raw', () => {
    expect(goMarshalIndent(['\u2028\u2029', 'é✓'])).toBe('[\n  "\\u2028\\u2029",\n  "é✓"\n]');
  });

  it('writes control characters like Go >= 1.22', () => {
    expect(goMarshalIndent('\b\f\n\r\t\u0001')).toBe('"\\b\\f\\n\\r\\t\\u0001"');
  });

  it('writes empty containers compactly, with no trailing newline', () => {
    const text = goMarshalIndent({ a: [], b: {}, c: null });
    expect(text).toBe('{\n  "a": [],\n  "b": {},\n  "c": null\n}');
    expect(text.endsWith('\n')).toBe(false);
  });

  it('keeps insertion order', () => {
    expect(goMarshalIndent({ z: 1, a: 2 })).toBe('{\n  "z": 1,\n  "a": 2\n}');
  });

  it('round-trips: parsing the output gives the input back', () => {
    const value = { body: '!testme <&>\u2028', n: 42, nested: { list: [true, false, null] } };
    expect(JSON.parse(goMarshalIndent(value))).toEqual(value);
  });
});
