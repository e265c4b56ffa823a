/**
 * file.directory: a directory with owner and mode; optionally the same owner/mode for all it
 * holds (`recurse`), and nothing else in it (`clean`).
 *
 * Limitation of `clean`: Salt keeps files other states of the run manage (it reads the
 * requisites); tsalt's state functions do not see the run graph, so `clean` removes every
 * child that `exclude_pat` does not match. Use `exclude_pat` to keep what other states manage.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as z from 'zod/mini';
import type { RunContext } from '../context.js';
import type { Changes } from '../define.js';
import { boolArg, defineState, listArg, modeArg, principalArg, StateFailure } from '../define.js';
import { makeDirs } from './atomic-write.js';
import { defaultPerms, permChanges, setPerms, statPerms, targetPerms, type Owner, type PermState } from './ownership.js';
import { resolveOwner } from './ownership.js';
import { followLinks, lstatOrNull, patternMatcher, refuseNonDirParent, requireAbsolute, specialKind } from './paths.js';

export const directoryArgs = z.object({
  name: z.string(),
  user: z.nullish(principalArg),
  group: z.nullish(principalArg),
  mode: z.nullish(modeArg),
  dir_mode: z.nullish(modeArg),
  file_mode: z.nullish(modeArg),
  makedirs: z._default(boolArg, false),
  clean: z._default(boolArg, false),
  exclude_pat: z.nullish(z.string()),
  recurse: z._default(listArg(z.enum(['user', 'group', 'mode', 'ignore_files', 'ignore_dirs', 'silent'])), []),
  force: z._default(boolArg, false),
  allow_symlink: z._default(boolArg, true),
  follow_symlinks: z._default(boolArg, false),
});

interface ChildPerm {
  disk: string;
  display: string;
  cur: PermState;
  want: PermState;
  link: boolean;
}

interface DirPlan {
  target: string;
  create: boolean;
  replaceFile: boolean;
  parentMissing: boolean;
  cur: PermState;
  want: PermState;
  remove: { disk: string; display: string }[];
  children: ChildPerm[];
  changes: Changes;
  /** what recursion left alone, for the comment */
  left: string;
}

/** Children to remove for `clean`: everything not excluded; directories holding excluded entries stay. */
function cleanList(dir: string, display: string, excluded: ((rel: string) => boolean) | undefined): { disk: string; display: string }[] {
  const out: { disk: string; display: string }[] = [];
  const walk = (abs: string, rel: string): boolean => {
    // returns true when something below `abs` is kept
    let keptAny = false;
    for (const ent of fs.readdirSync(abs, { withFileTypes: true }).sort((x, y) => x.name.localeCompare(y.name))) {
      const r = rel ? `${rel}/${ent.name}` : ent.name;
      const d = path.join(abs, ent.name);
      if (excluded?.(r)) {
        keptAny = true;
        continue;
      }
      if (ent.isDirectory() && !ent.isSymbolicLink()) {
        const before = out.length;
        if (walk(d, r)) {
          keptAny = true;
          continue;
        }
        out.splice(before); // the whole directory goes: list it once
      }
      out.push({ disk: d, display: path.posix.join(display, r) });
    }
    return keptAny;
  };
  walk(dir, '');
  return out;
}

function walkAll(dir: string, fn: (abs: string, rel: string, st: fs.Stats) => void, rel = ''): void {
  for (const ent of fs.readdirSync(dir).sort()) {
    const abs = path.join(dir, ent);
    const r = rel ? `${rel}/${ent}` : ent;
    const st = fs.lstatSync(abs);
    fn(abs, r, st);
    if (st.isDirectory()) walkAll(abs, fn, r);
  }
}

