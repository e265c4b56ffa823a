/** Shared by `tsalt revisions|status|rollout|rollback`: options, tables, the socket request. */
import type { ParseArgsConfig } from 'node:util';
import { request, socketPath } from '../../master/cli-client.js';
import type { CliEvent, CliRequest } from '../../protocol/cli-messages.js';
import { parseCommand, UsageError } from '../args.js';

export const socketOptions = {
  json: { type: 'boolean' as const },
  socket: { type: 'string' as const },
  config: { type: 'string' as const, short: 'c' },
  help: { type: 'boolean' as const, short: 'h' },
};

export const short = (sha: string | null | undefined): string => (sha ? sha.slice(0, 12) : '-');

export function table(rows: string[][]): string {
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((t) => (t[i] ?? '').length)));
  return rows.map((t) => t.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}

/** One request; `onData` gets each data event; errors go to stderr named by the command. */
export async function ask(name: string, values: { socket?: string; config?: string }, req: CliRequest, onData: (d: unknown) => void): Promise<number> {
  try {
    return await request(socketPath(values), req, (ev: CliEvent) => {
      if (ev.type === 'error') process.stderr.write(`tsalt ${name}: ${ev.message}\n`);
      if (ev.type === 'data') onData(ev.data);
    });
  } catch (e) {
    process.stderr.write(`tsalt ${name}: ${(e as Error).message}\n`);
    return 1;
  }
}

/** parseArgs, with a bad flag reported as `tsalt NAME: ...` (exit 1) instead of a stack trace. */
export function parseOr<const O extends NonNullable<ParseArgsConfig['options']>>(
  name: string,
  config: { args: string[]; options: O; allowPositionals?: boolean },
): { values: ReturnType<typeof parseCommand<O>>['values']; positionals: string[] } | undefined {
  // the same parser (and the same one-line errors) as every other command
  try {
    return parseCommand(config.args, config.options, `see tsalt ${name} --help`, config.allowPositionals ?? false);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`tsalt ${name}: ${e.message}; see tsalt ${name} --help\n`);
    return undefined;
  }
}
