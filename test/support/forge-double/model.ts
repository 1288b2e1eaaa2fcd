// In-memory state of the forge double, and its rendering into the forge's JSON objects.
//
// Every JSON object is made by cloning the matching object of the contract's example webhook body
// (built field by field from Gitea v1.26.3's converters) and overwriting the fields the double
// models. Cloning keeps the forge's field set, key order, nulls and omissions; the contract tests
// then check each rendered object against the `exact` schema profile.
import { randomBytes } from 'node:crypto';
import type { AccessMode, CommitStatusState } from '../../../controller/clients/forge/client.js';
import { readExampleWebhookBytes } from './fixtures.js';

export type JsonObject = { [key: string]: unknown };

const example = JSON.parse(readExampleWebhookBytes().toString('utf8')) as {
  issue: JsonObject;
  pull_request: JsonObject & { base: JsonObject & { repo: JsonObject } };
  comment: JsonObject;
  repository: JsonObject & { owner: JsonObject };
  sender: JsonObject;
};

const clone = <T>(value: T): T => structuredClone(value);

/** Gitea writes times in the server's zone with whole seconds; the double runs in UTC. */
export function formatTime(unixSeconds: number): string {
  return new Date(unixSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const ACCESS_ORDER: readonly AccessMode[] = ['none', 'read', 'write', 'admin', 'owner'];
export const atLeast = (mode: AccessMode, wanted: AccessMode): boolean => ACCESS_ORDER.indexOf(mode) >= ACCESS_ORDER.indexOf(wanted);

export interface DoubleUser {
  id: number;
  login: string;
  fullName: string;
  isAdmin: boolean;
  isOrganization: boolean;
  created: number;
}

export interface DoubleRepo {
  id: number;
  owner: string;
  name: string;
  description: string;
  private: boolean;
  archived: boolean;
  /** `owner/name` of the repository this one was forked from. */
  parent: string | null;
  defaultBranch: string;
  /** Lowercased login → explicit access (collaborators and teams, flattened). */
  permissions: Map<string, AccessMode>;
  /** Full commit ids the double knows, for statuses. */
  commits: Set<string>;
  nextIndex: number;
  created: number;
  updated: number;
}

export interface DoublePull {
  id: number;
  headRepo: string;
  headRef: string;
  headSha: string;
  baseRef: string;
  baseSha: string;
  draft: boolean;
  merged: boolean;
  cloneUrl: string | null;
}

export interface DoubleIssue {
  id: number;
  repo: string;
  index: number;
  title: string;
  body: string;
  author: string;
  state: 'open' | 'closed';
  created: number;
  updated: number;
  pull: DoublePull | null;
}

export interface DoubleReaction {
  user: string;
  content: string;
  created: number;
}

export interface DoubleComment {
  id: number;
  repo: string;
  index: number;
  author: string;
  body: string;
  created: number;
  updated: number;
  reactions: DoubleReaction[];
}

/** A push to a pull request's head branch: a `pull_push` row of the issue's timeline. */
export interface DoublePush {
  id: number;
  repo: string;
  index: number;
  pusher: string;
  isForcePush: boolean;
  /** A force push: [old, new]; a plain push: the commits it added (services/pull/comment.go). */
  commitIds: string[];
  created: number;
}

export interface DoubleStatus {
  id: number;
  repo: string;
  sha: string;
  state: CommitStatusState;
  targetUrl: string;
  description: string;
  context: string;
  creator: string;
  created: number;
  updated: number;
}

export const repoKey = (owner: string, name: string): string => `${owner}/${name}`.toLowerCase();
export const randomSha = (): string => randomBytes(20).toString('hex');

export class ForgeState {
  readonly users = new Map<string, DoubleUser>();
  readonly repos = new Map<string, DoubleRepo>();
  readonly issues = new Map<string, DoubleIssue>();
  readonly comments = new Map<number, DoubleComment>();
  readonly statuses: DoubleStatus[] = [];
  readonly pushes: DoublePush[] = [];
  private nextId = { user: 1, repo: 1, issue: 300, pull: 90, comment: 1000, status: 1 };

  /** `baseUrl` is the instance root with a trailing slash, like Gitea's AppURL. */
  constructor(
    public baseUrl: string,
    readonly now: () => number,
  ) {}

  // ---- seeding ----------------------------------------------------------------------------------

  addUser(login: string, options: { fullName?: string; isAdmin?: boolean; isOrganization?: boolean } = {}): DoubleUser {
    if (this.users.has(login.toLowerCase())) throw new Error(`user ${login} exists`);
    const user: DoubleUser = {
      id: this.nextId.user++,
      login,
      fullName: options.fullName ?? '',
      isAdmin: options.isAdmin ?? false,
      isOrganization: options.isOrganization ?? false,
      created: this.now(),
    };
    this.users.set(login.toLowerCase(), user);
    return user;
  }

  user(login: string): DoubleUser | undefined {
    return this.users.get(login.toLowerCase());
  }

  requireUser(login: string): DoubleUser {
    const user = this.user(login);
    if (!user) throw new Error(`no user ${login}: addUser first`);
    return user;
  }

  addRepo(
    owner: string,
    name: string,
    options: { private?: boolean; archived?: boolean; description?: string; parent?: string; defaultBranch?: string } = {},
  ): DoubleRepo {
    const key = repoKey(owner, name);
    if (this.repos.has(key)) throw new Error(`repository ${owner}/${name} exists`);
    const ownerUser = this.user(owner) ?? this.addUser(owner, { isOrganization: true });
    const parent = options.parent === undefined ? null : this.requireRepo(options.parent);
    const repo: DoubleRepo = {
      id: this.nextId.repo++,
      owner: ownerUser.login,
      name,
      description: options.description ?? '',
      private: options.private ?? false,
      archived: options.archived ?? false,
      parent: parent === null ? null : `${parent.owner}/${parent.name}`,
      defaultBranch: options.defaultBranch ?? 'main',
      permissions: new Map(),
      commits: new Set(),
      nextIndex: 1,
      created: this.now(),
      updated: this.now(),
    };
    this.repos.set(key, repo);
    return repo;
  }

  repo(fullName: string): DoubleRepo | undefined {
    return this.repos.get(fullName.toLowerCase());
  }

  requireRepo(fullName: string): DoubleRepo {
    const repo = this.repo(fullName);
    if (!repo) throw new Error(`no repository ${fullName}: addRepo first`);
    return repo;
  }

  addIssue(repoName: string, fields: { author: string; title?: string; body?: string; pull?: Omit<DoublePull, 'id'> }): DoubleIssue {
    const repo = this.requireRepo(repoName);
    this.requireUser(fields.author);
    const index = repo.nextIndex++;
    const issue: DoubleIssue = {
      id: this.nextId.issue++,
      repo: repoKey(repo.owner, repo.name),
      index,
      title: fields.title ?? `Change ${index}`,
      body: fields.body ?? '',
      author: fields.author,
      state: 'open',
      created: this.now(),
      updated: this.now(),
      pull: fields.pull ? { id: this.nextId.pull++, ...fields.pull } : null,
    };
    if (issue.pull) {
      repo.commits.add(issue.pull.baseSha);
      this.requireRepo(issue.pull.headRepo).commits.add(issue.pull.headSha);
      // Statuses are posted to the base repository for the head commit: it must resolve there.
      repo.commits.add(issue.pull.headSha);
    }
    this.issues.set(`${issue.repo}#${index}`, issue);
    return issue;
  }

  issue(repoName: string, index: number): DoubleIssue | undefined {
    return this.issues.get(`${repoName.toLowerCase()}#${index}`);
  }

  addComment(repoName: string, index: number, author: string, body: string, at?: number): DoubleComment {
    const issue = this.issue(repoName, index);
    if (!issue) throw new Error(`no issue ${repoName}#${index}`);
    this.requireUser(author);
    const time = at ?? this.now();
    const comment: DoubleComment = {
      id: this.nextId.comment++,
      repo: issue.repo,
      index,
      author,
      body,
      created: time,
      updated: time,
      reactions: [],
    };
    this.comments.set(comment.id, comment);
    issue.updated = Math.max(issue.updated, time);
    return comment;
  }

  /** Moves a pull request's head to `sha` as a push by `pusher` would, with its timeline row. */
  pushToPull(repoName: string, index: number, pusher: string, sha: string, options: { force?: boolean; at?: number } = {}): DoublePush {
    const issue = this.issue(repoName, index);
    if (!issue?.pull) throw new Error(`no pull request ${repoName}#${index}`);
    this.requireUser(pusher);
    const time = options.at ?? this.now();
    const old = issue.pull.headSha;
    issue.pull.headSha = sha;
    this.requireRepo(issue.pull.headRepo).commits.add(sha);
    this.requireRepo(issue.repo).commits.add(sha);
    // Push rows are comments in the forge (CommentTypePullRequestPush): they take a comment id.
    const push: DoublePush = {
      id: this.nextId.comment++,
      repo: issue.repo,
      index,
      pusher,
      isForcePush: options.force ?? false,
      commitIds: options.force ? [old, sha] : [sha],
      created: time,
    };
    this.pushes.push(push);
    issue.updated = Math.max(issue.updated, time);
    return push;
  }

  addStatus(
    repo: DoubleRepo,
    sha: string,
    creator: string,
    fields: { state: CommitStatusState; context: string; description: string; targetUrl: string },
  ): DoubleStatus {
    const status: DoubleStatus = {
      id: this.nextId.status++,
      repo: repoKey(repo.owner, repo.name),
      sha,
      creator,
      created: this.now(),
      updated: this.now(),
      ...fields,
    };
    this.statuses.push(status);
    return status;
  }

  // ---- access -----------------------------------------------------------------------------------

  /** What Gitea's GetUserRepoPermission would say, in the double's simplified model. */
  accessMode(repo: DoubleRepo, login: string): AccessMode {
    const user = this.user(login);
    if (!user) return 'none';
    if (user.login.toLowerCase() === repo.owner.toLowerCase()) return 'owner';
    if (user.isAdmin) return 'admin';
    const explicit = repo.permissions.get(user.login.toLowerCase());
    if (explicit) return explicit;
    return repo.private ? 'none' : 'read';
  }

  // ---- rendering (the forge's JSON) -------------------------------------------------------------

  userJson(user: DoubleUser): JsonObject {
    const json = clone(user.isOrganization ? example.repository.owner : example.sender);
    const host = new URL(this.baseUrl).hostname;
    json['id'] = user.id;
    json['login'] = user.login;
    json['full_name'] = user.fullName;
    // Seen without a privileged viewer the forge shows the placeholder address (Gitea's form).
    json['email'] = user.isOrganization ? '' : `${user.id}+${user.login}@noreply.${host}`;
    json['avatar_url'] = `${this.baseUrl}avatars/${user.id}`;
    json['html_url'] = `${this.baseUrl}${user.login}`;
    json['is_admin'] = user.isAdmin;
    json['created'] = formatTime(user.created);
    json['username'] = user.login;
    return json;
  }

  userJsonByLogin(login: string): JsonObject | null {
    const user = this.user(login);
    return user ? this.userJson(user) : null;
  }

  repoJson(repo: DoubleRepo, viewer: string | null, withParent = true): JsonObject {
    const template = clone(example.repository);
    const owner = this.requireUser(repo.owner);
    const path = `${repo.owner}/${repo.name}`;
    const mode = viewer === null ? 'none' : this.accessMode(repo, viewer);
    const values: JsonObject = {
      id: repo.id,
      owner: this.userJson(owner),
      name: repo.name,
      full_name: path,
      description: repo.description,
      private: repo.private,
      fork: repo.parent !== null,
      languages_url: `${this.baseUrl}api/v1/repos/${path}/languages`,
      html_url: `${this.baseUrl}${path}`,
      url: `${this.baseUrl}api/v1/repos/${path}`,
      ssh_url: `git@${new URL(this.baseUrl).hostname}:${path}.git`,
      clone_url: `${this.baseUrl}${path}.git`,
      default_branch: repo.defaultBranch,
      archived: repo.archived,
      created_at: formatTime(repo.created),
      updated_at: formatTime(repo.updated),
      permissions: { admin: atLeast(mode, 'admin'), push: atLeast(mode, 'write'), pull: atLeast(mode, 'read') },
    };
    // Rebuild in the template's (Go struct) order; `parent` is omitempty and sits after `template`.
    const json: JsonObject = {};
    for (const [key, value] of Object.entries(template)) {
      json[key] = key in values ? values[key] : value;
      if (key === 'template' && repo.parent !== null && withParent) {
        json['parent'] = this.repoJson(this.requireRepo(repo.parent), viewer, false);
      }
    }
    return json;
  }

  private issuePath(issue: DoubleIssue): string {
    const repo = this.requireRepo(issue.repo);
    return `${repo.owner}/${repo.name}/${issue.pull ? 'pulls' : 'issues'}/${issue.index}`;
  }

  issueJson(issue: DoubleIssue): JsonObject {
    const json = clone(example.issue);
    const repo = this.requireRepo(issue.repo);
    const htmlUrl = `${this.baseUrl}${this.issuePath(issue)}`;
    Object.assign(json, {
      id: issue.id,
      url: `${this.baseUrl}api/v1/repos/${repo.owner}/${repo.name}/issues/${issue.index}`,
      html_url: htmlUrl,
      number: issue.index,
      user: this.userJson(this.requireUser(issue.author)),
      title: issue.title,
      body: issue.body,
      labels: [],
      state: issue.state,
      comments: this.commentsOf(issue).length,
      created_at: formatTime(issue.created),
      updated_at: formatTime(issue.updated),
      pull_request: issue.pull ? { merged: issue.pull.merged, merged_at: null, draft: issue.pull.draft, html_url: htmlUrl } : null,
      repository: { id: repo.id, name: repo.name, owner: repo.owner, full_name: `${repo.owner}/${repo.name}` },
    });
    return json;
  }

  private branchJson(repoName: string, ref: string, sha: string, viewer: string | null): JsonObject {
    const repo = this.requireRepo(repoName);
    return { label: ref, ref, sha, repo_id: repo.id, repo: this.repoJson(repo, viewer) };
  }

  pullJson(issue: DoubleIssue, viewer: string | null): JsonObject {
    const pull = issue.pull;
    if (!pull) throw new Error(`${issue.repo}#${issue.index} is not a pull request`);
    const json = clone(example.pull_request);
    const htmlUrl = `${this.baseUrl}${this.issuePath(issue)}`;
    const head = this.branchJson(pull.headRepo, pull.headRef, pull.headSha, viewer);
    if (pull.cloneUrl !== null && typeof head['repo'] === 'object' && head['repo'] !== null) {
      (head['repo'] as JsonObject)['clone_url'] = pull.cloneUrl;
    }
    Object.assign(json, {
      id: pull.id,
      url: htmlUrl,
      number: issue.index,
      user: this.userJson(this.requireUser(issue.author)),
      title: issue.title,
      body: issue.body,
      labels: [],
      state: issue.state,
      draft: pull.draft,
      comments: this.commentsOf(issue).length,
      html_url: htmlUrl,
      diff_url: `${htmlUrl}.diff`,
      patch_url: `${htmlUrl}.patch`,
      merged: pull.merged,
      base: this.branchJson(issue.repo, pull.baseRef, pull.baseSha, viewer),
      head,
      merge_base: pull.baseSha,
      created_at: formatTime(issue.created),
      updated_at: formatTime(issue.updated),
    });
    return json;
  }

  commentJson(comment: DoubleComment): JsonObject {
    const issue = this.issue(comment.repo, comment.index);
    if (!issue) throw new Error(`comment ${comment.id} has no issue`);
    const json = clone(example.comment);
    const issueUrl = `${this.baseUrl}${this.issuePath(issue)}`;
    Object.assign(json, {
      id: comment.id,
      html_url: `${issueUrl}#issuecomment-${comment.id}`,
      // On a PR the forge fills pull_request_url and leaves issue_url empty; on an issue the reverse.
      pull_request_url: issue.pull ? issueUrl : '',
      issue_url: issue.pull ? '' : issueUrl,
      user: this.userJsonByLogin(comment.author),
      body: comment.body,
      created_at: formatTime(comment.created),
      updated_at: formatTime(comment.updated),
    });
    return json;
  }

  /**
   * One row of the issue timeline (convert.ToTimelineComment): a plain comment or a push. Every
   * field the forge writes is here; what the double does not model is its zero value or null.
   */
  timelineJson(row: { kind: 'comment'; comment: DoubleComment } | { kind: 'push'; push: DoublePush }): JsonObject {
    const { repo, index } = row.kind === 'comment' ? row.comment : row.push;
    const issue = this.issue(repo, index);
    if (!issue) throw new Error(`timeline row of no issue ${repo}#${index}`);
    const issueUrl = `${this.baseUrl}${this.issuePath(issue)}`;
    const id = row.kind === 'comment' ? row.comment.id : row.push.id;
    const created = row.kind === 'comment' ? row.comment.created : row.push.created;
    const updated = row.kind === 'comment' ? row.comment.updated : row.push.created;
    return {
      id,
      type: row.kind === 'comment' ? 'comment' : 'pull_push',
      html_url: `${issueUrl}#issuecomment-${id}`,
      pull_request_url: issue.pull ? issueUrl : '',
      issue_url: issue.pull ? '' : issueUrl,
      user: this.userJsonByLogin(row.kind === 'comment' ? row.comment.author : row.push.pusher),
      body: row.kind === 'comment' ? row.comment.body : JSON.stringify({ is_force_push: row.push.isForcePush, commit_ids: row.push.commitIds }),
      created_at: formatTime(created),
      updated_at: formatTime(updated),
      old_project_id: 0,
      project_id: 0,
      old_milestone: null,
      milestone: null,
      tracked_time: null,
      old_title: '',
      new_title: '',
      old_ref: '',
      new_ref: '',
      ref_issue: null,
      ref_comment: null,
      ref_action: '',
      ref_commit_sha: '',
      review_id: 0,
      label: null,
      assignee: null,
      assignee_team: null,
      removed_assignee: false,
      resolve_doer: null,
      dependent_issue: null,
    };
  }

  reactionJson(reaction: DoubleReaction): JsonObject {
    return { user: this.userJsonByLogin(reaction.user), content: reaction.content, created_at: formatTime(reaction.created) };
  }

  statusJson(status: DoubleStatus): JsonObject {
    const repo = this.requireRepo(status.repo);
    return {
      id: status.id,
      status: status.state,
      target_url: status.targetUrl,
      description: status.description,
      url: `${this.baseUrl}api/v1/repos/${repo.owner}/${repo.name}/statuses/${status.sha}`,
      context: status.context,
      creator: this.userJsonByLogin(status.creator),
      created_at: formatTime(status.created),
      updated_at: formatTime(status.updated),
    };
  }

  /** Plain comments of one issue, in the forge's order: creation time, then id. */
  commentsOf(issue: DoubleIssue): DoubleComment[] {
    return [...this.comments.values()].filter((c) => c.repo === issue.repo && c.index === issue.index).sort(byCreationThenId);
  }
}

export const byCreationThenId = (a: DoubleComment, b: DoubleComment): number => a.created - b.created || a.id - b.id;
