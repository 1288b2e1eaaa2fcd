// Serialises a value the way Go's encoding/json `json.MarshalIndent(v, "", "  ")` does, which is
// how Gitea and Forgejo write (and sign) webhook bodies. JSON.stringify with a 2-space indent already
// matches Go's layout: the same newlines and indentation, `[]`/`{}` for empty containers, no
// trailing newline, raw UTF-8, and (Go >= 1.22) the same short escapes \b \f \n \r \t. What differs
// is that Go's HTML-safe escaping also writes <, > and & as \u003c, \u003e, \u0026, and U+2028 /
// U+2029 as \u2028 / \u2029. Those characters can only occur inside strings in JSON text, so
// replacing them everywhere is safe.
//
// Key order is the object's insertion order: build payloads from the forge's example body (which is
// in Go struct order) and the result keeps that order.

const GO_ESCAPED = /[<>&\u2028\u2029]/g;

export function goMarshalIndent(value: unknown): string {
  const text = JSON.stringify(value, null, 2);
  if (text === undefined) throw new TypeError('value is not representable as JSON');
  return text.replace(GO_ESCAPED, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The bytes a forge would send and sign for `value`. */
export function goMarshalIndentBytes(value: unknown): Buffer {
  return Buffer.from(goMarshalIndent(value), 'utf8');
}
