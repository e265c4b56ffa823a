/**
 * In-place editors: file.replace (regex substitution), file.line (one line), file.append
 * (lines that are missing). Each computes the new text in `check` and writes it atomically
 * through the shared file core, keeping the file's owner and mode.
 */
import * as z from 'zod/mini';
import { boolArg, defineState, listArg, modeArg, principalArg, StateFailure } from '../define.js';
import { resolveOwner } from './ownership.js';
import { requireAbsolute } from './paths.js';
import { pyEscape, pyFlags, pyRegex, pySubn } from './regex.js';
import { applyPlan, outcome, planText, readText } from './text.js';

// ---------------------------------------------------------------- file.replace

const flagsArg = z.union([z.number().check(z.int()), z.string(), z.array(z.string())]);

export const replace = defineState({
  args: z.object({
    name: z.string(),
    pattern: z.string(),
    repl: z.pipe(z.union([z.string(), z.number()]), z.transform(String)),
    count: z._default(z.number().check(z.int()), 0),
    flags: z._default(flagsArg, 8),
    bufsize: z.optional(z.union([z.number(), z.string()])), // Salt reads the whole file too; accepted
    append_if_not_found: z._default(boolArg, false),
    prepend_if_not_found: z._default(boolArg, false),
    not_found_content: z.nullish(z.pipe(z.union([z.string(), z.number()]), z.transform(String))),
    backup: z._default(z.union([z.string(), z.literal(false)]), '.bak'),
    show_changes: z._default(boolArg, true),
    ignore_if_missing: z._default(boolArg, false),
    backslash_literal: z._default(boolArg, false),
  }),
  async check(ctx, a) {
    requireAbsolute(a.name);
    if (a.append_if_not_found && a.prepend_if_not_found) {
      throw new StateFailure('Only one of append and prepend_if_not_found is permitted');
    }
    const text = readText(ctx, a.name);
    if (text === undefined) {
      if (a.ignore_if_missing) return { comment: 'No changes needed to be made' };
      throw new StateFailure(`${a.name}: file not found`);
    }
    const bits = pyFlags(a.flags, 8);
    const repl = a.backslash_literal ? a.repl.replace(/\\/g, '\\\\') : a.repl;
    let [next, n] = pySubn(pyRegex(a.pattern, bits), text, repl, a.count);
    if (n === 0 && (a.append_if_not_found || a.prepend_if_not_found)) {
      const content = a.not_found_content ?? a.repl;
      // already pre/appended by an earlier run?
      const there = pyRegex(`^${pyEscape(content)}($|(?=\\r\\n))`, bits);
      there.lastIndex = 0;
      if (!there.test(text)) {
        if (a.prepend_if_not_found) next = `${content}\n${text}`;
        else next = `${text}${text && !text.endsWith('\n') ? '\n' : ''}${content}\n`;
      }
    }
    const plan = await planText(ctx, a.name, next, { showChanges: a.show_changes, backup: a.backup || undefined });
    return outcome(plan, 'Changes would have been made', 'No changes needed to be made');
  },
  async apply(ctx, _a, plan) {
    return applyPlan(ctx, plan, 'Changes were made');
  },
});

// ---------------------------------------------------------------- file.line

/** Salt's `_regex_to_static`: indexes of lines the value matches as a regex or contains literally. */
function matching(lines: string[], pat: string | undefined | null): number[] | undefined {
  if (pat === undefined || pat === null || pat === '') return undefined;
  const re = pyRegex(pat, 16);
  return lines.flatMap((l, i) => {
    re.lastIndex = 0;
    return re.test(l) || l.includes(pat) ? [i] : [];
  });
}

function exactlyOne(found: number[], what: string): number {
  if (found.length !== 1) {
    throw new StateFailure(`Found ${found.length > 1 ? 'more than' : 'less than'} expected occurrences in "${what}" expression`);
  }
  return found[0]!;
}

