/**
 * Shared by the in-place text editors (edit.ts, blockreplace, comment/uncomment, prepend,
 * keyvalue): read the current text, plan the new text through the file core (atomic write,
 * owner and mode kept, `diff` change), and gather `source`/`sources` text rendered as Salt's
 * `_get_template_texts` does.
 */
import fs from 'node:fs';
import * as z from 'zod/mini';
import type { RunContext } from '../context.js';
import { listArg, StateFailure } from '../define.js';
import { applyFile, planFile, type FilePlan } from './core.js';
import { isBinary } from './diff.js';
import type { Owner } from './ownership.js';
import { followLinks, lstatOrNull, refuseSpecial } from './paths.js';
import { pyEscape, pyRegex } from './regex.js';
import { readFirstSource } from './source.js';
import { renderContent } from './template.js';

/** Current text of an existing regular file, or undefined when absent. */
export function readText(ctx: RunContext, name: string): string | undefined {
  const p = followLinks(ctx, ctx.path(name));
  const st = lstatOrNull(p);
  if (!st) return undefined;
  refuseSpecial(p, name); // before reading: a FIFO would block the run
  if (!st.isFile()) throw new StateFailure(`${name} is not a regular file`);
  const b = fs.readFileSync(p);
  if (isBinary(b)) throw new StateFailure(`Cannot perform string replacements on a binary file: ${name}`);
  return b.toString('utf8');
}

/** The file with `text` as content; owner and mode stay what they are (Salt restores them). */
export function planText(
  ctx: RunContext,
  name: string,
  text: string,
  o: { owner?: Owner; mode?: string; showChanges: boolean; backup?: string; makedirs?: boolean },
): Promise<FilePlan> {
  return planFile(ctx, {
    name,
    content: Buffer.from(text, 'utf8'),
    owner: o.owner ?? { missing: [] },
    mode: o.mode,
    replace: true,
    create: true,
    makedirs: o.makedirs ?? false,
    followSymlinks: true,
    showChanges: o.showChanges,
    backup: o.backup,
  });
}

export function outcome(plan: FilePlan, would: string, none: string) {
  if (Object.keys(plan.changes).length === 0) return { comment: none };
  return { changes: plan.changes, plan, comment: would };
}

export async function applyPlan(ctx: RunContext, plan: FilePlan | undefined, done: string) {
  if (!plan) throw new StateFailure('internal: applied without a plan');
  await applyFile(ctx, plan);
  return { changes: plan.changes, comment: done };
}

/** `backup: .bak` (a suffix) or `backup: False`/None; Salt's default for these editors is '.bak'. */
export const backupArg = z.pipe(
  z._default(z.union([z.string(), z.boolean(), z.null()]), '.bak'),
  z.transform((v) => {
    if (v === true || v === 'True' || v === 'true') return '.bak';
    return typeof v === 'string' && !['', 'False', 'false', 'None'].includes(v) ? v : undefined;
  }),
);

/** Python's `str.splitlines(True)` for files read with newline='': each line keeps its ending. */
export function linesWithEnds(text: string): Array<{ body: string; eol: string }> {
  const out: Array<{ body: string; eol: string }> = [];
  const re = /([^\r\n]*)(\r\n|\n|\r|$)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    if (m[0] === '') break;
    out.push({ body: m[1]!, eol: m[2]! });
  }
  return out;
}

/** Python's `str.lstrip(chars)`: `chars` is a set of characters; undefined strips whitespace. */
export function lstripChars(s: string, chars: string | undefined): string {
  let i = 0;
  while (i < s.length && (chars === undefined ? /\s/.test(s[i]!) : chars.includes(s[i]!))) i++;
  return s.slice(i);
}

/** `re.search(pattern, text, re.MULTILINE)` as Salt's `file.search` runs it. */
export function searchText(pattern: string, text: string, flags = 8): boolean {
  const re = pyRegex(pattern, flags);
  re.lastIndex = 0;
  return re.test(text);
}

/** Salt's build_whitespace_split_regex: the chunk's words in order, any whitespace between. */
export function whitespaceSplitRegex(chunk: string): RegExp {
  let body = '';
  for (const l of chunk.split(/\r?\n/)) {
    const parts = l.split(/\s+/).filter(Boolean).map(pyEscape);
    body += `(?:\\s+)?${parts.join('(?:\\s+)?')}(?:\\s+)?`;
  }
  return new RegExp(`^${body}$`, 'm');
}

// ---- source/sources + template, as file.append/prepend/blockreplace take them

export const sourceArgs = {
  source: z.nullish(z.string()),
  source_hash: z.nullish(z.string()),
  sources: z.nullish(listArg(z.string())),
  source_hashes: z.nullish(listArg(z.string())),
  /** Salt's default for these functions is jinja; `template: null` reads sources as they are */
  template: z._default(z.nullish(z.string()), 'jinja'),
  defaults: z.nullish(z.record(z.string(), z.unknown())),
  context: z.nullish(z.record(z.string(), z.unknown())),
};

interface SourceInput {
  source?: string | null;
  source_hash?: string | null;
  sources?: string[] | null;
  source_hashes?: string[] | null;
  template?: string | null;
  defaults?: Record<string, unknown> | null;
  context?: Record<string, unknown> | null;
}

/** Salt's `_unify_sources_and_hashes`: `source` and `sources` exclude each other. */
function sourceList(a: SourceInput): Array<{ url: string; hash?: string }> {
  if (a.source && a.sources?.length) throw new StateFailure('source and sources are mutually exclusive');
  if (a.source_hash && a.source_hashes?.length) throw new StateFailure('source_hash and source_hashes are mutually exclusive');
  if (a.source) return [{ url: a.source, hash: a.source_hash ?? undefined }];
  return (a.sources ?? []).map((url, i) => ({ url, hash: a.source_hashes?.[i] }));
}

/**
 * The text of every source (all of them, in order: Salt concatenates, it does not fall back),
 * each rendered with `template` and `defaults` + `context`. Undefined when no source is given.
 */
export async function sourceTexts(ctx: RunContext, a: SourceInput): Promise<string[] | undefined> {
  const list = sourceList(a);
  if (!list.length) return undefined;
  const out: string[] = [];
  for (const s of list) {
    const src = await readFirstSource(ctx, [s.url], s.hash, false);
    let text = src.data.toString('utf8');
    if (a.template) {
      text = renderContent(ctx, {
        template: a.template,
        text,
        label: src.source,
        treePath: src.treePath,
        defaults: a.defaults ?? undefined,
        context: a.context ?? undefined,
        stateVars: {},
        extra: {},
      });
    }
    out.push(text);
  }
  return out;
}
