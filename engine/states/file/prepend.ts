/**
 * file.prepend: text at the top of a file. A chunk already somewhere in the file (words in
 * order, whitespace ignored) is not added again; with `header: True` the lines must be the
 * file's first lines exactly, and are put there when they are not.
 */
import * as z from 'zod/mini';
import { boolArg, defineState, listArg, StateFailure } from '../define.js';
import { requireAbsolute } from './paths.js';
import { applyPlan, linesWithEnds, outcome, planText, readText, sourceArgs, sourceTexts, whitespaceSplitRegex } from './text.js';

export const prepend = defineState({
  args: z.object({
    name: z.string(),
    text: z.nullish(listArg(z.pipe(z.union([z.string(), z.number()]), z.transform(String)))),
    makedirs: z._default(boolArg, false),
    ...sourceArgs,
    header: z._default(boolArg, false),
  }),
  async check(ctx, a) {
    requireAbsolute(a.name);
    // sources replace `text`, as in Salt
    const chunks = (await sourceTexts(ctx, a)) ?? a.text;
    if (!chunks) throw new StateFailure('Nothing to prepend: give text, source or sources');
    const cur = readText(ctx, a.name) ?? ''; // a missing file is created (Salt touches it first)
    const lines: string[] = [];
    for (const chunk of chunks) {
      if (!a.header && whitespaceSplitRegex(chunk).test(cur)) continue;
      lines.push(...chunk.split(/\r\n|\n|\r/).filter((l, i, all) => i < all.length - 1 || l !== ''));
    }
    let add = lines;
    if (a.header) {
      const head = linesWithEnds(cur).slice(0, lines.length).map((l) => l.body);
      if (head.length === lines.length && head.every((l, i) => l === lines[i])) add = [];
    }
    const next = add.map((l) => `${l}\n`).join('') + cur;
    const plan = await planText(ctx, a.name, next, { showChanges: true, makedirs: a.makedirs });
    const out = outcome(plan, `File ${a.name} is set to be updated`, `File ${a.name} is in correct state`);
    return out.plan ? { ...out, plan: { ...out.plan, prepended: add.length } } : out;
  },
  async apply(ctx, a, plan) {
    const n = (plan as { prepended?: number } | undefined)?.prepended ?? 0;
    return applyPlan(ctx, plan, n ? `Prepended ${n} lines` : `File ${a.name} is in correct state`);
  },
});
