/** `tsalt run <target> <command>`: a one-off shell command on each agent (Salt: cmd.run). */
import { parseCommand, UsageError } from '../args.js';
import { socketPath } from '../../master/cli-client.js';
import { followJob, jobOptions, targetOptions } from './apply.js';

const USAGE =
  'usage: tsalt run <target> <command> [-L|-G|-P|-I|-J|-E|-S|-C|-N] [--batch N|N%] [--timeout S] [--json] [--socket PATH | --config FILE]\n' +
  "  a command with options of its own is quoted as one word ('ls -la') or written after --\n" +
  "  --timeout S      seconds each agent has to return (default: the master's timeout_s)\n";

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, targetOptions, USAGE);
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [target, ...cmd] = positionals;
  const common = jobOptions(values, target, USAGE);
  if (!cmd.length) throw new UsageError('give the command to run', USAGE);
  return followJob({ type: 'run', ...common, command: cmd.join(' ') }, { socket: socketPath(values), json: values.json === true, name: 'tsalt run' });
}
