import { describe, expect, it } from 'vitest';
import { parseTrigger, type Trigger } from '../../controller/forge/trigger.js';

const cold: Trigger = { kind: 'run', lane: 'cold' };
const quick: Trigger = { kind: 'run', lane: 'quick' };
const none: Trigger = { kind: 'none' };
const help = (got: string): Trigger => ({ kind: 'help', got });

const FENCE = '```';

// [description, comment body, expected]
const cases: Array<[string, string, Trigger]> = [
  // the two commands
  ['bare command', '!testme', cold],
  ['quick lane', '!testme --quick', quick],
  ['trailing spaces', '!testme   ', cold],
  ['trailing tab', '!testme\t', cold],
  ['up to three leading spaces', '   !testme', cold],
  ['several spaces before the flag', '!testme    --quick', quick],
  ['a tab before the flag', '!testme\t--quick', quick],
  // pinned to a commit
  ['pinned, abbreviated', '!testme 1a2b3c4', { kind: 'run', lane: 'cold', pin: '1a2b3c4' }],
  ['pinned, full, upper case', `!testme ${'AB'.repeat(20)}`, { kind: 'run', lane: 'cold', pin: 'ab'.repeat(20) }],
  ['pinned quick, either order', '!testme 1a2b3c4 --quick', { kind: 'run', lane: 'quick', pin: '1a2b3c4' }],
  ['too short to be a commit', '!testme 1a2b3c', { kind: 'help', got: '!testme 1a2b3c' }],
  ['not hex', '!testme 1a2b3cz', { kind: 'help', got: '!testme 1a2b3cz' }],
  ['two commits', '!testme 1a2b3c4 5d6e7f8', { kind: 'help', got: '!testme 1a2b3c4 5d6e7f8' }],
  ['the flag twice', '!testme --quick --quick', { kind: 'help', got: '!testme --quick --quick' }],
  // rerun the failed tiers
  ['failed tiers only', '!testme --failed', { kind: 'run', lane: 'cold', failed: true }],
  ['failed tiers of a quick run, pinned, any order', '!testme 1a2b3c4 --failed --quick', { kind: 'run', lane: 'quick', pin: '1a2b3c4', failed: true }],
  ['--failed twice', '!testme --failed --failed', { kind: 'help', got: '!testme --failed --failed' }],
  ['a misspelt --failed', '!testme --fail', { kind: 'help', got: '!testme --fail' }],
  ['trailing whitespace after the flag', '!testme --quick  \t', quick],
  ['CRLF line ends', 'Looks good.\r\n!testme\r\nThanks', cold],
  ['lone CR line ends', 'Looks good.\r!testme --quick\rThanks', quick],
  ['a trailing newline', '!testme\n', cold],
  ['surrounded by prose lines', 'LGTM, let us see it run.\n!testme\n(after lunch)', cold],
  ['after a blank line', 'Please run it.\n\n!testme', cold],
  ['a list item line right after a list', '- item one\n!testme', cold],
  ['right under a quote (typed by the commenter)', '> did the tests pass?\n!testme', cold],

  // not a command: prose and near-misses
  ['empty comment', '', none],
  ['whitespace only', '  \n\t\n', none],
  ['a mention in prose', 'please !testme when you can', none],
  ['command glued to a word', '!testmexyz', none],
  ['trailing punctuation', '!testme.', none],
  ['trailing comma then flag', '!testme, --quick', none],
  ['different case', '!TestMe', none],
  ['upper-case command', '!TESTME', none],
  ['slash form', '/testme', none],
  ['no bang', 'testme', none],
  ['double bang', '!!testme', none],
  ['a list item', '- !testme', none],
  ['a numbered list item', '1. !testme', none],
  ['a heading', '# !testme', none],
  ['emphasis', '*!testme*', none],
  ['a link', '[!testme](https://example.org)', none],
  ['a zero-width space after the command', '!testme\u200b', none],

  // quotes
  ['a quote', '> !testme', none],
  ['a quote without space', '>!testme', none],
  ['an indented quote', '  > !testme', none],
  ['a nested quote', '> > !testme --quick', none],
  ['a quote of a malformed command', '> !testme --qiuck', none],

  // fenced code
  ['inside a backtick fence', `${FENCE}\n!testme\n${FENCE}`, none],
  ['inside a fence with an info string', `${FENCE}sh\n!testme\n${FENCE}`, none],
  ['inside a tilde fence', '~~~\n!testme\n~~~', none],
  ['inside a longer fence closed by a longer one', '````\n!testme\n`````', none],
  ['a short closer does not close a long fence', `\`\`\`\`\n${FENCE}\n!testme\n\`\`\`\``, none],
  ['a tilde closer does not close a backtick fence', `${FENCE}\n~~~\n!testme\n${FENCE}`, none],
  ['inside an unclosed fence', `Here is the log:\n${FENCE}\n!testme`, none],
  ['after a closed fence', `${FENCE}\nlog\n${FENCE}\n!testme`, cold],
  ['after a closed tilde fence', '~~~\nlog\n~~~\n!testme --quick', quick],
  ['a fence indented by three spaces', `   ${FENCE}\n!testme\n   ${FENCE}`, none],
  ['a closing fence with trailing spaces', `${FENCE}\nx\n${FENCE}   \n!testme`, cold],
  ['CRLF fences', `${FENCE}\r\n!testme\r\n${FENCE}\r\n`, none],
  ['not a fence: info string with a backtick', '``` a ` b\n!testme', cold],
  ['a fence inside a quote does not open one outside', `> ${FENCE}\n!testme`, cold],

  // indented code
  ['indented by four spaces', '    !testme', none],
  ['indented by a tab', '\t!testme', none],
  ['indented code after a blank line', 'Run this:\n\n    !testme', none],
  ['an indented continuation line', 'Run this:\n    !testme', none],

  // inline code
  ['inline code', '`!testme`', none],
  ['inline code with the flag', '`!testme --quick`', none],
  ['double-backtick inline code', '``!testme``', none],
  ['inline code across lines', 'Type `\n!testme\n` to run the tests.', none],
  ['inline code spanning into the next line', 'the command is ``foo\n!testme``', none],
  ['an unmatched backtick leaves the line alone', 'stray ` backtick\n!testme', cold],
  ['an escaped backtick opens no span', 'not code \\`\n!testme\n` end', cold],
  ['a code span closed on the line above', 'use `x` here\n!testme', cold],
  ['a blank line ends a paragraph and its spans', 'open `\n\n!testme\n`', cold],

  // HTML comments
  ['inside an HTML comment', '<!--\n!testme\n-->', none],
  ['a one-line HTML comment', '<!-- !testme -->', none],
  ['after an HTML comment', '<!-- hidden -->\n!testme', cold],
  ['after a multi-line HTML comment', '<!--\nhidden\n-->\n!testme', cold],

  // malformed commands get help
  ['unknown argument', '!testme foo', help('!testme foo')],
  ['misspelt flag', '!testme --qiuck', help('!testme --qiuck')],
  ['flag plus extra', '!testme --quick extra', help('!testme --quick extra')],
  ['single-dash flag', '!testme -quick', help('!testme -quick')],
  ['upper-case flag', '!testme --QUICK', help('!testme --QUICK')],
  ['flag repeated', '!testme --quick --quick', help('!testme --quick --quick')],
  ['help is trimmed', '  !testme cold  ', help('!testme cold')],
  ['help echoes the line as written', '!testme  please   now', help('!testme  please   now')],

  // several lines
  ['first valid command wins: cold before quick', '!testme\n!testme --quick', cold],
  ['first valid command wins: quick before cold', '!testme --quick\n!testme', quick],
  ['a valid command wins over an earlier malformed one', '!testme --qiuck\n!testme --quick', quick],
  ['first of two malformed commands is echoed', '!testme a\n!testme b', help('!testme a')],
  ['a quoted command then a real one', '> !testme\n\n!testme --quick', quick],
  ['a fenced command then a real one', `${FENCE}\n!testme --quick\n${FENCE}\n!testme`, cold],
];

