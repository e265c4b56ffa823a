/**
 * mysql_database, mysql_user and mysql_grants against a real throwaway MariaDB server
 * (mariadb-install-db on a private datadir, socket and loopback port under a temp dir), the
 * way test/stack/stack-mysql.test.ts starts its servers. Every state converges twice, a test
 * run predicts the real run, and no password ever shows up in a result.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { exec } from '../../engine/run/exec.js';
import net from 'node:net';
import { harnessBase, runState, tempDir, type HarnessOptions } from '../helpers/harness.js';
import { freePort } from '../helpers/net.js';

const MARIADBD = '/usr/sbin/mariadbd';
const work = tempDir('tsalt-mysql-states-');
let port: number;
let socket: string;
let server: ChildProcess;

async function must(argv: string[], input?: string) {
  const r = await exec(argv, { input, timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`${argv.join(' ')} exited ${r.code}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

/** SQL as the server's root (unix_socket login as root, like the states' default) */
function sql(query: string) {
  return must(['mariadb', '--no-defaults', `--socket=${socket}`, '--batch', '--skip-column-names'], query);
}

/** Log in over TCP as `user` with `password`: 0 when the server lets us in. */
async function login(user: string, password: string): Promise<number> {
  const r = await exec(['mariadb', '--no-defaults', '-h', '127.0.0.1', '-P', String(port), '-u', user, '-e', 'SELECT 1'], {
    env: { ...process.env, MYSQL_PWD: password },
    timeoutMs: 30_000,
  });
  return r.code;
}

