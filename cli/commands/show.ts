/**
 * `tsalt show <target> [SLS ...]`: Salt's state.show_sls / state.show_highstate (`--low`:
 * show_lowstate) through the master: each agent compiles the tree at the desired revision with
 * its own grains and the pillar rendered for it, and applies nothing.
 */
import { parseCommand, UsageError, positiveNumber } from '../args.js';
import { socketPath } from '../../master/cli-client.js';
import type { CliRequest } from '../../protocol/cli-messages.js';
import { outOptions, outputter, sendCall } from './call.js';
import { startedBy, targetOptions, targetType, TARGET_TYPES } from './apply.js';

const USAGE =
  'usage: tsalt show <target> [SLS ...] [--low] [--revision REV] [-L|-G|-P|-I|-J|-E|-S|-C|-N] [--out nested|json|yaml] [--json]\n' +
  '  without SLS: the highstate (what top.sls gives each agent); --low: the low chunks in execution order\n';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, { ...targetOptions, ...outOptions, low: { type: 'boolean' }, revision: { type: 'string', short: 'r' } }, USAGE);
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [target, ...sls] = positionals;
  if (!target) throw new UsageError('give a target', USAGE);
  if (values.low && sls.length) throw new UsageError('--low shows the highstate; it takes no SLS names', USAGE);
  const tt = targetType(values);
  if (!TARGET_TYPES.has(tt)) throw new UsageError(tt, USAGE);
  const fun = values.low ? 'state.show_lowstate' : sls.length ? 'state.show_sls' : 'state.show_highstate';
  return sendCall(
    {
      type: 'call',
      target,
      tgt_type: tt as Extract<CliRequest, { type: 'call' }>['tgt_type'],
      fun,
      args: sls.length ? [sls.join(',')] : [],
      kwargs: {},
      user: startedBy(),
      ...(values.timeout !== undefined ? { timeout_s: positiveNumber('--timeout', values.timeout, USAGE) } : {}),
      ...(values.revision ? { revision: values.revision } : {}),
    },
    { socket: socketPath(values), json: values.json === true, out: outputter(values.out, USAGE), name: 'tsalt show' },
  );
}
