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
import { grainsFor, pillarFor, pillarOnNetwork, renderTreeTemplate, STATES_DIR } from './stack-helpers.js';
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

/**
 * The test pillar: the shipped tree with the inventory's network moved to loopback (so the
 * accounts' host, derived from it, is '127.0.0.0/255.0.0.0'), pointed at loopback ports.
 */
const pillarDir = pillarOnNetwork(path.join(work, 'pillar'), '127.0.0.0/8', '192.168.56.', '127.0.56.');
let ports: { db1: number; db2: number };
function overrides(): Data {
  return {
    mysql: {
      bind_address: '127.0.0.1',
      replication: { primary_host: '127.0.0.1', primary_port: ports.db1 },
    },
  };
}

/** `extra` goes into the pillar's mysql dict (port, socket). */
async function pillarOf(id: 'db1' | 'db2', extra: Data) {
  const grains = grainsFor(id, 'Debian');
  return { grains, pillar: await pillarFor(id, grains, { ...overrides(), mysql: { ...(overrides().mysql as Data), ...extra } }, pillarDir) };
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

/**
 * The app (states/app/files/src/server.js with the MySQL driver of pillar app:mysql2_version,
 * from the offline npm cache scripts/test-setup.d/30-stack-npm-cache.sh fills), started
 * before either database exists, as on a fresh deploy.
 */
const NPM_CACHE = process.env.TSALT_NPM_CACHE ?? '/var/cache/tsalt-test/npm';
let app: { proc: ChildProcess; url: string; log: () => string };
let healthBeforeDb: { status: number; body: Data };

async function startApp(): Promise<typeof app> {
  const dir = path.join(work, 'app');
  fs.mkdirSync(path.join(dir, 'src'), { recursive: true });
  fs.copyFileSync(path.join(STATES_DIR, 'app/files/src/server.js'), path.join(dir, 'src/server.js'));
  const { pillar } = await pillarOf('db1', {});
  const version = String((await pillarFor('app1', grainsFor('app1', 'Debian')) as { app: { mysql2_version: string } }).app.mysql2_version);
  if (!fs.existsSync(path.join(NPM_CACHE, `.mysql2-${version}`))) {
    await must(['bash', path.join(STATES_DIR, '../scripts/test-setup.d/30-stack-npm-cache.sh')]);
  }
  await must(['npm', 'install', '--prefix', dir, '--cache', NPM_CACHE, '--offline', '--no-audit', '--no-fund', '--loglevel=error', `mysql2@${version}`]);
  const port = await freePort();
  const out: string[] = [];
  const users = (pillar.mysql as { users: Record<string, { password: string }> }).users;
  const proc = spawn(process.execPath, [path.join(dir, 'src/server.js')], {
    env: {
      PATH: process.env.PATH,
      PORT: String(port),
      DB_WRITE_HOST: '127.0.0.1',
      DB_WRITE_PORT: String(ports.db1),
      DB_READ_HOST: '127.0.0.1',
      DB_READ_PORT: String(ports.db2),
      DB_NAME: 'appdb',
      DB_USER: 'app',
      DB_PASSWORD: users.app!.password,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout!.on('data', (d: Buffer) => out.push(d.toString()));
  proc.stderr!.on('data', (d: Buffer) => out.push(d.toString()));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    if (out.join('').includes('app listening')) return { proc, url, log: () => out.join('') };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the app did not start: ${out.join('')}`);
}

async function http(method: string, url: string, body?: unknown): Promise<{ status: number; body: Data }> {
  const r = await fetch(url, { method, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
  return { status: r.status, body: (await r.json()) as Data };
}

beforeAll(async () => {
  fs.chmodSync(work, 0o755); // mariadbd runs as mysql
  ports = { db1: await freePort(), db2: await freePort() };
  app = await startApp();
  healthBeforeDb = await http('GET', `${app.url}/api/health`);
  primary = await startServer('db1', ports.db1);
  replica = await startServer('db2', ports.db2);
}, 120_000);

afterAll(async () => {
  app?.proc.kill('SIGKILL');
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
    const ACCOUNTS = ['mysql-database-appdb', 'mysql-user-app', 'mysql-grants-app-appdb', 'mysql-grants-app-*', 'mysql-user-repl', 'mysql-grants-repl-*'];
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

    // the host derived from the inventory's network; the app logs in from 127.0.0.1 below
    const NET = '127.0.0.0/255.0.0.0';
    expect(await sql(primary, "SELECT user, host FROM mysql.user WHERE user IN ('app', 'repl') ORDER BY user")).toBe(`app\t${NET}\nrepl\t${NET}\n`);
    expect(await sql(primary, `SHOW GRANTS FOR 'repl'@'${NET}'`)).toMatch(/GRANT REPLICATION SLAVE ON \*\.\*/);
    expect(await sql(primary, `SHOW GRANTS FOR 'app'@'${NET}'`)).toMatch(/GRANT ALL PRIVILEGES ON `appdb`\.\*/);
    expect(await sql(primary, `SHOW GRANTS FOR 'app'@'${NET}'`)).toMatch(/GRANT SLAVE MONITOR ON \*\.\*/);
    // the same table the app creates at start (it may get there first: it is already retrying)
    expect((await appSql(primary, 'CREATE TABLE IF NOT EXISTS items (id INT AUTO_INCREMENT PRIMARY KEY, text VARCHAR(200) NOT NULL, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)')).code).toBe(0);
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

describe('the app against them, started before either database', () => {
  it('answers 503 "not ready" while the databases are down, then becomes ready by itself', async () => {
    expect(healthBeforeDb.status).toBe(503);
    expect(healthBeforeDb.body).toMatchObject({ ready: false });
    expect(String(healthBeforeDb.body.reason)).toMatch(/^primary: /);
    let h = await http('GET', `${app.url}/api/health`);
    for (let i = 0; i < 100 && h.status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 200));
      h = await http('GET', `${app.url}/api/health`);
    }
    expect(h.status, `${JSON.stringify(h.body)}\n${app.log()}`).toBe(200);
    expect(h.body).toMatchObject({ ready: true, reason: null, replica: { replicating: true, io_running: 'Yes', sql_running: 'Yes' } });
    expect((h.body.replica as Data).lag_seconds).toBeTypeOf('number');
    expect(app.log()).toMatch(/database not ready \(attempt 1\)/);
    expect(app.log()).toMatch(/database ready after \d+ attempt/);
  });

  it('reads work before the first write (the schema was created at start)', async () => {
    const r = await http('GET', `${app.url}/api/items`);
    expect(r.status, `${JSON.stringify(r.body)}\n${app.log()}`).toBe(200);
    expect(r.body).toMatchObject({ source: 'replica' });
  });

  it('a row written through the app is read from the replica; with replication stopped the health says so and reads stop seeing new rows', async () => {
    const seen = async (text: string) => ((await http('GET', `${app.url}/api/items`)).body.items as { text: string }[]).some((i) => i.text === text);
    const w = await http('POST', `${app.url}/api/items`, { text: 'via the app' });
    expect(w.status, JSON.stringify(w.body)).toBe(201);
    let found = false;
    for (let i = 0; i < 50 && !found; i++) if (!(found = await seen('via the app'))) await new Promise((r) => setTimeout(r, 100));
    expect(found).toBe(true);

    await sql(replica, 'STOP SLAVE');
    try {
      const h = await http('GET', `${app.url}/api/health`);
      expect(h.status).toBe(200); // stale reads are still reads
      expect(h.body.replica).toMatchObject({ replicating: false, io_running: 'No', sql_running: 'No', lag_seconds: null });
      expect((await http('POST', `${app.url}/api/items`, { text: 'while stopped' })).status).toBe(201);
      await new Promise((r) => setTimeout(r, 1000));
      expect(await seen('while stopped')).toBe(false);
    } finally {
      await sql(replica, 'START SLAVE');
    }
    let back = false;
    for (let i = 0; i < 50 && !back; i++) if (!(back = await seen('while stopped'))) await new Promise((r) => setTimeout(r, 100));
    expect(back).toBe(true);
  });
});
