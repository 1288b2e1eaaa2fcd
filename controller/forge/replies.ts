/**
 * The short answers the intake gives on a pull request when a `!testme` comment does not start a
 * run. Each starts with a hidden marker naming the comment it answers, so a retried post (after a
 * timeout the forge may have applied) finds the earlier one instead of answering twice. The
 * commands are written as inline code, which the trigger parser never reads as a command.
 */

import { noMentions } from '../clients/forge/mentions.js';

export type ReplyKind = 'help' | 'denied' | 'cannot-check' | 'closed' | 'no-source' | 'unreadable' | 'gave-up' | 'moved' | 'pushed' | 'unpinned' | 'no-rerun';

export function replyMarker(commentId: number): string {
  return `<!-- cc-ci:reply comment=${commentId} -->`;
}

/** Inline code that cannot be broken out of by the echoed text, and pings nobody. */
function code(text: string): string {
  return `\`${noMentions(text).replace(/`/g, "'")}\``;
}

export const COMMAND_LIST = [
  '- `!testme`: test this pull request’s head commit on fresh apps (cold lane, the full ladder)',
  '- `!testme --quick`: a faster, lower-confidence check on the recipe’s warm app (quick lane)',
  '- `!testme <commit>` (or `!testme --quick <commit>`): the same, only if the pull request’s head is still that commit',
  '- `!testme --failed` (or `!testme --quick --failed`): rerun only the tiers that did not pass in this pull request’s last run, at the same commit',
].join('\n');

/**
 * The reply. It addresses the commenter by `@login` on purpose (they asked, and should hear back);
 * everything echoed from their comment is neutralised so nobody else is pinged.
 */
export function replyText(
  kind: ReplyKind,
  o: { commentId: number; commenter: string; repo: string; got?: string; pin?: string; pushedAt?: string; why?: string },
): string {
  const who = `@${o.commenter}`;
  const lines = [replyMarker(o.commentId)];
  switch (kind) {
    case 'help':
      lines.push(`${who} I did not understand ${code(o.got ?? '!testme …')}. The commands are, each alone on its own line:`, '', COMMAND_LIST);
      break;
    case 'denied':
      lines.push(
        `${who} thank you for asking! Only people with write access to ${code(o.repo)} (or on cc-ci’s allow-list) can start test runs, so I have not started one. A maintainer can comment ${code('!testme')} to test this pull request.`,
      );
      break;
    case 'cannot-check':
      lines.push(
        `${who} I could not check whether you may start test runs: the cc-ci bot account needs admin access to ${code(o.repo)} to read collaborator permissions. I have not started a run. An operator can give the bot that access, or add you to cc-ci’s allow-list.`,
      );
      break;
    case 'closed':
      lines.push(`${who} this pull request is closed, so I have not started a test run.`);
      break;
    case 'no-source':
      lines.push(
        `${who} I cannot test this pull request: its head repository is gone (a deleted fork?), and cc-ci has no other address configured to clone ${code(o.repo)} from. I have not started a run. An operator can set \`cloneUrl\` for the repository in cc-ci’s configuration.`,
      );
      break;
    case 'unreadable':
      lines.push(`${who} the forge would not let me read this pull request, so I have not started a test run. An operator can find the reason in cc-ci’s log.`);
      break;
    case 'moved':
      lines.push(
        `${who} you asked me to test commit ${code(o.pin ?? '?')}, but the head of this pull request is another commit now, so I have not started a run. Comment ${code('!testme')} again (with the new commit, if you like) to test the head as it is.`,
      );
      break;
    case 'pushed':
      lines.push(
        `${who} the head of this pull request moved after your comment (a push at ${code(o.pushedAt ?? '?')}), so I have not started a run: I only test the commit you could have looked at. Comment ${code('!testme')} again to test the head as it is now.`,
      );
      break;
    case 'unpinned':
      lines.push(
        `${who} I cannot tell which commit was the head of this pull request when you commented (the forge did not show me its pushes), so I have not started a run. Comment ${code('!testme <commit>')} with the commit you want tested.`,
      );
      break;
    case 'no-rerun':
      lines.push(
        `${who} there is nothing for ${code('!testme --failed')} to rerun: ${noMentions(o.why ?? '?')}. Comment ${code('!testme')} to test the head on the whole ladder.`,
      );
      break;
    case 'gave-up':
      lines.push(
        `${who} I could not start a test run for this comment: the forge did not answer cc-ci for a long time. Comment ${code('!testme')} again to try once more.`,
      );
      break;
  }
  return lines.join('\n');
}
