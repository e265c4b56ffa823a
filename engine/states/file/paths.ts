/** Path rules shared by the file states. */
import { globToRegExp } from '../../compile/match.js';
import fs from 'node:fs';
import path from 'node:path';
import type { RunContext } from '../context.js';
import { StateFailure } from '../define.js';

/** Salt refuses relative names: they would depend on the agent's working directory. */
export function requireAbsolute(name: string, what = 'file'): void {
  if (!path.isAbsolute(name)) throw new StateFailure(`Specified ${what} ${name} is not an absolute path`);
}

export function lstatOrNull(p: string): fs.Stats | null {
  try {
    return fs.lstatSync(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
    throw e;
  }
}

/** What a non-regular, non-directory, non-symlink path is; undefined for those three. */
export function specialKind(st: fs.Stats): string | undefined {
  if (st.isCharacterDevice()) return 'character device';
  if (st.isBlockDevice()) return 'block device';
  if (st.isFIFO()) return 'FIFO';
  if (st.isSocket()) return 'socket';
  return undefined;
}

/**
 * The device, FIFO or socket `p` is, or leads to through symlinks (followed as the kernel
 * would: a link to /dev/null under --root still opens the host's /dev/null). undefined when
 * `p` is missing, dangling, or ends at a regular file or directory.
 */
export function specialAt(p: string): { path: string; kind: string } | undefined {
  const l = lstatOrNull(p);
  if (!l) return undefined;
  const own = specialKind(l);
  if (own) return { path: p, kind: own };
  if (!l.isSymbolicLink()) return undefined;
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    return undefined; // dangling or a loop: nothing special gets written through it
  }
  const kind = specialKind(st);
  if (!kind) return undefined;
  let real = p;
  try {
    real = fs.realpathSync(p);
  } catch {
    /* keep p */
  }
  return { path: real, kind };
}

/**
 * Fail the state when `p` is, or leads through symlinks to, a device, FIFO or socket: writing,
 * truncating, chmod-ing or chown-ing one (a masked unit is a link to /dev/null) damages the
 * system, and reading a FIFO blocks the run. Salt's file.managed words, with what the path is.
 */
export function refuseSpecial(p: string, name: string = p): void {
  const s = specialAt(p);
  if (!s) return;
  const via = s.path === p ? '' : ` through a symlink to ${s.path}`;
  throw new StateFailure(`Specified target ${name} exists and is not a regular file: it is a ${s.kind}${via}; refusing to change it`);
}

/** The nearest of `dir` and its ancestors that exists (links followed, as mkdir would). */
export function existingAncestor(dir: string): string {
  let d = dir;
  for (;;) {
    try {
      fs.statSync(d);
      return d;
    } catch {
      const up = path.dirname(d);
      if (up === d) return d;
      d = up;
    }
  }
}

/**
 * Fail when directories for `dir` would have to be made below something that is not a
 * directory (a link to /dev/null where a parent should be): said at check time, test runs too.
 */
export function refuseNonDirParent(dir: string, name: string): void {
  const d = existingAncestor(dir);
  const st = fs.statSync(d, { throwIfNoEntry: false });
  if (st && !st.isDirectory()) {
    const kind = specialKind(st) ?? 'file';
    throw new StateFailure(`Cannot create the directories for ${name}: ${d} exists and is not a directory (it is a ${kind})`);
  }
}

/**
 * Follow a symlink chain at `p` (the mapped path). Absolute link targets are mapped through
 * --root too, so a link to /etc/x inside the root leads to <root>/etc/x, not the host's file.
 */
export function followLinks(ctx: RunContext, p: string): string {
  let cur = p;
  for (let i = 0; i < 40; i++) {
    const st = lstatOrNull(cur);
    if (!st?.isSymbolicLink()) return cur;
    const t = fs.readlinkSync(cur);
    cur = path.isAbsolute(t) ? ctx.path(t) : path.resolve(path.dirname(cur), t);
  }
  throw new StateFailure(`Too many levels of symbolic links at ${p}`);
}

/** Salt's `exclude_pat`/`include_pat`: a glob (`*` crosses `/`, as fnmatch), or `E@regex`. */
export function patternMatcher(pat: string | undefined): ((rel: string) => boolean) | undefined {
  if (!pat) return undefined;
  if (pat.startsWith('E@')) {
    const re = new RegExp(pat.slice(2));
    return (rel) => re.test(rel);
  }
  const re = globToRegExp(pat);
  return (rel) => re.test(rel);
}
