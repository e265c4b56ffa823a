/**
 * A throwaway PostgreSQL cluster for the fleet bench's `--masters 2` (the same recipe as
 * test/helpers/postgres.ts, which the bench cannot import: it is TypeScript): initdb into a temp
 * directory, the server run as the `postgres` user (it refuses root), on 127.0.0.1 and a free
 * port, trusting local TCP (a bench on loopback). `stop()` kills it and removes the directory.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from './free-port.mjs';

function binDir() {
  const base = '/usr/lib/postgresql';
  const majors = fs.existsSync(base) ? fs.readdirSync(base).filter((v) => /^\d+$/.test(v) && fs.existsSync(path.join(base, v, 'bin/initdb'))).sort((a, b) => b - a) : [];
  if (!majors.length) throw new Error(`no PostgreSQL server under ${base} (apt-get install postgresql)`);
  return path.join(base, majors[0], 'bin');
}

/**
 * Starts the cluster; resolves to { url(db), createDatabase(name), cpuMs(), statements(db, { reset, n }), stop() }.
 * stats: pg_stat_statements loaded (where PostgreSQL's own time goes, per statement).
 */
export async function startPostgres({ stats = false } = {}) {
  const bin = binDir();
  const id = (flag) => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());
  const uid = id('-u');
  const gid = id('-g');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsalt-bench-pg-'));
  fs.chownSync(dir, uid, gid);
  const data = path.join(dir, 'data');
  const asPostgres = { uid, gid, cwd: dir, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', HOME: dir } };
  const init = spawnSync(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-locale', '--no-sync'], { ...asPostgres, encoding: 'utf8' });
  if (init.status !== 0) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed (${init.status}): ${init.stderr || init.stdout}`);
  }
  const port = await freePort();
  const logFd = fs.openSync(path.join(dir, 'server.log'), 'a');
  fs.fchownSync(logFd, uid, gid);
  // settings of a bench cluster: losing it on a crash is fine, waiting for the disk is not;
  // connections for two masters' pools and their LISTEN clients
  const server = spawn(
    path.join(bin, 'postgres'),
    ['-D', data, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${dir}`, '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=200', ...(stats ? ['-c', 'shared_preload_libraries=pg_stat_statements', '-c', 'pg_stat_statements.track=all'] : [])],
    { ...asPostgres, stdio: ['ignore', logFd, logFd] },
  );
  fs.closeSync(logFd);
  const killAtExit = () => server.kill('SIGKILL');
  process.once('exit', killAtExit);
  const url = (db = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${encodeURIComponent(db)}`;
  for (let i = 0; ; i++) {
    if (server.exitCode !== null) throw new Error(`postgres exited while starting (see ${dir}/server.log)`);
    try {
      const c = new pg.Client({ connectionString: url() });
      await c.connect();
      await c.end();
      break;
    } catch (e) {
      if (i > 600) throw new Error(`postgres did not accept connections in 60 s: ${e.message}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  /** the server's processes: the postmaster and its children (backends, writers), from /proc */
  const pids = () => {
    const out = [server.pid];
    for (const d of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const st = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
        if (Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]) === server.pid) out.push(Number(d));
      } catch {
        // gone meanwhile
      }
    }
    return out;
  };
  return {
    url,
    /**
     * CPU (user+sys ms) of the server's live processes plus what its ended children left in the
     * postmaster's cutime/cstime: a difference of two readings is the server's CPU in between.
     */
    cpuMs() {
      let ticks = 0;
      for (const pid of pids()) {
        try {
          const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
          const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
          ticks += Number(f[11]) + Number(f[12]) + (pid === server.pid ? Number(f[13]) + Number(f[14]) : 0);
        } catch {
          // gone meanwhile
        }
      }
      return ticks * 10; // USER_HZ 100
    },
    /** pg_stat_statements of database `db` (cluster started with stats): reset, or the top n by total time */
    async statements(db, { reset = false, n = 15 } = {}) {
      const c = new pg.Client({ connectionString: url(db) });
      await c.connect();
      try {
        await c.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
        if (reset) {
          await c.query('SELECT pg_stat_statements_reset()');
          return [];
        }
        return (await c.query('SELECT calls, round(total_exec_time)::int AS ms, rows, left(regexp_replace(query, \'\\s+\', \' \', \'g\'), 140) AS query FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT $1', [n])).rows;
      } finally {
        await c.end();
      }
    },
    async createDatabase(name) {
      const c = new pg.Client({ connectionString: url() });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
      } finally {
        await c.end();
      }
      return url(name);
    },
    async stop() {
      process.off('exit', killAtExit);
      if (server.exitCode === null) {
        const gone = new Promise((r) => server.once('exit', r));
        server.kill('SIGINT');
        await gone;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
