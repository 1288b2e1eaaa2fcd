// Decides whether a PR comment asks cc-ci for a run. The grammar is deliberately tiny:
//
//   !testme            → run the cold lane (full deploy from scratch)
//   !testme --quick    → run the quick lane
//   !testme <sha>      → either lane, pinned: only if the pull request's head is that commit
//                        (7 to 40 hex characters), so what runs is what the maintainer looked at
//   !testme --failed   → rerun the tiers that did not pass in this pull request's last run of the
//                        lane, at the same commit (Prow's `/retest`); combines with the others
//
// Rules (each one is pinned by a case in test/forge/trigger.test.ts):
// * The command must be alone on its line. Trailing whitespace and up to 3 leading spaces are
//   tolerated; tokens may be separated by any run of whitespace. CRLF and lone CR line ends work.
// * Matching is case-sensitive, like Prow's `/retest`: `!TestMe` is prose, not a command.
// * Text that Markdown renders as code is never a command: fenced blocks (``` and ~~~, closed by a
//   fence of the same character at least as long, or running to the end when unclosed), indented
//   code (a line indented by 4+ columns; we do not tell it apart from an indented paragraph
//   continuation and simply never trigger on such a line), and inline code spans, which may cross
//   line ends inside a paragraph.
// * A line starting with `>` is a quote of someone else's words, so it never triggers. Only the `>`
//   lines themselves count as quoted: an unquoted line typed right under a quote (a Markdown "lazy
//   continuation") was typed by the commenter, and we follow that intent rather than the rendering.
// * Lines inside an HTML comment (`<!-- ... -->`) are invisible once rendered and never trigger.
// * A line that starts with `!testme` followed by whitespace and anything other than `--quick`,
//   `--failed` and a commit (each at most once) is a malformed command: we answer with help instead of guessing (`!testme --qiuck`).
//   `!testmexyz`, `please !testme`, `!testme.` are prose.
// * Several command lines: the first valid run command wins, even if a malformed one comes earlier;
//   help is only returned when no line is a valid command.
// * A comment longer than MAX_COMMAND_COMMENT_CHARS is not a command: a command is one line, and
//   reading megabytes of crafted Markdown three times per delivery is work nobody asked for.

export type TriggerLane = 'cold' | 'quick';

export type Trigger = { kind: 'run'; lane: TriggerLane; pin?: string; failed?: true } | { kind: 'help'; got: string } | { kind: 'none' };

export const TRIGGER_COMMAND = '!testme';
export const QUICK_FLAG = '--quick';
export const FAILED_FLAG = '--failed';
/** A commit a comment pins: an abbreviated or full SHA-1 (7 to 40 hex characters). */
const PIN = /^[0-9a-fA-F]{7,40}$/;

/** `got` is echoed back into a PR comment; keep a pasted wall of text from being repeated. */
const MAX_ECHO_LENGTH = 100;

/** Stand-in for characters inside inline code: not whitespace, so it cannot make a line look empty. */
const MASK = '\u0000';

type LineRole = 'text' | 'indented' | 'code' | 'quote' | 'html-comment' | 'blank';

/** Far past any comment a person writes to ask for a run; far short of a crafted wall of text. */
export const MAX_COMMAND_COMMENT_CHARS = 256 * 1024;

export function parseTrigger(commentBody: string): Trigger {
  if (commentBody.length > MAX_COMMAND_COMMENT_CHARS) return { kind: 'none' };
  const lines = commentBody.replace(/\r\n?/g, '\n').split('\n');
  const roles = classifyLines(lines);
  const visible = maskInlineCode(lines, roles);

  let firstHelp: Trigger | undefined;
  for (let i = 0; i < visible.length; i++) {
    if (roles[i] !== 'text') continue;
    const verdict = readCommandLine(visible[i] ?? '');
    if (verdict.kind === 'run') return verdict;
    if (verdict.kind === 'help' && firstHelp === undefined) firstHelp = verdict;
  }
  return firstHelp ?? { kind: 'none' };
}

function readCommandLine(line: string): Trigger {
  const content = line.trim();
  const tokens = content.split(/\s+/);
  if (tokens[0] !== TRIGGER_COMMAND) return { kind: 'none' };
  // After the command: `--quick`, `--failed` and a commit, each at most once, in any order.
  const rest = tokens.slice(1);
  const quick = rest.filter((t) => t === QUICK_FLAG).length;
  const failed = rest.filter((t) => t === FAILED_FLAG).length;
  const pins = rest.filter((t) => PIN.test(t));
  if (quick <= 1 && failed <= 1 && pins.length <= 1 && quick + failed + pins.length === rest.length) {
    const lane: TriggerLane = quick ? 'quick' : 'cold';
    return { kind: 'run', lane, ...(pins[0] ? { pin: pins[0].toLowerCase() } : {}), ...(failed ? { failed: true as const } : {}) };
  }
  const got = content.length > MAX_ECHO_LENGTH ? `${content.slice(0, MAX_ECHO_LENGTH)}…` : content;
  return { kind: 'help', got };
}

