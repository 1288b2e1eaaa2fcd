import { formatDuration } from '../clients/forge/report-text.js';
import type { RunDetail } from '../views/run-view.js';
import { ago, esc, page, withoutCredentials } from './html.js';
import { traceViewerUrl } from './trace-viewer.js';

/**
 * One run's page (docs/architecture.md, Web pages): a header that says what was tested and how
 * it ended, the actions, the ladder as a timeline and the log — both live, fed by one stream of
 * server-sent events (sse.ts: `state` moves the timeline, `log` adds lines) — and the evidence.
 * It reads only what run-view.ts computes, so it says what `cc-ci describe run` says. Works
 * without script too: the timeline is rendered on the server; the log needs the stream.
 */

const runLink = (name: string): string => `/runs/${encodeURIComponent(name)}`;

/** What the viewer may do on this page (controller/http/actions.ts). */
export interface PageActions {
  /** The viewer's session form token: the forms are shown. */
  formToken: string | null;
  /** Where to log in through the forge, when a login is configured and the viewer has none. */
  loginUrl: string | null;
  /** Who the viewer is, when logged in. */
  login: string | null;
}

export const NO_ACTIONS: PageActions = { formToken: null, loginUrl: null, login: null };

function resultCell(result: string | null, id = ''): string {
  return `<span${id ? ` id="${id}"` : ''} class="verdict ${esc(result ?? 'pending')}">${esc(result ?? 'running')}</span>`;
}

/**
 * The page's one script. Lines are keyed by their sequence number: a line already shown is never
 * shown again (a reconnect resumes after Last-Event-ID; a replay after a restart of the server
 * cannot double a line), and `#L<seq>` links to a line for good. Lines are grouped under the tier
 * or phase line that opened them, each group collapsible; the search box hides what does not match.
 */
const CLEANING_UP = "(final; cleaning up: the run's apps are being removed)";

