/**
 * `tsalt call <target> <module.function> [ARG ...] [KEY=VALUE ...]`: Salt's
 * `salt <target> <function> [args]` for the functions tsalt knows (CALL_FUNCTIONS). Arguments
 * are read as Salt reads them (YAML scalars, lists, dicts); KEY=VALUE is a keyword argument.
 * Exit: 0 every agent answered, 2 a function failed, 3 an agent did not return, 1 usage/target.
 */
import { parseCommand, UsageError } from '../args.js';
import { request, socketPath } from '../../master/cli-client.js';
import { loadSaltYaml } from '../../engine/render/salt-yaml.js';
import { CALL_FUNCTIONS } from '../../protocol/messages.js';
import { type CliRequest } from '../../protocol/cli-messages.js';
import { formatReturns, OUTPUTTERS, type Outputter } from '../nested.js';
import { escapeControl } from '../../core/terminal.js';
import { startedBy, targetOptions, targetType, TARGET_TYPES } from './apply.js';
import type { CallOutcome } from '../../master/calls.js';

export const outOptions = {
  out: { type: 'string' as const },
} as const;

/** Salt's yamlify_arg: a word becomes a number, bool, list or dict only when it clearly is one. */
export function saltArg(word: string): unknown {
  if (word.trim() === '' || word.includes('#') || /^[\d_]+$/.test(word) && word.includes('_')) return word;
  let v: unknown;
  try {
    v = loadSaltYaml(word);
  } catch {
    return word;
  }
  if (v === null || typeof v === 'string') return word;
  if (Array.isArray(v) && !word.trimStart().startsWith('[')) return word; // "- x"
  if (typeof v === 'object' && !Array.isArray(v) && !word.trimStart().startsWith('{')) return word; // "echo a: b"
  return v;
}

/** Positional words after the function: `k=v` (k an identifier) is a keyword, the rest arguments. */
export function splitArgs(words: string[]): { args: unknown[]; kwargs: Record<string, unknown> } {
  const args: unknown[] = [];
  const kwargs: Record<string, unknown> = {};
  for (const w of words) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(w);
    if (m) kwargs[m[1]!] = saltArg(m[2]!);
    else args.push(saltArg(w));
  }
  return { args, kwargs };
}

export function outputter(v: string | undefined, usage: string): Outputter {
  if (v === undefined) return 'nested';
  if (!(OUTPUTTERS as readonly string[]).includes(v)) throw new UsageError(`--out takes ${OUTPUTTERS.join(', ')}, not '${v}'`, usage);
  return v as Outputter;
}

interface CallData {
  fun: string;
  returns: Record<string, CallOutcome>;
}

/** Send a call request; print each agent's return (Salt's shapes) or why there is none. */
export async function sendCall(
  req: Extract<CliRequest, { type: 'call' }>,
  o: { socket: string; json: boolean; out: Outputter; name: string; print?: (d: CallData) => void },
): Promise<number> {
  try {
    return await request(o.socket, req, (ev) => {
      if (ev.type === 'error') process.stderr.write(`${o.name}: ${ev.message}\n`);
      if (ev.type === 'job_started' && !o.json) process.stderr.write(`job ${ev.jid}: ${ev.targets.length} agent(s)\n`);
      if (ev.type !== 'data') return;
      const d = ev.data as CallData;
      if (o.json) {
        process.stdout.write(JSON.stringify(d, null, 2) + '\n');
        return;
      }
      if (o.print) return o.print(d);
      const shown = Object.fromEntries(Object.entries(d.returns).map(([id, r]) => [id, r.status === 'ok' ? r.return : o.out === 'nested' ? `ERROR: ${r.error}` : r.error]));
      process.stdout.write(formatReturns(shown, o.out));
    });
  } catch (e) {
    process.stderr.write(`${o.name}: ${(e as Error).message}\n`);
    return 1;
  }
}

const USAGE =
  'usage: tsalt call <target> <module.function> [ARG ...] [KEY=VALUE ...] [-L|-G|-P|-I|-J|-E|-S|-C|-N] [--timeout S] [--out nested|json|yaml] [--json]\n' +
  '  Salt\'s execution functions on the targeted agents, e.g. tsalt call web1 pkg.version nginx\n' +
  `  functions: ${CALL_FUNCTIONS.join(', ')}\n`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, { ...targetOptions, ...outOptions, revision: { type: 'string', short: 'r' } }, USAGE);
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [target, fun, ...words] = positionals;
  if (!target || !fun) throw new UsageError(!target ? 'give a target' : 'give the function to call (module.function)', USAGE);
  if (!(CALL_FUNCTIONS as readonly string[]).includes(fun)) {
    throw new UsageError(`'${escapeControl(fun)}' is not a function tsalt can call; known: ${CALL_FUNCTIONS.join(', ')}`, USAGE);
  }
  const tt = targetType(values);
  if (!TARGET_TYPES.has(tt)) throw new UsageError(tt, USAGE);
  const { args, kwargs } = splitArgs(words);
  const timeout = values.timeout === undefined ? undefined : Number(values.timeout);
  if (timeout !== undefined && !(timeout > 0)) throw new UsageError(`--timeout takes a positive number, not '${values.timeout}'`, USAGE);
  return sendCall(
    {
      type: 'call',
      target,
      tgt_type: tt as Extract<CliRequest, { type: 'call' }>['tgt_type'],
      fun,
      args,
      kwargs,
      user: startedBy(),
      ...(timeout !== undefined ? { timeout_s: timeout } : {}),
      ...(values.batch ? { batch: values.batch } : {}),
      ...(values.revision ? { revision: values.revision } : {}),
    },
    { socket: socketPath(values), json: values.json === true, out: outputter(values.out, USAGE), name: 'tsalt call' },
  );
}
