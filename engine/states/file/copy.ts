/** file.copy: copy a local file (on the managed system, so mapped through --root too). */
import fs from 'node:fs';
import path from 'node:path';
import * as z from 'zod/mini';
import type { Changes } from '../define.js';
import { boolArg, defineState, modeArg, principalArg, StateFailure } from '../define.js';
import { atomicWrite, makeDirs } from './atomic-write.js';
import { defaultPerms, permChanges, resolveOwner, setPerms, statPerms, targetPerms, type Owner, type PermState } from './ownership.js';
import { lstatOrNull, refuseNonDirParent, refuseSpecial, requireAbsolute } from './paths.js';

interface CopyPlan {
  src: string;
  dest: string;
  write: boolean;
  exists: boolean;
  cur: PermState;
  want: PermState;
  changes: Changes;
}

export const copy = defineState({
  args: z.object({
    name: z.string(),
    source: z.string(),
    force: z._default(boolArg, false),
    makedirs: z._default(boolArg, false),
    preserve: z._default(boolArg, false),
    user: z.nullish(principalArg),
    group: z.nullish(principalArg),
    mode: z.nullish(modeArg),
  }),
  async check(ctx, a) {
    requireAbsolute(a.name);
    if (!path.isAbsolute(a.source)) throw new StateFailure(`Source file ${a.source} is not an absolute path`);
    const src = ctx.path(a.source);
    const sst = lstatOrNull(src) && fs.statSync(src);
    if (!sst) throw new StateFailure(`Source file "${a.source}" is not present`);
    if (!sst.isFile()) throw new StateFailure(`Source "${a.source}" is not a regular file (tsalt copies single files)`);
    const dest = ctx.path(a.name);
    const dst = lstatOrNull(dest);
    // a link to /dev/null (a masked unit) would get the mode; a FIFO would block the compare
    refuseSpecial(dest, a.name);
    if (dst?.isDirectory()) throw new StateFailure(`Specified target ${a.name} is a directory`);
    // preserve: the source's owner and mode win; user/group/mode are ignored, as in Salt
    const owner: Owner = a.preserve ? { missing: [] } : await resolveOwner(ctx, a.user ?? undefined, a.group ?? undefined);
    const mode = a.preserve ? undefined : (a.mode ?? undefined);
    const changes: Changes = {};
    let write = false;
    let cur: PermState;
    if (!dst) {
      refuseNonDirParent(path.dirname(dest), a.name);
      if (!fs.existsSync(path.dirname(dest)) && !a.makedirs && !ctx.test) {
        throw new StateFailure(`The target directory ${path.dirname(a.name)} is not present`);
      }
      write = true;
      changes[a.name] = a.source;
      const d = defaultPerms('file');
      // like shutil.copy: the copy gets the source's mode; the owner is ours unless preserved
      cur = a.preserve ? statPerms(sst) : { uid: d.uid, gid: d.gid, mode: sst.mode & 0o7777 };
    } else {
      cur = statPerms(fs.statSync(dest));
      if (a.force && !fs.readFileSync(dest).equals(fs.readFileSync(src))) {
        write = true;
        changes[a.name] = a.source;
      }
      if (a.preserve && write) cur = statPerms(sst);
    }
    Object.assign(changes, permChanges(cur, owner, mode));
    const want = targetPerms(cur, owner, mode);
    if (Object.keys(changes).length === 0) {
      return { comment: dst && !a.force ? `The target file "${a.name}" exists and will not be overwritten` : `The target file "${a.name}" is in the correct state` };
    }
    const plan: CopyPlan = { src, dest, write, exists: !!dst, cur, want, changes };
    return { changes, plan, comment: `File "${a.source}" is set to be copied to "${a.name}"` };
  },
  async apply(_ctx, a, plan) {
    if (!plan) throw new StateFailure('internal: file.copy applied without a plan');
    const p = plan as CopyPlan;
    if (p.write) {
      if (!fs.existsSync(path.dirname(p.dest))) {
        if (!a.makedirs) throw new StateFailure(`The target directory ${path.dirname(a.name)} is not present`);
        await makeDirs(path.dirname(p.dest), defaultPerms('dir'));
      }
      await atomicWrite(p.dest, fs.readFileSync(p.src), p.want);
      return { changes: p.changes, comment: `Copied "${a.source}" to "${a.name}"` };
    }
    await setPerms(p.dest, p.cur, p.want);
    return { changes: p.changes, comment: `Permissions of "${a.name}" updated` };
  },
});
