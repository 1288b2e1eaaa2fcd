// abra server add | ls, abra recipe fetch
import { existsSync, mkdirSync } from 'node:fs';
import type { Invocation } from './argv.js';
import { fetchTags, isRepo } from './git.js';
import { fatal, log, out } from './log.js';
import { listServers, recipeDir, serverDir } from './paths.js';
import { table } from './table.js';

/** Name of the server `abra server add --local` registers (docs/abra-double.md, The contract). */
export const LOCAL_SERVER = 'default';

export async function serverAdd(inv: Invocation): Promise<void> {
  if (!inv.bool('local')) {
    fatal(`the abra double only supports the local server: use "abra server add --local"${inv.args[0] ? ` (got ${inv.args[0]})` : ''}`);
  }
  const dir = serverDir(LOCAL_SERVER);
  if (existsSync(dir)) {
    log.info(`server ${LOCAL_SERVER} already exists (${dir})`);
    return;
  }
  mkdirSync(dir, { recursive: true });
  log.info(`server ${LOCAL_SERVER} added (${dir})`);
}

/** `server ls -m` prints: [{"name": "default", "host": "local"}] */
export async function serverList(inv: Invocation): Promise<void> {
  const rows = listServers().map((name) => ({ name, host: name === LOCAL_SERVER ? 'local' : 'unknown' }));
  if (inv.bool('machine')) {
    out(JSON.stringify(rows));
    return;
  }
  out(
    table(
      ['NAME', 'HOST'],
      rows.map((r) => [r.name, r.host]),
    ),
  );
}

export async function recipeFetch(inv: Invocation): Promise<void> {
  const recipe = inv.args[0] ?? '';
  const dir = recipeDir(recipe);
  if (!existsSync(dir)) {
    fatal(`recipe ${recipe} is not in ${dir} and the abra double has no catalogue to clone it from: clone it there yourself`);
  }
  if (!(await isRepo(dir))) fatal(`${dir} is not a git repository`);
  if (inv.bool('offline')) {
    log.info(`offline: using the local copy of ${recipe} as it is`);
    return;
  }
  await fetchTags(dir);
  log.info(`fetched ${recipe}`);
}
