/**
 * Salt's state output options for `tsalt apply` and `tsalt jobs JID`: `--state-output
 * full|terse|mixed|changes`, `--state-verbose=False` (hide states that succeeded without
 * changes), `--out highstate|json|yaml` (json/yaml: Salt's return dicts, keyed by agent then
 * `<state>_|-<id>_|-<name>_|-<function>`).
 */
import { dumpSaltYaml } from '../core/salt-yaml.js';
import { formatState, formatSummary } from '../engine/run/output.js';
import type { RunReport, StateResult } from '../protocol/results.js';
import { UsageError } from './args.js';
import { escapeControl, forTerminal } from '../core/terminal.js';

export const STATE_OUTPUTS = ['full', 'terse', 'mixed', 'changes'] as const;
export type StateOutput = (typeof STATE_OUTPUTS)[number];
export const APPLY_OUTS = ['highstate', 'json', 'yaml'] as const;
export type ApplyOut = (typeof APPLY_OUTS)[number];

export interface HighstateOptions {
  color: boolean;
  stateOutput: StateOutput;
  /** false: states that succeeded without changes are not shown */
  verbose: boolean;
}

export const highstateOptionSpecs = {
  'state-output': { type: 'string' as const },
  'state-verbose': { type: 'string' as const },
  out: { type: 'string' as const },
} as const;

const TRUE = /^(true|1|yes|on)$/i;
const FALSE = /^(false|0|no|off)$/i;

/** The options as given on the command line, checked. */
export function highstateOptions(
  v: { 'state-output'?: string; 'state-verbose'?: string; out?: string },
  color: boolean,
  usage: string,
): HighstateOptions & { out: ApplyOut } {
  const so = v['state-output'] ?? 'full';
  if (!(STATE_OUTPUTS as readonly string[]).includes(so)) throw new UsageError(`--state-output takes ${STATE_OUTPUTS.join(', ')}, not '${so}'`, usage);
  const sv = v['state-verbose'] ?? 'True';
  if (!TRUE.test(sv) && !FALSE.test(sv)) throw new UsageError(`--state-verbose takes True or False, not '${sv}'`, usage);
  const out = v.out ?? 'highstate';
  if (!(APPLY_OUTS as readonly string[]).includes(out)) throw new UsageError(`--out takes ${APPLY_OUTS.join(', ')}, not '${out}'`, usage);
  return { color, stateOutput: so as StateOutput, verbose: TRUE.test(sv), out: out as ApplyOut };
}

const changed = (r: StateResult) => Object.keys(r.changes).length > 0;

/** Salt's terse line: `Name: x - Function: f - Result: Changed - Started: t - Duration: d ms`. */
export function terseLine(r: StateResult, color: boolean): string {
  const result = r.result === false ? 'Failed' : r.result === null ? 'Differs' : changed(r) ? 'Changed' : 'Clean';
  const paint = r.result === false ? '\x1b[0;31m' : r.result === null ? '\x1b[0;33m' : changed(r) ? '\x1b[0;36m' : '\x1b[0;32m';
  const t = new Date(r.start);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const started = `${p(t.getHours())}:${p(t.getMinutes())}:${p(t.getSeconds())}.${p(t.getMilliseconds(), 3)}`;
  const text = `  Name: ${escapeControl(r.name)} - Function: ${r.fun} - Result: ${result} - Started: ${started} - Duration: ${r.duration_ms.toFixed(3)} ms`;
  return color ? `${paint}${text}\x1b[0m` : text;
}

function full(r: StateResult, o: HighstateOptions): boolean {
  if (o.stateOutput === 'full') return true;
  if (o.stateOutput === 'terse') return false;
  if (o.stateOutput === 'mixed') return r.result === false;
  return r.result === false || changed(r) || r.result === null; // changes
}

/** One agent's highstate text with the chosen state output. */
export function formatHighstateWith(report: RunReport, o: HighstateOptions): string {
  const blocks = report.results
    .filter((r) => o.verbose || r.result !== true || changed(r))
    .map((r) => (full(r, o) ? formatState(escapeResult(r), { color: o.color }) : terseLine(r, o.color)));
  return [`${escapeControl(report.id)}:`, ...blocks, formatSummary(report, { color: o.color })].join('\n');
}

/** Agent-supplied text reaches the terminal with its control characters escaped. */
function escapeResult(r: StateResult): StateResult {
  return { ...r, id: escapeControl(r.id), name: escapeControl(r.name), comment: escapeControl(r.comment), changes: forTerminal(r.changes) };
}

/** `--out json|yaml` of a whole job: {agent: state dict | error text}. */
export function formatReturnsAs(byAgent: Record<string, unknown>, out: 'json' | 'yaml'): string {
  return out === 'json' ? JSON.stringify(byAgent, null, 4) + '\n' : dumpSaltYaml(byAgent, { noRefs: true });
}
