// abra app volume ls | rm  — the app's volumes are those labelled com.docker.stack.namespace=<stack>
// (docker stack deploy puts that label on the named volumes it creates).
//
// `volume ls -m` prints: [{"name": "<stack>_<volume>", "driver": "local"}]
import { loadApp } from './app.js';
import type { Invocation } from './argv.js';
import { dockerOk, NAMESPACE_LABEL, removeObjects } from './docker.js';
import { crashPoint } from './faults.js';
import { jsonLines, str } from './json.js';
import { fatal, log, out } from './log.js';
import { table } from './table.js';

async function appVolumes(stack: string): Promise<Array<{ name: string; driver: string }>> {
  const text = await dockerOk(['volume', 'ls', '--filter', `label=${NAMESPACE_LABEL}=${stack}`, '--format', '{{json .}}']);
  return jsonLines(text)
    .map((r) => ({ name: str(r.Name) ?? '', driver: str(r.Driver) ?? '' }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

export async function volumeList(inv: Invocation): Promise<void> {
  const app = loadApp(inv.args[0] ?? '');
  const vols = await appVolumes(app.stack);
  if (inv.bool('machine')) {
    out(JSON.stringify(vols));
    return;
  }
  out(
    table(
      ['NAME', 'DRIVER'],
      vols.map((v) => [v.name, v.driver]),
    ),
  );
}

export async function volumeRemove(inv: Invocation): Promise<void> {
  const [domain = '', which] = inv.args;
  if (!inv.bool('force') && !inv.bool('no-input')) {
    fatal('volume remove asks for confirmation, which the abra double cannot do: pass -f/--force (or -n/--no-input)');
  }
  const app = loadApp(domain);
  const vols = (await appVolumes(app.stack)).map((v) => v.name);
  let targets = vols;
  if (which !== undefined) {
    const full = which.startsWith(`${app.stack}_`) ? which : `${app.stack}_${which}`;
    if (!vols.includes(full)) fatal(`volume ${full} does not exist for ${domain}`);
    targets = [full];
  }
  for (const [i, v] of targets.entries()) {
    await removeObjects('volume', [v]);
    if (i === 0) crashPoint('app volume rm: after removing the first volume');
  }
  log.info(targets.length > 0 ? `removed ${targets.join(', ')}` : `no volumes to remove for ${domain}`);
}
