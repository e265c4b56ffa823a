/** `tsalt jobs [JID]`: recent jobs, or one job with every agent's status and state results; `tsalt jobs kill JID`. */
import { parseCommand, positiveInt, UsageError } from '../args.js';
import { request, socketPath } from '../../master/cli-client.js';
import { formatOutcome, startedBy } from './apply.js';
import { countResults, type StateResult } from '../../protocol/results.js';
import type { CliRequest, ReturnBody } from '../../protocol/messages.js';

interface JobListRow {
  jid: string;
  kind: string;
  target: string;
  tgt_type: string;
  revision: string | null;
  started_by: string;
  created: string;
  counts: Record<string, number>;
}
interface JobDetail {
  job: JobListRow & { args: Record<string, unknown> };
  minions: { agent_id: string; status: string; error: string | null; body: ReturnBody | null; started: string | null; finished: string | null; results: StateResult[] }[];
}

const USAGE =
  'usage: tsalt jobs [JID] [-n LIMIT] [--json] [--socket PATH | --config FILE]\n' +
  '       tsalt jobs kill JID    stop a running job: queued agents are cancelled, running ones terminate its programs\n';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(
    argv,
    {
      limit: { type: 'string', short: 'n' },
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
  if (positionals[0] === 'kill') return kill(positionals[1], values);
  const jid = positionals[0];
  if (jid !== undefined && !/^\d{20}$/.test(jid)) throw new UsageError(`'${jid}' is not a job id (20 digits)`, USAGE);
  if (positionals.length > 1) throw new UsageError(`one job id at a time (got ${positionals.length} words)`, USAGE);
  const limit = values.limit === undefined ? 20 : positiveInt('--limit', values.limit, USAGE);
  const req: CliRequest = jid ? { type: 'jobs.get', jid } : { type: 'jobs.list', limit };
  const color = process.stdout.isTTY === true && !process.env.NO_COLOR;
  try {
    return await request(socketPath(values), req, (ev) => {
      if (ev.type === 'error') process.stderr.write(`tsalt jobs: ${ev.message}\n`);
      if (ev.type !== 'data') return;
      if (values.json) {
        process.stdout.write(JSON.stringify(ev.data, null, 2) + '\n');
        return;
      }
      if (!jid) {
        const rows = ev.data as JobListRow[];
        const table = [['JID', 'KIND', 'TARGET', 'BY', 'REVISION', 'RESULT']];
        for (const r of rows) {
          const res = Object.entries(r.counts).filter(([, n]) => n > 0).map(([s, n]) => `${s}=${n}`).join(' ');
          table.push([r.jid, r.kind, `${r.tgt_type === 'glob' ? '' : r.tgt_type + ':'}${r.target}`, r.started_by, r.revision?.slice(0, 12) ?? '-', res]);
        }
        const w = table[0]!.map((_, i) => Math.max(...table.map((t) => t[i]!.length)));
        process.stdout.write(table.map((t) => t.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd()).join('\n') + '\n');
        return;
      }
      const d = ev.data as JobDetail;
      const j = d.job;
      process.stdout.write(
        `Job ${j.jid}: ${j.kind} ${j.tgt_type} ${JSON.stringify(j.target)} by ${j.started_by} at ${j.created}${j.revision ? `, revision ${j.revision}` : ''}\n\n`,
      );
      for (const m of d.minions) {
        process.stdout.write(`[${m.status}] `);
        let body = m.body;
        // a run still going (or lost) shows what was streamed so far
        if (!body && m.results.length) {
          body = { kind: 'apply', report: { id: m.agent_id, test: Boolean(j.args.test), results: m.results, counts: countResults(m.results), duration_ms: 0 } };
        }
        process.stdout.write(formatOutcome(m.agent_id, { status: m.status, ...(body ? { body } : {}), ...(m.error ? { error: m.error } : {}) }, color) + '\n');
      }
    });
  } catch (e) {
    process.stderr.write(`tsalt jobs: ${(e as Error).message}\n`);
    return 1;
  }
}

async function kill(jid: string | undefined, values: { json?: boolean; socket?: string; config?: string }): Promise<number> {
  if (jid === undefined || !/^\d{20}$/.test(jid)) {
    process.stderr.write(`tsalt jobs kill: give the id of a running job (20 digits)${jid ? `, not '${jid}'` : ''}\n`);
    return 1;
  }
  try {
    return await request(socketPath(values), { type: 'jobs.kill', jid, user: startedBy() }, (ev) => {
      if (ev.type === 'error') process.stderr.write(`tsalt jobs kill: ${ev.message}\n`);
      if (ev.type !== 'data') return;
      if (values.json) {
        process.stdout.write(JSON.stringify(ev.data, null, 2) + '\n');
        return;
      }
      const d = ev.data as { signalled: string[]; cancelled: string[] };
      process.stdout.write(
        `Job ${jid}: told ${d.signalled.length} running agent(s) to stop${d.signalled.length ? ` (${d.signalled.join(', ')})` : ''}` +
          `; ${d.cancelled.length} queued agent(s) cancelled${d.cancelled.length ? ` (${d.cancelled.join(', ')})` : ''}\n`,
      );
    });
  } catch (e) {
    process.stderr.write(`tsalt jobs kill: ${(e as Error).message}\n`);
    return 1;
  }
}
