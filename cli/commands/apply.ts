/**
 * `tsalt apply <target> [SLS ...] [-G|-L|-I|-C|-N|-E|-P|-J|-S] [--test] [--batch N|N%] [--timeout S] [--json]`
 * Salt's `salt <target> state.apply [SLS] [test=True]`. Prints each state's result as it
 * arrives (stderr: the results an agent streams, those of a run lasting past its mark,
 * agent/result-hold.ts; a shorter run's states are in its highstate), the highstate per agent
 * and a summary; exits 2 when a state failed or a tree did not compile on an agent, 3 when a
 * targeted agent did not return (offline agents are listed), 1 on a usage or target error, 0
 * otherwise.
 */
import os from 'node:os';
import { request, socketPath } from '../../master/cli-client.js';
import { formatReturnsAs, formatHighstateWith, highstateOptions, highstateOptionSpecs, type ApplyOut, type HighstateOptions } from '../highstate.js';
import { saltStateReturn } from '../../protocol/results.js';
import { parseSaltArgs, type SaltArgs } from '../salt-args.js';
import { parseCommand, positiveNumber, UsageError } from '../args.js';
import type { ReturnBody } from '../../protocol/messages.js';
import type { CliEvent, CliRequest, TargetType } from '../../protocol/cli-messages.js';
import { escapeControl, forTerminal } from '../../core/terminal.js';

/** Salt's target flags. */
const TARGET_FLAGS: Record<string, TargetType> = {
  L: 'list',
  G: 'grain',
  P: 'grain_pcre',
  I: 'pillar',
  J: 'pillar_pcre',
  E: 'pcre',
  S: 'ipcidr',
  C: 'compound',
  N: 'nodegroup',
};

export const targetOptions = {
  ...Object.fromEntries(Object.keys(TARGET_FLAGS).map((k) => [k, { type: 'boolean' as const, short: k }])),
  batch: { type: 'string' as const, short: 'b' },
  timeout: { type: 'string' as const, short: 't' },
  json: { type: 'boolean' as const },
  socket: { type: 'string' as const },
  config: { type: 'string' as const, short: 'c' },
  help: { type: 'boolean' as const, short: 'h' },
};

export function targetType(values: Record<string, unknown>): TargetType | string {
  const set = Object.keys(TARGET_FLAGS).filter((k) => values[k] === true);
  if (set.length > 1) return `only one target type flag at a time (got ${set.map((k) => '-' + k).join(' ')})`;
  return set.length ? TARGET_FLAGS[set[0]!]! : 'glob';
}

export function startedBy(): string {
  const sudo = process.env.SUDO_USER;
  let user = 'unknown';
  try {
    user = os.userInfo().username;
  } catch {
    // no passwd entry: keep 'unknown'
  }
  return `${sudo ? `${sudo} (sudo ${user})` : user}@cli`;
}

interface AgentOutcome {
  status: string;
  body?: ReturnBody;
  error?: string;
}

/** A status line on stderr, redrawn in place; only on a terminal. */
class Progress {
  private timer: NodeJS.Timeout | undefined;
  private shown = false;
  private readonly t0 = performance.now();
  returned = 0;
  targets = 0;
  constructor(private readonly on: boolean) {}
  start(targets: number): void {
    this.targets = targets;
    if (!this.on) return;
    this.draw();
    this.timer = setInterval(() => this.draw(), 1000);
    this.timer.unref();
  }
  draw(): void {
    if (!this.on || !this.targets) return;
    const s = ((performance.now() - this.t0) / 1000).toFixed(0);
    process.stderr.write(`\r\x1b[K${this.returned}/${this.targets} agents returned, ${s}s elapsed`);
    this.shown = true;
  }
  /** Clear the line before something else is printed (then draw again). */
  clear(): void {
    if (this.shown) process.stderr.write('\r\x1b[K');
    this.shown = false;
  }
  stop(): void {
    clearInterval(this.timer);
    this.clear();
  }
}

