/**
 * Salt's `user` states (salt/states/user.py) over shadow-utils: useradd/usermod/userdel,
 * chpasswd -e for hashes (kept off argv), passwd -d for empty_password.
 *
 * Changes are Salt's: the attributes of user.info that differ before/after (uid, gid, groups
 * with the primary group included, home, shell, GECOS fields), `passwd: XXX-REDACTED-XXX`; a new
 * user reports all its attributes. `check` predicts the post-state with the same rules `apply`
 * then enforces, so test mode shows exactly the keys the real run changes.
 */
import fs from 'node:fs';
import * as z from 'zod/mini';
import { boolArg, defineState, StateFailure, type Changes, type StateModule } from './define.js';
import type { RunContext } from './context.js';
import { exec, execOk, operands } from '../run/exec.js';
import {
  allGroups,
  buildGecos,
  findGroup,
  invalidateAccounts,
  loadAccounts,
  supplementaryGroups,
  type AccountsDb,
  type UserEntry,
} from '../providers/accounts/db.js';
import { idArg, nameArg, namesArg, textArg, unset } from './account-args.js';
import { accountNameArg } from './define.js';

const REDACTED = 'XXX-REDACTED-XXX';
/** what useradd leaves in /etc/shadow for a user without password (Debian '!', EL '!!') */
const DEFAULT_HASHES = new Set(['!', '!!', '*', '!*']);
const GECOS = ['fullname', 'roomnumber', 'workphone', 'homephone', 'other'] as const;

const presentArgs = z.object({
  name: accountNameArg('user'),
  uid: unset(idArg),
  gid: unset(nameArg),
  gid_from_name: z._default(boolArg, false),
  groups: z.optional(namesArg),
  optional_groups: z.optional(namesArg),
  remove_groups: z._default(boolArg, true),
  home: unset(z.string().check(z.minLength(1))),
  createhome: z._default(boolArg, true),
  password: unset(z.string()),
  enforce_password: z._default(boolArg, true),
  empty_password: z._default(boolArg, false),
  shell: unset(z.string().check(z.minLength(1))),
  unique: z._default(boolArg, true),
  system: z._default(boolArg, false),
  fullname: unset(textArg),
  roomnumber: unset(textArg),
  workphone: unset(textArg),
  homephone: unset(textArg),
  other: unset(textArg),
  usergroup: z.optional(boolArg),
  nologinit: z._default(boolArg, false),
  allow_uid_change: z._default(boolArg, false),
  allow_gid_change: z._default(boolArg, false),
});
type PresentArgs = z.output<typeof presentArgs>;

/** Salt's user.info, minus the useless passwd 'x' */
interface Info {
  name: string;
  uid: number | string;
  gid: number | string;
  groups: string[];
  home: string;
  shell: string;
  fullname: string;
  roomnumber: string;
  workphone: string;
  homephone: string;
  other: string;
}

function infoOf(db: AccountsDb, u: UserEntry): Info {
  return {
    name: u.name,
    uid: u.uid,
    gid: u.gid,
    groups: allGroups(db, u),
    home: u.home,
    shell: u.shell,
    fullname: u.fullname,
    roomnumber: u.roomnumber,
    workphone: u.workphone,
    homephone: u.homephone,
    other: u.other,
  };
}

function diffInfo(pre: Info, post: Info): Changes {
  const out: Changes = {};
  for (const k of Object.keys(post) as (keyof Info)[]) {
    if (JSON.stringify(pre[k]) !== JSON.stringify(post[k])) out[k] = post[k];
  }
  return out;
}

async function isDir(p: string): Promise<boolean> {
  return (await fs.promises.stat(p).catch(() => undefined))?.isDirectory() ?? false;
}

/** Groups resolved against the system; in test mode a missing group may come from an earlier state. */
interface Resolved {
  /** supplementary groups wanted (required + present optional), by name */
  wanted: string[];
  /** primary group: its number when known, else the name an earlier state is expected to create */
  gid: { num?: number; name: string } | undefined;
  /** names assumed to be created earlier in the run (test mode only) */
  assumed: string[];
}

