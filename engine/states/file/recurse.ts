/**
 * file.recurse: mirror a directory of the state tree (`salt://dir`) onto `name`, each file as
 * file.managed would write it. Changes are keyed by the path of each file/directory changed.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as z from 'zod/mini';
import type { RunContext } from '../context.js';
import type { Changes } from '../define.js';
import { boolArg, defineState, modeArg, principalArg, StateFailure } from '../define.js';
import { LocalTree } from '../../tree/local.js';
import { normaliseTreePath, TreeError } from '../../tree/source.js';
import { makeDirs } from './atomic-write.js';
import { applyFile, planFile, type FilePlan } from './core.js';
import { defaultPerms, permChanges, resolveOwner, setPerms, statPerms, targetPerms, type PermState } from './ownership.js';
import { lstatOrNull, patternMatcher, requireAbsolute } from './paths.js';
import { renderContent } from './template.js';

const recurseArgs = z.object({
  name: z.string(),
  source: z.string(),
  clean: z._default(boolArg, false),
  user: z.nullish(principalArg),
  group: z.nullish(principalArg),
  dir_mode: z.nullish(modeArg),
  file_mode: z.nullish(modeArg),
  template: z.nullish(z.string()),
  context: z.nullish(z.record(z.string(), z.unknown())),
  defaults: z.nullish(z.record(z.string(), z.unknown())),
  include_empty: z._default(boolArg, false),
  include_pat: z.nullish(z.string()),
  exclude_pat: z.nullish(z.string()),
  replace: z._default(boolArg, true),
  backup: z.nullish(z.string()),
  show_changes: z._default(boolArg, true),
  keep_source: z.optional(boolArg),
  saltenv: z.nullish(z.string()),
});

interface DirStep {
  disk: string;
  create: boolean;
  cur: PermState;
  want: PermState;
}

interface RecursePlan {
  dirs: DirStep[];
  files: FilePlan[];
  remove: string[];
  changes: Changes;
}

/** Directories of the tree below `base` (for include_empty); only a local tree can list them. */
function treeDirs(ctx: RunContext, base: string): string[] {
  if (!(ctx.tree instanceof LocalTree)) return [];
  const root = ctx.tree.resolve(base);
  const out: string[] = [];
  const walk = (abs: string, rel: string) => {
    for (const ent of fs.readdirSync(abs, { withFileTypes: true })) {
      if (!ent.isDirectory()) continue;
      const r = rel ? `${rel}/${ent.name}` : ent.name;
      out.push(r);
      walk(path.join(abs, ent.name), r);
    }
  };
  walk(root, '');
  return out;
}

