import { pino, destination, type Logger } from 'pino';

export type { Logger };

/**
 * The controller's own structured log (pino, JSON lines on stderr). A run's log is separate:
 * it lives in the state store as numbered events (see state/store.ts) and on disk.
 */
export function createLogger(level: string, dest: number | string = 2): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      // Nothing secret is logged on purpose; these paths are a second line of defence.
      redact: { paths: ['token', '*.token', 'secret', '*.secret', 'headers.authorization'], censor: '[redacted]' },
    },
    destination({ dest, sync: true }),
  );
}
