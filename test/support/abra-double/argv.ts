// A small cobra/pflag-alike: a command tree, flag parsing (long `--x`, `--x=v`, short `-x v`,
// `-xv`, clustered booleans `-nf`, `--` terminator), and cobra-style help text.
import { fatal } from './log.js';

export type FlagKind = 'bool' | 'string' | 'int';

export interface FlagSpec {
  long: string;
  short?: string;
  kind: FlagKind;
  desc: string;
  /** Shown as `(default "x")` for string flags, `(default x)` for ints. */
  defaultValue?: string;
}

export interface Invocation {
  /** Canonical command path, e.g. ["app", "deploy"]. */
  path: string[];
  args: string[];
  bool(long: string): boolean;
  str(long: string): string | undefined;
}

export interface CommandSpec {
  name: string;
  aliases?: string[];
  /** Usage line after the command path, e.g. "<domain> [version] [flags]". */
  usage?: string;
  short: string;
  long?: string;
  flags?: FlagSpec[];
  minArgs?: number;
  maxArgs?: number;
  /** Names the missing positional arguments in the FATA message, in order. */
  argNames?: string[];
  subcommands?: CommandSpec[];
  run?: (inv: Invocation) => Promise<void>;
}

export const GLOBAL_FLAGS: FlagSpec[] = [
  { long: 'debug', short: 'd', kind: 'bool', desc: 'show debug messages' },
  { long: 'no-input', short: 'n', kind: 'bool', desc: 'toggle non-interactive mode' },
  { long: 'offline', short: 'o', kind: 'bool', desc: 'prefer offline & filesystem access' },
];

export type ParseOutcome = { kind: 'help'; path: CommandSpec[] } | { kind: 'version' } | { kind: 'run'; path: CommandSpec[]; inv: Invocation };

function helpFlag(cmd: CommandSpec): FlagSpec {
  return { long: 'help', short: 'h', kind: 'bool', desc: `help for ${cmd.name}` };
}

export const VERSION_FLAG: FlagSpec = { long: 'version', short: 'v', kind: 'bool', desc: 'version for abra' };

function localFlags(path: CommandSpec[]): FlagSpec[] {
  const cmd = path[path.length - 1];
  if (!cmd) return [];
  const flags = [...(cmd.flags ?? []), helpFlag(cmd)];
  if (path.length === 1) flags.push(VERSION_FLAG);
  return flags;
}

function findSub(cmd: CommandSpec, name: string): CommandSpec | undefined {
  return cmd.subcommands?.find((c) => c.name === name || (c.aliases ?? []).includes(name));
}

export function parse(root: CommandSpec, argv: readonly string[]): ParseOutcome {
  const path: CommandSpec[] = [root];
  const positional: string[] = [];
  const bools = new Set<string>();
  const strings = new Map<string, string>();
  const current = (): CommandSpec => path[path.length - 1] ?? root;
  const allFlags = (): FlagSpec[] => [...localFlags(path), ...GLOBAL_FLAGS];

  // `abra help app deploy` == `abra app deploy --help`
  let tokens = [...argv];
  if (tokens[0] === 'help') {
    tokens = [...tokens.slice(1), '--help'];
  }

  for (let i = 0; i < tokens.length; i++) {
    const tok = tokens[i] ?? '';
    if (tok === '--') {
      positional.push(...tokens.slice(i + 1));
      break;
    }
    if (tok.startsWith('--') && tok.length > 2) {
      const eq = tok.indexOf('=');
      const name = eq >= 0 ? tok.slice(2, eq) : tok.slice(2);
      const spec = allFlags().find((f) => f.long === name);
      if (!spec) fatal(`unknown flag: --${name}`);
      if (spec.kind === 'bool') {
        if (eq >= 0) {
          const v = tok.slice(eq + 1);
          if (v === 'true' || v === '1') bools.add(spec.long);
          else if (v === 'false' || v === '0') bools.delete(spec.long);
          else fatal(`invalid argument "${v}" for "--${name}" flag: strconv.ParseBool: parsing "${v}": invalid syntax`);
        } else bools.add(spec.long);
      } else {
        let value: string | undefined;
        if (eq >= 0) value = tok.slice(eq + 1);
        else {
          value = tokens[i + 1];
          i++;
        }
        if (value === undefined) fatal(`flag needs an argument: --${name}`);
        setValue(spec, value, strings);
      }
      continue;
    }
    if (tok.startsWith('-') && tok.length > 1) {
      // short flag cluster
      for (let j = 1; j < tok.length; j++) {
        const ch = tok[j] ?? '';
        const spec = allFlags().find((f) => f.short === ch);
        if (!spec) fatal(`unknown shorthand flag: '${ch}' in ${tok}`);
        if (spec.kind === 'bool') {
          bools.add(spec.long);
          continue;
        }
        let value: string | undefined = tok.slice(j + 1);
        if (value.startsWith('=')) value = value.slice(1);
        if (value === '') {
          value = tokens[i + 1];
          i++;
        }
        if (value === undefined) fatal(`flag needs an argument: '${ch}' in -${ch}`);
        setValue(spec, value, strings);
        break;
      }
      continue;
    }
    const cmd = current();
    if (cmd.subcommands && cmd.subcommands.length > 0 && positional.length === 0) {
      const sub = findSub(cmd, tok);
      if (!sub) {
        if (bools.has('help')) return { kind: 'help', path };
        fatal(`unknown command "${tok}" for "${commandPath(path)}"`);
      }
      path.push(sub);
      continue;
    }
    positional.push(tok);
  }

  if (bools.has('help')) return { kind: 'help', path };
  if (path.length === 1 && bools.has('version')) return { kind: 'version' };
  const cmd = current();
  if (!cmd.run) return { kind: 'help', path };

  const min = cmd.minArgs ?? 0;
  if (positional.length < min) {
    const missing = cmd.argNames?.[positional.length];
    fatal(
      missing
        ? `no ${missing} provided (usage: ${commandPath(path)} ${cmd.usage ?? ''})`.trimEnd()
        : `accepts at least ${min} arg(s), received ${positional.length}`,
    );
  }
  if (cmd.maxArgs !== undefined && positional.length > cmd.maxArgs) {
    fatal(`accepts at most ${cmd.maxArgs} arg(s), received ${positional.length}`);
  }

  const inv: Invocation = {
    path: path.slice(1).map((c) => c.name),
    args: positional,
    bool: (long) => bools.has(long),
    str: (long) => strings.get(long),
  };
  return { kind: 'run', path, inv };
}

