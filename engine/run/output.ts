/** Salt's highstate output: one block per state, then the summary. Colour only on a TTY. */
import type { RunReport, StateResult } from '../../protocol/results.js';

const C = { green: '\x1b[0;32m', cyan: '\x1b[0;36m', yellow: '\x1b[0;33m', red: '\x1b[0;31m', reset: '\x1b[0m' };

export interface OutputOptions {
  color: boolean;
  /** hide states that succeeded without changes (Salt's state_verbose: False) */
  terse?: boolean;
}

function paint(on: boolean, color: string, s: string): string {
  return on ? `${color}${s}${C.reset}` : s;
}

function colorOf(r: StateResult): string {
  if (r.result === false) return C.red;
  if (r.result === null) return C.yellow;
  return Object.keys(r.changes).length ? C.cyan : C.green;
}

/** Salt's nested outputter: dicts as `key:` blocks, strings line by line. */
function nested(v: unknown, indent: number): string[] {
  const pad = ' '.repeat(indent);
  if (v === null || v === undefined) return [`${pad}None`];
  if (typeof v === 'string') return v === '' ? [pad] : v.replace(/\n$/, '').split('\n').map((l) => pad + l);
  if (typeof v !== 'object') return [pad + (v === true ? 'True' : v === false ? 'False' : String(v))];
  if (Array.isArray(v)) return v.flatMap((x) => (x !== null && typeof x === 'object' ? [`${pad}|_`, ...nested(x, indent + 2)] : [`${pad}- ${String(x)}`]));
  const lines = [`${pad}----------`];
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    lines.push(`${pad}${k}:`);
    lines.push(...nested(x, indent + 4));
  }
  return lines;
}

function timeOf(iso: string): string {
  const d = new Date(iso);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

export function formatState(r: StateResult, o: OutputOptions): string {
  const c = colorOf(r);
  const label = (k: string, v: string) => paint(o.color, c, `${k.padStart(12)}: ${v}`);
  const lines = [
    paint(o.color, c, '----------'),
    label('ID', r.id),
    label('Function', r.fun),
    label('Name', r.name),
    label('Result', r.result === null ? 'None' : r.result ? 'True' : 'False'),
    label('Comment', r.comment.split('\n').join('\n' + ' '.repeat(14))),
    label('Started', timeOf(r.start)),
    label('Duration', `${r.duration_ms.toFixed(3)} ms`),
    label('Changes', Object.keys(r.changes).length ? '' : ''),
  ];
  if (Object.keys(r.changes).length) lines.push(...nested(r.changes, 14).map((l) => paint(o.color, c, l)));
  for (const w of r.warnings ?? []) lines.push(paint(o.color, C.red, `    Warnings: ${w}`));
  return lines.join('\n');
}

export function formatSummary(report: RunReport, o: OutputOptions): string {
  const { counts } = report;
  const bar = '-------------';
  const lines = [
    '',
    `Summary for ${report.id}`,
    bar,
    paint(o.color, C.green, `Succeeded: ${counts.succeeded}`) + paint(o.color, C.cyan, ` (changed=${counts.changed})`),
    paint(o.color, counts.failed ? C.red : C.cyan, `Failed:    ${counts.failed}`),
    bar,
    `Total states run:     ${counts.total}`,
    `Total run time: ${(report.duration_ms / 1000).toFixed(3).padStart(9)} s`,
  ];
  return lines.join('\n');
}

export function formatHighstate(report: RunReport, o: OutputOptions): string {
  const blocks = report.results
    .filter((r) => !o.terse || r.result !== true || Object.keys(r.changes).length)
    .map((r) => formatState(r, o));
  return [`${report.id}:`, ...blocks, formatSummary(report, o)].join('\n');
}

/** `--json`: the report with each state's `function` spelled out (the wire format calls it `fun`). */
export function reportToJson(report: RunReport): unknown {
  return {
    ...report,
    results: report.results.map(({ fun, id, ...r }) => ({ id, function: fun, ...r })),
  };
}
