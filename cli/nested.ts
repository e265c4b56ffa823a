/**
 * Salt's output formats for data returned by agents: `nested` (Salt's default outputter:
 * `----------` before a dict, `- ` list items, `|_` before a dict in a list, True/False/None),
 * `json` and `yaml`. Control characters are escaped in nested output, so an agent's data cannot
 * drive the operator's terminal; json and yaml keep the data as it is (their own escaping).
 */
import YAML from 'yaml';

export const OUTPUTTERS = ['nested', 'json', 'yaml'] as const;
export type Outputter = (typeof OUTPUTTERS)[number];

/** Printable: control characters (ESC, BEL, ...) as \xNN; tabs and line feeds stay. */
export function printable(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function scalar(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  return printable(String(v));
}

function nestedLines(v: unknown, indent: number): string[] {
  const pad = ' '.repeat(indent);
  if (v === null || typeof v !== 'object') return scalar(v).split('\n').map((l) => pad + l);
  if (Array.isArray(v)) {
    return v.flatMap((x) => (x !== null && typeof x === 'object' ? [pad + '|_', ...nestedLines(x, indent + 2)] : [pad + '- ' + scalar(x)]));
  }
  const keys = Object.keys(v).sort();
  return [pad + '----------', ...keys.flatMap((k) => [`${pad}${printable(k)}:`, ...nestedLines((v as Record<string, unknown>)[k], indent + 4)])];
}

/** One document per agent id, as `salt` prints them. */
export function formatReturns(byAgent: Record<string, unknown>, out: Outputter): string {
  if (out === 'json') return JSON.stringify(byAgent, null, 4) + '\n';
  if (out === 'yaml') return YAML.stringify(byAgent);
  return Object.entries(byAgent)
    .map(([id, v]) => `${printable(id)}:\n${nestedLines(v, 4).join('\n')}\n`)
    .join('');
}
