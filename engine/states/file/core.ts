/**
 * Plan and apply one regular file: content, owner, mode. Shared by file.managed, file.recurse
 * and the line editors (file.line/replace/append), so every writer is atomic and reports
 * changes the same way (`diff`, `user`, `group`, `mode`).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { RunContext } from '../context.js';
import type { Changes } from '../define.js';
import { StateFailure } from '../define.js';
import { exec } from '../../run/exec.js';
import { atomicWrite, makeDirs, removeStaleTemps } from './atomic-write.js';
import { backupMinion } from './backup.js';
import { contentDiff } from './diff.js';
import { defaultPerms, permChanges, setPerms, statPerms, targetPerms, type Owner, type PermState } from './ownership.js';
import { followLinks, lstatOrNull, refuseNonDirParent, refuseSpecial } from './paths.js';

export interface FileSpec {
  /** as written in the tree: messages and change keys use it */
  name: string;
  /** desired bytes; undefined: content is not managed (a new file is created empty) */
  content?: Buffer;
  owner: Owner;
  mode?: string;
  /** false: leave the content of an existing file alone (Salt's `replace: False`) */
  replace: boolean;
  create: boolean;
  makedirs: boolean;
  dirMode?: string;
  followSymlinks: boolean;
  showChanges: boolean;
  /** 'minion' keeps a copy of the replaced file; a suffix like '.bak' keeps it beside it */
  backup?: string;
  checkCmd?: string;
  tmpExt?: string;
}

export interface FilePlan {
  spec: FileSpec;
  /** the path written on disk (after --root and symlink following) */
  target: string;
  exists: boolean;
  writeContent: boolean;
  cur: PermState;
  want: PermState;
  /** parent directory missing: created (makedirs) or, in test mode, only reported */
  parentMissing: boolean;
  changes: Changes;
  /** no changes because the file is absent and `create` is false */
  notCreated: boolean;
}

export async function planFile(ctx: RunContext, spec: FileSpec): Promise<FilePlan> {
  const mapped = ctx.path(spec.name);
  // a killed earlier run's temp file is our litter, not part of the managed file: a real run
  // clears it even when the file itself is already right (test runs change nothing)
  // once per directory and run: a no-op run reads each directory once
  if (!ctx.test) {
    const dir = path.dirname(mapped);
    await ctx.facts.get(`file:stale-temps:${dir}`, () => removeStaleTemps(dir));
  }
  const lst = lstatOrNull(mapped);
  let target = mapped;
  let st = lst;
  if (lst?.isSymbolicLink()) {
    if (spec.followSymlinks) {
      target = followLinks(ctx, mapped);
      st = lstatOrNull(target);
    } else {
      st = null; // the link itself is replaced by a regular file
    }
  }
  if (st?.isDirectory()) throw new StateFailure(`Specified target ${spec.name} is a directory`);
  if (st) {
    refuseSpecial(mapped, spec.name); // says "through a symlink to" when it is one
    refuseSpecial(target, spec.name); // links under --root lead inside the root
  }
  if (st && !st.isFile()) throw new StateFailure(`Specified target ${spec.name} exists and is not a regular file`);

  const exists = st !== null;
  // the backup copy (`.bak` beside it) opens its path for writing, links followed
  if (exists && spec.backup && spec.backup !== 'minion') refuseSpecial(target + spec.backup, spec.name + spec.backup);
  const base: FilePlan = {
    spec,
    target,
    exists,
    writeContent: false,
    cur: exists ? statPerms(st!) : defaultPerms('file'),
    want: defaultPerms('file'),
    parentMissing: false,
    changes: {},
    notCreated: false,
  };
  if (!exists && !spec.create) return { ...base, notCreated: true };

  const parentMissing = !exists && !fs.existsSync(path.dirname(target));
  if (!exists) refuseNonDirParent(path.dirname(target), spec.name);
  if (parentMissing && !spec.makedirs && !ctx.test) {
    throw new StateFailure(`Parent directory not present (${path.dirname(spec.name)}); set makedirs: True to create it`);
  }

  const changes: Changes = {};
  let writeContent = false;
  if (!exists) {
    writeContent = true;
    changes.diff = 'New file';
  } else if (spec.replace && spec.content !== undefined) {
    const old = fs.readFileSync(target);
    if (!old.equals(spec.content)) {
      writeContent = true;
      changes.diff = spec.showChanges ? contentDiff(old, spec.content) : '<show_changes=False>';
    }
  }
  Object.assign(changes, permChanges(base.cur, spec.owner, spec.mode));
  return { ...base, writeContent, parentMissing, changes, want: targetPerms(base.cur, spec.owner, spec.mode) };
}

/** Run `check_cmd` against the new content in a private temp file (path as last argument). */
async function runCheckCmd(cmd: string, name: string, content: Buffer, tmpExt: string): Promise<void> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'tsalt-check-'));
  try {
    const f = path.join(dir, path.basename(name) + tmpExt);
    await fs.promises.writeFile(f, content, { mode: 0o600 });
    // the command is the tree's shell line (Salt runs it with a shell too); the file is "$1"
    const r = await exec(['/bin/sh', '-c', `${cmd} "$1"`, 'sh', f], { timeoutMs: 300_000 });
    if (r.code !== 0) {
      const out = [r.stdout.trim(), r.stderr.trim()].filter(Boolean).join('\n');
      throw new StateFailure(`check_cmd execution failed (exit ${r.code})${out ? `\n${out}` : ''}`);
    }
  } finally {
    await fs.promises.rm(dir, { recursive: true, force: true });
  }
}

/** Make the plan so. check_cmd runs first: a failing check leaves the system untouched. */
export async function applyFile(ctx: RunContext, plan: FilePlan): Promise<void> {
  const { spec } = plan;
  if (plan.notCreated || Object.keys(plan.changes).length === 0) return;
  const content = plan.writeContent ? (plan.exists ? (spec.content ?? fs.readFileSync(plan.target)) : (spec.content ?? Buffer.alloc(0))) : undefined;
  if (content && spec.checkCmd) await runCheckCmd(spec.checkCmd, spec.name, content, spec.tmpExt ?? '');
  if (plan.parentMissing) {
    const parent = path.dirname(plan.target);
    if (!fs.existsSync(parent)) {
      if (!spec.makedirs) throw new StateFailure(`Parent directory not present (${path.dirname(spec.name)}); set makedirs: True to create it`);
      const d = defaultPerms('dir');
      await makeDirs(parent, {
        uid: spec.owner.uid ?? d.uid,
        gid: spec.owner.gid ?? d.gid,
        mode: spec.dirMode ? parseInt(spec.dirMode, 8) : d.mode,
      });
    }
  }
  if (content) {
    if (plan.exists && spec.backup) {
      if (spec.backup === 'minion') await backupMinion(ctx, spec.name, plan.target);
      else await fs.promises.copyFile(plan.target, plan.target + spec.backup);
    }
    await atomicWrite(plan.target, content, plan.want);
  } else {
    await setPerms(plan.target, plan.cur, plan.want);
  }
}
