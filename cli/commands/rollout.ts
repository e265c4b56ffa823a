/** `tsalt rollout [REV] [--force]` and `tsalt rollback REV [target]`: move the desired revision and apply it. */
import { startedBy, targetOptions, targetType } from './apply.js';
import { ask, parseOr, socketOptions } from './release-common.js';
import { escapeControl } from '../../core/terminal.js';

function progress(json: boolean | undefined) {
  const lines: unknown[] = [];
  return {
    onData: (d: unknown) => {
      const m = d as { message?: string; level?: string };
      if (json) lines.push(d);
      else if (typeof m.message === 'string') (m.level === 'warn' ? process.stderr : process.stdout).write(`${escapeControl(m.message)}\n`);
    },
    end: () => {
      if (json) process.stdout.write(JSON.stringify(lines, null, 2) + '\n');
    },
  };
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseOr('rollout', { args: argv, allowPositionals: true, options: { ...socketOptions, force: { type: 'boolean', short: 'f' } } });
  if (!parsed) return 1;
  const { values, positionals } = parsed;
  if (values.help || positionals.length > 1) {
    (values.help ? process.stdout : process.stderr).write(
      'usage: tsalt rollout [REV] [--force] [--json] [--socket PATH | --config FILE]\n' +
        '  makes REV (default: the branch head) the desired revision and rolls it out with the rollout: rules\n' +
        '  (groups, batches, verify); --force takes a revision that does not descend from the desired one\n',
    );
    return values.help ? 0 : 1;
  }
  const p = progress(values.json);
  const code = await ask('rollout', values, { type: 'rollout', ...(positionals[0] ? { revision: positionals[0] } : {}), force: values.force ?? false, user: startedBy() }, p.onData);
  p.end();
  return code;
}

export async function rollback(argv: string[]): Promise<number> {
  const parsed = parseOr('rollback', { args: argv, allowPositionals: true, options: { ...targetOptions } });
  if (!parsed) return 1;
  const { values, positionals } = parsed;
  if (values.help || positionals.length < 1 || positionals.length > 2) {
    (values.help ? process.stdout : process.stderr).write(
      'usage: tsalt rollback REV [TARGET] [-L|-G|-C|...] [--json] [--socket PATH | --config FILE]\n' +
        '  REV becomes the desired revision and is applied (batch rules and verify as a rollout);\n' +
        '  with TARGET, only those agents are put on REV and held there; the desired revision stays\n',
    );
    return values.help ? 0 : 1;
  }
  const tt = targetType(values);
  if (!['glob', 'list', 'grain', 'grain_pcre', 'pillar', 'pillar_pcre', 'pcre', 'ipcidr', 'compound', 'nodegroup'].includes(tt)) {
    process.stderr.write(`tsalt rollback: ${tt}\n`);
    return 1;
  }
  const p = progress(values.json as boolean | undefined);
  const [rev, target] = positionals as [string, string | undefined];
  const code = await ask(
    'rollback',
    values as { socket?: string; config?: string },
    { type: 'rollback', revision: rev, ...(target ? { target, tgt_type: tt as 'glob' } : {}), user: startedBy() },
    p.onData,
  );
  p.end();
  return code;
}
