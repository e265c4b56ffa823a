/**
 * Salt's output formats for data returned by agents: `nested` (Salt's default outputter:
 * `----------` before a dict, `- ` list items, `|_` before a dict in a list, True/False/None),
 * `json` and `yaml`. Control characters are escaped in nested output, so an agent's data cannot
 * drive the operator's terminal; json and yaml keep the data as it is (their own escaping).
 */
import { dumpSaltYaml } from '../core/salt-yaml.js';
import { escapeControl } from '../core/terminal.js';

export const OUTPUTTERS = ['nested', 'json', 'yaml'] as const;
export type Outputter = (typeof OUTPUTTERS)[number];

function scalar(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  return escapeControl(String(v));
}

function nestedLines(v: unknown, indent: number): string[] {
  const pad = ' '.repeat(indent);
  if (v === null || typeof v !== 'object') return scalar(v).split('\n').map((l) => pad + l);
  if (Array.isArray(v)) {
    return v.flatMap((x) => (x !== null && typeof x === 'object' ? [pad + '|_', ...nestedLines(x, indent + 2)] : [pad + '- ' + scalar(x)]));
  }
  const keys = Object.keys(v).sort();
  return [pad + '----------', ...keys.flatMap((k) => [`${pad}${escapeControl(k)}:`, ...nestedLines((v as Record<string, unknown>)[k], indent + 4)])];
}

/** One document per agent id, as `salt` prints them. */
export function formatReturns(byAgent: Record<string, unknown>, out: Outputter): string {
  if (out === 'json') return JSON.stringify(byAgent, null, 4) + '\n';
  if (out === 'yaml') return dumpSaltYaml(byAgent, { noRefs: true });
  return Object.entries(byAgent)
    .map(([id, v]) => `${escapeControl(id)}:\n${nestedLines(v, 4).join('\n')}\n`)
    .join('');
}
