/** `tsalt keys [list | accept ID... | accept --all | reject ID... | delete ID...]` (Salt: salt-key). */
import { parseCommand, UsageError } from '../args.js';
import { request, socketPath } from '../../master/cli-client.js';
import type { CliRequest } from '../../protocol/cli-messages.js';
import { forTerminal } from '../../core/terminal.js';

const USAGE = 'usage: tsalt keys [list | accept ID... | accept --all | reject ID... | delete ID...] [--socket PATH | --config FILE] [--json]\n';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(
    argv,
    {
      all: { type: 'boolean', short: 'A' },
      json: { type: 'boolean' },
      socket: { type: 'string' },
      config: { type: 'string', short: 'c' },
      help: { type: 'boolean', short: 'h' },
    },
    USAGE,
  );
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [sub = 'list', ...ids] = positionals;
  let req: CliRequest;
  if (sub === 'list') req = { type: 'keys.list' };
  else if (sub === 'accept' && (ids.length || values.all)) req = { type: 'keys.accept', ids, all: values.all === true };
  else if ((sub === 'reject' || sub === 'delete') && ids.length) req = { type: sub === 'reject' ? 'keys.reject' : 'keys.delete', ids };
  else if (!['list', 'accept', 'reject', 'delete'].includes(sub)) throw new UsageError(`unknown action '${sub}'`, USAGE);
  else throw new UsageError(`${sub}: name the key ids${sub === 'accept' ? ' (or --all)' : ''}`, USAGE);
  try {
    return await request(socketPath(values), req, (raw) => {
      const ev = values.json ? raw : forTerminal(raw);
      if (ev.type === 'error') process.stderr.write(`tsalt keys: ${ev.message}\n`);
      if (ev.type !== 'data') return;
      if (values.json) {
        process.stdout.write(JSON.stringify(ev.data, null, 2) + '\n');
      } else if (req.type === 'keys.list') {
        const d = ev.data as { master_fingerprint: string; keys: { id: string; state: string; fingerprint: string; connected: boolean }[] };
        const out = [`Master fingerprint: ${d.master_fingerprint}`];
        for (const [state, title] of [['accepted', 'Accepted Keys:'], ['pending', 'Unaccepted Keys:'], ['rejected', 'Rejected Keys:']] as const) {
          out.push(title);
          for (const k of d.keys.filter((k) => k.state === state)) out.push(`  ${k.id}  ${k.fingerprint}${k.connected ? '  (connected)' : ''}`);
        }
        process.stdout.write(out.join('\n') + '\n');
      } else {
        const d = ev.data as { ids: string[] };
        const verb = req.type === 'keys.accept' ? 'Accepted' : req.type === 'keys.reject' ? 'Rejected' : 'Deleted';
        for (const id of d.ids) process.stdout.write(`${verb} key: ${id}\n`);
        if (!d.ids.length) process.stdout.write('No keys changed.\n');
      }
    });
  } catch (e) {
    process.stderr.write(`tsalt keys: ${(e as Error).message}\n`);
    return 1;
  }
}
