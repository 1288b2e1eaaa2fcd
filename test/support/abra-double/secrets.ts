// App secrets (docs/abra-double.md, The contract): compose secrets whose `name:` template uses a SECRET_<KEY>_VERSION
// variable; remote name = the template resolved (normally `<stack>_<key>_<version>`); generation
// modifiers (`# length=N`, `# generate=false`) from the app .env line of that variable.
import { randomInt } from 'node:crypto';
import type { App } from './app.js';
import type { ComposeModel } from './compose.js';
import { interpolate, referencedVars } from './interpolate.js';
import { fatal } from './log.js';
import { WORDS } from './wordlist.js';

/** Docker limits secret names to 64 characters (docs/abra-double.md, The contract). */
export const MAX_SECRET_NAME_LENGTH = 64;

export interface AppSecret {
  /** Compose key, e.g. `api_token`: how `abra app secret` commands address it. */
  key: string;
  versionVar: string;
  version: string;
  /** `name:` template as written in the compose file. */
  template: string;
  /** The template resolved with the app's env (the docker secret name). */
  remoteName: string;
  length: number | undefined;
  generate: boolean;
}

/**
 * @param raw    the merged model WITHOUT interpolation (templates intact)
 * @param env    the deploy env (app .env + abra.sh + STACK_NAME)
 */
export function appSecrets(app: App, raw: ComposeModel, env: ReadonlyMap<string, string>): AppSecret[] {
  const out: AppSecret[] = [];
  for (const s of raw.secrets.values()) {
    if (s.name === undefined) continue;
    const versionVar = referencedVars(s.name).find((v) => /^SECRET_.+_VERSION$/.test(v));
    if (!versionVar) continue;
    const mods = app.env.modifiers(versionVar);
    const lengthRaw = mods.length;
    let length: number | undefined;
    if (lengthRaw !== undefined) {
      length = Number.parseInt(lengthRaw, 10);
      if (!Number.isFinite(length) || length <= 0) fatal(`invalid length modifier "${lengthRaw}" for ${versionVar}`);
    }
    const version = env.get(versionVar) ?? '';
    out.push({
      key: s.key,
      versionVar,
      version,
      template: s.name,
      remoteName: resolveName(s.name, env, versionVar, version),
      length,
      generate: mods.generate !== 'false',
    });
  }
  return out.sort((a, b) => a.key.localeCompare(b.key));
}

/** Resolves a secret name template with SECRET_<KEY>_VERSION forced to `version`. */
export function resolveName(template: string, env: ReadonlyMap<string, string>, versionVar: string, version: string): string {
  const name = interpolate(template, (n) => (n === versionVar ? version : env.get(n)));
  if (name.length > MAX_SECRET_NAME_LENGTH) fatal(`secret name ${name} is longer than ${MAX_SECRET_NAME_LENGTH} characters`);
  return name;
}

const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** `# length=N` → N alphanumeric characters; otherwise a passphrase of words joined by "-". */
export function generateValue(length: number | undefined): string {
  if (length !== undefined) {
    let s = '';
    for (let i = 0; i < length; i++) s += ALNUM[randomInt(ALNUM.length)] ?? 'a';
    return s;
  }
  const words: string[] = [];
  for (let i = 0; i < 5; i++) words.push(WORDS[randomInt(WORDS.length)] ?? 'word');
  return words.join('-');
}
