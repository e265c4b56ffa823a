/**
 * file.blockreplace (a block of lines between two marker lines) and file.accumulated (text
 * collected during the run for a file, read by file.managed templates and file.blockreplace).
 */
import * as z from 'zod/mini';
import { boolArg, defineState, listArg, StateFailure } from '../define.js';
import { accumulatedChunks, charge } from './accumulator.js';
import { requireAbsolute } from './paths.js';
import { pyRegex } from './regex.js';
import { applyPlan, backupArg, linesWithEnds, outcome, planText, readText, sourceArgs, sourceTexts } from './text.js';

export interface BlockSpec {
  markerStart: string;
  markerEnd: string;
  content: string;
  appendIfNotFound: boolean;
  prependIfNotFound: boolean;
  insertBeforeMatch?: string;
  insertAfterMatch?: string;
  /** undefined is Salt's None: add a newline only when the content does not end with one */
  appendNewline?: boolean;
}

/**
 * The text with the block between the markers replaced by the content (Salt's module
 * `file.blockreplace`). The start marker line is kept as it is; on the end marker line only
 * the text from the marker on is kept, so content that ran into the marker is replaced too.
 */
export function replaceBlock(text: string, o: BlockSpec): string {
  const exclusive = [o.appendIfNotFound, o.prependIfNotFound, !!o.insertBeforeMatch, !!o.insertAfterMatch].filter(Boolean);
  if (exclusive.length > 1) {
    throw new StateFailure('Only one of append_if_not_found, prepend_if_not_found, insert_before_match, and insert_after_match is permitted');
  }
  const lines = linesWithEnds(text).map((l) => l.body + l.eol);
  // the file's own line ending, from its first line
  const eol = lines[0]?.endsWith('\r\n') ? '\r\n' : '\n';
  const appendNewline = o.appendNewline ?? !o.content.endsWith('\n');
  const contentLines = o.content.split('\r\n').flatMap((l) => l.split('\n'));

  const block = (endLine = o.markerEnd, withStart = true): string[] => {
    const end = endLine.replace(/[\r\n]+$/, '') + eol;
    const out = withStart ? [o.markerStart + eol] : [];
    contentLines.forEach((l, i) => {
      if (i < contentLines.length - 1) out.push(l + eol);
      else if (appendNewline) out.push(l + eol, end);
      else out.push(l + end);
    });
    return out;
  };

  let next: string[] = [];
  let inBlock = false;
  let found = false;
  for (const line of lines) {
    if (line.includes(o.markerStart)) {
      inBlock = true;
      next.push(line);
      continue;
    }
    if (!inBlock) {
      next.push(line);
      continue;
    }
    // inside the old block: its lines are dropped until the end marker
    const at = line.indexOf(o.markerEnd);
    if (at !== -1) {
      inBlock = false;
      found = true;
      next.push(...block(line.slice(at), false));
    }
  }
  if (inBlock) throw new StateFailure('Unterminated marked block. End of file reached before marker_end.');

  if (!found) {
    if (o.prependIfNotFound) {
      next = [...block(), ...next];
    } else if (o.appendIfNotFound) {
      if (next.length && !next[next.length - 1]!.endsWith(eol)) next[next.length - 1] += eol;
      next.push(...block());
    } else if (o.insertBeforeMatch || o.insertAfterMatch) {
      const re = pyRegex((o.insertBeforeMatch || o.insertAfterMatch)!, 0);
      // first matching line (re.search per line)
      const at = lines.findIndex((l) => {
        re.lastIndex = 0;
        return re.test(l.replace(/(\r\n|\n|\r)$/, ''));
      });
      if (at === -1) throw new StateFailure('Cannot edit marked block. Markers were not found in file.');
      const pos = o.insertAfterMatch ? at + 1 : at;
      if (o.insertAfterMatch && !next[at]!.endsWith('\n') && !next[at]!.endsWith('\r')) next[at] += eol;
      next.splice(pos, 0, ...block());
    } else {
      throw new StateFailure('Cannot edit marked block. Markers were not found in file.');
    }
  }
  return next.join('');
}

const textArg = z.pipe(z.union([z.string(), z.number()]), z.transform(String));

export const blockreplace = defineState({
  args: z.object({
    name: z.string(),
    marker_start: z._default(textArg, '#-- start managed zone --'),
    marker_end: z._default(textArg, '#-- end managed zone --'),
    content: z.nullish(textArg),
    ...sourceArgs,
    append_if_not_found: z._default(boolArg, false),
    prepend_if_not_found: z._default(boolArg, false),
    insert_before_match: z.nullish(z.string()),
    insert_after_match: z.nullish(z.string()),
    backup: backupArg,
    show_changes: z._default(boolArg, true),
    append_newline: z.nullish(boolArg),
  }),
  async check(ctx, a) {
    requireAbsolute(a.name);
    const text = readText(ctx, a.name);
    if (text === undefined) throw new StateFailure(`${a.name}: file not found`);
    // content, then the accumulated text aimed at this state, then the rendered sources
    let content = a.content ?? '';
    for (const chunk of accumulatedChunks(ctx, a.name)) content = content === '' ? chunk : `${content}\n${chunk}`;
    for (const t of (await sourceTexts(ctx, a)) ?? []) content += t;
    let next: string;
    try {
      next = replaceBlock(text, {
        markerStart: a.marker_start,
        markerEnd: a.marker_end,
        content,
        appendIfNotFound: a.append_if_not_found,
        prependIfNotFound: a.prepend_if_not_found,
        insertBeforeMatch: a.insert_before_match ?? undefined,
        insertAfterMatch: a.insert_after_match ?? undefined,
        appendNewline: a.append_newline ?? undefined,
      });
    } catch (e) {
      if (e instanceof StateFailure) throw new StateFailure(`Encountered error managing block: ${e.message}`);
      throw e;
    }
    const plan = await planText(ctx, a.name, next, { showChanges: a.show_changes, backup: a.backup });
    return outcome(plan, 'Changes would be made', 'No changes needed to be made');
  },
  async apply(ctx, _a, plan) {
    return applyPlan(ctx, plan, 'Changes were made');
  },
});

export const accumulated = defineState({
  args: z.object({
    name: z.string(),
    filename: z.string(),
    text: z.nullish(listArg(textArg)),
  }),
  async check(ctx, a) {
    if (a.text == null) throw new StateFailure('No text supplied for accumulator');
    // Salt insists on a require_in/watch_in of a file state: that is what runs the
    // accumulator before the file is written
    const refs = [...(ctx.requisitesIn.require ?? []), ...(ctx.requisitesIn.watch ?? [])];
    const feeds = refs.filter((r) => r.state === 'file' || r.state === null);
    if (!feeds.length) throw new StateFailure(`Orphaned accumulator ${a.name} in ${ctx.sls}:${ctx.id}`);
    const added = charge(
      ctx,
      a.filename,
      a.name,
      a.text,
      feeds.map((r) => r.ref),
    );
    // no changes: the text changes nothing by itself, the file state reports the edit
    return {
      comment: added ? `Accumulator ${a.name} for file ${a.filename} was charged by text` : `Accumulator ${a.name} for file ${a.filename} already holds this text`,
    };
  },
  async apply() {
    throw new StateFailure('internal: file.accumulated has nothing to apply');
  },
});
