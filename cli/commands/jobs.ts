/** `tsalt jobs [JID]`: recent jobs, or one job with every agent's status and state results; `tsalt jobs kill JID`. */
import { parseCommand, positiveInt, UsageError } from '../args.js';
import { request, socketPath } from '../../master/cli-client.js';
import { formatOutcome, startedBy } from './apply.js';
import { countResults, saltStateReturn, type StateResult } from '../../protocol/results.js';
import type { ReturnBody } from '../../protocol/messages.js';
import type { CliRequest } from '../../protocol/cli-messages.js';
import { escapeControl, forTerminal } from '../../core/terminal.js';
import { formatReturnsAs, highstateOptions, highstateOptionSpecs } from '../highstate.js';

interface JobListRow {
  jid: string;
  kind: string;
  target: string;
  tgt_type: string;
  revision: string | null;
  started_by: string;
  /** intentional (rollouts, applies) or corrective (a schedule putting drift back) */
  intent?: string;
  created: string;
  counts: Record<string, number>;
  test: boolean;
  sls: string[] | null;
  changed: number;
  killed: { by: string; at: string } | null;
}
interface JobDetail {
  job: JobListRow & { args: Record<string, unknown> };
  agents: { agent_id: string; status: string; error: string | null; body: ReturnBody | null; started: string | null; finished: string | null; results: StateResult[] }[];
}

const USAGE =
  'usage: tsalt jobs [-n LIMIT] [--target T] [--by USER] [--failed] [--test] [--since WHEN] [--json] [--socket PATH | --config FILE]\n' +
  '       tsalt jobs JID [--state-output full|terse|mixed|changes] [--state-verbose=False] [--out highstate|json|yaml] [--json]\n' +
  '       tsalt jobs kill JID    stop a running job: queued agents are cancelled, running ones terminate its programs\n' +
  '  --target T   jobs whose target is T, or that ran on agent T\n' +
  '  --by USER    jobs started by USER (root, root@cli, schedule:NAME, rollout)\n' +
  '  --failed     jobs where an agent failed, timed out, was lost or cancelled\n' +
  '  --test       test runs only (test=True)\n' +
  '  --since WHEN jobs started since WHEN: an ISO date/time (2026-01-31, 2026-01-31T12:00Z) or an age (30m, 2h, 7d)\n';