/** Send a job request and print its progress; shared by apply and run. */
export async function followJob(
  req: Extract<CliRequest, { type: 'apply' | 'run' }>,
  o: { socket: string; json: boolean; name: string; hs?: HighstateOptions & { out: ApplyOut } },
): Promise<number> {
  const color = process.stdout.isTTY === true && !process.env.NO_COLOR;
  const hs: HighstateOptions & { out: ApplyOut } = o.hs ?? { color, stateOutput: 'full', verbose: true, out: 'highstate' };
  const human = !o.json && hs.out === 'highstate';
  const progress = new Progress(human && process.stderr.isTTY === true);
  const outcomes = new Map<string, AgentOutcome>();
  let started: Extract<CliEvent, { type: 'job_started' }> | undefined;
  const errors: string[] = [];
  let code: number;
  try {
    code = await request(o.socket, req, (raw) => {
      const ev = o.json ? raw : forTerminal(raw); // agents' text: no terminal escapes
      switch (ev.type) {
        case 'job_started':
          started = ev;
          if (!o.json) process.stderr.write(`job ${ev.jid}${ev.revision ? ` at revision ${ev.revision.slice(0, 12)}` : ''}: ${ev.targets.length} agent(s)\n`);
          progress.start(ev.targets.length);
          break;
        case 'state_result':
          if (!o.json) {
            const r = ev.result;
            const mark = r.result === false ? 'FAILED' : r.result === null ? 'pending' : Object.keys(r.changes).length ? 'changed' : 'ok';
            progress.clear();
            process.stderr.write(`  ${escapeControl(ev.agent)}: ${r.fun} ${escapeControl(r.id)}: ${mark}\n`);
            progress.draw();
          }
          break;
        case 'agent_done':
          outcomes.set(ev.agent, { status: ev.status, ...(ev.body ? { body: ev.body } : {}), ...(ev.error ? { error: ev.error } : {}) });
          progress.returned++;
          if (human) {
            progress.clear();
            process.stdout.write(formatOutcome(ev.agent, outcomes.get(ev.agent)!, hs) + '\n');
            progress.draw();
          }
          break;
        case 'error':
          errors.push(ev.message);
          progress.clear();
          if (!o.json) process.stderr.write(`${o.name}: ${ev.message}\n`);
          break;
        case 'data':
        case 'end':
          break;
      }
    });
  } catch (e) {
    progress.stop();
    const msg = (e as Error).message;
    process.stderr.write(`${o.name}: ${msg}\n`);
    if (started) process.stderr.write(`the job goes on without this CLI; see 'tsalt jobs ${started.jid}'\n`);
    return 1;
  }
  progress.stop();
  if (o.json) {
    process.stdout.write(
      JSON.stringify(
        { jid: started?.jid ?? null, revision: started?.revision ?? null, code, errors, offline: started?.offline ?? [], agents: Object.fromEntries(outcomes) },
        null,
        2,
      ) + '\n',
    );
    return code;
  }
  if (hs.out !== 'highstate') {
    process.stdout.write(formatReturnsAs(Object.fromEntries([...outcomes].map(([id, out]) => [id, saltShape(out)])), hs.out));
    return code;
  }
  if (started) process.stdout.write(formatJobSummary(started, outcomes) + '\n');
  return code;
}

/** What Salt's json/yaml outputters print for one agent: its state dict, or the error text. */
function saltShape(out: AgentOutcome): unknown {
  const b = out.body;
  if (b?.kind === 'apply') return saltStateReturn(b.report.results);
  if (b?.kind === 'run') return b.stdout.replace(/\n$/, '');
  if (b?.kind === 'error') return [b.error];
  return `Minion did not return. [${out.status}${out.error ? `: ${out.error}` : ''}]`;
}

export function formatOutcome(agent: string, out: AgentOutcome, hs: HighstateOptions): string {
  const b = out.body;
  agent = escapeControl(agent);
  if (b?.kind === 'apply') return formatHighstateWith(b.report, hs) + '\n';
  if (b?.kind === 'run') {
    const text = escapeControl([b.stdout.replace(/\n$/, ''), b.stderr.replace(/\n$/, '')].filter(Boolean).join('\n'));
    return `${agent}:\n${text.split('\n').map((l) => '    ' + l).join('\n')}${b.retcode ? `\n    [retcode ${b.retcode}]` : ''}\n`;
  }
  if (b?.kind === 'error') return `${agent}:\n    ERROR: ${escapeControl(b.error).split('\n').join('\n    ')}\n`;
  return `${agent}:\n    ${out.status.toUpperCase()}: ${escapeControl(out.error ?? 'no return')}\n`;
}