beforeAll(async () => {
  fs.chmodSync(work, 0o755); // mariadbd runs as mysql
  port = await freePort();
  const data = path.join(work, 'data');
  fs.mkdirSync(data);
  socket = path.join(work, 'mysqld.sock');
  const cnf = path.join(work, 'my.cnf');
  fs.writeFileSync(
    cnf,
    `[mariadb]\ndatadir = ${data}\nsocket = ${socket}\nport = ${port}\nbind-address = 127.0.0.1\n` +
      `pid-file = ${work}/mysqld.pid\nlog-error = ${work}/error.log\nskip-name-resolve\ninnodb_buffer_pool_size = 32M\n`,
  );
  await must(['chown', '-R', 'mysql:mysql', work]);
  await must(['mariadb-install-db', `--defaults-file=${cnf}`, '--user=mysql', '--auth-root-authentication-method=socket', '--skip-test-db']);
  server = spawn(MARIADBD, [`--defaults-file=${cnf}`, '--user=mysql'], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    if ((await exec(['mariadb', '--no-defaults', `--socket=${socket}`, '-e', 'SELECT 1'])).code === 0) return;
    if (server.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`mariadbd did not start: ${fs.readFileSync(`${work}/error.log`, 'utf8').slice(-2000)}`);
}, 120_000);

afterAll(async () => {
  if (server && server.exitCode === null) {
    await new Promise<void>((resolve) => {
      server.once('exit', () => resolve());
      server.kill('SIGTERM');
    });
  }
  fs.rmSync(work, { recursive: true, force: true });
}, 60_000);

/** How every state reaches the test server: root over the unix socket (Salt's default login). */
const conn = () => ({ connection_unix_socket: socket });

type Outcome = Awaited<ReturnType<typeof runState>>;

/**
 * The test run predicts the real run's changes exactly (result null), the real run succeeds,
 * and a second real and test run find nothing to do. Returns [test run, real run].
 */
async function converge(fun: string, args: Record<string, unknown>, o: HarnessOptions = {}): Promise<[Outcome, Outcome]> {
  const predicted = await runState(fun, args, { ...o, test: true });
  expect(predicted.result, `test run: ${predicted.comment}`).toBeNull();
  const real = await runState(fun, args, o);
  expect(real.result, `real run: ${real.comment}`).toBe(true);
  expect(real.changes).toEqual(predicted.changes);
  expect(Object.keys(real.changes).length).toBeGreaterThan(0);
  const again = await runState(fun, args, o);
  expect([again.result, again.changes], again.comment).toEqual([true, {}]);
  const testAgain = await runState(fun, args, { ...o, test: true });
  expect([testAgain.result, testAgain.changes], testAgain.comment).toEqual([true, {}]);
  return [predicted, real];
}

function schema(name: string) {
  return sql(`SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '${name.replace(/'/g, "''")}'`);
}

describe('mysql_database', () => {
  it('present creates a database whose name holds a quote and a backtick; absent drops it', async () => {
    const name = "we`ird'db";
    const [predicted] = await converge('mysql_database.present', { name, ...conn() });
    expect(predicted.changes).toEqual({ [name]: 'Present' });
    expect(predicted.comment).toBe(`Database ${name} is not present and needs to be created`);
    expect(await schema(name)).not.toBe('');
    const again = await runState('mysql_database.present', { name, ...conn() });
    expect(again.comment).toBe(`Database ${name} is already present`);
    const [, removed] = await converge('mysql_database.absent', { name, ...conn() });
    expect(removed.changes).toEqual({ [name]: 'Absent' });
    expect(await schema(name)).toBe('');
    expect((await runState('mysql_database.absent', { name, ...conn() })).comment).toBe(
      `Database ${name} is not present, so it cannot be removed`,
    );
  });

  it('creates with character_set/collate and ALTERs when they differ, predicting both fields', async () => {
    await converge('mysql_database.present', { name: 'cs_db', character_set: 'latin1', ...conn() });
    expect(await schema('cs_db')).toBe('latin1\tlatin1_swedish_ci\n');
    // only the charset named: the collation follows it to the charset's default
    const [predicted] = await converge('mysql_database.present', { name: 'cs_db', character_set: 'utf8mb4', ...conn() });
    expect(predicted.changes).toEqual({
      character_set: { before: 'latin1', now: 'utf8mb4' },
      collate: { before: 'latin1_swedish_ci', now: 'utf8mb4_general_ci' },
    });
    expect(await schema('cs_db')).toBe('utf8mb4\tutf8mb4_general_ci\n');
    // only the collation
    const [, real] = await converge('mysql_database.present', { name: 'cs_db', collate: 'utf8mb4_bin', ...conn() });
    expect(real.changes).toEqual({ collate: { before: 'utf8mb4_general_ci', now: 'utf8mb4_bin' } });
    // utf8 is stored as utf8mb3: a second run must not see a difference (upper case too)
    await converge('mysql_database.present', { name: 'cs_db', character_set: 'UTF8', collate: 'utf8_unicode_ci', ...conn() });
    expect(await schema('cs_db')).toBe('utf8mb3\tutf8mb3_unicode_ci\n');
  });

  it('refuses unknown or mismatched character sets and collations before changing anything', async () => {
    for (const args of [
      { character_set: 'nosuchset' },
      { collate: 'nosuch_ci' },
      { character_set: 'latin1', collate: 'utf8mb4_bin' },
    ]) {
      for (const test of [true, false]) {
        const r = await runState('mysql_database.present', { name: 'bad_cs', ...args, ...conn() }, { test });
        expect(r.result, JSON.stringify(args)).toBe(false);
        expect(r.comment).toMatch(/character_set|collate|COLLATION/);
      }
    }
    expect(await schema('bad_cs')).toBe('');
    // names that go into SQL unquoted are words, or the arguments are refused
    await expect(runState('mysql_database.present', { name: 'x', character_set: 'utf8; DROP DATABASE mysql', ...conn() })).rejects.toThrow(
      /character_set/,
    );
  });

  it('refuses to drop the mysql system database', async () => {
    for (const test of [true, false]) {
      const r = await runState('mysql_database.absent', { name: 'mysql', ...conn() }, { test });
      expect(r.result).toBe(false);
      expect(r.comment).toMatch(/system database/);
    }
    expect(await schema('mysql')).not.toBe('');
  });
});

/** mysql.global_priv's JSON for an account */
async function priv(user: string, host: string) {
  const out = await sql(`SELECT Priv FROM mysql.global_priv WHERE User = '${user.replace(/'/g, "''")}' AND Host = '${host}'`);
  return out ? (JSON.parse(out.replace(/\\\\/g, '\\')) as Record<string, unknown>) : undefined;
}

/** The secret must not appear in anything a run reports. */
function noLeak(secret: string, ...outcomes: Outcome[]) {
  for (const o of outcomes) expect(JSON.stringify(o)).not.toContain(secret);
}

describe('mysql_user', () => {
  it('present with a password: created, login works, idempotent; a new password is changed and never reported', async () => {
    const pw = `s3cret 'pa"ss\\w#rd ${Date.now()}`;
    const args = { name: 'app', host: '127.0.0.1', password: pw, ...conn() };
    const [predicted, real] = await converge('mysql_user.present', args);
    expect(real.changes).toEqual({ app: 'Present' });
    expect(predicted.comment).toBe('User app@127.0.0.1 is set to be added');
    expect(real.comment).toBe('The user app@127.0.0.1 has been added');
    expect(await login('app', pw)).toBe(0);
    const same = await runState('mysql_user.present', args);
    expect(same.comment).toBe('User app@127.0.0.1 is already present with the desired password');
    noLeak(pw, predicted, real, same);

    const pw2 = `n3w-${Date.now()}`;
    const [p2, r2] = await converge('mysql_user.present', { ...args, password: pw2 });
    expect(r2.changes).toEqual({ app: 'Updated', password: 'changed' });
    expect(p2.comment).toBe('Password for user app@127.0.0.1 is set to be changed');
    expect(r2.comment).toBe('Password for user app@127.0.0.1 has been changed');
    noLeak(pw2, p2, r2);
    noLeak(pw, p2, r2);
    expect(await login('app', pw2)).toBe(0);
    expect(await login('app', pw)).not.toBe(0);
    // the stored form is what MariaDB's PASSWORD() gives (mysql_native_password)
    expect(await sql(`SELECT authentication_string = PASSWORD('${pw2}') FROM mysql.user WHERE User = 'app'`)).toBe('1\n');
  });

  it('password_hash, passwordless and the refusal without either', async () => {
    const hash = '*6C8989366EAF75BB670AD8EA7A7FC1176A95CEF4'; // PASSWORD('mypass')
    const [, real] = await converge('mysql_user.present', { name: 'hashed', host: '127.0.0.1', password_hash: hash.toLowerCase(), ...conn() });
    expect(real.changes).toEqual({ hashed: 'Present' });
    expect(await login('hashed', 'mypass')).toBe(0);
    const same = await runState('mysql_user.present', { name: 'hashed', host: '127.0.0.1', password_hash: hash, ...conn() });
    expect(same.comment).toBe('User hashed@127.0.0.1 is already present with the desired password hash');
    noLeak(hash, real, same);

    // password wins over password_hash
    await converge('mysql_user.present', { name: 'hashed', host: '127.0.0.1', password: 'other', password_hash: hash, ...conn() });
    expect(await login('hashed', 'other')).toBe(0);

    const refused = await runState('mysql_user.present', { name: 'nopw', ...conn() });
    expect(refused.result).toBe(false);
    expect(refused.comment).toBe('Either password or password_hash must be specified, unless allow_passwordless is True');
    const [p, r] = await converge('mysql_user.present', { name: 'nopw', host: '127.0.0.1', allow_passwordless: true, ...conn() });
    expect(p.comment).toBe('User nopw@127.0.0.1 is set to be added with passwordless login');
    expect(r.changes).toEqual({ nopw: 'Present' });
    expect(await login('nopw', '')).toBe(0);
    // clearing the password of an account that has one
    const [, cleared] = await converge('mysql_user.present', { name: 'hashed', host: '127.0.0.1', allow_passwordless: 'True', ...conn() });
    expect(cleared.changes).toEqual({ hashed: 'Updated', password: 'cleared' });
    expect(await login('hashed', '')).toBe(0);

    const badHash = await runState('mysql_user.present', { name: 'h2', password_hash: 'mypass', ...conn() });
    expect([badHash.result, badHash.comment]).toEqual([false, expect.stringMatching(/password_hash must be/)]);
    expect(badHash.comment).not.toContain('mypass');
  });

  it('unix_socket: created VIA unix_socket for localhost only; a password account is switched over', async () => {
    const [, real] = await converge('mysql_user.present', { name: 'sockuser', unix_socket: true, ...conn() });
    expect(real.comment).toBe('The user sockuser@localhost has been added using unix_socket');
    expect((await priv('sockuser', 'localhost'))?.plugin).toBe('unix_socket');
    const elsewhere = await runState('mysql_user.present', { name: 'sockuser', host: '%', unix_socket: true, ...conn() });
    expect([elsewhere.result, elsewhere.comment]).toEqual([false, 'Auth via unix_socket can be set only for host=localhost']);

    await sql("CREATE USER 'switch'@'localhost' IDENTIFIED BY 'x'");
    const [, switched] = await converge('mysql_user.present', { name: 'switch', unix_socket: true, ...conn() });
    expect(switched.changes).toEqual({ switch: 'Updated', password: 'cleared' });
    expect((await priv('switch', 'localhost'))?.plugin).toBe('unix_socket');
    // and back to a password
    await converge('mysql_user.present', { name: 'switch', password: 'back', ...conn() });
    expect((await priv('switch', 'localhost'))?.plugin).toBe('mysql_native_password');
  });

  it('a password on an account that also logs in by unix_socket keeps the socket login', async () => {
    await sql("CREATE USER 'chain'@'localhost' IDENTIFIED VIA mysql_native_password USING 'invalid' OR unix_socket");
    const [, real] = await converge('mysql_user.present', { name: 'chain', password: 'chained', ...conn() });
    expect(real.changes).toEqual({ chain: 'Updated', password: 'changed' });
    const p = await priv('chain', 'localhost');
    expect(p?.authentication_string).toBe(await sql("SELECT PASSWORD('chained')").then((s) => s.trim()));
    expect(JSON.stringify(p?.auth_or)).toContain('unix_socket');
    // unix_socket: True is already satisfied by the chain
    const s = await runState('mysql_user.present', { name: 'chain', unix_socket: true, ...conn() });
    expect([s.result, s.changes]).toEqual([true, {}]);
  });

  it('names with quotes and backticks, hosts with wildcards; absent removes', async () => {
    const name = "o'bri`en";
    await converge('mysql_user.present', { name, host: '10.0.%', password: 'pw', ...conn() });
    expect(await sql(`SELECT COUNT(*) FROM mysql.user WHERE User = 'o''bri\`en' AND Host = '10.0.%'`)).toBe('1\n');
    const [p, r] = await converge('mysql_user.absent', { name, host: '10.0.%', ...conn() });
    expect(p.comment).toBe(`User ${name}@10.0.% is set to be removed`);
    expect(r.changes).toEqual({ [name]: 'Absent' });
    expect(r.comment).toBe(`User ${name}@10.0.% has been removed`);
    expect(await sql(`SELECT COUNT(*) FROM mysql.user WHERE User = 'o''bri\`en'`)).toBe('0\n');
    expect((await runState('mysql_user.absent', { name, host: '10.0.%', ...conn() })).comment).toBe(
      `User ${name}@10.0.% is not present, so it cannot be removed`,
    );
    // the host part is stored lower-case: another spelling is the same account
    await sql("CREATE USER 'CaseHost'@'LocalHost'");
    await converge('mysql_user.absent', { name: 'CaseHost', host: 'LOCALHOST', ...conn() });
  });
});

function grantsOf(user: string, host: string) {
  return sql(`SHOW GRANTS FOR '${user.replace(/'/g, "''")}'@'${host}'`);
}

describe('mysql_grants', () => {
  beforeAll(async () => {
    await sql("CREATE USER 'g1'@'localhost' IDENTIFIED BY 'g1pass'; CREATE DATABASE my_db; CREATE TABLE my_db.t (a INT, b INT)");
  });

  it('present grants a list; another spelling and order of the same list is no change', async () => {
    const args = { name: 'g1_mydb', grant: 'select,insert', database: 'my_db.*', user: 'g1', ...conn() };
    const [p, r] = await converge('mysql_grants.present', args);
    expect(p.comment).toBe('MySQL grant g1_mydb is set to be created');
    expect(r.changes).toEqual({ g1_mydb: 'Present' });
    expect(r.comment).toBe('Grant select,insert on my_db.* to g1@localhost has been added');
    // escape (the default): the _ is a literal underscore, not a wildcard
    expect(await grantsOf('g1', 'localhost')).toContain('GRANT SELECT, INSERT ON `my\\\\_db`.* TO `g1`@`localhost`');
    for (const grant of ['INSERT, SELECT', ' Select ,  Insert', ['insert', 'select'], 'select']) {
      const again = await runState('mysql_grants.present', { ...args, grant });
      expect([again.result, again.changes], String(grant)).toEqual([true, {}]);
    }
    expect((await runState('mysql_grants.present', args)).comment).toBe('Grant select,insert on my_db.* to g1@localhost is already present');
  });

  it('ALL and ALL PRIVILEGES are one thing, and ALL covers single privileges', async () => {
    await converge('mysql_grants.present', { name: 'all', grant: 'all', database: 'other_db.*', user: 'g1', ...conn() });
    expect(await grantsOf('g1', 'localhost')).toContain('GRANT ALL PRIVILEGES ON `other\\\\_db`.* TO `g1`@`localhost`');
    for (const grant of ['ALL PRIVILEGES', 'all privileges', 'select, update']) {
      const r = await runState('mysql_grants.present', { name: 'all', grant, database: 'other_db.*', user: 'g1', ...conn() });
      expect([r.result, r.changes], grant).toEqual([true, {}]);
    }
  });

  it('grant_option, global privileges under their MariaDB names, column privileges', async () => {
    await converge('mysql_grants.present', { name: 'go', grant: 'select', database: 'my_db.*', user: 'g1', grant_option: true, ...conn() });
    expect(await grantsOf('g1', 'localhost')).toMatch(/ON `my\\\\_db`\.\* TO `g1`@`localhost` WITH GRANT OPTION/);
    // REPLICATION CLIENT is shown as BINLOG MONITOR, REPLICATION REPLICA as REPLICATION SLAVE
    await converge('mysql_grants.present', {
      name: 'repl',
      grant: 'replication replica, REPLICATION CLIENT, process',
      database: '*.*',
      user: 'g1',
      ...conn(),
    });
    expect(await grantsOf('g1', 'localhost')).toMatch(/GRANT PROCESS, REPLICATION SLAVE, BINLOG MONITOR ON \*\.\*/);
    await converge('mysql_grants.present', { name: 'cols', grant: 'SELECT (a, b), update (A)', database: 'my_db.t', user: 'g1', ...conn() });
    expect(await grantsOf('g1', 'localhost')).toContain('GRANT SELECT (`a`, `b`), UPDATE (`a`) ON `my_db`.`t` TO `g1`@`localhost`');
    const sub = await runState('mysql_grants.present', { name: 'cols', grant: 'select (b)', database: 'my_db.t', user: 'g1', ...conn() });
    expect(sub.changes).toEqual({});
  });

  it('revoke_first narrows a level to exactly the listed privileges', async () => {
    await sql("GRANT ALL ON `wide`.* TO 'g1'@'localhost' WITH GRANT OPTION");
    // without revoke_first, ALL already gives SELECT
    const plain = await runState('mysql_grants.present', { name: 'narrow', grant: 'select', database: 'wide.*', user: 'g1', ...conn() });
    expect(plain.changes).toEqual({});
    const [, r] = await converge('mysql_grants.present', {
      name: 'narrow',
      grant: 'select',
      database: 'wide.*',
      user: 'g1',
      revoke_first: true,
      ...conn(),
    });
    expect(r.changes).toEqual({ narrow: 'Present' });
    const g = await grantsOf('g1', 'localhost');
    expect(g).toContain('GRANT SELECT ON `wide`.* TO `g1`@`localhost`\n');
    expect(g).not.toMatch(/`wide`.*WITH GRANT OPTION/);
  });

  it('absent revokes the listed privileges (also out of ALL), then finds nothing to do', async () => {
    const [p, r] = await converge('mysql_grants.absent', { name: 'rm', grant: 'insert', database: 'my_db.*', user: 'g1', ...conn() });
    expect(p.comment).toBe('MySQL grant rm is set to be revoked');
    expect(r.changes).toEqual({ rm: 'Absent' });
    expect(r.comment).toBe('Grant insert on my_db.* for g1@localhost has been revoked');
    expect(await grantsOf('g1', 'localhost')).toContain('GRANT SELECT ON `my\\\\_db`.* TO `g1`@`localhost` WITH GRANT OPTION');
    await converge('mysql_grants.absent', { name: 'rm2', grant: 'delete', database: 'other_db.*', user: 'g1', ...conn() });
    const g = await grantsOf('g1', 'localhost');
    expect(g).toMatch(/GRANT SELECT, INSERT, UPDATE, CREATE.* ON `other\\\\_db`\.\*/);
    expect(g).not.toMatch(/DELETE,.*ON `other\\\\_db`/);
    // everything at a level, grant option included
    await converge('mysql_grants.absent', { name: 'rm3', grant: 'ALL', database: 'my_db.*', user: 'g1', grant_option: true, ...conn() });
    expect(await grantsOf('g1', 'localhost')).not.toContain('`my\\\\_db`');
    const none = await runState('mysql_grants.absent', { name: 'rm3', grant: 'select', database: 'my_db.*', user: 'g1', ...conn() });
    expect([none.changes, none.comment]).toEqual([{}, 'Grant select on my_db.* to g1@localhost is not present, so it cannot be revoked']);
  });

  it('a database name with quotes and backticks, escape: False patterns, and a user that does not exist', async () => {
    await converge('mysql_grants.present', { name: 'q', grant: 'select', database: "we`ird'db.*", user: 'g1', ...conn() });
    expect(await grantsOf('g1', 'localhost')).toContain("GRANT SELECT ON `we``ird'db`.* TO `g1`@`localhost`");
    await converge('mysql_grants.present', { name: 'pat', grant: 'select', database: 'app_%.*', user: 'g1', escape: false, ...conn() });
    expect(await grantsOf('g1', 'localhost')).toContain('GRANT SELECT ON `app_%`.* TO `g1`@`localhost`');
    await converge('mysql_grants.present', { name: 'bt', grant: 'select', database: '`dot.ted`.*', user: 'g1', ...conn() });
    expect(await grantsOf('g1', 'localhost')).toContain('GRANT SELECT ON `dot.ted`.* TO `g1`@`localhost`');

    const args = { name: 'ghost', grant: 'select', database: 'my_db.*', user: 'ghost', ...conn() };
    // a test run may come before the mysql_user state that creates the account
    const predicted = await runState('mysql_grants.present', args, { test: true });
    expect([predicted.result, predicted.changes]).toEqual([null, { ghost: 'Present' }]);
    const real = await runState('mysql_grants.present', args);
    expect(real.result).toBe(false);
    expect(real.comment).toMatch(/ghost@localhost does not exist/);
    expect(await sql("SELECT COUNT(*) FROM mysql.user WHERE User = 'ghost'")).toBe('0\n');
    const absent = await runState('mysql_grants.absent', args);
    expect([absent.result, absent.changes]).toEqual([true, {}]);
  });

  it('refuses unknown privileges and malformed levels', async () => {
    for (const [grant, database, re] of [
      ['select; drop database mysql', 'my_db.*', /unexpected ';'/],
      ['selekt', 'my_db.*', /Invalid grant : 'SELEKT'/],
      ['select (a)', 'my_db.*', /column privileges need a table/],
      ['delete (a)', 'my_db.t', /cannot be limited to columns/],
      ['select', 'my_db', /privilege level/],
      ['select', '*.t', /privilege level/],
    ] as const) {
      const r = await runState('mysql_grants.present', { name: 'bad', grant, database, user: 'g1', ...conn() }, { test: true });
      expect([r.result, r.comment], grant).toEqual([false, expect.stringMatching(re)]);
    }
  });
});

describe('connecting', () => {
  it('an unreachable server is result False with the client message, and no password in it', async () => {
    const secret = `unreach-${Date.now()}`;
    for (const args of [
      { connection_unix_socket: path.join(work, 'no.sock') },
      { connection_host: '127.0.0.1', connection_port: await freePort(), connection_pass: secret },
    ]) {
      for (const [fun, extra] of [
        ['mysql_database.present', {}],
        ['mysql_user.present', { password: secret }],
        ['mysql_grants.present', { grant: 'select', database: 'x.*', user: 'u' }],
      ] as const) {
        for (const test of [true, false]) {
          const r = await runState(fun, { name: 'x', ...extra, ...args }, { test });
          expect(r.result, `${fun} ${JSON.stringify(args)}`).toBe(false);
          expect(r.comment).toMatch(/ERROR 2002.*Can't connect/);
          noLeak(secret, r);
        }
      }
    }
  });

  it('localhost means the unix socket, whatever the port (as MySQLdb has it)', async () => {
    // the server listens on this port, but root may only log in over the socket: reaching
    // it by TCP would be "Access denied", the socket (the client's default path) is not there
    // (a test run: should the machine run its own server, nothing is changed there)
    const r = await runState('mysql_database.present', { name: 'x', connection_host: 'localhost', connection_port: port }, { test: true });
    if (fs.existsSync('/run/mysqld/mysqld.sock')) expect(r.comment).not.toMatch(/Access denied/);
    else expect([r.result, r.comment]).toEqual([false, expect.stringMatching(/ERROR 2002.*through socket/)]);
    const viaOpts = await runState('mysql_database.present', { name: 'sock_opts_db' }, { opts: { 'mysql.unix_socket': socket, 'mysql.port': port } });
    expect(viaOpts.result, viaOpts.comment).toBe(true);
  });

  it('a wrong password is refused without being echoed; the right one over TCP works', async () => {
    const tempFiles = () => fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith('tsalt-mycnf-'));
    const before = tempFiles();
    const pw = `adm'in"\\ #pass ${Date.now()}`;
    await sql(`CREATE USER 'admin'@'127.0.0.1' IDENTIFIED BY '${pw.replace(/\\/g, '\\\\').replace(/'/g, "''")}'; GRANT ALL ON *.* TO 'admin'@'127.0.0.1' WITH GRANT OPTION`);
    const tcp = { connection_host: '127.0.0.1', connection_port: port, connection_user: 'admin' };
    const bad = await runState('mysql_database.present', { name: 'tcp_db', ...tcp, connection_pass: `${pw}x` });
    expect([bad.result, bad.comment]).toEqual([false, expect.stringMatching(/ERROR 1045.*Access denied for user 'admin'/)]);
    noLeak(pw, bad);
    const [, real] = await converge('mysql_database.present', { name: 'tcp_db', ...tcp, connection_pass: pw });
    noLeak(pw, real);
    expect(await schema('tcp_db')).not.toBe('');
    // the same through the minion options Salt reads (mysql.host, mysql.pass, ...)
    const opts = { 'mysql.host': '127.0.0.1', 'mysql.port': port, 'mysql.user': 'admin', 'mysql.pass': pw };
    await converge('mysql_database.present', { name: 'opts_db' }, { opts });
    // and a default file (which turns the minion options off, as in Salt)
    const cnf = path.join(work, 'admin.cnf');
    fs.writeFileSync(cnf, `[client]\nhost=127.0.0.1\nport=${port}\nuser=admin\npassword="${pw.replace(/[\\"']/g, (c) => `\\${c}`)}"\n`, { mode: 0o600 });
    await converge('mysql_database.present', { name: 'file_db', connection_default_file: cnf }, { opts: { 'mysql.user': 'nobody' } });
    const missingFile = await runState('mysql_database.present', { name: 'file_db', connection_default_file: `${cnf}.missing` });
    expect([missingFile.result, missingFile.comment]).toEqual([false, expect.stringMatching(/cannot be read/)]);
    // no temporary option file is left behind
    expect(tempFiles()).toEqual(before);
  });

  it('the password goes to the client in a private option file, never on its command line', async () => {
    const secret = `argv-${Date.now()}`;
    // a "server" that accepts and never answers keeps the client waiting while we look at it
    const held: net.Socket[] = [];
    const fake = net.createServer((c) => held.push(c));
    const fakePort = await freePort();
    await new Promise<void>((r) => fake.listen(fakePort, '127.0.0.1', r));
    try {
      const run = runState('mysql_database.present', { name: 'x', connection_host: '127.0.0.1', connection_port: fakePort, connection_pass: secret });
      let argv: string[] | undefined;
      for (let i = 0; i < 100 && !argv; i++) {
        for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
          let cmd: string[];
          try {
            cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
          } catch {
            continue;
          }
          if (cmd.includes(`--port=${fakePort}`)) argv = cmd;
        }
        if (!argv) await new Promise((r) => setTimeout(r, 50));
      }
      expect(argv, 'the client process').toBeDefined();
      expect(argv!.join(' ')).not.toContain(secret);
      const file = argv!.find((a) => a.startsWith('--defaults-file='))!.slice('--defaults-file='.length);
      expect(fs.statSync(file).mode & 0o777).toBe(0o600);
      expect(fs.statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
      expect(fs.readFileSync(file, 'utf8')).toContain(`password="${secret}"`);
      for (const c of held) c.destroy();
      const r = await run;
      expect(r.result).toBe(false);
      noLeak(secret, r);
      expect(fs.existsSync(file)).toBe(false);
    } finally {
      for (const c of held) c.destroy();
      fake.close();
    }
  });
});

describe('states of one run', () => {
  it('share what they read, and see what earlier states changed', async () => {
    const args = {
      user: { name: 'runuser', host: 'localhost', password: 'runpass', ...conn() },
      grant: { name: 'runuser_db', grant: 'select', database: 'run_db.*', user: 'runuser', ...conn() },
      db: { name: 'run_db', ...conn() },
    };
    // a test run predicts all three, the grant included although its user does not exist yet
    const testBase = harnessBase({ test: true });
    for (const [fun, a] of [['mysql_database.present', args.db], ['mysql_user.present', args.user], ['mysql_grants.present', args.grant]] as const) {
      const r = await runState(fun, a, { base: testBase, test: true });
      expect([r.result, Object.keys(r.changes)], `${fun}: ${r.comment}`).toEqual([null, [a.name]]);
    }
    const base = harnessBase();
    for (const [fun, a] of [['mysql_database.present', args.db], ['mysql_user.present', args.user], ['mysql_grants.present', args.grant]] as const) {
      const r = await runState(fun, a, { base });
      expect([r.result, Object.keys(r.changes)], `${fun}: ${r.comment}`).toEqual([true, [a.name]]);
      // the same state again in the same run: the run's cached reads were refreshed
      const again = await runState(fun, a, { base });
      expect([again.result, again.changes], `${fun} again: ${again.comment}`).toEqual([true, {}]);
    }
    const gone = await runState('mysql_user.absent', { name: 'runuser', ...conn() }, { base });
    expect(gone.changes).toEqual({ runuser: 'Absent' });
    const noGrant = await runState('mysql_grants.absent', args.grant, { base });
    expect([noGrant.result, noGrant.changes]).toEqual([true, {}]);
  });
});
