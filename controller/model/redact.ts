/** `https://user:secret@host/x` → `https://***@host/x`, wherever such a URL stands in a text:
 *  a clone URL may carry a token, and git repeats the URL in its messages. */
export function withoutCredentials(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/gi, '$1***@');
}

/**
 * Keeps secret values out of run logs. Generated secrets are known to the run (abra hands them
 * back from `secret generate -m`); any later line that contains one is masked before it is
 * stored, printed or served.
 */
export class Redactor {
  private readonly values = new Set<string>();

  add(value: string): void {
    // Very short values would mask ordinary words; abra's shortest generated secrets are longer.
    if (value.length >= 6) this.values.add(value);
  }

  apply(text: string): string {
    let out = withoutCredentials(text);
    for (const v of this.values) if (out.includes(v)) out = out.split(v).join('***');
    return out;
  }
}
