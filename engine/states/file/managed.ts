/** file.managed: a file with the content, owner and mode the tree says. */
import * as z from 'zod/mini';
import type { RunContext } from '../context.js';
import { boolArg, defineState, listArg, modeArg, principalArg, StateFailure } from '../define.js';
import { applyFile, planFile, type FilePlan } from './core.js';
import { resolveOwner } from './ownership.js';
import { requireAbsolute } from './paths.js';
import { readFirstSource } from './source.js';
import { renderContent } from './template.js';
import { withAccumulator } from './accumulator.js';

const scalar = z.union([z.string(), z.number(), z.boolean()]);

export const managedArgs = z.object({
  name: z.string(),
  source: z.nullish(listArg(z.union([z.string(), z.record(z.string(), z.string())]))),
  source_hash: z.nullish(z.string()),
  source_hash_name: z.nullish(z.string()),
  skip_verify: z._default(boolArg, false),
  keep_source: z.optional(boolArg),
  contents: z.nullish(z.union([scalar, z.array(scalar)])),
  contents_pillar: z.nullish(z.string()),
  contents_grains: z.nullish(z.string()),
  contents_newline: z._default(boolArg, true),
  contents_delimiter: z._default(z.string(), ':'),
  allow_empty: z._default(boolArg, true),
  template: z.nullish(z.string()),
  context: z.nullish(z.record(z.string(), z.unknown())),
  defaults: z.nullish(z.record(z.string(), z.unknown())),
  user: z.nullish(principalArg),
  group: z.nullish(principalArg),
  mode: z.nullish(modeArg),
  makedirs: z._default(boolArg, false),
  dir_mode: z.nullish(modeArg),
  replace: z._default(boolArg, true),
  backup: z.nullish(z.string()),
  check_cmd: z.nullish(z.string()),
  tmp_ext: z._default(z.string(), ''),
  create: z._default(boolArg, true),
  follow_symlinks: z._default(boolArg, true),
  show_changes: z._default(boolArg, true),
  encoding: z.nullish(z.string()),
  saltenv: z.nullish(z.string()),
});
type ManagedArgs = z.output<typeof managedArgs>;

/** pillar/grains lookup by `a:b:c`, as Salt's contents_pillar. */
function lookupPath(data: Readonly<Record<string, unknown>>, key: string, delim: string): unknown {
  let cur: unknown = data;
  for (const part of key.split(delim)) {
    if (cur === null || typeof cur !== 'object' || !Object.prototype.hasOwnProperty.call(cur, part)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

function textOf(v: unknown, what: string): string {
  if (Array.isArray(v)) return v.map((x) => textOf(x, what)).join('\n');
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw new StateFailure(`${what} must be a string or a list of lines`);
}

/** The bytes the file should hold, or undefined when content is not managed. */
async function desiredContent(ctx: RunContext, a: ManagedArgs, extra: Record<string, unknown>): Promise<Buffer | undefined> {
  const inline = [a.contents != null, a.contents_pillar != null, a.contents_grains != null].filter(Boolean).length;
  if (inline > 1) throw new StateFailure("Only one of 'contents', 'contents_pillar', and 'contents_grains' is permitted");
  if (inline && a.source != null) {
    throw new StateFailure("'source' cannot be used in combination with 'contents', 'contents_pillar', or 'contents_grains'");
  }
  const stateVars = { name: a.name, user: a.user, group: a.group, mode: a.mode };
  // file.accumulated text for this file reaches the template as `accumulator` (Salt)
  const context = withAccumulator(ctx, a.name, a.context ?? undefined);
  let data: Buffer | undefined;
  if (inline) {
    let text: string;
    if (a.contents != null) text = textOf(a.contents, 'contents');
    else {
      const key = (a.contents_pillar ?? a.contents_grains)!;
      const from = a.contents_pillar != null ? ctx.pillar : ctx.grains;
      const v = lookupPath(from, key, a.contents_delimiter);
      if (v === undefined) throw new StateFailure(`${a.contents_pillar != null ? 'Pillar' : 'Grain'} ${key} does not exist`);
      text = textOf(v, a.contents_pillar != null ? 'contents_pillar' : 'contents_grains');
    }
    if (a.contents_newline && !text.endsWith('\n')) text += '\n';
    if (a.template) {
      text = renderContent(ctx, { template: a.template, text, label: a.name, defaults: a.defaults ?? undefined, context, stateVars: { ...stateVars, source: null }, extra });
    }
    data = Buffer.from(text, 'utf8');
  } else if (a.source != null && a.source.length) {
    const src = await readFirstSource(ctx, a.source, a.source_hash ?? undefined, a.skip_verify, {
      sourceHashName: a.source_hash_name ?? undefined,
      // a remote file the target already matches (by source_hash) is not fetched again
      current: a.template ? undefined : ctx.path(a.name),
    });
    data = src.data;
    if (a.template) {
      const text = renderContent(ctx, {
        template: a.template,
        text: src.data.toString('utf8'),
        label: src.source,
        treePath: src.treePath,
        defaults: a.defaults ?? undefined,
        context,
        stateVars: { ...stateVars, source: src.source },
        extra,
      });
      data = Buffer.from(text, 'utf8');
    }
  }
  if (data && data.length === 0 && !a.allow_empty) throw new StateFailure('Empty file contents provided and allow_empty is False');
  return data;
}

export const managed = defineState({
  args: managedArgs,
  passUnknownArgs: true,
  async check(ctx, a, extra) {
    requireAbsolute(a.name);
    const owner = await resolveOwner(ctx, a.user ?? undefined, a.group ?? undefined);
    // replace: False on an existing file must not even read the source (it may not exist yet)
    const plan = await planFile(ctx, {
      name: a.name,
      content: undefined,
      owner,
      mode: a.mode ?? undefined,
      replace: a.replace,
      create: a.create,
      makedirs: a.makedirs,
      dirMode: a.dir_mode ?? undefined,
      followSymlinks: a.follow_symlinks,
      showChanges: a.show_changes,
      backup: a.backup || undefined,
      checkCmd: a.check_cmd ?? undefined,
      tmpExt: a.tmp_ext,
    });
    if (plan.notCreated) return { comment: `File ${a.name} is not present and is not set for creation` };
    let full: FilePlan = plan;
    if (!plan.exists || a.replace) {
      const content = await desiredContent(ctx, a, extra);
      full = await planFile(ctx, { ...plan.spec, content });
    }
    const notes = owner.missing.length ? ` (${owner.missing.join('; ')})` : '';
    if (full.parentMissing && ctx.test && !a.makedirs) {
      return { changes: full.changes, plan: full, comment: `The file ${a.name} is set to be changed; its parent directory does not exist yet and makedirs is False${notes}` };
    }
    if (Object.keys(full.changes).length === 0) {
      return { comment: full.exists && !a.replace ? `File ${a.name} exists with proper permissions. No changes made.` : `File ${a.name} is in the correct state` };
    }
    return { changes: full.changes, plan: full, comment: `The file ${a.name} is set to be changed${notes}` };
  },
  async apply(ctx, a, plan) {
    if (!plan) throw new StateFailure('internal: file.managed applied without a plan');
    await applyFile(ctx, plan);
    return { changes: plan.changes, comment: `File ${a.name} updated` };
  },
});
