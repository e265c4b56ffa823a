/**
 * user/group/mode of managed paths: name resolution from /etc/passwd and /etc/group (read once
 * per run through the fact cache), Salt's `check_perms` comparison, and applying the result.
 * Names are the machine's even under --root: --root maps paths, not accounts.
 */
import fs from 'node:fs';
import type { RunContext } from '../context.js';
import type { Changes } from '../define.js';
import { StateFailure } from '../define.js';
import { invalidateAccounts, loadAccounts, type AccountsDb } from '../../providers/accounts/db.js';
import { lstatOrNull, specialAt, specialKind } from './paths.js';

/**
 * uid/gid for a user/group name (or numeric id); undefined when unknown. Uses the run's account
 * database (shared with user/group states, which invalidate it when they change accounts); a miss
 * re-reads it once, since an earlier state of this run may have created the account.
 */
async function lookup(ctx: RunContext, kind: 'user' | 'group', name: string): Promise<number | undefined> {
  if (/^\d+$/.test(name)) return Number(name);
  const find = (db: AccountsDb) => (kind === 'user' ? db.users.get(name)?.uid : db.groups.get(name)?.gid);
  const hit = find(await loadAccounts(ctx.facts));
  if (hit !== undefined) return hit;
  invalidateAccounts(ctx.facts);
  return find(await loadAccounts(ctx.facts));
}

export interface Owner {
  user?: string;
  group?: string;
  uid?: number;
  gid?: number;
  /** Salt's "User x is not available" wording; empty when both resolved. */
  missing: string[];
}

/**
 * Resolve user/group. A missing account fails the state, except in test mode where Salt only
 * warns (the comment says so and the change is still reported).
 */
export async function resolveOwner(ctx: RunContext, user?: string, group?: string): Promise<Owner> {
  const o: Owner = { user, group, missing: [] };
  if (user !== undefined) {
    o.uid = await lookup(ctx, 'user', user);
    if (o.uid === undefined) o.missing.push(`User ${user} is not available`);
  }
  if (group !== undefined) {
    o.gid = await lookup(ctx, 'group', group);
    if (o.gid === undefined) o.missing.push(`Group ${group} is not available`);
  }
  if (o.missing.length && !ctx.test) throw new StateFailure(o.missing.join('; '));
  return o;
}

/** What a path looks like now, or what a freshly created one would look like. */
export interface PermState {
  uid: number;
  gid: number;
  mode: number;
}

export function statPerms(st: fs.Stats): PermState {
  return { uid: st.uid, gid: st.gid, mode: st.mode & 0o7777 };
}

/**
 * The process umask, without the deprecated `process.umask()` read. Read once: only the process
 * itself can change its umask and tsalt never does, while reading /proc/self/status for every
 * file state was a measurable part of a no-op run.
 */
let processUmask: number | undefined;
export function umask(): number {
  if (processUmask === undefined) processUmask = readUmask();
  return processUmask;
}

function readUmask(): number {
  try {
    const m = /^Umask:\s*([0-7]+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (m) return parseInt(m[1]!, 8);
  } catch {
    /* not Linux: fall through */
  }
  return 0o022;
}

/** Owner and mode a new file/directory gets when the state sets nothing. */
export function defaultPerms(kind: 'file' | 'dir'): PermState {
  const base = kind === 'file' ? 0o666 : 0o777;
  return { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, mode: base & ~umask() };
}

export function fmtMode(m: number): string {
  return m.toString(8).padStart(4, '0');
}

/** Salt's check_perms: `{user, group, mode}` for what differs; unresolvable names count as differing. */
export function permChanges(cur: PermState, owner: Owner, mode: string | undefined): Changes {
  const ch: Changes = {};
  if (owner.user !== undefined && owner.uid !== cur.uid) ch.user = owner.user;
  if (owner.group !== undefined && owner.gid !== cur.gid) ch.group = owner.group;
  if (mode !== undefined && parseInt(mode, 8) !== cur.mode) ch.mode = mode;
  return ch;
}

/** The perms a path should end with: desired where given, otherwise what it has (or would get). */
export function targetPerms(cur: PermState, owner: Owner, mode: string | undefined): PermState {
  return {
    uid: owner.uid ?? cur.uid,
    gid: owner.gid ?? cur.gid,
    mode: mode !== undefined ? parseInt(mode, 8) : cur.mode,
  };
}

/**
 * chown before chmod: chown clears setuid/setgid bits. lchown for links (never follow).
 * Never on a device, FIFO or socket, nor through a link to one (chmod follows links: a
 * masked unit's mode would land on /dev/null).
 */
export async function setPerms(p: string, cur: PermState, want: PermState, link = false): Promise<void> {
  const l = link ? lstatOrNull(p) : null;
  const special = link ? (l && specialKind(l) ? { path: p, kind: specialKind(l)! } : undefined) : specialAt(p);
  if (special) {
    const via = special.path === p ? '' : ` (through a symlink to ${special.path})`;
    throw new StateFailure(`Refusing to set owner or mode of ${p}: it is a ${special.kind}${via}`);
  }
  if (want.uid !== cur.uid || want.gid !== cur.gid) {
    await (link ? fs.promises.lchown(p, want.uid, want.gid) : fs.promises.chown(p, want.uid, want.gid));
  }
  if (!link) await fs.promises.chmod(p, want.mode);
}