export const LIVE_LOG_SCRIPT = `
const log = document.getElementById('log'), live = document.getElementById('live');
const q = document.getElementById('q'), hits = document.getElementById('hits');
let lastSeq = 0, group = null, wanted = location.hash.startsWith('#L') ? location.hash.slice(1) : null;
// The same as formatDuration (controller/clients/forge/report-text.ts), which renders the page.
const fmt = (ms) => {
  if (ms == null) return '';
  if (ms < 1000) return ms + 'ms';
  if (ms < 60000) return (ms / 1000).toFixed(1) + 's';
  const m = Math.floor(ms / 60000), s = Math.round((ms % 60000) / 1000);
  return m < 60 ? m + 'm' + s + 's' : Math.floor(m / 60) + 'h' + (m % 60) + 'm';
};
function newGroup(title) {
  const d = document.createElement('details'); d.open = true;
  const s = document.createElement('summary'); s.textContent = title; d.appendChild(s);
  log.appendChild(d); group = d;
}
function addLine(e) {
  if (e.seq && e.seq <= lastSeq) return;
  if (e.seq) lastSeq = e.seq;
  if (e.kind === 'tier' || e.kind === 'phase' || group === null) newGroup(e.kind === 'tier' || e.kind === 'phase' ? e.text : 'start');
  const div = document.createElement('div'); div.className = 'ln ' + e.kind;
  if (e.seq) {
    div.id = 'L' + e.seq;
    const a = document.createElement('a'); a.href = '#L' + e.seq; a.className = 'n'; a.textContent = e.seq; a.setAttribute('aria-label', 'line ' + e.seq);
    div.appendChild(a);
  }
  const t = document.createElement('span'); t.textContent = e.line; div.appendChild(t);
  if (q.value && !e.line.toLowerCase().includes(q.value.toLowerCase())) div.hidden = true;
  const stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
  group.appendChild(div);
  if (wanted && div.id === wanted) mark(wanted);
  else if (stick && !wanted) log.scrollTop = log.scrollHeight;
}
function mark(id) {
  for (const el of log.querySelectorAll('.target')) el.classList.remove('target');
  const el = id.startsWith('L') ? document.getElementById(id) : null;
  if (el) { el.classList.add('target'); el.scrollIntoView({ block: 'center' }); wanted = null; } else if (id.startsWith('L')) wanted = id;
}
window.addEventListener('hashchange', () => mark(location.hash.slice(1)));
function setText(id, text) { const el = document.getElementById(id); if (el) el.textContent = text; }
function showState(s) {
  const v = document.getElementById('verdict');
  for (const el of [v, document.getElementById('result')]) if (el) { el.textContent = s.result || 'running'; el.className = 'verdict ' + (s.result || 'pending'); }
  const cleaning = document.getElementById('cleaning');
  if (cleaning) cleaning.textContent = s.result && s.phase === 'TearingDown' && !s.retryPending ? ' ' + ${JSON.stringify(CLEANING_UP)} : '';
  for (const d of document.querySelectorAll('.rundur')) { d.dataset.started = s.startedAt || ''; d.dataset.finished = s.finishedAt || ''; }
  tick();
  if (s.tiers.length) document.getElementById('unplanned')?.remove();
  setText('phase', s.phase); setText('step', s.step ? '(' + s.step + ')' : ''); setText('reason', s.reason || '–');
  setText('attempt', String(s.attempt));
  if (s.result && s.phase === 'TearingDown' && !s.retryPending) live.textContent = 'final; cleaning up';
  for (const t of s.tiers) {
    let li = document.getElementById('tier-' + t.tier);
    if (!li) {
      li = document.createElement('li'); li.id = 'tier-' + t.tier;
      li.innerHTML = '<span class="tname"></span> <span class="tstate"></span> <span class="tdur muted"></span><p class="treason"><span class="rtext"></span><span class="tdiag"></span></p>';
      li.querySelector('.tname').textContent = t.tier;
      document.getElementById('ladder').appendChild(li);
    }
    const state = t.result || (t.startedAt ? 'running' : 'pending');
    li.className = 'tier ' + state.replace('/', '');
    li.dataset.started = t.result ? '' : (t.startedAt || '');
    li.querySelector('.tstate').textContent = state;
    li.querySelector('.tdur').textContent = fmt(t.durationMs);
    li.querySelector('.rtext').textContent = t.reason || '';
    const diag = li.querySelector('.tdiag');
    if (t.result === 'fail' && s.diagnostics.length && !diag.childElementCount) {
      for (const d of s.diagnostics) { const a = document.createElement('a'); a.href = d.url; a.textContent = d.name; diag.append(' ', a); }
    }
  }
}
function tick() {
  for (const li of document.querySelectorAll('li.tier.running')) if (li.dataset.started) li.querySelector('.tdur').textContent = fmt(Date.now() - Number(li.dataset.started));
  for (const d of document.querySelectorAll('.rundur')) if (d.dataset.started) d.textContent = fmt((Number(d.dataset.finished) || Date.now()) - Number(d.dataset.started));
}
setInterval(tick, 1000);
let timer = null;
q.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(() => {
  const needle = q.value.toLowerCase(); let n = 0;
  for (const d of log.querySelectorAll('.ln')) { const show = !needle || d.textContent.toLowerCase().includes(needle); d.hidden = !show; if (show && needle) n++; }
  hits.textContent = needle ? n + ' matching line' + (n === 1 ? '' : 's') : '';
}, 150); });
const es = new EventSource(log.dataset.events);
es.onopen = () => { if (!live.textContent.startsWith('final')) live.textContent = 'live'; };
es.onerror = () => { if (es.readyState !== 2) live.textContent = 'reconnecting…'; };
es.addEventListener('log', (m) => addLine(JSON.parse(m.data)));
es.addEventListener('state', (m) => showState(JSON.parse(m.data)));
es.addEventListener('skipped', (m) => {
  const e = JSON.parse(m.data);
  const p = document.createElement('p'); p.className = 'muted';
  const a = document.createElement('a'); a.href = e.all + location.hash; a.textContent = 'the whole log';
  p.append(e.skipped + ' earlier lines are not shown: open ', a);
  log.before(p);
});
es.addEventListener('end', (m) => {
  const e = JSON.parse(m.data);
  live.textContent = 'finished: ' + e.result;
  es.close();
});`;

/** A verdict given while the run's apps are still being removed says so: the verdict is final, the run is not over. */
function cleaningUp(run: Pick<RunDetail['run'], 'phase' | 'retryPending' | 'result'>): string {
  if (run.phase !== 'TearingDown' || run.retryPending || run.result === null) return '';
  return ` <span class="muted">${CLEANING_UP}</span>`;
}

