/**
 * The Store contract on PostgreSQL (master/store-pg.ts) against a real server this file starts,
 * and what only a server store meets: an unreachable server, a refused login, a missing database,
 * a database from a newer tsalt, each one line naming the store without its password.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPgStore } from '../../master/store-pg.js';
import { SCHEMA_VERSION } from '../../master/store-schema.js';
import { PG_VERSION_TABLE } from '../../master/store-schema-pg.js';
import { freePort } from '../helpers/net.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';
import { storeContract } from './store-contract-cases.js';

let server: Postgres;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.stop();
});

const made = new Map<string, string>();
storeContract(async (name) => {
  let url = made.get(name);
  if (!url) {
    url = await server.createDatabase(name);
    made.set(name, url);
  }
  return openPgStore(url);
});

describe('opening a PostgreSQL store', () => {
  const oneLine = (e: unknown) => {
    const m = (e as Error).message;
    expect(m).not.toContain('\n');
    expect(m).not.toContain(server.password);
    return m;
  };
  const fail = async (url: string) => {
    try {
      await openPgStore(url);
    } catch (e) {
      return oneLine(e);
    }
    throw new Error(`${url} opened`);
  };

  it('migrates a new database and logs each version', async () => {
    const url = await server.createDatabase('fresh_open');
    const log: string[] = [];
    const s = await openPgStore(url, (m) => log.push(m));
    try {
      expect(s.schema).toEqual({ from: 0, to: SCHEMA_VERSION });
      expect(s.kind).toBe('postgres');
      expect(s.label).toBe(`postgres://postgres:***@127.0.0.1:${server.port}/fresh_open`);
      expect(log).toHaveLength(SCHEMA_VERSION);
      expect(log[0]).toMatch(new RegExp(`^postgres://postgres:\\*\\*\\*@127\\.0\\.0\\.1:${server.port}/fresh_open: schema 0 -> 1 \\(`));
    } finally {
      await s.close();
    }
    const again = await openPgStore(url);
    expect(again.schema).toEqual({ from: SCHEMA_VERSION, to: SCHEMA_VERSION });
    await again.close();
  });

  it('says when the server cannot be reached', async () => {
    const port = await freePort(); // nothing listens there
    expect(await fail(`postgres://postgres:${server.password}@127.0.0.1:${port}/x`)).toBe(
      `postgres://postgres:***@127.0.0.1:${port}/x: cannot reach the PostgreSQL server (connect ECONNREFUSED 127.0.0.1:${port})`,
    );
  });

  it('says when the login is refused', async () => {
    expect(await fail(server.url('postgres', { password: 'wrong' }))).toBe(
      `postgres://postgres:***@127.0.0.1:${server.port}/postgres: PostgreSQL refused the login (password authentication failed for user "postgres")`,
    );
  });

  it('says when the database does not exist', async () => {
    expect(await fail(server.url('nothere'))).toBe(
      `postgres://postgres:***@127.0.0.1:${server.port}/nothere: database "nothere" does not exist (create it: createdb -O <user> <database>)`,
    );
  });

  it('refuses a database from a newer tsalt and leaves it as it is', async () => {
    const url = await server.createDatabase('from_the_future');
    await (await openPgStore(url)).close();
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await c.query(`UPDATE ${PG_VERSION_TABLE} SET version = $1`, [SCHEMA_VERSION + 1]);
      expect(await fail(url)).toBe(
        `postgres://postgres:***@127.0.0.1:${server.port}/from_the_future: database schema version ${SCHEMA_VERSION + 1} is newer than this tsalt knows (${SCHEMA_VERSION}); run the tsalt that wrote it`,
      );
      expect((await c.query(`SELECT version FROM ${PG_VERSION_TABLE}`)).rows).toEqual([{ version: SCHEMA_VERSION + 1 }]);
    } finally {
      await c.end();
    }
  });

  it('gives the bus a connection of its own (LISTEN/NOTIFY)', async () => {
    const s = await openPgStore(await server.createDatabase('bus_client'));
    const a = await s.dedicatedClient();
    const b = await s.dedicatedClient();
    try {
      const got = new Promise<string | undefined>((resolve) => a.once('notification', (n) => resolve(n.payload)));
      await a.query('LISTEN tsalt_test');
      await b.query("SELECT pg_notify('tsalt_test', 'hello')");
      expect(await got).toBe('hello');
    } finally {
      await a.end();
      await b.end();
      await s.close();
    }
  });
});

describe('a URL without its password', () => {
  it('takes the password from PGPASSWORD', async () => {
    const url = (await server.createDatabase('env_password')).replace(`:${encodeURIComponent(server.password)}@`, '@');
    expect(url).toBe(`postgres://postgres@127.0.0.1:${server.port}/env_password`);
    const before = process.env.PGPASSWORD;
    process.env.PGPASSWORD = server.password;
    try {
      const s = await openPgStore(url);
      expect(s.label).toBe(url);
      await s.close();
      process.env.PGPASSWORD = 'wrong';
      await expect(openPgStore(url)).rejects.toThrow(`${url}: PostgreSQL refused the login (password authentication failed for user "postgres")`);
    } finally {
      if (before === undefined) delete process.env.PGPASSWORD;
      else process.env.PGPASSWORD = before;
    }
  });
});