function resolveGroups(ctx: RunContext, db: AccountsDb, a: PresentArgs): Resolved {
  const assumed: string[] = [];
  const wanted = new Set<string>();
  const missing: string[] = [];
  for (const g of a.groups ?? []) {
    const e = findGroup(db, g);
    if (e) wanted.add(e.name);
    else if (ctx.test) {
      wanted.add(g);
      assumed.push(g);
    } else missing.push(g);
  }
  if (missing.length) throw new StateFailure(`The following group(s) are not present: ${missing.join(',')}`);
  // optional groups that do not exist are ignored, as Salt does
  for (const g of a.optional_groups ?? []) {
    const e = findGroup(db, g);
    if (e) wanted.add(e.name);
  }
  let gid: Resolved['gid'];
  const gref = a.gid_from_name ? a.name : a.gid;
  if (gref !== undefined) {
    const e = findGroup(db, gref);
    if (e) gid = { num: e.gid, name: e.name };
    else if (ctx.test && !/^\d+$/.test(gref)) {
      gid = { name: gref };
      assumed.push(gref);
    } else throw new StateFailure(`Default group with name "${gref}" is not present`);
  }
  return { wanted: [...wanted].sort(), gid, assumed };
}

interface UpdatePlan {
  kind: 'update';
  pre: Info;
  post: Info;
  /** usermod options, one call */
  usermod: string[];
  password?: string;
  emptyPassword: boolean;
  mkhome?: string;
  /** what Salt lists in the test comment */
  requested: Changes;
}

interface CreatePlan {
  kind: 'create';
  useradd: string[];
  password?: string;
  emptyPassword: boolean;
}

/** Compare the user with the arguments (salt.states.user._changes) and plan one usermod. */
async function planUpdate(db: AccountsDb, u: UserEntry, a: PresentArgs, r: Resolved): Promise<UpdatePlan> {
  const pre = infoOf(db, u);
  const post: Info = { ...pre };
  const usermod: string[] = [];
  const requested: Changes = {};
  const errors: string[] = [];

  if (a.uid !== undefined && a.uid !== u.uid) {
    if (!a.allow_uid_change) {
      errors.push(
        `Changing uid (${u.uid} -> ${a.uid}) not permitted, set allow_uid_change to True to force this change. Note that this will not change file ownership.`,
      );
    }
    usermod.push('-u', String(a.uid));
    post.uid = a.uid;
    requested.uid = a.uid;
  }
  let primaryName = db.groupsByGid.get(u.gid)?.name;
  if (r.gid && r.gid.num !== u.gid) {
    if (!a.allow_gid_change) {
      errors.push(
        `Changing gid (${u.gid} -> ${r.gid.num ?? r.gid.name}) not permitted, set allow_gid_change to True to force this change. Note that this will not change file ownership.`,
      );
    }
    usermod.push('-g', r.gid.num !== undefined ? String(r.gid.num) : r.gid.name);
    post.gid = r.gid.num ?? r.gid.name;
    primaryName = r.gid.name;
    requested.gid = a.gid_from_name ? a.name : a.gid;
  }
  if (errors.length) throw new StateFailure(errors.join('\n'));

  // supplementary groups: the primary group is left out of the comparison on both sides
  const cur = supplementaryGroups(db, u.name);
  const curCmp = cur.filter((g) => g !== primaryName);
  let want = r.wanted;
  if (!a.remove_groups || (a.groups === undefined && !(a.optional_groups ?? []).length)) {
    want = [...new Set([...want, ...cur])].sort();
  }
  const wantCmp = want.filter((g) => g !== primaryName);
  let supp = cur;
  if ((a.groups !== undefined || wantCmp.length) && JSON.stringify(curCmp) !== JSON.stringify(wantCmp)) {
    // keep an explicit membership of the primary group: invisible to the comparison, so not ours to drop
    supp = [...new Set([...wantCmp, ...cur.filter((g) => g === primaryName)])].sort();
    usermod.push('-G', supp.join(','));
    requested.groups = wantCmp;
  }
  post.groups = [...new Set([...supp, ...(primaryName ? [primaryName] : [])])].sort();

  let mkhome: string | undefined;
  if (a.home !== undefined) {
    if (u.home !== a.home) {
      usermod.push('-d', a.home);
      post.home = a.home;
      requested.home = a.home;
    }
    if (a.createhome && !(await isDir(a.home))) {
      mkhome = a.home;
      requested.homeDoesNotExist = a.home;
    }
  }
  if (a.shell !== undefined && u.shell !== a.shell) {
    usermod.push('-s', a.shell);
    post.shell = a.shell;
    requested.shell = a.shell;
  }
  let gecosChanged = false;
  for (const k of GECOS) {
    const v = a[k];
    if (v !== undefined && u[k] !== v) {
      post[k] = v;
      requested[k] = v;
      gecosChanged = true;
    }
  }
  if (gecosChanged) usermod.push('-c', buildGecos(post));

  const shadow = db.shadow.get(u.name) ?? '';
  let password: string | undefined;
  let emptyPassword = false;
  if (a.password !== undefined && !a.empty_password) {
    if ((DEFAULT_HASHES.has(shadow) || a.enforce_password) && shadow !== a.password) {
      password = a.password;
      requested.passwd = REDACTED;
    }
  }
  if (a.empty_password && shadow !== '') {
    emptyPassword = true;
    requested.empty_password = true;
  }
  return { kind: 'update', pre, post, usermod, password, emptyPassword, mkhome, requested };
}