/** `--since`: an age (90s, 30m, 2h, 7d, 1w) or an ISO date/time; the ISO instant it means. */
export function sinceTime(v: string, now = Date.now()): string | undefined {
  const age = /^(\d+)([smhdw])$/.exec(v);
  if (age) return new Date(now - Number(age[1]) * { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[age[2] as 's']! * 1000).toISOString();
  if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(v)) return undefined;
  const t = Date.parse(v.replace(' ', 'T'));
  return Number.isNaN(t) ? undefined : new Date(t).toISOString();
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(
    argv,
    {
      limit: { type: 'string', short: 'n' },
      target: { type: 'string' },
      by: { type: 'string' },
      failed: { type: 'boolean' },
      test: { type: 'boolean' },
      since: { type: 'string' },
      ...highstateOptionSpecs,
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
  const since = values.since === undefined ? undefined : sinceTime(values.since);
  if (values.since !== undefined && since === undefined) throw new UsageError(`--since takes an ISO date/time or an age like 30m, 2h, 7d; not '${values.since}'`, USAGE);
  const filters = ['target', 'by', 'failed', 'test', 'since', 'limit'].filter((k) => values[k as keyof typeof values] !== undefined);
  if (jid && filters.length) throw new UsageError(`--${filters[0]} filters the job list; it does not go with a JID`, USAGE);
  const color = process.stdout.isTTY === true && !process.env.NO_COLOR;
  const hs = highstateOptions(values, color, USAGE);
  const req: CliRequest = jid
    ? { type: 'jobs.get', jid }
    : {
        type: 'jobs.list',
        limit,
        ...(values.target !== undefined ? { target: values.target } : {}),
        ...(values.by !== undefined ? { by: values.by } : {}),
        ...(values.failed ? { failed: true } : {}),
        ...(values.test ? { test: true } : {}),
        ...(since !== undefined ? { since } : {}),
      };
  try {
    return await request(socketPath(values), req, (raw) => {
      const ev = values.json ? raw : forTerminal(raw); // agents' text: no terminal escapes
      if (ev.type === 'error') process.stderr.write(`tsalt jobs: ${ev.message}\n`);
      if (ev.type !== 'data') return;
      if (values.json) {
        process.stdout.write(JSON.stringify(ev.data, null, 2) + '\n');
        return;
      }
      if (!jid) {
        printList(ev.data as JobListRow[]);
        return;
      }
      const d = ev.data as JobDetail;
      const j = d.job;
      const bodies = d.agents.map((m) => {
        let body = m.body;
        // a run still going (or lost) shows what was streamed so far
        if (!body && m.results.length) {
          body = { kind: 'apply', report: { id: m.agent_id, test: Boolean(j.args.test), results: m.results, counts: countResults(m.results), duration_ms: 0 } };
        }
        return { m, body };
      });
      if (hs.out !== 'highstate') {
        const byAgent = Object.fromEntries(
          bodies.map(({ m, body }) => [m.agent_id, body?.kind === 'apply' ? saltStateReturn(body.report.results) : body?.kind === 'run' ? body.stdout.replace(/\n$/, '') : body?.kind === 'error' ? [body.error] : `Minion did not return. [${m.status}]`]),
        );
        process.stdout.write(formatReturnsAs(byAgent, hs.out));
        return;
      }
      process.stdout.write(
        `Job ${j.jid}: ${j.kind} ${j.tgt_type} ${JSON.stringify(escapeControl(j.target))} by ${escapeControl(j.started_by)} at ${j.created}${j.revision ? `, revision ${j.revision}` : ''}${j.args.test === true ? ', test run' : ''}\n` +
          (j.killed ? `KILLED by ${escapeControl(j.killed.by)} at ${j.killed.at}\n` : '') +
          '\n',
      );
      for (const { m, body } of bodies) {
        process.stdout.write(`[${m.status}] `);
        process.stdout.write(formatOutcome(m.agent_id, { status: m.status, ...(body ? { body } : {}), ...(m.error ? { error: m.error } : {}) }, hs) + '\n');
      }
    });
  } catch (e) {
    process.stderr.write(`tsalt jobs: ${(e as Error).message}\n`);
    return 1;
  }
}

function printList(rows: JobListRow[]): void {
  const table = [['JID', 'KIND', 'TARGET', 'SLS', 'TEST', 'BY', 'INTENT', 'REVISION', 'CHANGED', 'RESULT']];
  for (const r of rows) {
    const res = Object.entries(r.counts).filter(([, n]) => n > 0).map(([s, n]) => `${s}=${n}`).join(' ');
    table.push([
      r.jid,
      r.kind,
      escapeControl(`${r.tgt_type === 'glob' ? '' : r.tgt_type + ':'}${r.target}`),
      r.sls === null ? '-' : r.sls.length ? escapeControl(r.sls.join(',')) : 'highstate',
      r.test ? 'yes' : 'no',
      escapeControl(r.started_by),
      r.intent ?? '-',
      r.revision?.slice(0, 12) ?? '-',
      r.test ? '-' : String(r.changed),
      (r.killed ? 'KILLED ' : '') + res,
    ]);
  }
  const w = table[0]!.map((_, i) => Math.max(...table.map((t) => t[i]!.length)));
  process.stdout.write(table.map((t) => t.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd()).join('\n') + '\n');
}

async function kill(jid: string | undefined, values: { json?: boolean; socket?: string; config?: string }): Promise<number> {
  if (jid === undefined || !/^\d{20}$/.test(jid)) {
    process.stderr.write(`tsalt jobs kill: give the id of a running job (20 digits)${jid ? `, not '${jid}'` : ''}\n`);
    return 1;
  }
  try {
    return await request(socketPath(values), { type: 'jobs.kill', jid, user: startedBy() }, (raw) => {
      const ev = values.json ? raw : forTerminal(raw);
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
