// Logging in the style of abra (charmbracelet/log): `LEVL message` lines on stderr.
// Errors go through `fatal()`, which throws a `Fatal`; main.ts prints `FATA <message>` and exits 1.
// Colour only when stderr is a TTY and neither NO_COLOR nor TERM=dumb is set (abra/termenv honour
// NO_COLOR); callers that grep for /^FATA/m under a PTY must set NO_COLOR=1.

export class Fatal extends Error {
  override readonly name = 'Fatal';
}

export function fatal(message: string): never {
  throw new Fatal(message);
}

type Level = 'DEBU' | 'INFO' | 'WARN' | 'FATA';

const COLOURS: Record<Level, string> = {
  DEBU: '\u001b[38;5;63m',
  INFO: '\u001b[38;5;86m',
  WARN: '\u001b[38;5;192m',
  FATA: '\u001b[38;5;134m',
};

let debugEnabled = false;

export function setDebug(on: boolean): void {
  debugEnabled = on;
}

export function isDebug(): boolean {
  return debugEnabled;
}

function useColour(): boolean {
  const env = process.env;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.TERM === 'dumb') return false;
  return process.stderr.isTTY === true;
}

function emit(level: Level, message: string): void {
  const prefix = useColour() ? `${COLOURS[level]}\u001b[1m${level}\u001b[0m` : level;
  process.stderr.write(`${prefix} ${message}\n`);
}

export const log = {
  debug(message: string): void {
    if (debugEnabled) emit('DEBU', message);
  },
  info(message: string): void {
    emit('INFO', message);
  },
  warn(message: string): void {
    emit('WARN', message);
  },
  fatal(message: string): void {
    emit('FATA', message);
  },
};

/** Writes one line to stdout (tables, JSON). */
export function out(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}