async function useraddDefaults(ctx: RunContext): Promise<Record<string, string>> {
  return ctx.facts.get('accounts:useradd-defaults', async () => {
    const r = await exec(['useradd', '-D']);
    const out: Record<string, string> = {};
    for (const l of r.stdout.split('\n')) {
      const i = l.indexOf('=');
      if (i > 0) out[l.slice(0, i)] = l.slice(i + 1);
    }
    return out;
  });
}

/** useradd argv (salt.modules.useradd.add) and the attributes the new user will have. */
async function planCreate(ctx: RunContext, db: AccountsDb, a: PresentArgs, r: Resolved) {
  const argv = ['useradd'];
  const d = await useraddDefaults(ctx);
  if (a.shell !== undefined) argv.push('-s', a.shell);
  if (a.uid !== undefined) argv.push('-u', String(a.uid));
  let primary: { gid: number | string; name?: string };
  if (r.gid) {
    argv.push('-g', r.gid.num !== undefined ? String(r.gid.num) : r.gid.name);
    primary = { gid: r.gid.num ?? `<gid of ${r.gid.name}>`, name: r.gid.name };
  } else if (a.usergroup === true || (a.usergroup === undefined && db.usergroupsEnab)) {
    if (a.usergroup === true) argv.push('-U');
    const existing = db.groups.get(a.name);
    if (existing && (a.groups ?? []).includes(a.name)) {
      // Salt: a user listed in its own same-named group gets it as primary group
      argv.push('-g', String(existing.gid));
      primary = { gid: existing.gid, name: existing.name };
    } else primary = { gid: '<new group>', name: a.name };
  } else {
    if (a.usergroup === false) argv.push('-N');
    const g = d.GROUP !== undefined ? findGroup(db, d.GROUP) : undefined;
    primary = { gid: g?.gid ?? Number(d.GROUP ?? 100), name: g?.name };
  }
  if (r.wanted.length) argv.push('-G', r.wanted.join(','));
  argv.push(a.createhome ? '-m' : '-M');
  if (a.home !== undefined) argv.push('-d', a.home);
  if (!a.unique) argv.push('-o');
  if (a.system) argv.push('-r');
  if (a.nologinit) argv.push('-l');
  const gecos = {
    fullname: a.fullname ?? '',
    roomnumber: a.roomnumber ?? '',
    workphone: a.workphone ?? '',
    homephone: a.homephone ?? '',
    other: a.other ?? '',
  };
  if (GECOS.some((k) => a[k] !== undefined)) argv.push('-c', buildGecos(gecos));
  argv.push('--', ...operands('user', [a.name]));

  const predicted: Info = {
    name: a.name,
    uid: a.uid ?? '<next free uid>',
    gid: primary.gid,
    groups: [...new Set([...r.wanted, ...(primary.name ? [primary.name] : [])])].sort(),
    home: a.home ?? `${d.HOME ?? '/home'}/${a.name}`,
    shell: a.shell ?? d.SHELL ?? '/bin/sh',
    ...gecos,
  };
  const plan: CreatePlan = {
    kind: 'create',
    useradd: argv,
    password: a.empty_password ? undefined : a.password,
    emptyPassword: a.empty_password,
  };
  return { plan, predicted };
}

