import type { CommitStatusState } from './client.js';
import { noMentions } from './mentions.js';

/**
 * What cc-ci says on a pull request about one run: the text of its one PR comment (edited in
 * place: queued → running → verdict) and its commit status. Pure functions of a view of the run,
 * so the same state always renders the same text — the reporter compares hashes of it to know
 * whether the forge is up to date.
 */

export type ReportStage = 'queued' | 'running' | 'verdict';

export interface TierView {
  tier: string;
  result: string | null;
  reason: string | null;
  durationMs: number | null;
}

export interface ReportView {
  run: string;
  recipe: string;
  lane: string;
  /** A quick run that fell back to the cold ladder: why (docs/warm.md). */
  laneNote: string | null;
  sha: string | null;
  by: string | null;
  stage: ReportStage;
  queuePosition: number | null;
  waiting: string | null;
  /** The verdict (stage `verdict` only). */
  result: 'passed' | 'failed' | 'error' | 'cancelled' | null;
  reason: string | null;
  tiers: TierView[];
  /** From admission to the verdict (teardown not included). */
  testedMs: number | null;
  runUrl: string;
  /** A teardown that failed after the verdict: the server's problem, noted under the verdict it does not change. */
  teardownProblem?: string | null;
  /** A rerun of the tiers that did not pass in another run (`!testme --failed`, the run page's button). */
  rerun?: { of: string; tiers: string[] } | null;
}

export function reportMarker(run: string): string {
  return `<!-- cc-ci:report run=${run} -->`;
}

export function formatDuration(ms: number | null): string {
  if (ms === null) return '–';
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const m = Math.floor(ms / 60_000);
  const s = Math.round((ms % 60_000) / 1000);
  return m < 60 ? `${m}m${s}s` : `${Math.floor(m / 60)}h${m % 60}m`;
}

const TIER_ICON: Record<string, string> = { pass: '✅', fail: '❌', 'n/a': '➖', skipped: '⏭️' };

const QUICK_NOTE =
  '> ⚠️ **Quick lane**: tested by upgrading the warm canonical app in place to this head (no install from scratch) — a lower-confidence result that does not gate a merge. Comment `!testme` for the full cold lane.';

/** A quick run that fell back: the result has the cold lane's confidence, and the comment says why. */
const fallbackNote = (why: string): string => `> ℹ️ **Quick lane fell back to cold**: ${why}. This result has the cold lane's confidence.`;

const RERUN = 'To run again, comment `!testme` (or `!testme --quick` for the quick lane; `!testme --failed` for only the tiers that did not pass).';

