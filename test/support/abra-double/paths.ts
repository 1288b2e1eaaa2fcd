// $ABRA_DIR layout (docs/abra-double.md, The contract): servers/<server>/<domain>.env, recipes/<recipe>/, backups/<domain>/.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export function abraDir(): string {
  const dir = process.env.ABRA_DIR;
  return dir !== undefined && dir !== '' ? dir : join(homedir(), '.abra');
}

export const serversDir = (): string => join(abraDir(), 'servers');
export const serverDir = (server: string): string => join(serversDir(), server);
export const recipesDir = (): string => join(abraDir(), 'recipes');
export const recipeDir = (recipe: string): string => join(recipesDir(), recipe);
export const backupsDir = (domain: string): string => join(abraDir(), 'backups', domain);
export const appEnvPath = (server: string, domain: string): string => join(serverDir(server), `${domain}.env`);

/** Server names: the directories (or symlinks to directories) under servers/. */
export function listServers(): string[] {
  const dir = serversDir();
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => {
      try {
        return statSync(join(dir, name)).isDirectory();
      } catch {
        return false;
      }
    })
    .sort();
}

/** Every app .env as [server, domain]. */
export function listAppFiles(): Array<{ server: string; domain: string; path: string }> {
  const out: Array<{ server: string; domain: string; path: string }> = [];
  for (const server of listServers()) {
    for (const file of readdirSync(serverDir(server)).sort()) {
      if (!file.endsWith('.env')) continue;
      out.push({ server, domain: file.slice(0, -'.env'.length), path: join(serverDir(server), file) });
    }
  }
  return out;
}

/** Maximum length of a sanitised app name (docs/abra-double.md, The contract). */
export const MAX_SANITISED_APP_NAME_LENGTH = 45;

/** `domain` with `.` → `_`, truncated to 45 characters (docs/abra-double.md, The contract). */
export function sanitiseAppName(domain: string): string {
  return domain.replace(/\./g, '_').slice(0, MAX_SANITISED_APP_NAME_LENGTH);
}
