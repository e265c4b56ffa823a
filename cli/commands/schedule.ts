/** `tsalt schedule`: the master's scheduled jobs (master.yaml `schedule:`), their last and next run. */
import { parseCommand } from '../args.js';
import { request, socketPath } from '../../master/cli-client.js';
// cheap: cli-client loads master/config.ts, which loads master/schedule.ts already
import { formatInterval, type ScheduleStatus } from '../../master/schedule.js';

const USAGE =
  'usage: tsalt schedule [--json] [--socket PATH | --config FILE]\n' +
  "  lists the master's scheduled jobs (schedule: in master.yaml): function, target, interval, last run, next run\n";

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCommand(
    argv,
    { json: { type: 'boolean' }, socket: { type: 'string' }, config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
    USAGE,
    false,
  );
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  try {
    return await request(socketPath(values), { type: 'schedule.list' }, (ev) => {
      if (ev.type === 'error') process.stderr.write(`tsalt schedule: ${ev.message}\n`);
      if (ev.type !== 'data') return;
      const rows = ev.data as ScheduleStatus[];
      if (values.json) {
        process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
        return;
      }
      if (rows.length === 0) {
        process.stdout.write('no schedules (schedule: in master.yaml)\n');
        return;
      }
      const table = [['NAME', 'FUNCTION', 'TARGET', 'EVERY', 'ENABLED', 'LAST RUN', 'JID', 'NEXT RUN']];
      for (const r of rows) {
        const fn = r.sls?.length ? `${r.function} ${r.sls.join(',')}` : r.command !== null ? `${r.function} ${JSON.stringify(r.command)}` : r.function;
        table.push([
          r.name,
          fn + (r.test ? ' test=True' : ''),
          `${r.tgt_type === 'glob' ? '' : r.tgt_type + ':'}${r.target}`,
          (r.cron !== null && r.cron !== undefined ? `cron '${r.cron}'` : formatInterval(r.interval_s)) + (r.splay_s ? ` +0..${r.splay_s}s` : ''),
          r.enabled ? 'yes' : 'no',
          r.last_run?.time ?? '-',
          (r.last_run?.jid ?? '-') + (r.running && r.running === r.last_run?.jid ? ' (running)' : ''),
          r.next_run ?? '-',
        ]);
      }
      const w = table[0]!.map((_, i) => Math.max(...table.map((t) => t[i]!.length)));
      process.stdout.write(table.map((t) => t.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd()).join('\n') + '\n');
    });
  } catch (e) {
    process.stderr.write(`tsalt schedule: ${(e as Error).message}\n`);
    return 1;
  }
}

