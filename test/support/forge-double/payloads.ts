// Webhook bodies as the forge builds them for comments, from the double's state. Key order is Go's
// struct order (modules/structs/hook.go); sub-objects come from ForgeState's renderers, which clone
// the contract's example body, so a body for a fresh comment has exactly the example's shape.
import type { ForgeFlavour } from '../../../controller/forge/signature.js';
import type { DoubleComment, ForgeState, JsonObject } from './model.js';

export type { ForgeFlavour };
export type CommentAction = 'created' | 'edited' | 'deleted';

/**
 * IssueCommentPayload: {action, issue, pull_request (PRs only), comment, changes (edits only),
 * repository, sender, is_pull}. `sender` is who acted: the author for created/edited; for deleted
 * it can be a moderator, so it is a parameter.
 */
export function issueCommentPayload(
  state: ForgeState,
  comment: DoubleComment,
  action: CommentAction,
  options: { sender?: string; previousBody?: string; flavour?: ForgeFlavour } = {},
): JsonObject {
  const issue = state.issue(comment.repo, comment.index);
  if (!issue) throw new Error(`comment ${comment.id} has no issue`);
  const sender = options.sender ?? comment.author;
  const repo = state.requireRepo(comment.repo);
  const payload: JsonObject = { action, issue: state.issueJson(issue) };
  if (issue.pull) payload['pull_request'] = state.pullJson(issue, sender);
  payload['comment'] = state.commentJson(comment);
  if (action === 'edited') {
    const changes: JsonObject = { body: { from: options.previousBody ?? '' } };
    // Gitea v1.26.3's ChangesPayload also has label lists (no omitempty, so null); Forgejo's has not.
    if ((options.flavour ?? 'gitea') === 'gitea') Object.assign(changes, { added_labels: null, removed_labels: null });
    payload['changes'] = changes;
  }
  payload['repository'] = state.repoJson(repo, sender);
  payload['sender'] = state.userJson(state.requireUser(sender));
  payload['is_pull'] = issue.pull !== null;
  return payload;
}

/**
 * PullRequestPayload for a review submitted as a comment (X-Gitea-Event `pull_request_comment`,
 * X-Gitea-Event-Type `pull_request_review_comment`). Field order from Gitea's
 * modules/structs/hook.go PullRequestPayload; `review.type` is the hook event type. The contract
 * has no schema or example for this body, so its details are (unsure); cc-ci only needs to
 * recognise and ignore it.
 */
export function reviewCommentPayload(state: ForgeState, repoName: string, index: number, reviewer: string, content: string): JsonObject {
  const issue = state.issue(repoName, index);
  if (!issue?.pull) throw new Error(`${repoName}#${index} is not a pull request`);
  return {
    action: 'reviewed',
    number: issue.index,
    pull_request: state.pullJson(issue, reviewer),
    requested_reviewer: null,
    repository: state.repoJson(state.requireRepo(repoName), reviewer),
    sender: state.userJson(state.requireUser(reviewer)),
    commit_id: issue.pull.headSha,
    review: { type: 'pull_request_review_comment', content },
  };
}
