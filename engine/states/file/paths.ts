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
