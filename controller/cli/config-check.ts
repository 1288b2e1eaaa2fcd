import { ConfigError, loadConfig } from '../model/config.js';
import { EXIT, err, out } from './common.js';

/**
 * `cc-ci config check FILE`: the config loader `serve` uses, and nothing else, so a file it
 * accepts is one `serve` starts with and its errors are the ones `serve` would print. The NixOS
 * module runs it at build time on the file it generates: a bad setting fails the rebuild, not
 * the running server.
 */
export function configCheckCommand(file: string): number {
  try {
    loadConfig(file);
  } catch (e) {
    if (e instanceof ConfigError) {
      err(`cc-ci: ${e.message}`);
      return EXIT.error;
    }
    throw e;
  }
  out(`${file}: ok`);
  return EXIT.passed;
}
