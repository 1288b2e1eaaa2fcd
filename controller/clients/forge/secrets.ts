import { readFileSync } from 'node:fs';

/**
 * The forge token and the webhook secret live in files named by the config (forge.tokenFile,
 * forge.webhookSecretFile), never in the config itself, so the config can be shared and logged.
 * Errors name the file, never its content.
 */

export class SecretFileError extends Error {}

/** Reads a one-line secret file; a trailing newline (what `echo x > file` writes) is not part of it. */
export function readSecretFile(path: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new SecretFileError(`cannot read the ${what} file ${path}: ${(e as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
  const value = text.replace(/(\r?\n)+$/, '');
  if (value.trim() === '') throw new SecretFileError(`the ${what} file ${path} is empty`);
  if (/[\r\n]/.test(value)) throw new SecretFileError(`the ${what} file ${path} has more than one line`);
  return value;
}

export interface ForgeSecrets {
  token: string;
  /** Null in poll mode, where no webhook is received. */
  webhookSecret: string | null;
}

/** Both files of a forge config, read once at start so a bad file stops `serve` before it claims anything. */
export function readForgeSecrets(forge: { tokenFile: string; webhookSecretFile?: string | undefined; mode: string } | undefined): ForgeSecrets | null {
  if (!forge) return null;
  const token = readSecretFile(forge.tokenFile, 'forge token');
  if (forge.mode === 'poll') return { token, webhookSecret: null };
  if (!forge.webhookSecretFile) throw new SecretFileError(`forge.webhookSecretFile is required when forge.mode is ${forge.mode}`);
  return { token, webhookSecret: readSecretFile(forge.webhookSecretFile, 'webhook secret') };
}