export const recurse = defineState({
  args: recurseArgs,
  passUnknownArgs: true,
  async check(ctx, a, extra) {
    requireAbsolute(a.name, 'directory');
    if (!a.source.startsWith('salt://')) throw new StateFailure(`Invalid source "${a.source}" (must be a salt:// URL)`);
    const owner = await resolveOwner(ctx, a.user ?? undefined, a.group ?? undefined);
    let base: string;
    let files: string[];
    try {
      base = normaliseTreePath(a.source);
      files = (await ctx.tree.list(base)).map((f) => (base ? f.slice(base.length + 1) : f));
    } catch (e) {
      if (e instanceof TreeError) throw new StateFailure(e.message);
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') {
        throw new StateFailure(`The directory '${a.source}' does not exist on the salt fileserver in saltenv 'base'`);
      }
      throw e;
    }
    const include = patternMatcher(a.include_pat ?? undefined);
    const exclude = patternMatcher(a.exclude_pat ?? undefined);
    const wanted = (rel: string) => (!include || include(rel)) && !exclude?.(rel);
    files = files.filter(wanted);

    // directories: the destination, parents of every file, and empty ones when asked
    const dirRels = new Set<string>(['']);
    for (const f of files) for (let d = path.posix.dirname(f); d !== '.'; d = path.posix.dirname(d)) dirRels.add(d);
    if (a.include_empty) for (const d of treeDirs(ctx, base)) if (wanted(d)) dirRels.add(d);

    const changes: Changes = {};
    const dirs: DirStep[] = [];
    const dflt = defaultPerms('dir');
    for (const rel of [...dirRels].sort()) {
      const display = rel ? path.posix.join(a.name, rel) : a.name;
      const disk = ctx.path(display);
      const st = lstatOrNull(disk);
      if (st && !st.isDirectory()) throw new StateFailure(`${display} exists and is not a directory`);
      const cur = st ? statPerms(st) : dflt;
      const ch: Changes = st ? permChanges(cur, owner, a.dir_mode ?? undefined) : { directory: 'new', ...permChanges(cur, owner, a.dir_mode ?? undefined) };
      if (Object.keys(ch).length) {
        changes[display] = ch;
        dirs.push({ disk, create: !st, cur, want: targetPerms(cur, owner, a.dir_mode ?? undefined) });
      }
    }

    const plans: FilePlan[] = [];
    for (const rel of files) {
      const treePath = base ? `${base}/${rel}` : rel;
      const display = path.posix.join(a.name, rel);
      let data: Buffer;
      try {
        data = await ctx.tree.read(treePath);
      } catch (e) {
        if (e instanceof TreeError) throw new StateFailure(e.message);
        throw e;
      }
      if (a.template) {
        const text = renderContent(ctx, {
          template: a.template,
          text: data.toString('utf8'),
          label: `salt://${treePath}`,
          treePath,
          defaults: a.defaults ?? undefined,
          context: a.context ?? undefined,
          stateVars: { name: display, source: `salt://${treePath}`, user: a.user, group: a.group, mode: a.file_mode },
          extra,
        });
        data = Buffer.from(text, 'utf8');
      }
      const plan = await planFile(ctx, {
        name: display,
        content: data,
        owner,
        mode: a.file_mode ?? undefined,
        replace: a.replace,
        create: true,
        makedirs: true,
        dirMode: a.dir_mode ?? undefined,
        followSymlinks: true,
        showChanges: a.show_changes,
        backup: a.backup || undefined,
      });
      if (Object.keys(plan.changes).length) {
        changes[display] = plan.changes;
        plans.push(plan);
      }
    }

    const remove: string[] = [];
    const top = ctx.path(a.name);
    if (a.clean && lstatOrNull(top)?.isDirectory()) {
      const keepFiles = new Set(files);
      const walk = (abs: string, rel: string) => {
        for (const ent of fs.readdirSync(abs, { withFileTypes: true }).sort((x, y) => x.name.localeCompare(y.name))) {
          const r = rel ? `${rel}/${ent.name}` : ent.name;
          const d = path.join(abs, ent.name);
          if (exclude?.(r)) continue;
          if (ent.isDirectory() && dirRels.has(r)) walk(d, r);
          else if (!(keepFiles.has(r) && !ent.isDirectory())) remove.push(path.posix.join(a.name, r));
        }
      };
      walk(top, '');
      if (remove.length) changes.removed = remove;
    }

    if (Object.keys(changes).length === 0) return { comment: `The directory ${a.name} is in the correct state` };
    const plan: RecursePlan = { dirs, files: plans, remove, changes };
    const notes = owner.missing.length ? ` (${owner.missing.join('; ')})` : '';
    return { changes, plan, comment: `The directory ${a.name} is set to be changed${notes}` };
  },
  async apply(ctx, a, plan) {
    if (!plan) throw new StateFailure('internal: file.recurse applied without a plan');
    const p = plan as RecursePlan;
    for (const d of p.dirs) {
      if (d.create) {
        await makeDirs(path.dirname(d.disk), d.want);
        if (!fs.existsSync(d.disk)) await fs.promises.mkdir(d.disk);
        await setPerms(d.disk, statPerms(fs.lstatSync(d.disk)), d.want);
      } else await setPerms(d.disk, d.cur, d.want);
    }
    for (const f of p.files) await applyFile(ctx, f);
    for (const r of p.remove) await fs.promises.rm(ctx.path(r), { recursive: true, force: true });
    return { changes: p.changes, comment: `Recursively updated ${a.name}` };
  },
});
