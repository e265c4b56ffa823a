/**
 * The two dialects of the master's schema (store-schema.ts for SQLite, store-schema-pg.ts for
 * PostgreSQL) have the same tables, columns and indexes at every version, and PostgreSQL's
 * migrations hold an advisory lock: two masters starting at once on one database migrate once.
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIGRATIONS, SCHEMA_VERSION } from '../../master/store-schema.js';
import { migratePg, PG_MIGRATIONS, PG_VERSION_TABLE } from '../../master/store-schema-pg.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';

/** Column type as either dialect names it, in SQLite's words. */
const PG_TYPE: Record<string, string> = { text: 'TEXT', integer: 'INTEGER', 'double precision': 'REAL' };

interface Shape {
  tables: Record<string, string[]>;
  indexes: string[];
}

function sqliteShape(db: Database.Database): Shape {
  const tables: Shape['tables'] = {};
  const names = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as { name: string }[];
  for (const { name } of names) {
    const cols = db.prepare(`PRAGMA table_info(${name})`).all() as { name: string; type: string; notnull: number; pk: number }[];
    // SQLite lets an INTEGER PRIMARY KEY hold NULL in the schema (it is the rowid): it never does
    tables[name] = cols.map((c) => `${c.name} ${c.type} ${c.notnull || c.pk ? 'NOT NULL' : 'NULL'}${c.pk ? ` PK${c.pk}` : ''}`);
  }
  const indexes = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex_%' ORDER BY name").all() as { name: string }[]).map((i) => i.name);
  return { tables, indexes };
}

async function pgShape(c: pg.Client): Promise<Shape> {
  const cols = await c.query<{ table_name: string; column_name: string; data_type: string; is_nullable: string }>(
    `SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns
     WHERE table_schema = 'public' AND table_name <> $1 ORDER BY table_name, ordinal_position`,
    [PG_VERSION_TABLE],
  );
  const pks = await c.query<{ table_name: string; column_name: string; ordinal_position: number }>(
    `SELECT k.table_name, k.column_name, k.ordinal_position FROM information_schema.table_constraints t
     JOIN information_schema.key_column_usage k ON k.constraint_name = t.constraint_name AND k.table_schema = t.table_schema
     WHERE t.table_schema = 'public' AND t.constraint_type = 'PRIMARY KEY'`,
  );
  const pk = new Map(pks.rows.map((p) => [`${p.table_name}.${p.column_name}`, p.ordinal_position]));
  const tables: Shape['tables'] = {};
  for (const r of cols.rows) {
    const n = pk.get(`${r.table_name}.${r.column_name}`);
    (tables[r.table_name] ??= []).push(`${r.column_name} ${PG_TYPE[r.data_type] ?? r.data_type} ${r.is_nullable === 'YES' ? 'NULL' : 'NOT NULL'}${n ? ` PK${n}` : ''}`);
  }
  const idx = await c.query<{ indexname: string }>("SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND indexname NOT LIKE '%_pkey' ORDER BY indexname");
  return { tables: Object.fromEntries(Object.entries(tables).sort(([a], [b]) => a.localeCompare(b))), indexes: idx.rows.map((i) => i.indexname) };
}

let server: Postgres;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.stop();
});

describe('schema dialects', () => {
  it('has one PostgreSQL migration per SQLite migration', () => {
    expect(PG_MIGRATIONS).toHaveLength(MIGRATIONS.length);
  });

  it('ends every version with the same tables, columns and indexes in both', async () => {
    const lite = new Database(':memory:');
    const c = new pg.Client({ connectionString: await server.createDatabase('dialects') });
    await c.connect();
    try {
      for (let v = 0; v < SCHEMA_VERSION; v++) {
        lite.exec(MIGRATIONS[v]!.sql);
        await c.query(PG_MIGRATIONS[v]!);
        const want = sqliteShape(lite);
        expect(Object.keys(want.tables).length).toBeGreaterThan(0);
        expect({ version: v + 1, ...(await pgShape(c)) }).toEqual({ version: v + 1, ...want });
      }
    } finally {
      lite.close();
      await c.end();
    }
  });

  it('two masters migrating one database at once apply each version once', async () => {
    const url = await server.createDatabase('race');
    const clients = [new pg.Client({ connectionString: url }), new pg.Client({ connectionString: url })];
    await Promise.all(clients.map((c) => c.connect()));
    try {
      const logs: string[][] = [[], []];
      const results = await Promise.all(clients.map((c, i) => migratePg(c, `master${i}`, (m) => logs[i]!.push(m))));
      expect(results.map((r) => r.to)).toEqual([SCHEMA_VERSION, SCHEMA_VERSION]);
      // every version was applied by exactly one of them (applying one twice would fail: CREATE TABLE without IF NOT EXISTS)
      const applied = [...logs[0]!, ...logs[1]!].map((l) => l.replace(/^master\d: /, '')).sort();
      expect(applied).toEqual(MIGRATIONS.map((m, v) => `schema ${v} -> ${v + 1} (${m.what})`).sort());
      const v = await clients[0]!.query(`SELECT version FROM ${PG_VERSION_TABLE}`);
      expect(v.rows).toEqual([{ version: SCHEMA_VERSION }]);
      // opening again changes nothing
      expect(await migratePg(clients[1]!, 'again')).toEqual({ from: SCHEMA_VERSION, to: SCHEMA_VERSION });
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });

  it('refuses a database from a newer tsalt, naming it', async () => {
    const url = await server.createDatabase('newer');
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await migratePg(c, 'postgres://postgres@127.0.0.1/newer');
      await c.query(`UPDATE ${PG_VERSION_TABLE} SET version = $1`, [SCHEMA_VERSION + 1]);
      await expect(migratePg(c, 'postgres://postgres@127.0.0.1/newer')).rejects.toThrow(
        `postgres://postgres@127.0.0.1/newer: database schema version ${SCHEMA_VERSION + 1} is newer than this tsalt knows (${SCHEMA_VERSION}); run the tsalt that wrote it`,
      );
    } finally {
      await c.end();
    }
  });
});
