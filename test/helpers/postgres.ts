/**
 * A throwaway PostgreSQL cluster for tests: initdb into a temp directory, the server run as the
 * unprivileged `postgres` user (postgres refuses to run as root), listening on 127.0.0.1 on a
 * free port and on a unix socket inside the temp directory. The system cluster (5432) that the
 * Debian package may start is never used. `stop()` kills the server and removes the directory.
 *
 * The superuser `postgres` has a password for TCP (scram-sha-256), so a test can also check what
 * a wrong password does; the unix socket trusts it (the harness's own admin connection).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from './net.js';

export interface Postgres {
  host: '127.0.0.1';
  port: number;
  /** the superuser's name and password (TCP connections need the password) */
  user: string;
  password: string;
  /** the cluster's temp directory (data in data/, the socket and the server log at its top) */
  dir: string;
  /** A new empty database; returns its postgres:// URL (superuser, over TCP). */
  createDatabase(name: string): Promise<string>;
  /** postgres:// URL of an existing database (default: the `postgres` maintenance database) */
  url(database?: string, creds?: { user?: string; password?: string }): string;
  /** An admin client over the unix socket (the caller ends it). */
  admin(database?: string): Promise<pg.Client>;
  /** The server's log so far (for failure messages). */
  log(): string;
  /** Kill the server and remove the directory. Idempotent. */
  stop(): Promise<void>;
  /** Stop the server (a database host going down), keeping its data; resume() starts it again on the same port. */
  halt(): Promise<void>;
  resume(): Promise<void>;
  /**
   * SIGSTOP the server and every process of it (a database host that stopped answering: a
   * network cut, a hung machine): connections open and queries sent get no answer, new
   * connections are taken by the kernel and never greeted. thaw() lets them all go on.
   */
  freeze(): void;
  thaw(): void;
}

/** The newest installed PostgreSQL's bin directory (Debian: /usr/lib/postgresql/<major>/bin). */
export function postgresBinDir(): string {
  const base = '/usr/lib/postgresql';
  const majors = fs.existsSync(base)
    ? fs.readdirSync(base).filter((v) => /^\d+$/.test(v) && fs.existsSync(path.join(base, v, 'bin/initdb'))).sort((a, b) => Number(b) - Number(a))
    : [];
  if (!majors.length) throw new Error(`no PostgreSQL server under ${base} (apt-get install postgresql; scripts/test-packages.txt lists it)`);
  return path.join(base, majors[0]!, 'bin');
}

function postgresUser(): { uid: number; gid: number } {
  const r = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const g = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (r.status !== 0 || g.status !== 0) throw new Error('no `postgres` system user (the postgresql package creates it)');
  return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
}

const running = new Set<ChildProcess>();
// a test process that dies without stop() must not leave servers behind
process.once('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

export async function startPostgres(): Promise<Postgres> {
  const bin = postgresBinDir();
  const { uid, gid } = postgresUser();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsalt-pg-'));
  fs.chownSync(dir, uid, gid);
  const data = path.join(dir, 'data');
  const logFile = path.join(dir, 'server.log');
  const password = `pw-${Math.random().toString(36).slice(2, 12)}`;
  const pwfile = path.join(dir, 'pwfile');
  fs.writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  fs.chownSync(pwfile, uid, gid);
  const asPostgres = { uid, gid, cwd: dir, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', HOME: dir } };

  const init = spawnSync(
    path.join(bin, 'initdb'),
    ['-D', data, '-U', 'postgres', `--pwfile=${pwfile}`, '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--no-locale', '--no-sync'],
    { ...asPostgres, encoding: 'utf8' },
  );
  fs.rmSync(pwfile, { force: true });
  if (init.status !== 0) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed (${init.status}): ${init.stderr || init.stdout}`);
  }

  const port = await freePort();
  const log = () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '');
  const url = (database = 'postgres', creds: { user?: string; password?: string } = {}) =>
    `postgres://${encodeURIComponent(creds.user ?? 'postgres')}:${encodeURIComponent(creds.password ?? password)}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
  const admin = async (database = 'postgres') => {
    const c = new pg.Client({ host: dir, port, user: 'postgres', database });
    await c.connect();
    return c;
  };

  /** The server process of the moment (halt() ends it, resume() starts another on the same data). */
  let server: ChildProcess;
  let exited: string | undefined;
  const launch = async () => {
    const logFd = fs.openSync(logFile, 'a');
    fs.fchownSync(logFd, uid, gid);
    const child = spawn(
      path.join(bin, 'postgres'),
      [
        '-D', data,
        '-p', String(port),
        '-c', 'listen_addresses=127.0.0.1',
        '-c', `unix_socket_directories=${dir}`,
        // a test cluster: losing it on a crash is fine, waiting for the disk is not
        '-c', 'fsync=off',
        '-c', 'synchronous_commit=off',
        '-c', 'full_page_writes=off',
        '-c', 'shared_buffers=32MB',
        '-c', 'max_connections=200',
      ],
      { ...asPostgres, stdio: ['ignore', logFd, logFd] },
    );
    fs.closeSync(logFd);
    server = child;
    exited = undefined;
    running.add(child);
    child.once('exit', (code, signal) => {
      running.delete(child);
      if (server === child) exited = `exited (${signal ?? code})`;
    });
    // ready when a connection over the socket succeeds
    for (let i = 0; ; i++) {
      if (exited) throw new Error(`postgres ${exited} while starting:\n${log()}`);
      try {
        const c = await admin();
        await c.end();
        return;
      } catch (e) {
        if (i > 600) throw new Error(`postgres did not accept connections in 60 s: ${(e as Error).message}\n${log()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  /** the server and its children (backends, checkpointer...): what freeze() stopped */
  let frozen: number[] = [];
  const tree = (root: number): number[] => {
    const kids = new Map<number, number[]>();
    for (const e of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(e)) continue;
      try {
        // "pid (comm) state ppid ...": comm may hold spaces, ppid is after its closing paren
        const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        kids.set(ppid, [...(kids.get(ppid) ?? []), Number(e)]);
      } catch {
        // gone meanwhile
      }
    }
    const out: number[] = [];
    const walk = (p: number) => {
      out.push(p);
      for (const k of kids.get(p) ?? []) walk(k);
    };
    walk(root);
    return out;
  };
  const freeze = () => {
    if (exited || frozen.length || server.pid === undefined) return;
    // the postmaster first: it forks no new backend while the others are stopped
    process.kill(server.pid, 'SIGSTOP');
    frozen = tree(server.pid);
    for (const pid of frozen) process.kill(pid, 'SIGSTOP');
  };
  const thaw = () => {
    for (const pid of frozen.splice(0)) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // gone meanwhile
      }
    }
  };

  const halt = async () => {
    thaw(); // a frozen server takes no SIGINT
    if (exited) return;
    const gone = new Promise<void>((resolve) => server.once('exit', () => resolve()));
    server.kill('SIGINT'); // fast shutdown: disconnects clients, no checkpoint wait worth having
    const killer = setTimeout(() => server.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(killer);
  };

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await halt();
    if (!process.env.TSALT_KEEP) fs.rmSync(dir, { recursive: true, force: true });
  };

  try {
    await launch();
  } catch (e) {
    await stop();
    throw e;
  }

  return {
    host: '127.0.0.1',
    port,
    user: 'postgres',
    password,
    dir,
    url,
    admin,
    log,
    stop,
    halt,
    resume: launch,
    freeze,
    thaw,
    async createDatabase(name: string) {
      const c = await admin();
      try {
        await c.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
      } finally {
        await c.end();
      }
      return url(name);
    },
  };
}