/** The run's duration, ticking on the page while it runs (the script below keeps it current). */
function runDuration(run: RunDetail['run'], ms: number | null): string {
  return `<span class="rundur" data-started="${run.startedAt ?? ''}" data-finished="${run.finishedAt ?? ''}">${esc(formatDuration(ms))}</span>`;
}

function forgeLinks(d: RunDetail, forgeUrl: string | null): { pr: string | null; commit: string | null } {
  const forge = d.spec.spec.trigger?.forge;
  if (!forge || !forgeUrl) return { pr: null, commit: null };
  const repo = `${forgeUrl.replace(/\/+$/, '')}/${encodeURIComponent(forge.owner)}/${encodeURIComponent(forge.repo)}`;
  const sha = d.run.commitSha ?? forge.sha ?? null;
  return { pr: `${repo}/pulls/${forge.pr}`, commit: sha ? `${repo}/commit/${encodeURIComponent(sha)}` : null };
}

function actionsSection(d: RunDetail, a: PageActions): string {
  const { run } = d;
  const name = run.name;
  const failedTiers = run.phase === 'Done' && run.result !== 'passed';
  if (a.formToken) {
    const form = (verb: string, label: string, extra = '') =>
      `<form method="post" action="${esc(`${runLink(name)}/${verb}`)}"><input type="hidden" name="_form" value="${esc(a.formToken)}">${extra}<button type="submit">${esc(label)}</button></form>`;
    const buttons = [
      run.phase !== 'Done' && !run.cancelRequested ? form('cancel', 'Cancel') : '',
      form('rerun', 'Rerun'),
      failedTiers ? form('rerun', 'Rerun failed tiers', '<input type="hidden" name="failed" value="1">') : '',
    ].join('');
    return `<section class="actions" aria-label="Actions">${buttons}<span class="muted">as ${esc(a.login ?? '')}</span></section>`;
  }
  const cli = [run.phase !== 'Done' ? `cc-ci cancel ${name}` : '', `cc-ci rerun ${name}`, failedTiers ? `cc-ci rerun ${name} --failed` : ''].filter(Boolean);
  const login = a.loginUrl ? `<a href="${esc(a.loginUrl)}">Log in</a> to cancel or rerun, or on the server: ` : 'On the server: ';
  return `<section class="actions muted" aria-label="Actions">${login}${cli.map((c) => `<code>${esc(c)}</code>`).join(' · ')}</section>`;
}

function ladder(d: RunDetail, now: number): string {
  const diagnostics = d.evidence.filter((e) => /^evidence\/diagnostics-.*\.txt$/.test(e.path));
  return d.tiers
    .map((t) => {
      const state = t.result ?? (t.startedAt ? 'running' : 'pending');
      const dur = t.durationMs ?? (t.startedAt && !t.result ? now - t.startedAt : null);
      const diag =
        t.result === 'fail' && diagnostics.length
          ? ` ${diagnostics.map((e) => `<a href="${esc(artifactUrl(d.run.name, e.path))}">${esc(e.path.slice('evidence/'.length))}</a>`).join(' ')}`
          : '';
      return `<li id="tier-${esc(t.tier)}" class="tier ${esc(state.replace('/', ''))}" data-started="${t.result ? '' : (t.startedAt ?? '')}"><span class="tname">${esc(t.tier)}</span> <span class="tstate">${esc(state)}</span> <span class="tdur muted">${esc(dur === null ? '' : formatDuration(dur))}</span><p class="treason"><span class="rtext">${esc(t.reason ?? '')}</span><span class="tdiag">${diag}</span></p></li>`;
    })
    .join('\n');
}

function artifactUrl(name: string, path: string): string {
  return `${runLink(name)}/artifacts/${path.slice('evidence/'.length).split('/').map(encodeURIComponent).join('/')}`;
}

