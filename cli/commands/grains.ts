/**
 * `tsalt grains <target> [KEY]` and `tsalt pillar <target> [KEY]`: Salt's grains.items /
 * grains.get and pillar.items / pillar.get as the master knows them (grains the agents
 * reported; pillar rendered for each agent now). Pillar is printed to this terminal only.
 */
import { parseCommand, UsageError } from '../args.js';
import { request, socketPath } from '../../master/cli-client.js';
import type { CliRequest } from '../../protocol/cli-messages.js';
import { formatReturns } from '../nested.js';
import { outOptions, outputter } from './call.js';
import { targetOptions, targetType, TARGET_TYPES } from './apply.js';

export async function show(which: 'grains' | 'pillar', argv: string[]): Promise<number> {
  const usage =
    `usage: tsalt ${which} <target> [KEY] [-L|-G|-P|-I|-J|-E|-S|-C|-N] [--out nested|json|yaml] [--json] [--socket PATH | --config FILE]\n` +
    `  KEY: one ${which === 'grains' ? 'grain' : 'pillar key'}, nested keys joined by ':' (e.g. ${which === 'grains' ? 'os_family, ip4_interfaces:eth0' : 'mysql:port'})\n`;
  const { values, positionals } = parseCommand(argv, { ...targetOptions, ...outOptions }, usage);
  if (values.help) {
    process.stdout.write(usage);
    return 0;
  }
  const [target, key, ...extra] = positionals;
  if (!target) throw new UsageError('give a target', usage);
  if (extra.length) throw new UsageError(`one KEY at a time (got '${key}' and '${extra[0]}')`, usage);
  const tt = targetType(values);
  if (!TARGET_TYPES.has(tt)) throw new UsageError(tt, usage);
  const out = values.json ? 'json' : outputter(values.out, usage);
  const req: CliRequest = { type: which, target, tgt_type: tt as Extract<CliRequest, { type: 'grains' }>['tgt_type'], ...(key !== undefined ? { key } : {}) };
  try {
    return await request(socketPath(values), req, (ev) => {
      if (ev.type === 'error') process.stderr.write(`tsalt ${which}: ${ev.message}\n`);
      if (ev.type === 'data') process.stdout.write(formatReturns(ev.data as Record<string, unknown>, out));
    });
  } catch (e) {
    process.stderr.write(`tsalt ${which}: ${(e as Error).message}\n`);
    return 1;
  }
}

export const run = (argv: string[]) => show('grains', argv);
