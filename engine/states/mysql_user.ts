/**
 * mysql_user.present / mysql_user.absent, as salt.states.mysql_user: an account (user@host)
 * with a password, a password hash, no password (allow_passwordless) or unix_socket login.
 * Accounts are read from mysql.global_priv (MariaDB 10.4+), once per run.
 *
 * A password never reaches the server or any output: its mysql_native_password hash is
 * computed here, compared with the stored one and sent as a hash (IDENTIFIED BY PASSWORD,
 * SET PASSWORD = '*...'). SET PASSWORD keeps the rest of an `IDENTIFIED VIA a OR b` chain, so
 * an account that also logs in by unix_socket (Debian's root) keeps doing so.
 */
import * as z from 'zod/mini';
import { boolArg, defineState, StateFailure, type Changes, type StateModule } from './define.js';
import {
  checkName,
  connectionArgs,
  findAccount,
  invalidate,
  nativeHash,
  quoteString,
  readAccounts,
  resolveConnection,
  runSql,
  type Account,
} from './mysql/client.js';

/** YAML turns an unquoted password of digits into a number. */
const secret = z.pipe(
  z.union([z.string(), z.number()]),
  z.transform((v) => String(v)),
);

const presentArgs = z.object({
  name: z.string().check(z.minLength(1)),
  host: z._default(z.string(), 'localhost'),
  password: z.optional(z.nullable(secret)),
  password_hash: z.optional(z.nullable(z.string())),
  allow_passwordless: z._default(boolArg, false),
  unix_socket: z._default(boolArg, false),
  ...connectionArgs,
});
type PresentArgs = z.output<typeof presentArgs>;

const absentArgs = z.object({
  // '' is the anonymous user (''@'localhost'), which hardening states remove
  name: z.string(),
  host: z._default(z.string(), 'localhost'),
  ...connectionArgs,
});

/** How the account should log in. `hash` '' is an empty password (passwordless). */
type Auth = { kind: 'socket' } | { kind: 'native'; hash: string; from: 'password' | 'hash' | 'none' };

function wantedAuth(a: PresentArgs): Auth {
  const password = a.password || undefined; // '' counts as none, as Salt's any()
  if (a.unix_socket) {
    if (password || a.password_hash) throw new StateFailure('unix_socket logs in without a password: drop password/password_hash or unix_socket');
    // salt.modules.mysql: "Auth via unix_socket can be set only for host=localhost"
    if (a.host.toLowerCase() !== 'localhost') throw new StateFailure('Auth via unix_socket can be set only for host=localhost');
    return { kind: 'socket' };
  }
  // password wins over password_hash (Salt's documented precedence)
  if (password) return { kind: 'native', hash: nativeHash(password), from: 'password' };
  if (a.password_hash) {
    if (!/^\*[0-9A-Fa-f]{40}$/.test(a.password_hash)) {
      throw new StateFailure("password_hash must be a mysql_native_password hash: '*' and 40 hex digits, as SELECT PASSWORD('...') prints");
    }
    return { kind: 'native', hash: a.password_hash.toUpperCase(), from: 'hash' };
  }
  if (!a.allow_passwordless) throw new StateFailure('Either password or password_hash must be specified, unless allow_passwordless is True');
  return { kind: 'native', hash: '', from: 'none' };
}

/** Some method of the account's chain logs in the way `want` says. */
function satisfied(acc: Account, want: Auth): boolean {
  if (want.kind === 'socket') return acc.auth.some((m) => m.plugin === 'unix_socket');
  return acc.auth.some((m) => m.plugin === 'mysql_native_password' && m.authentication_string === want.hash);
}

const cleared = (w: Auth) => w.kind === 'socket' || w.hash === '';

interface Plan {
  sql: string;
  create: boolean;
}

