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
:root{color-scheme:light dark;--fg:#222;--bg:#fff;--muted:#5f6368;--line:#ddd;--head:#f3f3f3;--ok:#137333;--bad:#b3261e;--err:#a04c00;--link:#0b57d0}
@media (prefers-color-scheme:dark){:root{--fg:#e3e3e3;--bg:#161616;--muted:#a8a8a8;--line:#3a3a3a;--head:#242424;--ok:#6dd58c;--bad:#ff8a80;--err:#ffb74d;--link:#8ab4f8}}
body{font:14px/1.45 system-ui,sans-serif;margin:1.5rem auto;max-width:72rem;padding:0 1rem;color:var(--fg);background:var(--bg)}
a{color:var(--link)}:focus-visible{outline:2px solid var(--link);outline-offset:2px}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem}th,td{border-bottom:1px solid var(--line);padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:var(--head)}code,pre{font:12px/1.4 ui-monospace,monospace}pre#log{background:#111;color:#ddd;padding:.75rem;max-height:36rem;overflow:auto;white-space:pre-wrap}
.passed,.pass{color:var(--ok)}.failed,.fail{color:var(--bad)}.error{color:var(--err)}.cancelled,.skipped,.na,.pending{color:var(--muted)}.muted{color:var(--muted)}.quick{color:var(--err)}
dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}
h1 .verdict{font-size:1rem;border:1px solid currentColor;border-radius:1rem;padding:.1rem .6rem;vertical-align:middle}.sub{margin-top:-.5rem;overflow-wrap:anywhere}
.actions{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;margin:.5rem 0 1rem}.actions form{margin:0}
button{font:inherit;padding:.35rem .8rem;border:1px solid var(--line);border-radius:.3rem;background:var(--head);color:var(--fg);cursor:pointer}
ol.ladder{list-style:none;padding:0;margin:.5rem 0 1rem;border-left:3px solid var(--line)}
li.tier{padding:.3rem .75rem;margin:0 0 .25rem;border-left:3px solid transparent;margin-left:-3px}li.tier .tname{font-weight:600}li.tier .treason{margin:.1rem 0 0;overflow-wrap:anywhere}
li.tier.pass{border-color:var(--ok)}li.tier.fail{border-color:var(--bad)}li.tier.running{border-color:var(--link)}li.tier.running .tstate::before{content:"● "}
.log{background:#111;color:#ddd;padding:.5rem;max-height:40rem;overflow:auto;font:12px/1.45 ui-monospace,monospace}
.log details{margin:0 0 .25rem}.log summary{cursor:pointer;color:#8ab4f8}.log .ln{white-space:pre-wrap;overflow-wrap:anywhere}
.log .ln .n{display:inline-block;min-width:3.5em;color:#888;text-decoration:none;user-select:none;margin-right:.5em;text-align:right}
.log .ln.warn{color:#ffd27a}.log .ln.error,.log .ln.err{color:#ff9c94}.log .ln.result{color:#9be7a9}.log .ln.target{background:#3a3a00}
.logtools input{font:inherit;padding:.25rem .4rem;width:min(24rem,100%)}
.shots{display:flex;flex-wrap:wrap;gap:.75rem}.shots figure{margin:0;max-width:22rem}.shots img{max-width:100%;border:1px solid var(--line)}.shots figcaption{font-size:12px;overflow-wrap:anywhere}
td pre{white-space:pre-wrap;overflow-wrap:anywhere;margin:0}h3{font-size:1rem;margin:1rem 0 .25rem}
.chart{margin:.3rem 0 0}.chart rect.ok{fill:var(--ok)}.chart rect.bad{fill:var(--bad)}.chart figcaption{font-size:12px}
@media (max-width:40rem){body{margin:.75rem auto;padding:0 .6rem}dl{grid-template-columns:1fr}dt{margin-top:.3rem}table{display:block;overflow-x:auto}}
`;

export function page(title: string, body: string, head = ''): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<link rel="icon" href="data:,"><title>${esc(title)} · cc-ci</title><style>${STYLE}</style>${head}</head>
<body><p class="muted">cc-ci · <a href="/runs">runs</a> · <a href="/recipes">recipes</a></p>
${body}
</body></html>`;
}