function evidenceSection(d: RunDetail): string {
  const files = d.evidence.filter((e) => e.path.startsWith('evidence/'));
  // Tiers write their evidence as they end: on a run still going, more comes (a reload shows it).
  const more = d.run.phase === 'Done' ? '' : ' <p class="muted">More appears as the tiers end: reload to see it.</p>';
  if (files.length === 0)
    return d.run.phase === 'Done' ? '<p class="muted">None.</p>' : '<p class="muted">None yet: tiers write theirs as they end (reload to see it).</p>';
  const images = files.filter((e) => /\.(png|jpe?g)$/i.test(e.path));
  const figures = images
    .map((e) => {
      const href = artifactUrl(d.run.name, e.path);
      const rel = e.path.slice('evidence/'.length);
      return `<figure><a href="${esc(href)}"><img src="${esc(href)}" alt="${esc(`screenshot ${rel}`)}" loading="lazy"></a><figcaption>${esc(rel)}</figcaption></figure>`;
    })
    .join('');
  const list = files
    .map((e) => {
      const url = artifactUrl(d.run.name, e.path);
      // A Playwright trace opens in the trace viewer cc-ci serves (trace-viewer.ts).
      const viewer = /(^|\/)trace[^/]*\.zip$/.test(e.path) ? ` <a href="${esc(traceViewerUrl(url))}">open in the trace viewer</a>` : '';
      return `<li><a href="${esc(url)}">${esc(e.path.slice('evidence/'.length))}</a>${viewer} <span class="muted">(${e.bytes} bytes)</span></li>`;
    })
    .join('\n');
  return `${figures ? `<div class="shots">${figures}</div>` : ''}<ul>${list}</ul>${more}`;
}

/** The JUnit results as tables: failing cases first, each with its message; passed ones folded away. */
function resultsSection(d: RunDetail): string {
  if (d.junit.length === 0) return '';
  const row = (c: RunDetail['junit'][number]['cases'][number]) =>
    `<tr class="${esc(c.state)}"><td>${esc(c.state)}</td><td>${esc(c.classname ? `${c.classname} › ${c.name}` : c.name)}</td><td>${esc(c.timeSeconds === null ? '' : `${c.timeSeconds.toFixed(1)} s`)}</td><td>${c.message ? `<pre>${esc(c.message)}</pre>` : ''}</td></tr>`;
  const tables = d.junit.map((f) => {
    if (f.problem) return `<h3>${esc(f.file)}</h3><p class="muted">${esc(f.problem)}</p>`;
    const bad = f.cases.filter((c) => c.state === 'failed' || c.state === 'error');
    const rest = f.cases.filter((c) => c.state !== 'failed' && c.state !== 'error');
    const head = '<thead><tr><th>result</th><th>case</th><th>time</th><th>message</th></tr></thead>';
    const summary = `${bad.length} failing, ${rest.filter((c) => c.state === 'passed').length} passed, ${rest.filter((c) => c.state === 'skipped').length} skipped${f.more ? `, ${f.more} more not shown` : ''}`;
    return `<h3>${esc(f.file)} <span class="muted">(${esc(summary)})</span></h3>
${bad.length ? `<table>${head}<tbody>${bad.map(row).join('')}</tbody></table>` : ''}
${rest.length ? `<details${bad.length ? '' : ' open'}><summary>${rest.length} other case${rest.length === 1 ? '' : 's'}</summary><table>${head}<tbody>${rest.map(row).join('')}</tbody></table></details>` : ''}`;
  });
  return `<h2>Results</h2>\n${tables.join('\n')}`;
}

/** A run whose spec is written but not yet taken in by the controller (served with a refresh). */
export function pendingRunPage(name: string): string {
  return page(
    name,
    `<h1>${esc(name)}</h1><p role="status">This run's spec is written; the controller has not taken it in yet. The page looks again every second.</p><p><a href="/runs">All runs</a></p>`,
  );
}