const present = defineState<typeof presentArgs, Plan>({
  args: presentArgs,
  async check(ctx, a) {
    checkName('user name', a.name);
    checkName('host', a.host);
    const want = wantedAuth(a);
    const conn = resolveConnection(ctx, a);
    const who = `${a.name}@${a.host}`;
    const acc = findAccount(await readAccounts(ctx, conn), a.name, a.host);
    const target = `${quoteString(a.name)}@${quoteString(a.host)}`;
    if (!acc) {
      const how =
        want.kind === 'socket' ? ' IDENTIFIED VIA unix_socket' : want.hash ? ` IDENTIFIED BY PASSWORD ${quoteString(want.hash)}` : '';
      let comment = `User ${who} is set to be added`;
      if (want.kind === 'native' && want.from === 'none') comment += ' with passwordless login';
      if (want.kind === 'socket') comment += ' using unix_socket';
      return { changes: { [a.name]: 'Present' }, plan: { sql: `CREATE USER ${target}${how};\n`, create: true }, comment };
    }
    if (satisfied(acc, want)) {
      let comment = `User ${who} is already present`;
      if (want.kind === 'native') {
        if (want.from === 'none') comment += ' with passwordless login';
        else comment += want.from === 'hash' ? ' with the desired password hash' : ' with the desired password';
      } else if (a.allow_passwordless) comment += ' with passwordless login';
      return { comment };
    }
    let sql: string;
    if (want.kind === 'socket') sql = `ALTER USER ${target} IDENTIFIED VIA unix_socket;\n`;
    // SET PASSWORD changes the password methods of the chain and keeps the others
    else if (acc.auth.some((m) => m.plugin === 'mysql_native_password')) sql = `SET PASSWORD FOR ${target} = ${quoteString(want.hash)};\n`;
    else sql = `ALTER USER ${target} IDENTIFIED VIA mysql_native_password USING ${quoteString(want.hash)};\n`;
    const verb = cleared(want) ? 'cleared' : 'changed';
    const changes: Changes = { password: verb, [a.name]: 'Updated' };
    return { changes, plan: { sql, create: false }, comment: `Password for user ${who} is set to be ${verb}` };
  },
  async apply(ctx, a, plan) {
    const want = wantedAuth(a);
    const conn = resolveConnection(ctx, a);
    const who = `${a.name}@${a.host}`;
    try {
      await runSql(conn, plan!.sql, [a.password ?? undefined, a.password_hash ?? undefined, want.kind === 'native' ? want.hash : undefined]);
    } finally {
      invalidate(ctx, conn, 'accounts');
      invalidate(ctx, conn, { user: a.name, host: a.host });
    }
    if (plan!.create) {
      let comment = `The user ${who} has been added`;
      if (want.kind === 'native' && want.from === 'none') comment += ' with passwordless login';
      if (want.kind === 'socket') comment += ' using unix_socket';
      return { changes: { [a.name]: 'Present' }, comment };
    }
    const verb = cleared(want) ? 'cleared' : 'changed';
    return { changes: { password: verb, [a.name]: 'Updated' }, comment: `Password for user ${who} has been ${verb}` };
  },
});

const absent = defineState<typeof absentArgs>({
  args: absentArgs,
  async check(ctx, a) {
    checkName('user name', a.name);
    checkName('host', a.host);
    const conn = resolveConnection(ctx, a);
    if (!findAccount(await readAccounts(ctx, conn), a.name, a.host)) {
      return { comment: `User ${a.name}@${a.host} is not present, so it cannot be removed` };
    }
    return { changes: { [a.name]: 'Absent' }, comment: `User ${a.name}@${a.host} is set to be removed` };
  },
  async apply(ctx, a) {
    const conn = resolveConnection(ctx, a);
    try {
      await runSql(conn, `DROP USER ${quoteString(a.name)}@${quoteString(a.host)};\n`);
    } finally {
      invalidate(ctx, conn, 'accounts');
      invalidate(ctx, conn, { user: a.name, host: a.host });
    }
    return { changes: { [a.name]: 'Absent' }, comment: `User ${a.name}@${a.host} has been removed` };
  },
});

export default { present, absent } satisfies StateModule;
