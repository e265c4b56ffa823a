/** `tsalt status`: desired revision, branch head, the running rollout, and each agent in sync or not. */
import type { StatusData } from '../../master/release-handlers.js';
import { ask, parseOr, short, socketOptions, table } from './release-common.js';
import { forTerminal } from '../../core/terminal.js';

export async function run(argv: string[]): Promise<number> {
  const parsed = parseOr('status', { args: argv, options: socketOptions });
  if (!parsed) return 1;
  const { values } = parsed;
  if (values.help) {
    process.stdout.write(
      'usage: tsalt status [--json] [--socket PATH | --config FILE]\n' +
        '  the desired revision, the branch head, the rollout running (batch k of n) or the last one with each batch\'s\n' +
        '  group, agents, job and verify results, and per agent:\n' +
        '  its revision, the last one applied, the last attempted and its result: in sync, behind, failed or held\n',
    );
    return 0;
  }
  return ask('status', values, { type: 'status' }, (d) => {
    if (values.json) return void process.stdout.write(JSON.stringify(d, null, 2) + '\n');
    const s = forTerminal(d as StatusData); // ids, users, rollout messages: no terminal escapes
    const out = [`serving:  ${s.source}`, `desired:  ${short(s.desired)}`, `head:     ${short(s.head)}${s.head && s.head !== s.desired ? ' (not desired)' : ''}`];
    const r = s.rollout ?? s.last_rollout;
    if (r) {
      const what = `${r.reason} of ${short(r.revision)} by ${r.started_by}`;
      out.push(s.rollout ? `rollout:  ${what}: running, batch ${r.batch} of ${r.batches}` : `last rollout: ${what}: ${r.status.replace('_', ' ')}${r.message ? ` (${r.message})` : ''}`);
    }
    process.stdout.write(out.join('\n') + '\n\n');
    if (s.rollout_batches?.length) {
      const b = [['BATCH', 'GROUP', 'AGENTS', 'JOB', 'STATUS', 'VERIFY']];
      for (const x of s.rollout_batches) {
        const agents = x.agents.map((a) => (x.offline.includes(a) ? `${a} (offline)` : a)).join(',');
        const checks = x.verify.map((v) => `${v.name}: ${v.outcome}${v.attempts > 1 ? ` after ${v.attempts} tries` : ''}${v.outcome === 'failed' && v.message ? ` (${v.message})` : ''}`);
        b.push([`${x.batch}/${s.rollout_batches.length}`, x.group_name, agents, x.jid ?? '-', x.status.replace('_', ' '), checks.join('; ') || '-']);
      }
      process.stdout.write(table(b) + '\n');
    }
    const t = [['AGENT', 'CONNECTED', 'REVISION', 'APPLIED', 'ATTEMPTED', 'RESULT', 'SYNC']];
    for (const a of s.agents) {
      t.push([a.id, a.connected ? 'yes' : 'no', short(a.revision), short(a.revision_applied), short(a.revision_attempted), a.attempt_status ?? '-', a.sync.replace('_', ' ')]);
    }
    process.stdout.write(table(t));
  });
}
