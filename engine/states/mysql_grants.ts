/**
 * mysql_grants.present / mysql_grants.absent, as salt.states.mysql_grants: privileges of one
 * account (user@host) at one level (`database`: db.*, db.table, *.*). The state's `name` is
 * only a label. What the account holds comes from SHOW GRANTS FOR, read once per run and
 * normalised (engine/states/mysql/grants.ts) so a second run finds nothing to do.
 *
 * present: the level must give at least the listed privileges (ALL PRIVILEGES gives them
 * all). With revoke_first the level must hold exactly them: anything else there is revoked
 * before the GRANT, which is how a grant is narrowed (MySQL never narrows on GRANT).
 * absent: the listed privileges the account holds at that level are revoked.
 */
import * as z from 'zod/mini';
import type { RunContext } from './context.js';
import { boolArg, defineState, StateFailure, type StateModule } from './define.js';
import { checkName, connectionArgs, invalidate, readGrantLines, resolveConnection, runSql, type Connection } from './mysql/client.js';
import {
  account,
  exactly,
  heldOf,
  levelKey,
  levelSql,
  missing,
  parseHeld,
  parseLevel,
  parseWanted,
  privListSql,
  type Held,
  type Level,
  type Priv,
} from './mysql/grants.js';

/** "select,insert" or a YAML list of privileges */
const grantArg = z.pipe(
  z.union([z.string(), z.array(z.string())]),
  z.transform((v) => (Array.isArray(v) ? v.join(',') : v)),
);

const common = {
  name: z.string().check(z.minLength(1)),
  grant: grantArg,
  database: z.string().check(z.minLength(1)),
  user: z.string().check(z.minLength(1)),
  host: z._default(z.string(), 'localhost'),
  grant_option: z._default(boolArg, false),
  /** `_` and `%` in a database-level name are literal (Salt's default), not wildcards */
  escape: z._default(boolArg, true),
  ...connectionArgs,
};

const presentArgs = z.object({ ...common, revoke_first: z._default(boolArg, false) });
const absentArgs = z.object(common);

interface Target {
  conn: Connection;
  level: Level;
  privs: Priv[];
  grantOption: boolean;
  /** what the account holds at the level; undefined: the account does not exist */
  held: Held | undefined;
  exists: boolean;
}

async function target(ctx: RunContext, a: z.output<typeof absentArgs>): Promise<Target> {
  checkName('user', a.user);
  checkName('host', a.host);
  checkName('database', a.database);
  const want = parseWanted(a.grant);
  const level = parseLevel(a.database, a.escape);
  if (want.privs.some((p) => p.column !== undefined) && level.table === '*') {
    throw new StateFailure('column privileges need a table: database must be db.table');
  }
  const conn = resolveConnection(ctx, a);
  const lines = await readGrantLines(ctx, conn, a.user, a.host);
  return {
    conn,
    level,
    privs: want.privs,
    grantOption: a.grant_option || want.grantOption,
    held: lines ? parseHeld(lines).get(levelKey(level)) : undefined,
    exists: lines !== undefined,
  };
}

function isPresent(t: Target, revokeFirst: boolean): boolean {
  if (!t.exists) return false;
  if (revokeFirst) return exactly(t.held, t.privs, t.grantOption);
  return missing(t.held, t.privs).length === 0 && (!t.grantOption || (t.held?.grantOption ?? false));
}

/** Read the account's grants again after a change (the run's cached copy is stale). */
async function reread(ctx: RunContext, t: Target, a: { user: string; host: string }): Promise<Target> {
  invalidate(ctx, t.conn, a);
  const lines = await readGrantLines(ctx, t.conn, a.user, a.host);
  return { ...t, held: lines ? parseHeld(lines).get(levelKey(t.level)) : undefined, exists: lines !== undefined };
}

const present = defineState<typeof presentArgs, Target>({
  args: presentArgs,
  async check(ctx, a) {
    const t = await target(ctx, a);
    const what = `${a.grant} on ${a.database} to ${a.user}@${a.host}`;
    if (isPresent(t, a.revoke_first)) return { comment: `Grant ${what} is already present` };
    // a test run may come before the mysql_user state that creates the account
    if (!t.exists && !ctx.test) throw new StateFailure(`Failed to execute: "GRANT ${what}" (user ${a.user}@${a.host} does not exist)`);
    return {
      changes: { [a.name]: 'Present' },
      plan: t,
      comment: `MySQL grant ${a.name} is set to be created` + (t.exists ? '' : ` (user ${a.user}@${a.host} does not exist yet)`),
    };
  },
  async apply(ctx, a, t) {
    const to = account(a.user, a.host);
    const on = levelSql(t!.level);
    let sql = '';
    if (a.revoke_first && t!.held) {
      // REVOKE on a level the account has no row for is an error: only what is there
      if (t!.held.privs.size) sql += `REVOKE ALL PRIVILEGES ON ${on} FROM ${to};\n`;
      if (t!.held.grantOption) sql += `REVOKE GRANT OPTION ON ${on} FROM ${to};\n`;
    }
    const privs = t!.privs.filter((p) => p.canon !== 'USAGE');
    sql += `GRANT ${privListSql(privs) || 'USAGE'} ON ${on} TO ${to}${t!.grantOption ? ' WITH GRANT OPTION' : ''};\n`;
    try {
      await runSql(t!.conn, sql);
    } finally {
      invalidate(ctx, t!.conn, a);
    }
    const what = `${a.grant} on ${a.database} to ${a.user}@${a.host}`;
    // the server had the last word: say so if it did not end up as asked
    if (!isPresent(await reread(ctx, t!, a), a.revoke_first)) {
      throw new StateFailure(`Grant ${what} has NOT been added: SHOW GRANTS does not show it afterwards`, { [a.name]: 'Present' });
    }
    return { changes: { [a.name]: 'Present' }, comment: `Grant ${what} has been added` };
  },
});

interface RevokePlan {
  t: Target;
  privs: Priv[];
  grantOption: boolean;
}

const absent = defineState<typeof absentArgs, RevokePlan>({
  args: absentArgs,
  async check(ctx, a) {
    const t = await target(ctx, a);
    const privs = heldOf(t.held, t.privs);
    const grantOption = t.grantOption && (t.held?.grantOption ?? false);
    if (!privs.length && !grantOption) {
      return { comment: `Grant ${a.grant} on ${a.database} to ${a.user}@${a.host} is not present, so it cannot be revoked` };
    }
    return { changes: { [a.name]: 'Absent' }, plan: { t, privs, grantOption }, comment: `MySQL grant ${a.name} is set to be revoked` };
  },
  async apply(ctx, a, plan) {
    const { t, privs, grantOption } = plan!;
    const to = account(a.user, a.host);
    const on = levelSql(t.level);
    let sql = '';
    if (privs.length) sql += `REVOKE ${privListSql(privs)} ON ${on} FROM ${to};\n`;
    if (grantOption) sql += `REVOKE GRANT OPTION ON ${on} FROM ${to};\n`;
    try {
      await runSql(t.conn, sql);
    } finally {
      invalidate(ctx, t.conn, a);
    }
    const what = `${a.grant} on ${a.database} for ${a.user}@${a.host}`;
    const after = await reread(ctx, t, a);
    if (heldOf(after.held, privs).length || (grantOption && after.held?.grantOption)) {
      throw new StateFailure(`Unable to revoke grant ${what}: SHOW GRANTS still shows it afterwards`, { [a.name]: 'Absent' });
    }
    return { changes: { [a.name]: 'Absent' }, comment: `Grant ${what} has been revoked` };
  },
});

export default { present, absent } satisfies StateModule;
