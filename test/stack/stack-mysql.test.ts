/**
 * The MariaDB part of the stack for real: two throwaway mariadbd servers on loopback, each
 * started with the server.cnf the states render for db1/db2. The primary gets its databases,
 * users and grants from the shipped `mysql.accounts` SLS through the real engine (test run,
 * real run, second run); the replica gets the replica.sql the states feed it, twice, as every
 * apply does. GTID replication must carry the database, the users and the app's writes to the
 * replica, and the replica must refuse the app's writes (read_only).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { exec } from '../../engine/run/exec.js';
import { tempDir } from '../helpers/harness.js';
import { grainsFor, pillarFor, renderTreeTemplate, STATES_DIR } from './stack-helpers.js';
import { apply } from '../../engine/engine.js';
import { LocalTree } from '../../engine/tree/local.js';
import type { RunReport } from '../../protocol/results.js';
import type { Data } from '../../engine/render/salt-functions.js';
import { freePort } from '../helpers/net.js';

const MARIADBD = '/usr/sbin/mariadbd';
const work = tempDir('tsalt-stack-mysql-');

interface Server {
  id: 'db1' | 'db2';
  port: number;
  socket: string;
  proc: ChildProcess;
}
const servers: Server[] = [];


async function must(argv: string[], input?: string) {
  const r = await exec(argv, { input, timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`${argv.join(' ')} exited ${r.code}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

/** The test pillar: the shipped one, pointed at loopback ports instead of the VMs' network. */
let ports: { db1: number; db2: number };
function overrides(): Data {
  return {
    mysql: {
      bind_address: '127.0.0.1',
      replication: { primary_host: '127.0.0.1', primary_port: ports.db1 },
      users: { app: { host: '127.0.0.1' }, repl: { host: '127.0.0.1' } },
    },
  };
}

/** `extra` goes into the pillar's mysql dict (port, socket). */
async function pillarOf(id: 'db1' | 'db2', extra: Data) {
  const grains = grainsFor(id, 'Debian');
  return { grains, pillar: await pillarFor(id, grains, { ...overrides(), mysql: { ...(overrides().mysql as Data), ...extra } }) };
}

async function renderFor(id: 'db1' | 'db2', rel: string, port: number) {
  const { grains, pillar } = await pillarOf(id, { port });
  return renderTreeTemplate(rel, grains, pillar);
}

/** The shipped mysql.accounts SLS applied to `s` by the engine, as root over its socket. */
async function applyAccounts(s: Server, test: boolean): Promise<RunReport> {
  const { grains, pillar } = await pillarOf(s.id, { port: s.port, socket: s.socket });
  return apply({ tree: new LocalTree(STATES_DIR), id: s.id, grains, pillar, sls: ['mysql.accounts'], test });
}

const changedIds = (rep: RunReport) => rep.results.filter((r) => Object.keys(r.changes).length).map((r) => r.id);

