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

/** Starts the cluster; resolves to { url(db), createDatabase(name), stop() }. */
export async function startPostgres() {
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
    ['-D', data, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${dir}`, '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=200'],
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
  return {
    url,
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
