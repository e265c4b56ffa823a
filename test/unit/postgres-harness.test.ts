/** The test PostgreSQL (test/helpers/postgres.ts): a private cluster, its databases, its cleanup. */
import fs from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startPostgres, type Postgres } from '../helpers/postgres.js';

let server: Postgres;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.stop();
});

it('serves a new database over TCP on 127.0.0.1 with the password, not the system cluster', async () => {
  expect(server.port).not.toBe(5432);
  const url = await server.createDatabase('harness_one');
  expect(url).toBe(`postgres://postgres:${encodeURIComponent(server.password)}@127.0.0.1:${server.port}/harness_one`);
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query<{ db: string; dir: string; fsync: string }>("SELECT current_database() AS db, current_setting('data_directory') AS dir, current_setting('fsync') AS fsync");
    expect(r.rows[0]).toEqual({ db: 'harness_one', dir: `${server.dir}/data`, fsync: 'off' });
  } finally {
    await c.end();
  }
});

it('refuses a wrong password over TCP', async () => {
  const c = new pg.Client({ connectionString: server.url('postgres', { password: 'wrong' }) });
  await expect(c.connect()).rejects.toThrow(/password authentication failed/);
});

it('stop() ends the server and removes its directory', async () => {
  const other = await startPostgres();
  expect(other.dir).not.toBe(server.dir);
  const url = await other.createDatabase('gone');
  await other.stop();
  expect(fs.existsSync(other.dir)).toBe(false);
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await expect(c.connect()).rejects.toThrow(/ECONNREFUSED/);
  await other.stop(); // twice is fine
});