describe('parseTrigger', () => {
  it.each(cases)('%s', (_name, body, expected) => {
    expect(parseTrigger(body)).toEqual(expected);
  });

  it('caps the text echoed back in a help answer', () => {
    const long = `!testme ${'x'.repeat(500)}`;
    const result = parseTrigger(long);
    expect(result.kind).toBe('help');
    if (result.kind !== 'help') return;
    expect(result.got.length).toBeLessThanOrEqual(101);
    expect(result.got.startsWith('!testme xxx')).toBe(true);
    expect(result.got.endsWith('…')).toBe(true);
  });

  it('reads a line of many backticks as an (unclosed) fence', () => {
    expect(parseTrigger(`${'`'.repeat(5000)}\n!testme`)).toEqual(none);
  });

  it('stays fast on a large comment full of unmatched backtick runs', () => {
    // Runs of every length from 1 to 400: none has a closer, the worst case for code-span search.
    const runs = Array.from({ length: 400 }, (_, k) => '`'.repeat(k + 1)).join(' word ');
    const started = performance.now();
    expect(parseTrigger(`${'prose '.repeat(10_000)}${runs}\n!testme`)).toEqual(cold);
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});

describe('a comment too long to be a command', () => {
  it('is not one, and is turned down at once however it is crafted', async () => {
    const { MAX_COMMAND_COMMENT_CHARS } = await import('../../controller/forge/trigger.js');
    const near = `${'x'.repeat(MAX_COMMAND_COMMENT_CHARS - 20)}\n!testme --quick`;
    expect(parseTrigger(near)).toEqual({ kind: 'run', lane: 'quick' });
    const crafted = `!testme\n${'`a '.repeat(2 * 1024 * 1024)}`;
    const started = Date.now();
    expect(parseTrigger(crafted)).toEqual({ kind: 'none' });
    expect(Date.now() - started).toBeLessThan(100);
  });
});
