/**
 * Small helpers for the server's HTML pages: every dynamic value goes through `esc`, and URLs
 * shown to people lose any credentials they carry (a clone URL may hold a token).
 */

export function esc(value: unknown): string {
  return (typeof value === 'string' ? value : value === null || value === undefined ? '' : (JSON.stringify(value) ?? ''))
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

export { withoutCredentials } from '../model/redact.js';

export function ago(ms: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export const STYLE = `
body{font:14px/1.45 system-ui,sans-serif;margin:1.5rem auto;max-width:72rem;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem}th,td{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f6f6}code,pre{font:12px/1.4 ui-monospace,monospace}pre#log{background:#111;color:#ddd;padding:.75rem;max-height:36rem;overflow:auto;white-space:pre-wrap}
.passed,.pass{color:#137333}.failed,.fail{color:#b3261e}.error{color:#b06000}.cancelled,.skipped{color:#666}.muted{color:#666}
dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}dt{font-weight:600}dd{margin:0}
`;

export function page(title: string, body: string, head = ''): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(title)} · cc-ci</title><style>${STYLE}</style>${head}</head>
<body><p class="muted">cc-ci · <a href="/runs">runs</a> · <a href="/recipes">recipes</a></p>
${body}
</body></html>`;
}
