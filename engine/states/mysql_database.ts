/**
 * mysql_database.present / mysql_database.absent, as salt.states.mysql_database: a database
 * (schema) with an optional default character set and collation, changed with ALTER DATABASE
 * when they differ. Connection settings: engine/states/mysql/client.ts.
 */
import * as z from 'zod/mini';
import type { RunContext } from './context.js';
import { defineState, StateFailure, type Changes, type StateModule } from './define.js';
import {
  checkName,
  connectionArgs,
  invalidate,
  MysqlError,
  quoteIdent,
  readSchemas,
  resolveConnection,
  runSql,
  type Connection,
  type Schema,
} from './mysql/client.js';

/** Names go into SQL unquoted (the grammar takes no literal there): a word, nothing else. */
const charsetName = z.string().check(z.regex(/^\w+$/, 'a name like utf8mb4 or utf8mb4_unicode_ci'));

const presentArgs = z.object({
  name: z.string().check(z.minLength(1)),
  character_set: z.optional(charsetName),
  collate: z.optional(charsetName),
  ...connectionArgs,
});

const absentArgs = z.object({ name: z.string().check(z.minLength(1)), ...connectionArgs });

interface Want {
  charset: string;
  collate: string;
}

/**
 * What the server will store for `character_set`/`collate`: its own spelling (utf8 is
 * utf8mb3), the charset's default collation when only the charset is given, the collation's
 * charset when only the collation is. Unknown names fail here, before anything changes.
 */
async function resolveCharset(conn: Connection, cs: string | undefined, co: string | undefined): Promise<Want> {
  const cols: string[] = [];
  if (cs) cols.push(`CHARSET(CONVERT('' USING ${cs}))`, `COLLATION(CONVERT('' USING ${cs}))`);
  if (co) {
    // utf8_* collations are spelled after what utf8 means on this server (utf8mb3_* by default)
    const alias = /^utf8_/i.test(co) ? `, CONCAT(CHARSET(CONVERT('' USING utf8)), '${co.slice(4)}')` : '';
    cols.push(
      `(SELECT CONCAT(CHARACTER_SET_NAME, ' ', COLLATION_NAME) FROM information_schema.COLLATIONS ` +
        `WHERE COLLATION_NAME IN ('${co}'${alias}) ORDER BY COLLATION_NAME = '${co}' DESC LIMIT 1)`,
    );
  }
  let row: string[];
  try {
    row = (await runSql(conn, `SELECT ${cols.join(', ')};\n`))[0] ?? [];
  } catch (e) {
    // 1115: unknown character set -- the state's mistake, said in the server's words
    if (e instanceof MysqlError && e.code === 1115) throw new StateFailure(`Invalid character_set '${cs}': ${e.message}`);
    throw e;
  }
  const csName = cs ? row[0] : undefined;
  const csDefault = cs ? row[1] : undefined;
  let coCharset: string | undefined;
  let coName: string | undefined;
  if (co) {
    const found = row[cs ? 2 : 0];
    if (!found || found === 'NULL') throw new StateFailure(`Invalid collate '${co}': the server has no such collation`);
    [coCharset, coName] = found.split(' ');
    if (csName && coCharset !== csName) throw new StateFailure(`COLLATION '${co}' is not valid for CHARACTER SET '${cs}'`);
  }
  return { charset: (csName ?? coCharset)!, collate: (coName ?? csDefault)! };
}

function diff(before: Schema, want: Want): Changes {
  const changes: Changes = {};
  if (before.charset !== want.charset) changes.character_set = { before: before.charset, now: want.charset };
  if (before.collate !== want.collate) changes.collate = { before: before.collate, now: want.collate };
  return changes;
}

type Plan = { kind: 'create'; want?: Want } | { kind: 'alter'; want: Want };

const present = defineState<typeof presentArgs, Plan>({
  args: presentArgs,
  async check(ctx, a) {
    checkName('database name', a.name);
    const conn = resolveConnection(ctx, a);
    const existing = (await readSchemas(ctx, conn)).get(a.name);
    const want = a.character_set || a.collate ? await resolveCharset(conn, a.character_set, a.collate) : undefined;
    if (!existing) {
      return {
        changes: { [a.name]: 'Present' },
        plan: { kind: 'create', want },
        comment: `Database ${a.name} is not present and needs to be created`,
      };
    }
    const changes = want ? diff(existing, want) : {};
    if (!want || Object.keys(changes).length === 0) return { comment: `Database ${a.name} is already present` };
    const lines: string[] = [];
    if (changes.character_set) lines.push(`Database character set ${want.charset} != ${existing.charset} needs to be updated`);
    if (changes.collate) lines.push(`Database collate ${want.collate} != ${existing.collate} needs to be updated`);
    lines.push(`Database ${a.name} is going to be updated`);
    return { changes, plan: { kind: 'alter', want }, comment: lines.join('\n') };
  },
  async apply(ctx, a, plan) {
    const conn = resolveConnection(ctx, a);
    const db = quoteIdent(a.name);
    const spec = (w: Want | undefined) => (w ? ` CHARACTER SET ${w.charset} COLLATE ${w.collate}` : '');
    if (plan!.kind === 'create') {
      try {
        await runSql(conn, `CREATE DATABASE IF NOT EXISTS ${db}${spec(plan!.want)};\n`);
      } finally {
        invalidate(ctx, conn, 'schemas');
      }
      return { changes: { [a.name]: 'Present' }, comment: `The database ${a.name} has been created` };
    }
    const before = (await readSchemas(ctx, conn)).get(a.name)!;
    try {
      await runSql(conn, `ALTER DATABASE ${db}${spec(plan!.want)};\n`);
    } finally {
      invalidate(ctx, conn, 'schemas');
    }
    // report what the server now says, as Salt does
    const now = (await readSchemas(ctx, conn)).get(a.name);
    const changes = now ? diff(before, now) : {};
    return { changes, comment: `Database ${a.name} has been updated` };
  },
});

/** Dropping these breaks the server itself. */
const SYSTEM = new Set(['mysql', 'information_schema', 'performance_schema']);

const absent = defineState<typeof absentArgs>({
  args: absentArgs,
  async check(ctx, a) {
    checkName('database name', a.name);
    const conn = resolveConnection(ctx, a);
    if (!(await readSchemas(ctx, conn)).has(a.name)) return { comment: `Database ${a.name} is not present, so it cannot be removed` };
    if (SYSTEM.has(a.name.toLowerCase())) throw new StateFailure(`Database ${a.name} is a system database and may not be removed`);
    return { changes: { [a.name]: 'Absent' }, comment: `Database ${a.name} is present and needs to be removed` };
  },
  async apply(ctx: RunContext, a) {
    const conn = resolveConnection(ctx, a);
    try {
      await runSql(conn, `DROP DATABASE ${quoteIdent(a.name)};\n`);
    } finally {
      invalidate(ctx, conn, 'schemas');
    }
    return { changes: { [a.name]: 'Absent' }, comment: `Database ${a.name} has been removed` };
  },
});

export default { present, absent } satisfies StateModule;
