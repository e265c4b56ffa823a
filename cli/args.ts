/**
 * Command-line options for every tsalt command: node's parseArgs, strict, with its errors turned
 * into one line and the command's usage (never a TypeError stack). A short option's value is a
 * separate word (`-r REV`): `-rf` would otherwise silently read as `--revision f`.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A usage mistake: main prints `tsalt <cmd>: <message>`, then the usage, and exits 1. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly usage: string,
  ) {
    super(message);
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** Parse `argv` against `options`; throws UsageError. */
export function parseCommand<const O extends Options>(argv: string[], options: O, usage: string, allowPositionals = true) {
  let r;
  try {
    r = parseArgs({ args: argv, options, allowPositionals, strict: true, tokens: true });
  } catch (e) {
    throw new UsageError(parseErrorLine(e as NodeJS.ErrnoException, options), usage);
  }
  for (const t of r.tokens) {
    if (t.kind === 'option' && t.inlineValue && /^-[^-]$/.test(t.rawName)) {
      const word = argv[t.index]!;
      throw new UsageError(`'${word}': give the value of ${t.rawName} as its own word (${t.rawName} ${t.value}) or write --${t.name}=${t.value}`, usage);
    }
  }
  return { values: r.values, positionals: r.positionals };
}

function parseErrorLine(e: NodeJS.ErrnoException, options: Options): string {
  const first = e.message.split('\n')[0]!.replace(/\. .*$/, '').replace(/\.$/, '');
  const text = first.charAt(0).toLowerCase() + first.slice(1);
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `${text} (an argument starting with '-' goes after '--')`;
  // node names the option as '-r', '--revision' or '-r, --revision <value>': say its long name
  const raw = /^Option '([^']*)'/.exec(first)?.[1];
  const long = raw?.match(/--([\w-]+)/)?.[1] ?? Object.entries(options).find(([, o]) => raw === `-${o.short}`)?.[0];
  if (long !== undefined && /argument missing$/.test(first)) return `option '--${long}' needs a value`;
  if (long !== undefined && /ambiguous$/.test(first)) return `option '--${long}' needs a value (one starting with '-' is written --${long}=VALUE)`;
  return text;
}

/** A positive number of seconds (or whatever `what` counts), else a UsageError. */
export function positiveNumber(flag: string, v: string, usage: string): number {
  const n = Number(v);
  if (!(n > 0) || !Number.isFinite(n)) throw new UsageError(`${flag} takes a positive number, not '${v}'`, usage);
  return n;
}

/** A positive whole number, else a UsageError. */
export function positiveInt(flag: string, v: string, usage: string): number {
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new UsageError(`${flag} takes a whole number above 0, not '${v}'`, usage);
  return Number(v);
}