export const directory = defineState({
  args: directoryArgs,
  async check(ctx, a) {
    requireAbsolute(a.name, 'directory');
    const owner: Owner = await resolveOwner(ctx, a.user ?? undefined, a.group ?? undefined);
    const dirMode = a.dir_mode ?? a.mode ?? undefined;
    const fileMode = a.file_mode ?? dirMode; // Salt: file_mode defaults to dir_mode
    const mapped = ctx.path(a.name);
    let target = mapped;
    let st = lstatOrNull(mapped);
    let replaceFile = false;
    if (st?.isSymbolicLink()) {
      const real = followLinks(ctx, mapped);
      const rst = lstatOrNull(real);
      if (a.allow_symlink && rst?.isDirectory()) {
        target = real;
        st = rst;
      } else if (a.force) {
        replaceFile = true;
        st = null;
      } else throw new StateFailure(`Specified location ${a.name} exists and is a symlink`);
    } else if (st && !st.isDirectory()) {
      if (!a.force) throw new StateFailure(`Specified location ${a.name} exists and is a file`);
      replaceFile = true;
      st = null;
    }
    const changes: Changes = {};
    const create = st === null;
    const parentMissing = create && !fs.existsSync(path.dirname(target));
    if (create) refuseNonDirParent(path.dirname(target), a.name);
    if (parentMissing && !a.makedirs && !ctx.test) throw new StateFailure(`No directory to create ${a.name} in`);
    if (replaceFile) changes.forced = `${a.name} replaced by a directory`;
    if (create) changes[a.name] = 'New Dir';
    const cur = st ? statPerms(st) : defaultPerms('dir');
    Object.assign(changes, permChanges(cur, owner, dirMode));
    const want = targetPerms(cur, owner, dirMode);

    const remove = !create && a.clean ? cleanList(target, a.name, patternMatcher(a.exclude_pat ?? undefined)) : [];
    const removed = new Set(remove.map((r) => r.disk));
    if (remove.length) changes.removed = remove.map((r) => r.display);

    const children: ChildPerm[] = [];
    // devices, FIFOs and sockets below the directory keep their owner and mode: a file_mode
    // meant for files must not land on a device node (a chroot's dev/null) or an app's socket
    const special: string[] = [];
    const rec = new Set(a.recurse);
    if (!create && (rec.has('user') || rec.has('group') || rec.has('mode'))) {
      const recOwner: Owner = {
        ...owner,
        user: rec.has('user') ? owner.user : undefined,
        group: rec.has('group') ? owner.group : undefined,
        missing: [],
      };
      walkAll(target, (abs, rel, cst) => {
        if ([...removed].some((r) => abs === r || abs.startsWith(r + path.sep))) return;
        const kind = specialKind(cst);
        if (kind) {
          special.push(`${path.posix.join(a.name, rel)} (${kind})`);
          return;
        }
        const isDir = cst.isDirectory();
        const link = cst.isSymbolicLink();
        if ((isDir && rec.has('ignore_dirs')) || (!isDir && rec.has('ignore_files'))) return;
        const m = rec.has('mode') && !link ? (isDir ? dirMode : fileMode) : undefined;
        const c = statPerms(cst);
        const ch = permChanges(c, recOwner, m);
        if (Object.keys(ch).length === 0) return;
        const display = path.posix.join(a.name, rel);
        if (!rec.has('silent')) changes[display] = ch;
        children.push({ disk: abs, display, cur: c, want: targetPerms(c, recOwner, m), link });
      });
      // `silent` hides the per-path changes; still say that something will change
      if (rec.has('silent') && children.length) changes.recursion = `${children.length} paths changed`;
    }
    const left = special.length ? `; left alone, not regular files: ${special.join(', ')}` : '';
    if (Object.keys(changes).length === 0) return { comment: `The directory ${a.name} is in the correct state${left}` };
    const plan: DirPlan = { target, create, replaceFile, parentMissing, cur, want, remove, children, changes, left };
    const notes = (owner.missing.length ? ` (${owner.missing.join('; ')})` : '') + left;
    return { changes, plan, comment: `The directory ${a.name} is set to be changed${notes}` };
  },
  async apply(_ctx, a, plan) {
    if (!plan) throw new StateFailure('internal: file.directory applied without a plan');
    const p = plan as DirPlan;
    if (p.replaceFile) await fs.promises.rm(p.target, { recursive: true, force: true });
    if (p.create) {
      if (p.parentMissing) {
        if (!a.makedirs) throw new StateFailure(`No directory to create ${a.name} in`);
        await makeDirs(path.dirname(p.target), p.want);
      }
      await fs.promises.mkdir(p.target);
    }
    await setPerms(p.target, p.create ? statPerms(fs.lstatSync(p.target)) : p.cur, p.want);
    for (const r of p.remove) await fs.promises.rm(r.disk, { recursive: true, force: true });
    for (const c of p.children) await setPerms(c.disk, c.cur, c.want, c.link);
    return { changes: p.changes, comment: `Directory ${a.name} updated${p.left}` };
  },
});
