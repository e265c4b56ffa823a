/**
 * file.keyvalue: `key<separator>value` lines. The first occurrence of each key gets the value
 * (a commented one is uncommented when `uncomment` names the comment characters), later
 * uncommented occurrences are removed, and missing keys can be appended.
 */
import * as z from 'zod/mini';
import { boolArg, defineState, StateFailure } from '../define.js';
import { requireAbsolute } from './paths.js';
import { applyPlan, linesWithEnds, lstripChars, planText, readText } from './text.js';

const valueArg = z.union([z.string(), z.number(), z.boolean(), z.null()]);

/** Python's str(): the value is written as Salt writes it (`True`, `None`). */
function pyStr(v: z.output<typeof valueArg>): string {
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (v === null) return 'None';
  return String(v);
}

export interface KeyValueOptions {
  separator: string;
  /** characters stripped from the start of a line before the key is looked for; undefined: whitespace */
  uncomment?: string;
  appendIfNotFound: boolean;
  keyIgnoreCase: boolean;
  valueIgnoreCase: boolean;
}

/** Salt's keyvalue loop with count=1: the new text and the number of lines changed. */
export function setKeyValues(text: string, values: Array<[string, string]>, o: KeyValueOptions): { text: string; changed: number } {
  const left = new Map(values.map(([k]) => [k, 1]));
  let changed = 0;
  const out: string[] = [];
  for (const { body, eol } of linesWithEnds(text)) {
    let line = body + eol;
    const stripped = lstripChars(line, o.uncomment);
    const commented = stripped.length < line.length;
    const probe = o.keyIgnoreCase ? stripped.toLowerCase() : stripped;
    for (const [key, value] of values) {
      const wantKey = o.keyIgnoreCase ? key.toLowerCase() : key;
      if (!probe.startsWith(wantKey)) continue;
      const working = commented ? stripped : line;
      const at = working.indexOf(o.separator);
      if (at === -1) continue;
      const lineKey = working.slice(0, at);
      if ((o.keyIgnoreCase ? lineKey.toLowerCase() : lineKey) !== wantKey) continue;
      let have = working.slice(at + o.separator.length).trim();
      let want = value.trim();
      if (o.valueIgnoreCase) {
        have = have.toLowerCase();
        want = want.toLowerCase();
      }
      const n = left.get(key)!;
      let same = have === want;
      let rewrite = false;
      if (commented) {
        // a stripped (commented or indented) line is rewritten while an occurrence is still
        // wanted; past that it is left as it is
        if (n > 0) rewrite = true;
        else same = true;
      } else if (n === 0) rewrite = true; // a further occurrence: removed
      if (!same || rewrite) {
        // the key keeps its spelling from the file
        line = n !== 0 ? `${lineKey}${o.separator}${value}\n` : '';
        changed++;
      }
      if (n > 0) left.set(key, n - 1);
      break;
    }
    out.push(line);
  }
  if (o.appendIfNotFound) {
    const missing = values.filter(([k]) => left.get(k)! > 0);
    // unlike Salt, never glue the first appended key onto an unterminated last line
    let last = out.length - 1;
    while (last >= 0 && out[last] === '') last--; // removed lines are empty strings
    if (missing.length && last >= 0 && !/[\r\n]$/.test(out[last]!)) out[last] += '\n';
    for (const [k, v] of missing) {
      out.push(`${k}${o.separator}${v}\n`);
      changed++;
    }
  }
  return { text: out.join(''), changed };
}

export const keyvalue = defineState({
  args: z.object({
    name: z.string(),
    key: z.nullish(z.pipe(z.union([z.string(), z.number()]), z.transform(String))),
    value: z.optional(valueArg),
    key_values: z.nullish(z.record(z.string(), valueArg)),
    separator: z._default(z.string().check(z.minLength(1)), '='),
    append_if_not_found: z._default(boolArg, false),
    prepend_if_not_found: z._default(boolArg, false),
    search_only: z._default(boolArg, false),
    show_changes: z._default(boolArg, true),
    ignore_if_missing: z._default(boolArg, false),
    count: z._default(z.number().check(z.int()), 1),
    uncomment: z.nullish(z.string()),
    key_ignore_case: z._default(boolArg, false),
    value_ignore_case: z._default(boolArg, false),
  }),
  async check(ctx, a) {
    requireAbsolute(a.name);
    // accepted by Salt, not implemented here: refuse rather than do something else
    if (a.count !== 1) throw new StateFailure(`file.keyvalue: count=${a.count} is not supported (only the default, 1)`);
    if (a.prepend_if_not_found) throw new StateFailure('file.keyvalue: prepend_if_not_found is not supported; use append_if_not_found');
    if (a.search_only) throw new StateFailure('file.keyvalue: search_only is not supported');
    let kv: Record<string, z.output<typeof valueArg>>;
    if (a.key != null && a.value !== undefined && a.value !== null) {
      if (a.key_values) throw new StateFailure('file.keyvalue can not combine key_values with key and value');
      kv = { [a.key]: a.value };
    } else if (!a.key_values || !Object.keys(a.key_values).length) {
      throw new StateFailure('file.keyvalue key and value not supplied and key_values is empty');
    } else kv = a.key_values;
    const text = readText(ctx, a.name);
    if (text === undefined) {
      if (a.ignore_if_missing) return { comment: `unable to open ${a.name}` };
      throw new StateFailure(`unable to open ${a.name}`);
    }
    const r = setKeyValues(
      text,
      Object.entries(kv).map(([k, v]) => [k, pyStr(v)]),
      {
        separator: a.separator,
        uncomment: a.uncomment ?? undefined,
        appendIfNotFound: a.append_if_not_found,
        keyIgnoreCase: a.key_ignore_case,
        valueIgnoreCase: a.value_ignore_case,
      },
    );
    if (!r.changed) return { comment: 'No changes needed to be made' };
    const plan = await planText(ctx, a.name, r.text, { showChanges: a.show_changes });
    if (!Object.keys(plan.changes).length) return { comment: 'No changes needed to be made' };
    return { changes: plan.changes, plan: { ...plan, changed: r.changed }, comment: `File ${a.name} is set to be changed (${r.changed} lines)` };
  },
  async apply(ctx, _a, plan) {
    return applyPlan(ctx, plan, `Changed ${(plan as { changed?: number } | undefined)?.changed ?? 0} lines`);
  },
});