/** Keep the indentation of `src` (Salt's indent=True). */
function indentLike(src: string | undefined, content: string, indent: boolean): string {
  if (!indent || src === undefined) return content;
  return (/^[ \t]*/.exec(src)?.[0] ?? '') + content.trimStart();
}

const same = (line: string | undefined, content: string) => line !== undefined && line.trim() === content.trim();

/**
 * Salt's `_set_line`, made idempotent where Salt's is not: `insert` adds nothing when the
 * neighbouring line at the insertion point already is the content (Salt re-inserts on every
 * run for `location` and before+after).
 */
export function setLine(
  lines: string[],
  o: { content?: string; match?: string; mode: string; location?: string; before?: string; after?: string; indent: boolean },
): string[] {
  const content = o.content ?? '';
  const match = o.match || (o.before == null && o.after == null ? o.content : undefined);
  const out = [...lines];
  const m = matching(out, match);
  const before = matching(out, o.before);
  const after = matching(out, o.after);
  switch (o.mode) {
    case 'delete': {
      if (!m?.length) return out;
      const victim = out[m[0]!];
      return out.filter((l) => l !== victim);
    }
    case 'replace': {
      if (!m?.length) return out;
      const i = m[0]!;
      out[i] = indentLike(out[i], content, o.indent);
      return out;
    }
    case 'insert': {
      if (o.location) {
        if (o.location === 'start') {
          if (!same(out[0], content)) out.unshift(content);
        } else if (!same(out[out.length - 1], content)) out.push(indentLike(out[out.length - 1], content, o.indent));
        return out;
      }
      if (before && after) {
        exactlyOne(before, 'before');
        exactlyOne(after, 'after');
        const b = before[0]!;
        if (!same(out[b - 1], content)) out.splice(b, 0, indentLike(out[b], content, o.indent));
      } else if (after) {
        const i = exactlyOne(after, 'after');
        if (!same(out[i + 1], content)) out.splice(i + 1, 0, indentLike(out[i], content, o.indent));
      } else if (before) {
        const i = exactlyOne(before, 'before');
        if (!same(out[i - 1], content)) out.splice(i, 0, indentLike(out[i], content, o.indent));
      } else {
        throw new StateFailure('On insert either "location" or "before/after" conditions are required.');
      }
      return out;
    }
    case 'ensure': {
      if (before && after) {
        const ai = exactlyOne(after, 'after');
        const bi = exactlyOne(before, 'before');
        if (out.some((l) => same(l, content))) return out;
        if (ai + 1 === bi) out.splice(ai + 1, 0, indentLike(out[ai], content, o.indent));
        else if (ai + 2 === bi) out[ai + 1] = indentLike(out[ai], content, o.indent);
        else throw new StateFailure('Found more than one line between boundaries "before" and "after".');
      } else if (before) {
        const i = exactlyOne(before, 'before');
        if (!same(out[i - 1], content)) out.splice(i, 0, indentLike(out[i - 1] ?? out[i], content, o.indent));
      } else if (after) {
        const i = exactlyOne(after, 'after');
        if (!same(out[i + 1], content)) out.splice(i + 1, 0, indentLike(out[i], content, o.indent));
      } else {
        throw new StateFailure('Wrong conditions? Unable to ensure line without knowing where to put it before and/or after.');
      }
      return out;
    }
    default:
      throw new StateFailure(`Unknown mode: "${o.mode}"`);
  }
}

function splitLines(text: string): { lines: string[]; eol: boolean } {
  if (text === '') return { lines: [], eol: true };
  const lines = text.split('\n');
  const eol = lines[lines.length - 1] === '';
  if (eol) lines.pop();
  return { lines, eol };
}

function joinLines(lines: string[], eol: boolean): string {
  if (!lines.length) return '';
  return lines.join('\n') + (eol ? '\n' : '');
}

function backupStamp(): string {
  const d = new Date();
  const p = (n: number) => String(n).padStart(2, '0');
  return `.${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}-${p(d.getHours())}-${p(d.getMinutes())}-${p(d.getSeconds())}`;
}

