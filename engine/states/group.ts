/**
 * Salt's `group` states (salt/states/group.py) over groupadd/groupmod/gpasswd/groupdel.
 *
 * Changes are keyed by what changed: {gid, members, addusers, delusers}; a new group reports
 * {name, gid, members}. (Salt itself reports `{Final: 'All changes applied successfully'}` for
 * an update and lists the attributes only in the comment; the attribute keys say more and let
 * test mode predict exactly the keys of the real run.) `members: []` empties the group.
 */
import * as z from 'zod/mini';
import { accountNameArg, boolArg, defineState, StateFailure, type Changes, type StateModule } from './define.js';
import type { RunContext } from './context.js';
import { exec, execOk, operands } from '../run/exec.js';
import { getpwnam } from '../run/shell-command.js';
import { invalidateAccounts, loadAccounts, type AccountsDb, type GroupEntry } from '../providers/accounts/db.js';
import { idArg, namesArg, unset } from './account-args.js';

const presentArgs = z.object({
  name: accountNameArg('group'),
  gid: unset(idArg),
  system: z._default(boolArg, false),
  members: unset(namesArg),
  addusers: unset(namesArg),
  delusers: unset(namesArg),
});
type PresentArgs = z.output<typeof presentArgs>;

const sorted = (l: string[]) => [...new Set(l)].sort();

function validate(a: PresentArgs): void {
  if (a.members !== undefined && (a.addusers?.length || a.delusers?.length)) {
    throw new StateFailure('Error: Conflicting options "members" with "addusers" and/or "delusers" can not be used together. ');
  }
  if (a.addusers && a.delusers && a.addusers.some((u) => a.delusers!.includes(u))) {
    throw new StateFailure('Error. Same user(s) can not be added and deleted simultaneously');
  }
}

/** Users we are about to add must exist (gpasswd refuses otherwise, after groupadd already ran). */
async function checkUsers(ctx: RunContext, db: AccountsDb, users: string[]): Promise<string[]> {
  const missing: string[] = [];
  for (const u of users) if (!db.users.has(u) && !(await getpwnam(u))) missing.push(u);
  if (missing.length && !ctx.test) throw new StateFailure(`The following user(s) are not present: ${missing.join(',')}`);
  return missing;
}

/** salt.states.group._changes */
function changesFor(g: GroupEntry, a: PresentArgs): Changes {
  const c: Changes = {};
  if (a.gid !== undefined && g.gid !== a.gid) c.gid = a.gid;
  if (a.members !== undefined && JSON.stringify(sorted(g.members)) !== JSON.stringify(sorted(a.members))) {
    c.members = sorted(a.members);
  }
  const add = (a.addusers ?? []).filter((u) => !g.members.includes(u));
  if (add.length) c.addusers = add;
  const del = (a.delusers ?? []).filter((u) => g.members.includes(u));
  if (del.length) c.delusers = del;
  return c;
}

function describe(c: Changes): string {
  const lines = Object.entries(c).map(([k, v]) => `${k}: ${Array.isArray(v) ? JSON.stringify(v) : String(v)}\n`);
  return `The following group attributes are set to be changed:\n${lines.join('')}`;
}

type Plan = { kind: 'create' } | { kind: 'update'; changes: Changes };

