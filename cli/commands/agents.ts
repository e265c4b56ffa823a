/** `tsalt agents`: accepted agents, connected or offline, last seen, os, roles, last revision. */
import { parseCommand } from '../args.js';
import { request, socketPath } from '../../master/cli-client.js';

interface Row {
  id: string;
  connected: boolean;
  last_seen: string | null;
  os: string | null;
  roles: unknown;
  revision_applied: string | null;
}

const USAGE = 'usage: tsalt agents [--json] [--socket PATH | --config FILE]\n';

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
    return await request(socketPath(values), { type: 'agents.list' }, (ev) => {
      if (ev.type === 'error') process.stderr.write(`tsalt agents: ${ev.message}\n`);
      if (ev.type !== 'data') return;
      const rows = ev.data as Row[];
      if (values.json) {
        process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
        return;
      }
      const table = [['ID', 'STATUS', 'LAST SEEN', 'OS', 'ROLES', 'REVISION']];
      for (const r of rows) {
        const roles = Array.isArray(r.roles) ? r.roles.join(',') : r.roles ? String(r.roles) : '-';
        table.push([r.id, r.connected ? 'connected' : 'offline', r.last_seen ?? '-', r.os ?? '-', roles, r.revision_applied?.slice(0, 12) ?? '-']);
      }
      const w = table[0]!.map((_, i) => Math.max(...table.map((t) => t[i]!.length)));
      process.stdout.write(table.map((t) => t.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd()).join('\n') + '\n');
    });
  } catch (e) {
    process.stderr.write(`tsalt agents: ${(e as Error).message}\n`);
    return 1;
  }
}