async function startServer(id: 'db1' | 'db2', port: number): Promise<Server> {
  const dir = path.join(work, id);
  const data = path.join(dir, 'data');
  fs.mkdirSync(data, { recursive: true });
  const socket = path.join(dir, 'mysqld.sock');
  // the rendered server.cnf as the states write it, then what only a throwaway server needs
  const cnf = path.join(dir, 'my.cnf');
  fs.writeFileSync(
    cnf,
    (await renderFor(id, 'mysql/files/server.cnf.jinja', port)) +
      `\n# test-only\n[mariadb]\ndatadir = ${data}\nsocket = ${socket}\npid-file = ${dir}/mysqld.pid\n` +
      `log-error = ${dir}/error.log\nskip-name-resolve\ninnodb_buffer_pool_size = 32M\n`,
  );
  await must(['chown', '-R', 'mysql:mysql', dir]);
  await must(['mariadb-install-db', `--defaults-file=${cnf}`, '--user=mysql', '--auth-root-authentication-method=socket', '--skip-test-db']);
  const proc = spawn(MARIADBD, [`--defaults-file=${cnf}`, '--user=mysql'], { stdio: 'ignore' });
  const server = { id, port, socket, proc };
  servers.push(server);
  for (let i = 0; i < 100; i++) {
    if ((await exec(['mariadb', `--socket=${socket}`, '-e', 'SELECT 1'])).code === 0) return server;
    if (proc.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${id} did not start: ${fs.readFileSync(`${dir}/error.log`, 'utf8').slice(-2000)}`);
}

function sql(s: Server, query: string, input?: string) {
  return must(['mariadb', `--socket=${s.socket}`, '--batch', '--skip-column-names', ...(query ? ['-e', query] : [])], input);
}

/** What the app does: TCP with its own user and password. */
function appSql(s: Server, query: string) {
  return exec(['mariadb', '-h', '127.0.0.1', '-P', String(s.port), '-u', 'app', '-pCHANGEME-app', 'appdb', '--batch', '--skip-column-names', '-e', query], { timeoutMs: 30_000 });
}

let primary: Server;
let replica: Server;

beforeAll(async () => {
  fs.chmodSync(work, 0o755); // mariadbd runs as mysql
  ports = { db1: await freePort(), db2: await freePort() };
  primary = await startServer('db1', ports.db1);
  replica = await startServer('db2', ports.db2);
}, 120_000);

afterAll(async () => {
  await Promise.all(
    servers.map(
      (s) =>
        new Promise<void>((resolve) => {
          if (s.proc.exitCode !== null) return resolve();
          s.proc.once('exit', () => resolve());
          s.proc.kill('SIGTERM');
        }),
    ),
  );
  fs.rmSync(work, { recursive: true, force: true });
}, 60_000);

describe('MariaDB primary/replica from the shipped states', () => {
  it('server.cnf gives each server its id, binlog and GTID settings; the replica is read_only', async () => {
    expect(await sql(primary, 'SELECT @@server_id, @@log_bin, @@gtid_strict_mode, @@read_only')).toBe('1\t1\t1\t0\n');
    expect(await sql(replica, 'SELECT @@server_id, @@log_bin, @@gtid_strict_mode, @@read_only')).toBe('2\t1\t1\t1\n');
  });

  it('mysql.accounts creates the database, users and grants: test run predicts, second run changes nothing', async () => {
    const ACCOUNTS = ['mysql-database-appdb', 'mysql-user-app', 'mysql-grants-app-appdb', 'mysql-user-repl', 'mysql-grants-repl-*'];
    const predicted = await applyAccounts(primary, true);
    expect(predicted.counts.failed, JSON.stringify(predicted.results, null, 1)).toBe(0);
    expect(changedIds(predicted).sort()).toEqual([...ACCOUNTS].sort());
    for (const r of predicted.results) expect(r.result, r.id).toBeNull();
    // the test run touched nothing
    expect(await sql(primary, "SELECT count(*) FROM mysql.user WHERE user IN ('app', 'repl')")).toBe('0\n');

    const real = await applyAccounts(primary, false);
    const failed = real.results.filter((r) => r.result !== true);
    expect(failed, JSON.stringify(failed, null, 1)).toEqual([]);
    const changes = (rep: RunReport) => Object.fromEntries(rep.results.map((r) => [r.id, r.changes]));
    expect(changes(real)).toEqual(changes(predicted));
    // users before their grants (require), and no password in any result
    const order = real.results.map((r) => r.id);
    expect(order.indexOf('mysql-user-repl')).toBeLessThan(order.indexOf('mysql-grants-repl-*'));
    expect(order.indexOf('mysql-database-appdb')).toBeLessThan(order.indexOf('mysql-grants-app-appdb'));
    expect(JSON.stringify(real)).not.toMatch(/CHANGEME/);

    for (const test of [false, true]) {
      const again = await applyAccounts(primary, test);
      expect(again.counts.failed, JSON.stringify(again.results, null, 1)).toBe(0);
      expect(changedIds(again), `changes on the second ${test ? 'test ' : ''}run`).toEqual([]);
      for (const r of again.results) expect(r.result, r.id).toBe(true);
    }

    expect(await sql(primary, "SELECT user, host FROM mysql.user WHERE user IN ('app', 'repl') ORDER BY user")).toBe('app\t127.0.0.1\nrepl\t127.0.0.1\n');
    expect(await sql(primary, "SHOW GRANTS FOR 'repl'@'127.0.0.1'")).toMatch(/GRANT REPLICATION SLAVE ON \*\.\*/);
    expect(await sql(primary, "SHOW GRANTS FOR 'app'@'127.0.0.1'")).toMatch(/GRANT ALL PRIVILEGES ON `appdb`\.\*/);
    expect((await appSql(primary, 'CREATE TABLE IF NOT EXISTS items (id INT AUTO_INCREMENT PRIMARY KEY, text VARCHAR(200) NOT NULL)')).code).toBe(0);
  }, 120_000);

  it('replica.sql starts GTID replication, is safe to run again, and the replica catches up', async () => {
    const text = await renderFor('db2', 'mysql/files/replica.sql.jinja', ports.db2);
    await sql(replica, '', text);
    await sql(replica, '', text);
    const ins = await appSql(primary, "INSERT INTO items (text) VALUES ('hello from the primary')");
    expect(ins.code, ins.stderr).toBe(0);
    let rows = '';
    for (let i = 0; i < 100 && !rows; i++) {
      const r = await appSql(replica, 'SELECT text FROM items');
      rows = r.code === 0 ? r.stdout : '';
      if (!rows) await new Promise((r) => setTimeout(r, 200));
    }
    expect(rows, await sql(replica, 'SHOW SLAVE STATUS\\G')).toBe('hello from the primary\n');
    // vertical output keeps the field names (--skip-column-names would drop them)
    const status = await must(['mariadb', `--socket=${replica.socket}`, '-e', 'SHOW SLAVE STATUS\\G']);
    expect(status).toMatch(/Slave_IO_Running: Yes/);
    expect(status).toMatch(/Slave_SQL_Running: Yes/);
    expect(status).toMatch(/Using_Gtid: Slave_Pos/);
    // the users came over by replication, not by applying mysql.accounts there
    expect(await sql(replica, "SELECT count(*) FROM mysql.user WHERE user = 'app'")).toBe('1\n');
  });

  it('the replica refuses the app\'s writes', async () => {
    const r = await appSql(replica, "INSERT INTO items (text) VALUES ('must fail')");
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/read-only|read_only/);
  });
});