function newUserChanges(info: Info, plan: CreatePlan): Changes {
  const c: Changes = { ...info };
  if (plan.password !== undefined) c.password = REDACTED;
  if (plan.emptyPassword) c.empty_password = true;
  return c;
}

async function setPassword(name: string, hash: string): Promise<void> {
  // chpasswd -e reads "name:hash" on stdin: the hash never shows in argv (ps)
  await execOk(['chpasswd', '-e'], { input: `${name}:${hash}\n` });
}

type PresentPlan = UpdatePlan | CreatePlan;

const present = defineState({
  args: presentArgs,
  async check(ctx, a) {
    const db = await loadAccounts(ctx.facts);
    const r = resolveGroups(ctx, db, a);
    const note = r.assumed.length ? `\n(assuming group(s) ${r.assumed.join(', ')} will be created earlier in the run)` : '';
    const u = db.users.get(a.name);
    if (!u) {
      const { plan, predicted } = await planCreate(ctx, db, a, r);
      return { changes: newUserChanges(predicted, plan), comment: `User ${a.name} set to be added${note}`, plan };
    }
    const plan = await planUpdate(db, u, a, r);
    const changes = { ...diffInfo(plan.pre, plan.post) };
    if (plan.password !== undefined || plan.emptyPassword) changes.passwd = REDACTED;
    if (plan.mkhome) changes.homeDoesNotExist = plan.mkhome;
    if (!Object.keys(changes).length) return { comment: `User ${a.name} is present and up to date` };
    const lines = Object.entries(plan.requested).map(([k, v]) => `${k}: ${Array.isArray(v) ? JSON.stringify(v) : String(v)}\n`);
    return {
      changes,
      comment: `The following user attributes are set to be changed:\n${lines.join('')}${note}`.trimEnd(),
      plan,
    };
  },

  async apply(ctx, a, plan: PresentPlan | undefined) {
    if (!plan) throw new StateFailure('internal: no plan from check');
    if (plan.kind === 'create') {
      try {
        await execOk(plan.useradd);
      } catch (e) {
        throw new StateFailure(`Failed to create new user ${a.name}: ${(e as Error).message}`);
      }
      invalidateAccounts(ctx.facts);
      let db = await loadAccounts(ctx.facts);
      const u = db.users.get(a.name);
      if (!u) throw new StateFailure(`Failed to create new user ${a.name}: useradd succeeded but the user is missing`);
      const changes = newUserChanges(infoOf(db, u), plan);
      try {
        if (plan.password !== undefined) await setPassword(a.name, plan.password);
        if (plan.emptyPassword) await execOk(['passwd', '-d', '--', ...operands('user', [a.name])]);
      } catch (e) {
        throw new StateFailure(`User ${a.name} created but failed to set password: ${(e as Error).message}`, changes);
      } finally {
        invalidateAccounts(ctx.facts);
      }
      db = await loadAccounts(ctx.facts);
      if (plan.password !== undefined && db.shadow.get(a.name) !== plan.password) {
        throw new StateFailure(`User ${a.name} created but failed to set password`, changes);
      }
      return { changes, comment: `New user ${a.name} created` };
    }

    const steps: string[] = [];
    try {
      if (plan.usermod.length) {
        steps.push('usermod');
        await execOk(['usermod', ...plan.usermod, '--', ...operands('user', [a.name])]);
      }
      if (plan.password !== undefined) {
        steps.push('password');
        await setPassword(a.name, plan.password);
      }
      if (plan.emptyPassword) {
        steps.push('empty_password');
        await execOk(['passwd', '-d', '--', ...operands('user', [a.name])]);
      }
    } catch (e) {
      invalidateAccounts(ctx.facts);
      throw new StateFailure(`Failed to update user ${a.name} (${steps.at(-1)}): ${(e as Error).message}`);
    }
    invalidateAccounts(ctx.facts);
    const db = await loadAccounts(ctx.facts);
    const u = db.users.get(a.name);
    if (!u) throw new StateFailure(`User ${a.name} disappeared while being updated`);
    if (plan.mkhome) {
      // Salt creates a missing home of an existing user (createhome), owned by the user
      await fs.promises.mkdir(plan.mkhome, { recursive: true, mode: 0o755 });
      await fs.promises.chown(plan.mkhome, u.uid, u.gid);
    }
    const changes: Changes = diffInfo(plan.pre, infoOf(db, u));
    if (plan.password !== undefined || plan.emptyPassword) changes.passwd = REDACTED;
    if (plan.mkhome) changes.homeDoesNotExist = plan.mkhome;
    // verify: what still differs could not be changed
    const again = await planUpdate(db, u, a, resolveGroups(ctx, db, a));
    const left = { ...again.requested };
    if (Object.keys(left).length) {
      throw new StateFailure(`These values could not be changed: ${JSON.stringify(left)}`, changes);
    }
    return { changes, comment: `Updated user ${a.name}` };
  },
});

