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
    let out = text;
    for (const v of this.values) if (out.includes(v)) out = out.split(v).join('***');
    return out;
  }
}