const present = defineState({
  args: presentArgs,
  async check(ctx, a) {
    validate(a);
    const db = await loadAccounts(ctx.facts);
    const g = db.groups.get(a.name);
    if (!g) {
      if (a.gid !== undefined) {
        const taken = db.groupsByGid.get(a.gid);
        if (taken) throw new StateFailure(`Group ${a.name} is not present but gid ${a.gid} is already taken by group ${taken.name}`);
      }
      const members = sorted(a.members ?? a.addusers ?? []);
      const missing = await checkUsers(ctx, db, members);
      const note = missing.length ? `\n(assuming user(s) ${missing.join(', ')} will be created earlier in the run)` : '';
      return {
        changes: { name: a.name, gid: a.gid ?? '<next free gid>', members },
        comment: `Group ${a.name} set to be added${note}`,
        plan: { kind: 'create' } as Plan,
      };
    }
    const changes = changesFor(g, a);
    if (!Object.keys(changes).length) return { comment: `Group ${a.name} is present and up to date` };
    const adding = [...((changes.members as string[] | undefined) ?? []), ...((changes.addusers as string[] | undefined) ?? [])];
    await checkUsers(ctx, db, adding.filter((u) => !g.members.includes(u)));
    return { changes, comment: describe(changes).trimEnd(), plan: { kind: 'update', changes } as Plan };
  },

  async apply(ctx, a, plan: Plan | undefined) {
    if (!plan) throw new StateFailure('internal: no plan from check');
    if (plan.kind === 'create') {
      const argv = ['groupadd'];
      if (a.gid !== undefined) argv.push('-g', String(a.gid));
      if (a.system) argv.push('-r');
      argv.push('--', ...operands('group', [a.name]));
      let created = false;
      try {
        await execOk(argv);
        created = true;
        const members = sorted(a.members ?? a.addusers ?? []);
        if (members.length) await execOk(['gpasswd', '-M', operands('user', members).join(','), '--', a.name]);
      } catch (e) {
        invalidateAccounts(ctx.facts);
        // nothing half-done: a group whose members could not be set is removed again
        if (created) await exec(['groupdel', '--', a.name]);
        throw new StateFailure(`Failed to create new group ${a.name}: ${(e as Error).message}`);
      }
      invalidateAccounts(ctx.facts);
      const db = await loadAccounts(ctx.facts);
      const g = db.groups.get(a.name);
      if (!g) throw new StateFailure(`Failed to create new group ${a.name}`);
      const left = changesFor(g, a);
      const changes = { name: g.name, gid: g.gid, members: sorted(g.members) };
      if (Object.keys(left).length) {
        throw new StateFailure(`Group ${a.name} has been created but, some changes could not be applied: ${JSON.stringify(left)}`, changes);
      }
      return { changes, comment: `New group ${a.name} created` };
    }

    const c = plan.changes;
    try {
      if (c.gid !== undefined) await execOk(['groupmod', '-g', String(c.gid), '--', ...operands('group', [a.name])]);
      if (c.members !== undefined) await execOk(['gpasswd', '-M', operands('user', c.members as string[]).join(','), '--', a.name]);
      for (const u of operands('user', (c.addusers as string[] | undefined) ?? [])) await execOk(['gpasswd', '-a', u, '--', a.name]);
      for (const u of operands('user', (c.delusers as string[] | undefined) ?? [])) await execOk(['gpasswd', '-d', u, '--', a.name]);
    } catch (e) {
      invalidateAccounts(ctx.facts);
      throw new StateFailure(`${describe(c)}Some changes could not be applied: ${(e as Error).message}`);
    }
    invalidateAccounts(ctx.facts);
    const db = await loadAccounts(ctx.facts);
    const g = db.groups.get(a.name);
    const left = g ? changesFor(g, a) : { name: 'group disappeared' };
    if (Object.keys(left).length) {
      throw new StateFailure(`${describe(c)}Some changes could not be applied`, { Failed: left });
    }
    return { changes: c, comment: describe(c).trimEnd() };
  },
});

const absent = defineState({
  args: z.object({ name: accountNameArg('group') }),
  async check(ctx, a) {
    const db = await loadAccounts(ctx.facts);
    if (!db.groups.has(a.name)) return { comment: 'Group not present' };
    return { changes: { [a.name]: '' }, comment: `Group ${a.name} is set for removal` };
  },
  async apply(ctx, a) {
    const r = await exec(['groupdel', '--', ...operands('group', [a.name])]);
    invalidateAccounts(ctx.facts);
    if (r.code !== 0) throw new StateFailure(`Failed to remove group ${a.name}: ${(r.stderr || r.stdout).trim()}`);
    return { changes: { [a.name]: '' }, comment: `Removed group ${a.name}` };
  },
});

export default { present, absent } satisfies StateModule;