const absentArgs = z.object({
  name: accountNameArg('user'),
  purge: z._default(boolArg, false),
  force: z._default(boolArg, false),
});

/** The user-private group userdel also deletes (USERGROUPS_ENAB, same name, primary, unshared). */
function privateGroupRemoved(db: AccountsDb, u: UserEntry): string | undefined {
  if (!db.usergroupsEnab) return undefined;
  const g = db.groups.get(u.name);
  if (!g || g.gid !== u.gid) return undefined;
  if (g.members.some((m) => m !== u.name)) return undefined;
  for (const other of db.users.values()) if (other.name !== u.name && other.gid === g.gid) return undefined;
  return g.name;
}

const absent = defineState({
  args: absentArgs,
  async check(ctx, a) {
    const db = await loadAccounts(ctx.facts);
    const u = db.users.get(a.name);
    if (!u) return { comment: `User ${a.name} is not present` };
    const changes: Changes = {};
    const g = privateGroupRemoved(db, u);
    if (g) changes[`${g} group`] = 'removed';
    changes[a.name] = 'removed';
    return { changes, comment: `User ${a.name} set for removal`, plan: allGroups(db, u) };
  },
  async apply(ctx, a, before: string[] | undefined) {
    const argv = ['userdel'];
    if (a.purge) argv.push('-r');
    if (a.force) argv.push('-f');
    argv.push('--', ...operands('user', [a.name]));
    const r = await exec(argv);
    invalidateAccounts(ctx.facts);
    const db = await loadAccounts(ctx.facts);
    // userdel exits 12 when only the mail spool/home could not be removed (Debian): the user is gone
    if (db.users.has(a.name)) {
      throw new StateFailure(`Failed to remove user ${a.name}: ${(r.stderr || r.stdout).trim()}`);
    }
    const changes: Changes = {};
    for (const g of before ?? []) if (!db.groups.has(g)) changes[`${g} group`] = 'removed';
    changes[a.name] = 'removed';
    return { changes, comment: `Removed user ${a.name}` };
  },
});

export default { present, absent } satisfies StateModule;
