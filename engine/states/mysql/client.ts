/**
 * Talking to MySQL/MariaDB for the mysql_* states: the `mariadb` (or `mysql`) command-line
 * client with SQL on stdin, no driver dependency. Connection settings follow
 * salt.modules.mysql: `connection_*` state arguments first, then `mysql.*` minion options
 * (then pillar), then Salt's defaults (localhost, 3306, root; localhost means the unix socket).
 *
 * Secrets: a password never goes on the command line (argv is world-readable in ps). It is
 * written to a private 0600 option file in a 0700 temp directory, passed as --defaults-file
 * and removed after the run. Error messages have every secret we know of replaced by '***'.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as z from 'zod/mini';
import type { RunContext } from '../context.js';
import { StateFailure } from '../define.js';
import { exec } from '../../run/exec.js';

// ---- connection arguments (Salt's names) ----

const text = z.pipe(
  z.union([z.string(), z.number()]),
  z.transform((v) => String(v)),
);

/** Spread into a state's z.object: every mysql_* function takes these. */
export const connectionArgs = {
  connection_host: z.optional(z.string()),
  connection_port: z.optional(
    z.union([z.number().check(z.int(), z.gte(0), z.lte(65535)), z.string().check(z.regex(/^\d+$/, 'a port number'))]),
  ),
  connection_user: z.optional(text),
  connection_pass: z.optional(text),
  connection_db: z.optional(z.string()),
  connection_unix_socket: z.optional(z.string()),
  /** the name some trees use for connection_unix_socket */
  connection_socket: z.optional(z.string()),
  connection_default_file: z.optional(z.string()),
  connection_charset: z.optional(z.string().check(z.regex(/^\w+$/, 'a character set name like utf8mb4'))),
};

export interface ConnArgs {
  connection_host?: string;
  connection_port?: number | string;
  connection_user?: string;
  connection_pass?: string;
  connection_db?: string;
  connection_unix_socket?: string;
  connection_socket?: string;
  connection_default_file?: string;
  connection_charset?: string;
}

export interface Connection {
  host?: string;
  port?: string;
  user?: string;
  pass?: string;
  db?: string;
  socket?: string;
  defaultFile?: string;
  charset: string;
  /** identifies the server and login in fact keys; holds a digest of the password, never the password */
  key: string;
}

function setting(ctx: RunContext, name: string): string | undefined {
  // salt's config.option: minion options, then pillar, flat 'mysql.<name>' keys
  for (const src of [ctx.opts, ctx.pillar]) {
    const v = src[`mysql.${name}`];
    if (v !== undefined && v !== null && v !== '') return String(v);
  }
  return undefined;
}

/** Resolve where and as whom to connect, as salt.modules.mysql._connect does. */
export function resolveConnection(ctx: RunContext, a: ConnArgs): Connection {
  // an explicit default file turns off the minion options (they could override the file)
  const useOpts = a.connection_default_file === undefined;
  const pick = (arg: unknown, opt: string): string | undefined => {
    if (arg !== undefined && arg !== null && arg !== '') return String(arg);
    return useOpts ? setting(ctx, opt) : undefined;
  };
  const c = {
    host: pick(a.connection_host, 'host'),
    port: pick(a.connection_port, 'port'),
    user: pick(a.connection_user, 'user'),
    pass: pick(a.connection_pass, 'pass'),
    db: pick(a.connection_db, 'db'),
    socket: pick(a.connection_unix_socket ?? a.connection_socket, 'unix_socket'),
    defaultFile: pick(a.connection_default_file, 'default_file'),
    charset: (a.connection_charset ?? setting(ctx, 'charset') ?? 'utf8mb4') as string,
  };
  if (c.port !== undefined && !/^\d+$/.test(c.port)) throw new StateFailure(`mysql port must be a number, got '${c.port}'`);
  if (!/^\w+$/.test(c.charset)) throw new StateFailure(`mysql charset must be a character set name, got '${c.charset}'`);
  for (const [k, v] of Object.entries(c)) {
    // option files are line based: a line break would let a value inject options
    if (typeof v === 'string' && /[\r\n\0]/.test(v)) throw new StateFailure(`mysql connection ${k} must not contain line breaks`);
  }
  // Salt's defaults when no option file supplies them; the client reads localhost as "use the socket"
  if (c.defaultFile === undefined) {
    c.host ??= 'localhost';
    c.port ??= '3306';
    c.user ??= 'root';
  }
  const digest = c.pass === undefined ? '' : crypto.createHash('sha256').update(c.pass).digest('hex').slice(0, 16);
  const key = JSON.stringify([c.host, c.port, c.user, digest, c.db, c.socket, c.defaultFile, c.charset]);
  return { ...c, key };
}

