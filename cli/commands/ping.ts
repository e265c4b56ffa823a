/** `tsalt ping <target>`: Salt's test.ping, with each agent's round-trip time. */
import { parseCommand, UsageError, positiveNumber } from '../args.js';
import { socketPath } from '../../master/cli-client.js';
import type { CliRequest } from '../../protocol/cli-messages.js';
import { sendCall } from './call.js';
import { startedBy, targetOptions, targetType, TARGET_TYPES } from './apply.js';
import { escapeControl } from '../../core/terminal.js';

const USAGE = 'usage: tsalt ping <target> [-L|-G|-P|-I|-J|-E|-S|-C|-N] [--timeout S] [--json] [--socket PATH | --config FILE]\n';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, targetOptions, USAGE);
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [target, ...extra] = positionals;
  if (!target) throw new UsageError('give a target', USAGE);
  if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`, USAGE);
  const tt = targetType(values);
  if (!TARGET_TYPES.has(tt)) throw new UsageError(tt, USAGE);
  // a ping waits seconds, not the job timeout
  const timeout = values.timeout === undefined ? 5 : positiveNumber('--timeout', values.timeout, USAGE);
  return sendCall(
    { type: 'call', target, tgt_type: tt as Extract<CliRequest, { type: 'call' }>['tgt_type'], fun: 'test.ping', args: [], kwargs: {}, user: startedBy(), timeout_s: timeout },
    {
      socket: socketPath(values),
      json: values.json === true,
      out: 'nested',
      name: 'tsalt ping',
      print: (d) => {
        const rows = [['ID', 'PING', 'TIME']];
        for (const [id, r] of Object.entries(d.returns)) {
          rows.push([escapeControl(id), r.status === 'ok' ? (r.return === true ? 'True' : escapeControl(JSON.stringify(r.return))) : '-', 'rtt_ms' in r ? `${r.rtt_ms.toFixed(1)} ms` : r.error]);
        }
        const w = rows[0]!.map((_, i) => Math.max(...rows.map((t) => t[i]!.length)));
        process.stdout.write(rows.map((t) => t.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd()).join('\n') + '\n');
      },
    },
  );
}