/** Columns of leading indentation, with tabs advancing to the next multiple of 4 as in CommonMark. */
function indentColumns(line: string): number {
  let columns = 0;
  for (const ch of line) {
    if (ch === ' ') columns += 1;
    else if (ch === '\t') columns += 4 - (columns % 4);
    else break;
  }
  return columns;
}

interface OpenFence {
  char: '`' | '~';
  length: number;
}

const FENCE_OPEN = /^ {0,3}(`{3,}|~{3,})(.*)$/;

function openingFence(line: string): OpenFence | null {
  const match = FENCE_OPEN.exec(line);
  if (!match) return null;
  const run = match[1] ?? '';
  const info = match[2] ?? '';
  const char = run[0] === '`' ? '`' : '~';
  // A backtick "fence" whose info string contains a backtick is inline code, not a fence.
  if (char === '`' && info.includes('`')) return null;
  return { char, length: run.length };
}

function closesFence(line: string, fence: OpenFence): boolean {
  const match = /^ {0,3}(`+|~+)[ \t]*$/.exec(line);
  const run = match?.[1];
  return run !== undefined && run[0] === fence.char && run.length >= fence.length;
}

function classifyLines(lines: readonly string[]): LineRole[] {
  const roles: LineRole[] = [];
  let fence: OpenFence | null = null;
  let inHtmlComment = false;
  for (const line of lines) {
    if (fence) {
      roles.push('code');
      if (closesFence(line, fence)) fence = null;
      continue;
    }
    if (inHtmlComment) {
      roles.push('html-comment');
      if (line.includes('-->')) inHtmlComment = false;
      continue;
    }
    if (line.trim() === '') {
      roles.push('blank');
      continue;
    }
    const previous = roles[roles.length - 1];
    if (indentColumns(line) >= 4) {
      // Indented code cannot interrupt a paragraph; there it is a continuation line. Either way the
      // line is never a command, but a continuation still belongs to the paragraph's code spans.
      roles.push(previous === 'text' || previous === 'indented' ? 'indented' : 'code');
      continue;
    }
    const opened = openingFence(line);
    if (opened) {
      fence = opened;
      roles.push('code');
      continue;
    }
    const trimmed = line.trimStart();
    if (trimmed.startsWith('<!--')) {
      roles.push('html-comment');
      if (!trimmed.slice(4).includes('-->')) inHtmlComment = true;
      continue;
    }
    roles.push(trimmed.startsWith('>') ? 'quote' : 'text');
  }
  return roles;
}

/**
 * Replaces the content of inline code spans with MASK, paragraph by paragraph (a span can cross a
 * line end but not a blank line or another block). Line ends inside a span are kept so the result
 * has the same lines as the input.
 */
function maskInlineCode(lines: readonly string[], roles: readonly LineRole[]): string[] {
  const out = [...lines];
  let start = 0;
  while (start < lines.length) {
    if (roles[start] !== 'text') {
      start++;
      continue;
    }
    let end = start;
    while (end + 1 < lines.length && (roles[end + 1] === 'text' || roles[end + 1] === 'indented')) end++;
    const masked = maskCodeSpans(lines.slice(start, end + 1).join('\n')).split('\n');
    for (let i = start; i <= end; i++) out[i] = masked[i - start] ?? '';
    start = end + 1;
  }
  return out;
}

function maskCodeSpans(text: string): string {
  const chars = [...text];
  let i = 0;
  while (i < chars.length) {
    const ch = chars[i];
    if (ch === '\\') {
      i += 2; // a backslash-escaped backtick opens nothing
      continue;
    }
    if (ch !== '`') {
      i++;
      continue;
    }
    const openLength = runLength(chars, i);
    const close = findClosingRun(chars, i + openLength, openLength);
    if (close === -1) {
      i += openLength; // no matching run: the backticks are literal text
      continue;
    }
    const stop = close + openLength;
    for (let j = i; j < stop; j++) if (chars[j] !== '\n') chars[j] = MASK;
    i = stop;
  }
  return chars.join('');
}

function runLength(chars: readonly string[], from: number): number {
  let n = 0;
  while (chars[from + n] === '`') n++;
  return n;
}

/** Index of the next backtick run of exactly `length` (inside a span backslashes escape nothing). */
function findClosingRun(chars: readonly string[], from: number, length: number): number {
  let i = from;
  while (i < chars.length) {
    if (chars[i] !== '`') {
      i++;
      continue;
    }
    const n = runLength(chars, i);
    if (n === length) return i;
    i += n;
  }
  return -1;
}