// ---- SQL text ----

/** `name` as an identifier: backticks, with backticks inside doubled. */
export function quoteIdent(s: string): string {
  return '`' + s.replace(/`/g, '``') + '`';
}

/** `s` as a string literal. Valid because every script starts with PRELUDE (backslash escapes on). */
export function quoteString(s: string): string {
  return "'" + s.replace(/\\/g, '\\\\').replace(/\0/g, '\\0').replace(/'/g, "''") + "'";
}

/** A server configured with NO_BACKSLASH_ESCAPES would read quoteString's '\\' as two characters. */
const PRELUDE =
  "SET SESSION sql_mode = TRIM(BOTH ',' FROM REPLACE(CONCAT(',', @@SESSION.sql_mode, ','), ',NO_BACKSLASH_ESCAPES,', ','));\n";

/** Names go into SQL quoted, but control characters would still upset the client's line reader. */
export function checkName(what: string, s: string): void {
  if (/[\x00-\x1f]/.test(s)) throw new StateFailure(`${what} must not contain control characters (line breaks, tabs)`);
}

/** mysql_native_password's stored form of a password: what PASSWORD('...') returns. */
export function nativeHash(password: string): string {
  const once = crypto.createHash('sha1').update(Buffer.from(password, 'utf8')).digest();
  return '*' + crypto.createHash('sha1').update(once).digest('hex').toUpperCase();
}

export function fromHex(h: string): string {
  return Buffer.from(h, 'hex').toString('utf8');
}

// ---- running the client ----

export class MysqlError extends StateFailure {
  constructor(
    message: string,
    /** the server's or client's error number (1045 access denied, 2002 cannot connect, ...) */
    readonly code: number | undefined,
  ) {
    super(message);
  }
}

let binary: Promise<string> | undefined;

/** `mariadb`, or `mysql` on systems that only have that name. */
function clientBinary(): Promise<string> {
  return (binary ??= (async () => {
    const dirs = (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(':').filter(Boolean);
    for (const name of ['mariadb', 'mysql']) {
      for (const d of dirs) {
        try {
          await fs.promises.access(path.join(d, name), fs.constants.X_OK);
          return path.join(d, name);
        } catch {
          /* next */
        }
      }
    }
    binary = undefined; // installed later in the run (pkg.installed) is fine
    throw new StateFailure('the mariadb/mysql command-line client is not installed (package mariadb-client)');
  })());
}

/** Option file syntax: double quotes, backslash escapes for the characters that need them. */
function optionValue(s: string): string {
  const map: Record<string, string> = { '\\': '\\\\', '"': '\\"', "'": "\\'", '\n': '\\n', '\t': '\\t', '\r': '\\r', '\b': '\\b' };
  return '"' + s.replace(/[\\"'\n\t\r\b]/g, (ch) => map[ch]!) + '"';
}

/** Undo --batch output escaping (\t \n \\ \0 in values). */
function unescapeField(s: string): string {
  return s.replace(/\\(.)/g, (_, ch: string) => (ch === 't' ? '\t' : ch === 'n' ? '\n' : ch === '0' ? '\0' : ch));
}

export function redact(msg: string, secrets: readonly (string | undefined)[]): string {
  let out = msg;
  for (const s of secrets) {
    if (!s) continue;
    // the secret as typed and as it appears inside an SQL literal the server may echo
    for (const form of new Set([s, s.replace(/\\/g, '\\\\').replace(/'/g, "''")])) out = out.split(form).join('***');
  }
  return out;
}

/**
 * Run `sql` (one or more statements) and return the result rows of its output. Errors become
 * a MysqlError carrying the client's message, with `secrets` (and the connection password)
 * blanked out.
 */
export async function runSql(conn: Connection, sql: string, secrets: readonly (string | undefined)[] = []): Promise<string[][]> {
  const bin = await clientBinary();
  let dir: string | undefined;
  const argv = [bin];
  try {
    if (conn.defaultFile !== undefined) {
      // the client skips a missing !include file without a word; say so instead
      try {
        await fs.promises.access(conn.defaultFile, fs.constants.R_OK);
      } catch {
        throw new StateFailure(`mysql default file ${conn.defaultFile} cannot be read`);
      }
    }
    if (conn.pass !== undefined || conn.defaultFile !== undefined) {
      dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'tsalt-mycnf-'));
      await fs.promises.chmod(dir, 0o700);
      const file = path.join(dir, 'client.cnf');
      // --defaults-file reads only this file (a later ~/.my.cnf cannot replace our password);
      // a default file is included first so the settings after it win, as explicit
      // connection arguments win over MySQLdb's read_default_file
      let body = conn.defaultFile !== undefined ? `!include ${conn.defaultFile}\n` : '';
      body += '[client]\n';
      if (conn.pass !== undefined) body += `password=${optionValue(conn.pass)}\n`;
      const fh = await fs.promises.open(file, 'wx', 0o600);
      try {
        await fh.writeFile(body);
      } finally {
        await fh.close();
      }
      argv.push(`--defaults-file=${file}`);
    } else {
      // like MySQLdb, read no option files: a ~/.my.cnf must not change who we are
      argv.push('--no-defaults');
    }
    if (conn.host !== undefined) argv.push(`--host=${conn.host}`);
    // localhost means the unix socket (libmysqlclient, so MySQLdb and Salt); the mariadb
    // client would go to TCP 127.0.0.1 as soon as it is given a --port
    if (conn.host?.toLowerCase() === 'localhost') argv.push('--protocol=SOCKET');
    else if (conn.port !== undefined) argv.push(`--port=${conn.port}`);
    if (conn.user !== undefined) argv.push(`--user=${conn.user}`);
    if (conn.socket !== undefined) argv.push(`--socket=${conn.socket}`);
    if (conn.db !== undefined) argv.push(`--database=${conn.db}`);
    argv.push(
      `--default-character-set=${conn.charset}`,
      '--connect-timeout=10',
      '--batch',
      '--skip-column-names',
      // no client commands (\G, \!, ...) out of the SQL text
      '--binary-mode',
    );
    const env = { ...process.env };
    delete env.MYSQL_PWD; // the password is ours to choose
    const r = await exec(argv, { input: PRELUDE + sql, env, timeoutMs: 120_000 });
    if (r.code !== 0) {
      // stderr only: on error the client echoes the failing statement to stdout
      const lines = r.stderr.split('\n').map((l) => l.trim()).filter(Boolean);
      const msg = lines.filter((l) => /^ERROR\b/.test(l)).join('; ') || lines.slice(-3).join('; ') || `the client exited ${r.code}`;
      const code = /^ERROR (\d+)/.exec(msg)?.[1];
      throw new MysqlError(redact(msg, [...secrets, conn.pass]), code === undefined ? undefined : Number(code));
    }
    const out = r.stdout.split('\n');
    if (out[out.length - 1] === '') out.pop();
    return out.map((line) => line.split('\t').map(unescapeField));
  } finally {
    if (dir) await fs.promises.rm(dir, { recursive: true, force: true });
  }
}

// ---- what the server holds, read once per run (ctx.facts) ----

export interface AuthMethod {
  plugin: string;
  authentication_string: string;
}

export interface Account {
  user: string;
  host: string;
  /** the account's authentication chain (`IDENTIFIED VIA a OR b`), in order */
  auth: AuthMethod[];
}

const accountKey = (user: string, host: string) => `${user}\0${host.toLowerCase()}`;

/** Accounts (not roles) from mysql.global_priv (MariaDB 10.4+), keyed by user and lowercased host. */
export function readAccounts(ctx: RunContext, conn: Connection): Promise<Map<string, Account>> {
  return ctx.facts.get(`mysql:${conn.key}:accounts`, async () => {
    let rows: string[][];
    try {
      rows = await runSql(conn, 'SELECT HEX(User), HEX(Host), HEX(Priv) FROM mysql.global_priv;\n');
    } catch (e) {
      // 1146: no such table -- MySQL, or MariaDB before 10.4
      if (e instanceof MysqlError && e.code === 1146) {
        throw new StateFailure(`mysql_user needs MariaDB 10.4 or later (mysql.global_priv): ${e.message}`);
      }
      throw e;
    }
    const accounts = new Map<string, Account>();
    for (const [u, h, p] of rows) {
      let priv: Record<string, unknown>;
      try {
        priv = JSON.parse(fromHex(p ?? '')) as Record<string, unknown>;
      } catch {
        priv = {};
      }
      if (priv.is_role) continue;
      const top: AuthMethod = { plugin: String(priv.plugin ?? ''), authentication_string: String(priv.authentication_string ?? '') };
      // auth_or lists the chain; `{}` stands for the method kept at the top level
      const chain = Array.isArray(priv.auth_or)
        ? (priv.auth_or as Record<string, unknown>[]).map((m) =>
            m && typeof m === 'object' && m.plugin !== undefined
              ? { plugin: String(m.plugin), authentication_string: String(m.authentication_string ?? '') }
              : top,
          )
        : [top];
      const account = { user: fromHex(u ?? ''), host: fromHex(h ?? ''), auth: chain };
      accounts.set(accountKey(account.user, account.host), account);
    }
    return accounts;
  });
}

export function findAccount(accounts: Map<string, Account>, user: string, host: string): Account | undefined {
  return accounts.get(accountKey(user, host));
}

export interface Schema {
  name: string;
  charset: string;
  collate: string;
}

export function readSchemas(ctx: RunContext, conn: Connection): Promise<Map<string, Schema>> {
  return ctx.facts.get(`mysql:${conn.key}:schemas`, async () => {
    const rows = await runSql(
      conn,
      'SELECT HEX(SCHEMA_NAME), DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA;\n',
    );
    return new Map(rows.map(([n, cs, co]) => [fromHex(n ?? ''), { name: fromHex(n ?? ''), charset: cs ?? '', collate: co ?? '' }]));
  });
}

/**
 * SHOW GRANTS FOR the account, as lines; undefined when the account does not exist. The
 * lines hold password hashes (IDENTIFIED BY PASSWORD ...): never put them in a message.
 */
export function readGrantLines(ctx: RunContext, conn: Connection, user: string, host: string): Promise<string[] | undefined> {
  return ctx.facts.get(`mysql:${conn.key}:grants:${accountKey(user, host)}`, async () => {
    try {
      const rows = await runSql(conn, `SHOW GRANTS FOR ${quoteString(user)}@${quoteString(host)};\n`);
      return rows.map((r) => r.join('\t'));
    } catch (e) {
      // 1141: "There is no such grant defined for user" -- the account does not exist
      if (e instanceof MysqlError && e.code === 1141) return undefined;
      throw e;
    }
  });
}

/** Forget what this run read about the server after changing it. */
export function invalidate(ctx: RunContext, conn: Connection, what: 'accounts' | 'schemas' | { user: string; host: string }): void {
  if (typeof what === 'string') ctx.facts.invalidate(`mysql:${conn.key}:${what}`);
  else ctx.facts.invalidate(`mysql:${conn.key}:grants:${accountKey(what.user, what.host)}`);
}
