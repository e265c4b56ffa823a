/** `tsalt revisions`: the commits the master has seen, newest first, with their outcome. */
import type { RevisionLine } from '../../master/release-handlers.js';
import { ask, parseOr, short, socketOptions, table } from './release-common.js';
import { forTerminal } from '../../core/terminal.js';

export async function run(argv: string[]): Promise<number> {
  const parsed = parseOr('revisions', { args: argv, options: { ...socketOptions, limit: { type: 'string', short: 'n' } } });
  if (!parsed) return 1;
  const { values } = parsed;
  if (values.help) {
    process.stdout.write(
      'usage: tsalt revisions [-n LIMIT] [--json] [--socket PATH | --config FILE]\n' +
        '  the commits of the config repository the master has seen, newest first: sha, date, author, subject,\n' +
        '  outcome (desired, rolled out, failed, rolled back, refused) and how many agents applied or failed it\n',
    );
    return 0;
  }
  const limit = Number(values.limit ?? 50);
  if (!Number.isInteger(limit) || limit < 1) {
    process.stderr.write(`tsalt revisions: -n takes a positive number, not ${JSON.stringify(values.limit)}\n`);
    return 1;
  }
  return ask('revisions', values, { type: 'revisions.list', limit }, (d) => {
    if (values.json) return void process.stdout.write(JSON.stringify(d, null, 2) + '\n');
    const rows = forTerminal(d as RevisionLine[]); // commit subjects and authors: no terminal escapes
    if (!rows.length) return void process.stdout.write('no revisions seen yet (push to the branch)\n');
    const t = [['REVISION', 'DATE', 'AUTHOR', 'OUTCOME', 'AGENTS', 'SUBJECT']];
    for (const r of rows) {
      const outcome = [r.desired ? 'desired' : '', r.outcome === 'seen' ? '' : r.outcome.replace('_', ' '), r.head && !r.desired ? 'head' : ''].filter(Boolean).join(', ') || 'seen';
      t.push([short(r.sha), r.date ?? '-', r.author ?? '-', outcome, `${r.agents_applied} ok${r.agents_failed ? `, ${r.agents_failed} failed` : ''}`, r.subject ?? '']);
    }
    process.stdout.write(table(t));
    for (const r of rows) if (r.outcome === 'refused' || (r.detail && r.outcome !== 'rolled_out')) if (r.detail) process.stdout.write(`${short(r.sha)}: ${r.detail}\n`);
  });
}