function setValue(spec: FlagSpec, value: string, strings: Map<string, string>): void {
  if (spec.kind === 'int' && !/^-?\d+$/.test(value)) {
    fatal(`invalid argument "${value}" for "--${spec.long}" flag: strconv.ParseInt: parsing "${value}": invalid syntax`);
  }
  strings.set(spec.long, value);
}

export function commandPath(path: readonly CommandSpec[]): string {
  return path.map((c) => c.name).join(' ');
}

function flagLines(flags: readonly FlagSpec[]): string[] {
  const lefts = flags.map((f) => {
    const names = f.short ? `  -${f.short}, --${f.long}` : `      --${f.long}`;
    return f.kind === 'bool' ? names : `${names} ${f.kind}`;
  });
  const width = Math.max(...lefts.map((l) => l.length));
  return flags.map((f, i) => {
    let desc = f.desc;
    if (f.defaultValue !== undefined) desc += f.kind === 'string' ? ` (default "${f.defaultValue}")` : ` (default ${f.defaultValue})`;
    return `${(lefts[i] ?? '').padEnd(width)}   ${desc}`;
  });
}

/** Cobra's default help template, close enough for `--help` scraping. */
export function renderHelp(path: readonly CommandSpec[]): string {
  const cmd = path[path.length - 1];
  if (!cmd) return '';
  const full = commandPath(path);
  const lines: string[] = [];
  lines.push(cmd.long ?? cmd.short, '');
  lines.push('Usage:');
  if (cmd.run) lines.push(`  ${full} ${cmd.usage ?? '[flags]'}`.trimEnd());
  if (cmd.subcommands && cmd.subcommands.length > 0) lines.push(`  ${full} [command]`);
  lines.push('');
  if (cmd.aliases && cmd.aliases.length > 0) {
    lines.push('Aliases:', `  ${[cmd.name, ...cmd.aliases].join(', ')}`, '');
  }
  if (cmd.subcommands && cmd.subcommands.length > 0) {
    lines.push('Available Commands:');
    const width = Math.max(...cmd.subcommands.map((c) => c.name.length), 10);
    for (const sub of cmd.subcommands) lines.push(`  ${sub.name.padEnd(width)}  ${sub.short}`);
    lines.push('');
  }
  lines.push('Flags:', ...flagLines(localFlags(path as CommandSpec[])), '');
  lines.push('Global Flags:', ...flagLines(GLOBAL_FLAGS), '');
  if (cmd.subcommands && cmd.subcommands.length > 0) {
    lines.push(`Use "${full} [command] --help" for more information about a command.`);
  }
  return `${lines.join('\n')}\n`;
}