function formatJobSummary(started: Extract<CliEvent, { type: 'job_started' }>, outcomes: Map<string, AgentOutcome>): string {
  const by = (s: string) => [...outcomes.entries()].filter(([, o]) => o.status === s).map(([id]) => id);
  const offline = new Set(started.offline.map((a) => a.id));
  const lost = by('lost').filter((id) => !offline.has(id));
  const lines = [
    '-------------------------------------------',
    `Job ${started.jid}: ${started.targets.length} targeted, ${by('done').length} succeeded, ${by('failed').length} failed, ${by('timeout').length + lost.length + offline.size} did not return`,
  ];
  if (by('failed').length) lines.push(`  failed:   ${by('failed').join(', ')}`);
  if (by('timeout').length) lines.push(`  timed out: ${by('timeout').join(', ')}`);
  if (by('cancelled').length) lines.push(`  cancelled: ${by('cancelled').join(', ')} (not started: the job stopped on failure)`);
  if (lost.length) lines.push(`  lost:     ${lost.join(', ')}`);
  for (const a of started.offline) lines.push(`  offline:  ${a.id} (last seen ${a.last_seen ?? 'never'})`);
  return lines.join('\n');
}

const USAGE =
  'usage: tsalt apply <target> [SLS ...] [test=True] [pillar=\'{"k": "v"}\'] [-L|-G|-P|-I|-J|-E|-S|-C|-N] [--test] [--batch N|N%] [--timeout S] [--revision REV] [--stop-on-failure] [--state-output full|terse|mixed|changes] [--state-verbose=False] [--out highstate|json|yaml] [--json] [--socket PATH | --config FILE]\n' +
  '  pillar=\'{...}\'   merged over each agent\'s pillar for this job only (as Salt\'s state.apply pillar=)\n' +
  '  --timeout S      seconds each agent has to return (default: the master\'s timeout_s)\n' +
  '  --revision REV   apply the state tree as it was at git revision REV (a commit, tag, HEAD~1): rollback\n' +
  '  --state-output full|terse|mixed|changes   full blocks for every state, one line each, one line unless failed, one line unless changed or failed\n' +
  '  --state-verbose=False   hide states that succeeded without changes\n' +
  '  --out highstate|json|yaml   json/yaml: Salt\'s return dicts per agent (--json: tsalt\'s whole job record)\n' +
  '  --stop-on-failure  with --batch: an agent that fails or does not return cancels the agents not started yet\n';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(
    argv,
    { ...targetOptions, ...highstateOptionSpecs, test: { type: 'boolean' }, revision: { type: 'string', short: 'r' }, 'stop-on-failure': { type: 'boolean' } },
    USAGE,
  );
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [target, ...rest] = positionals;
  const common = jobOptions(values, target, USAGE);
  // Salt habits: `test=True` and `pillar='{...}'` as arguments, and `sls1,sls2` as one
  let salt: SaltArgs;
  try {
    salt = parseSaltArgs(rest);
  } catch (e) {
    throw new UsageError((e as Error).message, USAGE);
  }
  const test = salt.test ?? values.test === true;
  return followJob(
    {
      type: 'apply',
      ...common,
      sls: salt.sls,
      test,
      ...(salt.pillar ? { pillar: salt.pillar } : {}),
      ...(values.revision ? { revision: values.revision } : {}),
      ...(values['stop-on-failure'] ? { stop_on_failure: true } : {}),
    },
    {
      socket: socketPath(values),
      json: values.json === true,
      name: 'tsalt apply',
      hs: highstateOptions(values, process.stdout.isTTY === true && !process.env.NO_COLOR, USAGE),
    },
  );
}

/** The target, its type, batch and timeout of a job request (apply, run), checked. */
export function jobOptions(
  values: { batch?: string; timeout?: string } & Record<string, unknown>,
  target: string | undefined,
  usage: string,
): Pick<Extract<CliRequest, { type: 'apply' }>, 'target' | 'tgt_type' | 'batch' | 'timeout_s' | 'user'> {
  if (!target) throw new UsageError('give a target', usage);
  const tt = targetType(values);
  if (!TARGET_TYPES.has(tt)) throw new UsageError(tt, usage);
  if (values.batch !== undefined && !/^\d+%?$/.test(values.batch)) throw new UsageError(`--batch takes N or N%, not '${values.batch}'`, usage);
  return {
    target,
    tgt_type: tt as TargetType,
    user: startedBy(),
    // absent: the master's timeout_s
    ...(values.timeout !== undefined ? { timeout_s: positiveNumber('--timeout', values.timeout, usage) } : {}),
    ...(values.batch ? { batch: values.batch } : {}),
  };
}

export const TARGET_TYPES: ReadonlySet<string> = new Set(['glob', ...Object.values(TARGET_FLAGS)]);