export const line = defineState({
  args: z.object({
    name: z.string(),
    content: z.nullish(z.pipe(z.union([z.string(), z.number()]), z.transform(String))),
    match: z.nullish(z.string()),
    mode: z.pipe(
      z.string(),
      z.transform((s) => s.toLowerCase()),
    ),
    location: z.nullish(z.enum(['start', 'end'])),
    before: z.nullish(z.string()),
    after: z.nullish(z.string()),
    show_changes: z._default(boolArg, true),
    backup: z._default(z.union([boolArg, z.string()]), false),
    quiet: z._default(boolArg, false),
    indent: z._default(boolArg, true),
    create: z._default(boolArg, false),
    user: z.nullish(principalArg),
    group: z.nullish(principalArg),
    file_mode: z.nullish(modeArg),
  }),
  async check(ctx, a) {
    requireAbsolute(a.name);
    if (!['ensure', 'replace', 'delete', 'insert'].includes(a.mode)) throw new StateFailure(`Unknown mode: "${a.mode}"`);
    if (a.mode !== 'delete' && a.content == null) throw new StateFailure('Content can only be empty if mode is "delete"');
    const owner = await resolveOwner(ctx, a.user ?? undefined, a.group ?? undefined);
    let text = readText(ctx, a.name);
    if (text === undefined) {
      if (!a.create) throw new StateFailure(`${a.name}: file not found`);
      text = '';
    }
    const { lines, eol } = splitLines(text);
    const next = setLine(lines, {
      content: a.content ?? undefined,
      match: a.match ?? undefined,
      mode: a.mode,
      location: a.location ?? undefined,
      before: a.before ?? undefined,
      after: a.after ?? undefined,
      indent: a.indent,
    });
    const backup = a.backup === true || a.backup === 'True' ? backupStamp() : typeof a.backup === 'string' && a.backup !== 'False' && a.backup !== 'false' ? a.backup : undefined;
    const plan = await planText(ctx, a.name, joinLines(next, eol), { owner, mode: a.file_mode ?? undefined, showChanges: a.show_changes, backup });
    return outcome(plan, 'Changes would be made', 'No changes needed to be made');
  },
  async apply(ctx, _a, plan) {
    return applyPlan(ctx, plan, 'Changes were made');
  },
});

// ---------------------------------------------------------------- file.append

/** Salt's build_whitespace_split_regex: the chunk's words in order, any whitespace between. */
function whitespaceRegex(chunk: string): RegExp {
  let body = '';
  for (const l of chunk.split(/\r?\n/)) {
    const parts = l.split(/\s+/).filter(Boolean).map(pyEscape);
    body += `(?:\\s+)?${parts.join('(?:\\s+)?')}(?:\\s+)?`;
  }
  return new RegExp(`^${body}$`, 'm');
}

export const append = defineState({
  args: z.object({
    name: z.string(),
    text: listArg(z.pipe(z.union([z.string(), z.number()]), z.transform(String))),
    makedirs: z._default(boolArg, false),
    ignore_whitespace: z._default(boolArg, true),
  }),
  async check(ctx, a) {
    requireAbsolute(a.name);
    const text = readText(ctx, a.name) ?? '';
    const add: string[] = [];
    for (const chunk of a.text) {
      const present = a.ignore_whitespace ? whitespaceRegex(chunk).test(text) : text.includes(chunk);
      if (!present) add.push(...chunk.replace(/\r?\n$/, '').split(/\r?\n/));
    }
    const next = add.length ? `${text}${text && !text.endsWith('\n') ? '\n' : ''}${add.join('\n')}\n` : text;
    const plan = await planText(ctx, a.name, next, { showChanges: true, makedirs: a.makedirs });
    const out = outcome(plan, `File ${a.name} is set to be updated`, `File ${a.name} is in correct state`);
    return out.plan ? { ...out, plan: { ...out.plan, appended: add.length } } : out;
  },
  async apply(ctx, _a, plan) {
    return applyPlan(ctx, plan, `Appended ${(plan as { appended?: number } | undefined)?.appended ?? 0} lines`);
  },
});
