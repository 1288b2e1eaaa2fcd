import { appendFileSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../controller/model/config.js';
import { readSecretFile } from '../controller/clients/forge/secrets.js';
import type { Redactor } from '../controller/model/redact.js';

/**
 * The values every run's redactor knows from its first line on, and those a run learns and must
 * still know after a restart. The server's own secrets are read from their files (named by the
 * config, so every context finds them without being handed them); what a run learns (generated
 * app secrets, hook masks, the operator's extraEnv values) is kept in `<run dir>/masks`, mode
 * 0600 inside the 0700 state directory and outside evidence/ (which is all the server serves),
 * so a resumed attempt and the teardown after a crash mask it too.
 */

const MASKS_FILE = 'masks';
/** A run registers a handful of values; a file larger than this is not ours to trust. */
const MAX_MASKS_BYTES = 1024 * 1024;

/** The forge token and the webhook secret, when the config names them and they can be read. */
export function serverSecrets(config: Pick<Config, 'forge'>): string[] {
  const forge = config.forge;
  if (!forge) return [];
  const values: string[] = [];
  for (const [file, what] of [
    [forge.tokenFile, 'forge token'],
    [forge.webhookSecretFile, 'webhook secret'],
  ] as const) {
    if (!file) continue;
    try {
      values.push(readSecretFile(file, what));
    } catch {
      // serve refuses to start without them; a context of another command has nothing to mask.
    }
  }
  return values;
}

export function rememberMask(runDir: string, value: string): void {
  appendFileSync(join(runDir, MASKS_FILE), `${Buffer.from(value, 'utf8').toString('base64')}\n`, { mode: 0o600 });
}

/** Registers the server's secrets and what the run learnt before (a restart), without writing them again. */
export function registerKnownSecrets(redactor: Redactor, config: Pick<Config, 'forge'>, runDir: string): void {
  for (const value of serverSecrets(config)) redactor.add(value, false);
  let text: string;
  try {
    const raw = readFileSync(join(runDir, MASKS_FILE));
    text = raw.length <= MAX_MASKS_BYTES ? raw.toString('utf8') : '';
  } catch {
    return;
  }
  for (const line of text.split('\n')) if (line) redactor.add(Buffer.from(line, 'base64').toString('utf8'), false);
}

/** At the end of teardown: the run's apps are gone, and with them what their secrets opened. */
export function forgetRunSecrets(runDir: string): void {
  rmSync(join(runDir, MASKS_FILE), { force: true });
}
