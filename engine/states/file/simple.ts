/** file.absent, file.exists, file.missing, file.touch: presence of a path. */
import fs from 'node:fs';
import path from 'node:path';
import * as z from 'zod/mini';
import { boolArg, defineState, StateFailure } from '../define.js';
import { makeDirs } from './atomic-write.js';
import { defaultPerms } from './ownership.js';
import { lstatOrNull, refuseNonDirParent, refuseSpecial, requireAbsolute } from './paths.js';

const nameOnly = z.object({ name: z.string() });

export const absent = defineState({
  args: nameOnly,
  async check(ctx, a) {
    requireAbsolute(a.name);
    const p = ctx.path(a.name);
    if (path.resolve('/', a.name) === '/' || (ctx.root && path.resolve(p) === path.resolve(ctx.root))) {
      throw new StateFailure(`Refusing to make "${a.name}" absent`);
    }
    const st = lstatOrNull(p);
    if (!st) return { comment: `File ${a.name} is not present` };
    const what = st.isDirectory() ? 'Directory' : 'File';
    return { changes: { removed: a.name }, plan: what, comment: `${what} ${a.name} is set for removal` };
  },
  async apply(ctx, a, what) {
    await fs.promises.rm(ctx.path(a.name), { recursive: true, force: true });
    return { changes: { removed: a.name }, comment: `Removed ${what === 'Directory' ? 'directory' : 'file'} ${a.name}` };
  },
});

export const exists = defineState({
  args: nameOnly,
  async check(ctx, a) {
    if (!lstatOrNull(ctx.path(a.name))) throw new StateFailure(`Specified path ${a.name} does not exist`);
    return { comment: `Path ${a.name} exists` };
  },
  async apply() {
    return { changes: {}, comment: '' };
  },
});

export const missing = defineState({
  args: nameOnly,
  async check(ctx, a) {
    if (lstatOrNull(ctx.path(a.name))) throw new StateFailure(`Specified path ${a.name} exists`);
    return { comment: `Path ${a.name} is missing` };
  },
  async apply() {
    return { changes: {}, comment: '' };
  },
});

/**
 * file.touch as Salt: create an empty file, or update its times. Without `atime`/`mtime` an
 * existing file is touched (and reported) on every run, which is what Salt does; with explicit
 * times the state is idempotent.
 */
export const touch = defineState({
  args: z.object({
    name: z.string(),
    atime: z.nullish(z.number().check(z.int())),
    mtime: z.nullish(z.number().check(z.int())),
    makedirs: z._default(boolArg, false),
  }),
  async check(ctx, a) {
    requireAbsolute(a.name);
    const p = ctx.path(a.name);
    const st = lstatOrNull(p);
    refuseSpecial(p, a.name); // utimes follows links: never onto a device or FIFO
    if (!st) {
      refuseNonDirParent(path.dirname(p), a.name);
      if (!fs.existsSync(path.dirname(p)) && !a.makedirs && !ctx.test) {
        throw new StateFailure(`Directory not present to touch file ${a.name}`);
      }
      return { changes: { new: a.name }, comment: `File ${a.name} is set to be created` };
    }
    if (a.atime != null || a.mtime != null) {
      const sameA = a.atime == null || Math.floor(st.atimeMs / 1000) === a.atime;
      const sameM = a.mtime == null || Math.floor(st.mtimeMs / 1000) === a.mtime;
      if (sameA && sameM) return { comment: `File ${a.name} has the requested times` };
    }
    return { changes: { touched: a.name }, comment: `File ${a.name} is set to have its atime/mtime updated` };
  },
  async apply(ctx, a) {
    const p = ctx.path(a.name);
    refuseSpecial(p, a.name);
    const created = !lstatOrNull(p);
    if (created) {
      if (a.makedirs) await makeDirs(path.dirname(p), defaultPerms('dir'));
      await fs.promises.writeFile(p, '', { flag: 'a' });
    }
    const now = Date.now() / 1000;
    const st = fs.statSync(p);
    const at = a.atime ?? (a.mtime != null ? st.atimeMs / 1000 : now);
    const mt = a.mtime ?? (a.atime != null ? st.mtimeMs / 1000 : now);
    await fs.promises.utimes(p, at, mt);
    return created
      ? { changes: { new: a.name }, comment: `Created empty file ${a.name}` }
      : { changes: { touched: a.name }, comment: `Updated times on file ${a.name}` };
  },
});
