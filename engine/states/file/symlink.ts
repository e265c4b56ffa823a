/** file.symlink: a symbolic link `name` -> `target`, replaced atomically. */
import fs from 'node:fs';
import path from 'node:path';
import * as z from 'zod/mini';
import type { Changes } from '../define.js';
import { boolArg, defineState, principalArg, StateFailure } from '../define.js';
import { makeDirs, syncDir, tempName } from './atomic-write.js';
import { defaultPerms, resolveOwner } from './ownership.js';
import { lstatOrNull, refuseNonDirParent, requireAbsolute } from './paths.js';

interface LinkPlan {
  mapped: string;
  relink: boolean;
  removeFirst: boolean;
  parentMissing: boolean;
  uid: number;
  gid: number;
  changes: Changes;
}

export const symlink = defineState({
  args: z.object({
    name: z.string(),
    target: z.string(),
    force: z._default(boolArg, false),
    makedirs: z._default(boolArg, false),
    user: z.nullish(principalArg),
    group: z.nullish(principalArg),
    mode: z.optional(z.unknown()), // accepted and ignored, as Salt does on Linux
  }),
  async check(ctx, a) {
    requireAbsolute(a.name);
    // Salt: the link belongs to the user the agent runs as unless told otherwise
    const dflt = defaultPerms('file');
    const owner = await resolveOwner(ctx, a.user ?? undefined, a.group ?? undefined);
    const uid = owner.uid ?? dflt.uid;
    const gid = owner.gid ?? dflt.gid;
    const mapped = ctx.path(a.name);
    const st = lstatOrNull(mapped);
    const changes: Changes = {};
    let relink = false;
    let removeFirst = false;
    let parentMissing = false;
    if (!st) {
      refuseNonDirParent(path.dirname(mapped), a.name);
      parentMissing = !fs.existsSync(path.dirname(mapped));
      if (parentMissing && !a.makedirs && !ctx.test) {
        throw new StateFailure(`Directory ${path.dirname(a.name)} for symlink is not present`);
      }
      relink = true;
      changes.new = a.name;
    } else if (st.isSymbolicLink()) {
      if (fs.readlinkSync(mapped) !== a.target) {
        relink = true;
        changes.change = a.name;
      } else if (st.uid !== uid || st.gid !== gid) {
        changes.ownership = `${a.user ?? uid}:${a.group ?? gid}`;
      }
    } else {
      const what = st.isDirectory() ? 'Directory' : 'File';
      if (!a.force) throw new StateFailure(`${what} exists where the symlink ${a.name} should be`);
      relink = true;
      removeFirst = st.isDirectory();
      changes.forced = 'Symlink was forcibly replaced';
      changes.new = a.name;
    }
    if (Object.keys(changes).length === 0) {
      return { comment: `Symlink ${a.name} is present and owned by ${a.user ?? uid}:${a.group ?? gid}` };
    }
    const notes = owner.missing.length ? ` (${owner.missing.join('; ')})` : '';
    const plan: LinkPlan = { mapped, relink, removeFirst, parentMissing, uid, gid, changes };
    return { changes, plan, comment: `Symlink ${a.name} to ${a.target} is set for creation${notes}` };
  },
  async apply(_ctx, a, plan) {
    if (!plan) throw new StateFailure('internal: file.symlink applied without a plan');
    const p = plan as LinkPlan;
    if (p.relink) {
      if (p.parentMissing) {
        if (!a.makedirs) throw new StateFailure(`Directory ${path.dirname(a.name)} for symlink is not present`);
        await makeDirs(path.dirname(p.mapped), { ...defaultPerms('dir'), uid: p.uid, gid: p.gid });
      }
      // a directory cannot be renamed over; everything else is replaced in one rename
      if (p.removeFirst) await fs.promises.rm(p.mapped, { recursive: true, force: true });
      const tmp = tempName(p.mapped);
      await fs.promises.symlink(a.target, tmp);
      try {
        await fs.promises.lchown(tmp, p.uid, p.gid);
        await fs.promises.rename(tmp, p.mapped);
      } catch (e) {
        await fs.promises.rm(tmp, { force: true });
        throw e;
      }
      await syncDir(path.dirname(p.mapped));
    } else {
      await fs.promises.lchown(p.mapped, p.uid, p.gid);
    }
    return { changes: p.changes, comment: p.relink ? `Created new symlink ${a.name} -> ${a.target}` : `Set ownership of symlink ${a.name}` };
  },
});

