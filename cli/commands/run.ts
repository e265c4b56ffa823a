/** `tsalt run <target> <command>`: a one-off shell command on each agent (Salt: cmd.run). */
import { parseArgs } from 'node:util';
import { socketPath } from '../../master/cli-client.js';
import { followJob, startedBy, targetOptions, targetType, TARGET_TYPES } from './apply.js';
import type { TargetType } from '../../protocol/messages.js';

const USAGE = 'usage: tsalt run <target> <command> [-L|-G|-P|-I|-J|-E|-S|-C|-N] [--batch N|N%] [--timeout S] [--json]\n';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: targetOptions });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [target, ...cmd] = positionals;
  const tt = targetType(values);
  const timeout = values.timeout === undefined ? 600 : Number(values.timeout);
  if (!target || !cmd.length || !(timeout > 0) || !TARGET_TYPES.has(tt)) {
    process.stderr.write((TARGET_TYPES.has(tt) ? '' : `tsalt run: ${tt}\n`) + USAGE);
    return 1;
  }
  return followJob(
    {
      type: 'run',
      target,
      tgt_type: tt as TargetType,
      command: cmd.join(' '),
      timeout_s: timeout,
      user: startedBy(),
      ...(values.batch ? { batch: values.batch } : {}),
    },
    { socket: socketPath(values), json: values.json === true, name: 'tsalt run' },
  );
}
