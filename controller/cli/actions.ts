import { userInfo } from 'node:os';
import { cancelRun, rerunRun } from '../runtime/run-actions.js';
import { TokenStore } from '../../state/token-store.js';
import { isName } from '../model/spec.js';
import { EXIT, UsageError, ago, loadEnv, openStore, out, table, type GlobalOptions } from './common.js';
import { carryOutCancel } from './embedded.js';
import { cancelRemote, remoteOf, rerunRemote, type RemoteOptions } from './remote.js';

/**
 * `cc-ci cancel`, `cc-ci rerun` and `cc-ci token`: the actions of the run pages
 * (controller/runtime/run-actions.ts), for someone on the host. Being on the host with the state
 * directory is being the operator: no token is needed here. With --server (remote.ts) they are
 * asked of that server's API instead, with a token.
 */

/** Who acted, as the run's log records it: the host user, and that it was the CLI. */
function cliActor(): string {
  try {
    return `${userInfo().username} (cc-ci CLI)`;
  } catch {
    // No passwd entry for this uid (a container): the uid is still something.
    return `uid ${process.getuid?.() ?? '?'} (cc-ci CLI)`;
  }
}

/** `cc-ci cancel NAME`: records the cancel; a serving controller carries it out, else this process does. */
export async function cancelCommand(name: string, o: GlobalOptions & RemoteOptions): Promise<number> {
  const remote = remoteOf(o);
  if (remote) return cancelRemote(remote, name);
  const env = loadEnv(o, true);
  const store = openStore(env.paths);
  const done = cancelRun(store, name, cliActor());
  if (!done.ok) {
    store.close();
    if (done.status === 404) throw new UsageError(done.message);
    out(done.message);
    return EXIT.error;
  }
  await carryOutCancel(env, store, name, {
    byOther: `${done.message} (by the controller serving ${env.paths.root}, at its next look; cc-ci logs -f ${name})`,
    here: `${done.message}; tearing it down here`,
  });
  return EXIT.passed;
}

/** `cc-ci rerun NAME [--failed]`: a new run at the same commit, picked up by `cc-ci serve`. */
export async function rerunCommand(name: string, o: GlobalOptions & RemoteOptions & { failed?: boolean }): Promise<number> {
  const remote = remoteOf(o);
  if (remote) return rerunRemote(remote, name, o.failed === true);
  const env = loadEnv(o, true);
  const store = openStore(env.paths);
  try {
    const done = rerunRun(store, env.paths, name, { failed: o.failed === true, by: cliActor() });
    if (!done.ok && done.status === 404) throw new UsageError(done.message);
    out(done.ok ? `${done.message}\nrun/${done.run} created (cc-ci serve runs it; cc-ci logs -f ${done.run})` : done.message);
    return done.ok ? EXIT.passed : EXIT.error;
  } finally {
    store.close();
  }
}

/** `cc-ci token create|list|revoke`: API tokens for actions over HTTP (docs/security.md). */
export function tokenCommand(verb: 'create' | 'list' | 'revoke', name: string | undefined, o: GlobalOptions): number {
  const env = loadEnv(o, true);
  // A token may well be issued before anything has run: the state is made if need be.
  const store = openStore(env.paths, verb === 'create');
  try {
    const tokens = new TokenStore(store);
    if (verb === 'list') {
      const rows = tokens.list().map((t) => [t.name, ago(t.createdAt), t.lastUsedAt === null ? 'never' : ago(t.lastUsedAt)]);
      out(rows.length ? table([['NAME', 'CREATED', 'LAST USED'], ...rows]) : 'no API tokens');
      return EXIT.passed;
    }
    if (!name || !isName(name)) throw new UsageError('a token needs a name of lowercase letters, digits and "-" (who or what uses it)');
    if (verb === 'revoke') {
      if (!tokens.revoke(name)) throw new UsageError(`no token named ${name}`);
      out(`token ${name} revoked`);
      return EXIT.passed;
    }
    const token = tokens.create(name);
    if (!token) throw new UsageError(`a token named ${name} exists: revoke it first, or choose another name`);
    out(token);
    process.stderr.write(`token ${name} created: it is shown only this once (cc-ci keeps its hash); send it as "Authorization: Bearer <token>"\n`);
    return EXIT.passed;
  } finally {
    store.close();
  }
}