/** One line for a table cell: no pipes or line ends, bounded, pinging nobody. */
function cell(text: string | null, max = 160): string {
  if (!text) return '';
  const flat = noMentions(text).replace(/\s+/g, ' ').trim().replace(/\|/g, '\\|');
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** A fenced block that the text cannot close early (fence longer than any backtick run in it). */
function block(text: string): string {
  const longest = Math.max(0, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = '`'.repeat(Math.max(3, longest + 1));
  const quiet = noMentions(text);
  const bounded = quiet.length > 2000 ? `${quiet.slice(0, 2000)}…` : quiet;
  return `${fence}text\n${bounded}\n${fence}`;
}

function shortSha(sha: string | null): string {
  return sha ? sha.slice(0, 10) : 'unknown commit';
}

function header(v: ReportView): string {
  const parts = ['**cc-ci**', `\`${v.recipe}\` at \`${shortSha(v.sha)}\``, `${v.lane} lane`];
  if (v.by) parts.push(`requested by ${v.by}`);
  return parts.join(' · ');
}

function headline(v: ReportView): string {
  const took = v.testedMs === null ? '' : ` in ${formatDuration(v.testedMs)}`;
  switch (v.result) {
    case 'passed':
      return `✅ **Passed**${took}`;
    case 'failed':
      return `❌ **Failed**${took}: ${cell(v.reason, 300)}`;
    case 'cancelled':
      return `⏹️ **Cancelled**: ${cell(v.reason, 300)}`;
    default:
      return `⚠️ **Error**${took}: ${cell(v.reason, 300)} — a problem running the test, not a verdict on the recipe`;
  }
}

function tierTable(tiers: TierView[]): string[] {
  if (tiers.length === 0) return [];
  return [
    '| tier | result | duration | details |',
    '| --- | --- | --- | --- |',
    ...tiers.map((t) => {
      const result = t.result ?? 'not run';
      return `| ${t.tier} | ${TIER_ICON[result] ?? ''} ${result} | ${formatDuration(t.durationMs)} | ${cell(t.reason)} |`;
    }),
  ];
}

export function renderComment(v: ReportView): string {
  const lines = [reportMarker(v.run), header(v), ''];
  if (v.rerun) {
    lines.push(
      `🔁 Rerun of \`${cell(v.rerun.of)}\` at the same commit: only ${cell(v.rerun.tiers.join(', '))}, from the first tier that did not pass there.`,
      '',
    );
  }
  if (v.stage === 'queued') {
    const where = v.queuePosition === null ? 'waiting to start' : `position ${v.queuePosition} in the queue`;
    lines.push(`⏳ **Queued**: ${where}${v.waiting ? ` (${v.waiting})` : ''}.`, '', `Run page: ${v.runUrl}`);
  } else if (v.stage === 'running') {
    lines.push(`🏃 **Running**: follow the live log at ${v.runUrl}`);
  } else {
    lines.push(headline(v), '');
    const table = tierTable(v.tiers);
    if (table.length) lines.push(...table, '');
    for (const t of v.tiers.filter((x) => x.result === 'fail')) {
      lines.push(`**Why ${t.tier} failed:**`, block(t.reason ?? 'no reason recorded'), '');
    }
    lines.push(`Full log and evidence: ${v.runUrl}`, '', RERUN);
    if (v.teardownProblem) {
      lines.push(
        '',
        `> 🧹 **Cleaning up after this run failed** (${cell(v.teardownProblem, 300)}). That is a problem of the CI server, not of this pull request: the verdict above stands, and the server's operator has been told.`,
      );
    }
  }
  if (v.lane === 'quick') lines.push('', v.laneNote ? fallbackNote(v.laneNote) : QUICK_NOTE);
  return lines.join('\n');
}

export interface StatusView {
  state: CommitStatusState;
  description: string;
}

function bounded(text: string, max = 140): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/**
 * The commit status: pending while queued or running; then success, failure, or error. A
 * cancelled run (superseded, deleted) is `error`: it says nothing about the code, so neither
 * success nor failure would be true, and error keeps the check from looking green.
 */
export function renderStatus(v: ReportView): StatusView {
  const quick = v.lane !== 'quick' ? '' : v.laneNote ? ' (quick lane fell back to cold)' : ' (quick lane: lower confidence)';
  if (v.stage === 'queued') return { state: 'pending', description: 'Queued' };
  if (v.stage === 'running') return { state: 'pending', description: 'Running' };
  switch (v.result) {
    case 'passed':
      return { state: 'success', description: `Passed${quick}` };
    case 'failed': {
      const failing = v.tiers.filter((t) => t.result === 'fail').map((t) => t.tier);
      return { state: 'failure', description: bounded(`Failed: ${failing.length ? failing.join(', ') : (v.reason ?? '')}${quick}`) };
    }
    case 'cancelled':
      return { state: 'error', description: bounded(`Cancelled: ${v.reason ?? ''}`) };
    default:
      return { state: 'error', description: bounded(`Error: ${v.reason ?? ''}`) };
  }
}

/** The commit status context of a lane: one per lane, so cold and quick never overwrite each other. */
export function statusContext(lane: string): string {
  return `cc-ci/${lane}`;
}
