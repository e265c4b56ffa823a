/**
 * file.comment / file.uncomment: put a comment character in front of matching lines, or take
 * it away. Salt's `file.comment_line`: a line is edited when the regex matches from its start.
 */
import * as z from 'zod/mini';
import { boolArg, defineState, StateFailure } from '../define.js';
import { requireAbsolute } from './paths.js';
import { pyEscape, pyRegex } from './regex.js';
import { applyPlan, backupArg, linesWithEnds, lstripChars, outcome, planText, readText, searchText } from './text.js';

/** A leading `(?i)` group applies to the whole pattern; keep it in front of what we build. */
function splitFlags(regex: string): { flags: string; body: string } {
  const m = /^\(\?[aiLmsux]+\)/.exec(regex);
  return m ? { flags: m[0], body: regex.slice(m[0].length) } : { flags: '', body: regex };
}

/** Rewrite every line `lineRe` matches (it is anchored at the line's start). */
function editLines(text: string, lineRe: RegExp, edit: (line: string) => string): string {
  return linesWithEnds(text)
    .map(({ body, eol }) => {
      lineRe.lastIndex = 0;
      return lineRe.test(body) ? edit(body + eol) : body + eol;
    })
    .join('');
}

function readExisting(ctx: Parameters<typeof readText>[0], name: string): string {
  requireAbsolute(name);
  const text = readText(ctx, name);
  if (text === undefined) throw new StateFailure(`${name}: file not found`);
  return text;
}

const commentArgs = {
  name: z.string(),
  regex: z.string(),
  char: z._default(z.string().check(z.minLength(1)), '#'),
  backup: backupArg,
};

export const comment = defineState({
  args: z.object({ ...commentArgs, ignore_missing: z._default(boolArg, false) }),
  async check(ctx, a) {
    const text = readExisting(ctx, a.name);
    const { flags, body } = splitFlags(a.regex);
    // the pattern without its anchors, searched in uncommented and in commented lines
    const unanchored = body.replace(/^\^/, '').replace(/(?<!\\)\$$/, '');
    const c = pyEscape(a.char);
    if (!searchText(`${flags}^(?!\\s*${c}).*${unanchored}`, text)) {
      if (searchText(`${flags}${c}${unanchored}`, text)) return { comment: 'Pattern already commented' };
      if (a.ignore_missing) return { comment: 'Pattern not found and ignore_missing set to True' };
      throw new StateFailure(`${unanchored}: Pattern not found`);
    }
    const core = body.replace(/^\^+/, '').replace(/(?<!\\)\$+$/, '');
    const lineRe = pyRegex(`${flags}^(?:${core})${/(?<!\\)\$$/.test(body) ? '$' : ''}`, 0);
    const next = editLines(text, lineRe, (l) => a.char + l);
    // Salt's verdict: a commented line must be there afterwards (an indented match is not
    // commented by comment_line, so it can leave none)
    if (!searchText(`${flags}${c}${unanchored}`, next)) throw new StateFailure('Expected commented lines not found');
    const plan = await planText(ctx, a.name, next, { showChanges: true, backup: a.backup });
    return outcome(plan, `File ${a.name} is set to be updated`, 'Commented lines successfully');
  },
  async apply(ctx, _a, plan) {
    return applyPlan(ctx, plan, 'Commented lines successfully');
  },
});

export const uncomment = defineState({
  args: z.object(commentArgs),
  async check(ctx, a) {
    const text = readExisting(ctx, a.name);
    const { flags, body } = splitFlags(a.regex);
    const bare = body.replace(/^\^+/, '');
    const c = pyEscape(a.char);
    if (!searchText(`${flags}${c}[ \\t]*${bare}`, text)) {
      if (searchText(`${flags}^[ \\t]*${bare}`, text)) return { comment: 'Pattern already uncommented' };
      throw new StateFailure(`${a.regex}: Pattern not found`);
    }
    const core = bare.replace(/(?<!\\)\$+$/, '');
    const lineRe = pyRegex(`${flags}^${c}\\s*(?:${core})${/(?<!\\)\$$/.test(bare) ? '$' : ''}`, 0);
    // Salt strips every leading comment character (`##x` -> `x`); the space after it stays
    const next = editLines(text, lineRe, (l) => lstripChars(l, a.char));
    if (!searchText(`${flags}^[ \\t]*${bare}`, next)) throw new StateFailure('Expected uncommented lines not found');
    const plan = await planText(ctx, a.name, next, { showChanges: true, backup: a.backup });
    return outcome(plan, `File ${a.name} is set to be updated`, 'Uncommented lines successfully');
  },
  async apply(ctx, _a, plan) {
    return applyPlan(ctx, plan, 'Uncommented lines successfully');
  },
});