/** `wholeLog`: replay every line of the live log, not only its tail (the sse.ts TAIL_LINES). */
export function runPage(d: RunDetail, forgeUrl: string | null, now = Date.now(), wholeLog = false, actions: PageActions = NO_ACTIONS): string {
  const { run, spec, row } = d;
  const forge = spec.spec.trigger?.forge;
  const links = forgeLinks(d, forgeUrl);
  const prText = forge ? `${forge.owner}/${forge.repo}#${forge.pr}` : null;
  const trigger = prText
    ? `${links.pr ? `<a href="${esc(links.pr)}">${esc(prText)}</a>` : esc(prText)}${forge?.by ? ` by ${esc(forge.by)}` : ''}`
    : esc(spec.spec.trigger?.kind ?? 'file');
  const sha = run.commitSha ? `<code>${esc(run.commitSha.slice(0, 12))}</code>` : '';
  const commit = sha && links.commit ? `<a href="${esc(links.commit)}">${sha}</a>` : sha;
  const quick =
    run.lane !== 'quick'
      ? ''
      : run.laneNote
        ? ` <span class="muted">(fell back to cold: ${esc(run.laneNote)})</span>`
        : ' <span class="quick">(quick lane: a lower-confidence result)</span>';
  const rerun = spec.spec.rerun
    ? `<dt>Rerun of</dt><dd><a href="${esc(runLink(spec.spec.rerun.of))}">${esc(spec.spec.rerun.of)}</a> (${spec.spec.rerun.tiers === 'failed' ? 'the tiers that failed' : 'every tier'}) by ${esc(spec.spec.rerun.by)}</dd>`
    : '';
  const tiers = ladder(d, now);
  return page(
    `${spec.spec.recipe} ${run.name}`,
    `<header><h1>${esc(spec.spec.recipe)} ${resultCell(run.result, 'verdict')}</h1>
<p class="sub"><code>${esc(run.name)}</code> · <code>${esc(spec.spec.source.ref)}</code>${commit ? ` @ ${commit}` : ''} · ${esc(run.lane)} lane${quick} · ${trigger} · attempt <span id="attempt">${run.attempt}</span> · ${runDuration(run, row.durationMs)}</p></header>
${actionsSection(d, actions)}
<dl>
<dt>Recipe</dt><dd><a href="/recipes/${esc(encodeURIComponent(spec.spec.recipe))}">${esc(spec.spec.recipe)}</a></dd>
<dt>Source</dt><dd><code>${esc(withoutCredentials(spec.spec.source.repo))}</code> @ <code>${esc(spec.spec.source.ref)}</code>${run.commitSha ? ` (<code>${esc(run.commitSha)}</code>)` : ''}</dd>
<dt>Lane</dt><dd>${esc(run.lane)}${quick}</dd>
<dt>Trigger</dt><dd>${trigger}</dd>
${rerun}
<dt>Phase</dt><dd><span id="phase">${esc(run.phase)}</span> <span id="step" class="muted">${run.step ? `(${esc(run.step)})` : ''}</span></dd>
<dt>Result</dt><dd>${resultCell(run.result, 'result')}<span id="cleaning">${cleaningUp(run)}</span></dd>
${run.teardownProblem ? `<dt>Teardown</dt><dd><span class="error">failed after the verdict</span>: ${esc(run.teardownProblem)} <span class="muted">(a problem of this server, not of the recipe: the verdict stands; the janitor reaps what is left)</span></dd>` : ''}
<dt>Reason</dt><dd id="reason">${esc(run.reason ?? '–')}</dd>
${row.queuePosition !== null ? `<dt>Queue</dt><dd>#${row.queuePosition}: ${esc(row.waiting ?? '')}</dd>` : ''}
<dt>Created</dt><dd>${esc(new Date(run.createdAt).toISOString())} (${esc(ago(run.createdAt, now))})</dd>
<dt>Duration</dt><dd>${runDuration(run, row.durationMs)}</dd>
</dl>
<h2>Ladder</h2>
<ol id="ladder" class="ladder">${tiers}</ol>${tiers ? '' : '<p id="unplanned" class="muted">Not planned yet.</p>'}
${resultsSection(d)}
<h2>Evidence</h2>
${evidenceSection(d)}
<h2>Log <span id="live" class="muted" role="status"></span></h2>
<p class="logtools"><input type="search" id="q" placeholder="Search the log" aria-label="Search the log"> <span id="hits" class="muted" role="status"></span>${wholeLog ? '' : ` <a href="${esc(`${runLink(run.name)}?all=1`)}">whole log</a>`}</p>
<div id="log" class="log" data-events="${esc(`${runLink(run.name)}/events${wholeLog ? '?all=1' : ''}`)}"></div>
<noscript><p>The live log needs JavaScript; <a href="/api/v1/runs/${esc(encodeURIComponent(run.name))}">the run as JSON</a>.</p></noscript>
<script>${LIVE_LOG_SCRIPT}</script>`,
  );
}
