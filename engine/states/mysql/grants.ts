/**
 * Grants for mysql_grants: the privilege list a state asks for, the level it names
 * (`*.*`, `db.*`, `db.table`) and what SHOW GRANTS says an account holds, all brought to one
 * normal form so "select,insert" and "INSERT, SELECT" or "all" and "ALL PRIVILEGES" compare
 * equal, and MariaDB's renamed privileges (REPLICATION CLIENT shown as BINLOG MONITOR) too.
 */
import { StateFailure } from '../define.js';
import { quoteIdent, quoteString } from './client.js';

// ---- a small SQL tokenizer, enough for GRANT statements ----

type Token =
  | { t: 'word'; v: string }
  | { t: 'ident'; v: string } // `quoted`, backticks undoubled
  | { t: 'str'; v: string } // 'quoted', escapes resolved
  | { t: 'punct'; v: string };

function tokenize(s: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '`') {
      let v = '';
      i++;
      for (;;) {
        if (i >= s.length) throw new StateFailure(`unterminated \` in ${JSON.stringify(s)}`);
        if (s[i] === '`') {
          if (s[i + 1] === '`') (v += '`'), (i += 2);
          else {
            i++;
            break;
          }
        } else v += s[i++];
      }
      out.push({ t: 'ident', v });
    } else if (c === "'" || c === '"') {
      let v = '';
      i++;
      for (;;) {
        if (i >= s.length) throw new StateFailure(`unterminated ${c} in grant text`);
        const d = s[i]!;
        if (d === '\\' && i + 1 < s.length) {
          const e = s[i + 1]!;
          v += e === 'n' ? '\n' : e === 't' ? '\t' : e === '0' ? '\0' : e;
          i += 2;
        } else if (d === c) {
          if (s[i + 1] === c) (v += c), (i += 2);
          else {
            i++;
            break;
          }
        } else (v += d), i++;
      }
      out.push({ t: 'str', v });
    } else if (/[\w$]/.test(c)) {
      let v = '';
      while (i < s.length && /[\w$]/.test(s[i]!)) v += s[i++];
      out.push({ t: 'word', v });
    } else {
      out.push({ t: 'punct', v: c });
      i++;
    }
  }
  return out;
}

// ---- privileges ----

/** Privilege names we accept: MariaDB's, plus the MySQL 8 ones Salt lists. They go into SQL as written. */
const KNOWN = new Set([
  'ALL PRIVILEGES', 'ALTER', 'ALTER ROUTINE', 'BINLOG ADMIN', 'BINLOG MONITOR', 'BINLOG REPLAY', 'CONNECTION ADMIN',
  'CREATE', 'CREATE ROUTINE', 'CREATE TABLESPACE', 'CREATE TEMPORARY TABLES', 'CREATE USER', 'CREATE VIEW', 'DELETE',
  'DELETE HISTORY', 'DROP', 'EVENT', 'EXECUTE', 'FEDERATED ADMIN', 'FILE', 'GRANT OPTION', 'INDEX', 'INSERT',
  'LOCK TABLES', 'PROCESS', 'READ_ONLY ADMIN', 'REFERENCES', 'RELOAD', 'REPLICA MONITOR', 'REPLICATION CLIENT',
  'REPLICATION MASTER ADMIN', 'REPLICATION REPLICA', 'REPLICATION SLAVE', 'REPLICATION SLAVE ADMIN', 'SELECT',
  'SET USER', 'SHOW CREATE ROUTINE', 'SHOW DATABASES', 'SHOW VIEW', 'SHUTDOWN', 'SLAVE MONITOR', 'SUPER', 'TRIGGER',
  'UPDATE', 'USAGE',
  // MySQL 8 (salt.modules.mysql.__grants__)
  'BACKUP_ADMIN', 'BINLOG_ADMIN', 'CONNECTION_ADMIN', 'CREATE ROLE', 'DROP ROLE', 'ENCRYPTION_KEY_ADMIN',
  'GROUP_REPLICATION_ADMIN', 'PERSIST_RO_VARIABLES_ADMIN', 'REPLICATION_SLAVE_ADMIN', 'RESOURCE_GROUP_ADMIN',
  'RESOURCE_GROUP_USER', 'ROLE_ADMIN', 'SERVICE_CONNECTION_ADMIN', 'SET_USER_ID', 'SYSTEM_VARIABLES_ADMIN',
  'XA_RECOVER_ADMIN',
]);

/** Names the server stores under another name (MariaDB 10.5+ shows the right-hand side). */
const CANONICAL: Record<string, string> = {
  ALL: 'ALL PRIVILEGES',
  'REPLICATION REPLICA': 'REPLICATION SLAVE',
  'REPLICATION CLIENT': 'BINLOG MONITOR',
  'REPLICA MONITOR': 'SLAVE MONITOR',
};

/** Privileges that can be limited to columns of a table. */
const COLUMN_PRIVS = new Set(['SELECT', 'INSERT', 'UPDATE', 'REFERENCES']);

export interface Priv {
  /** as the state wrote it, upper-cased: what goes into SQL */
  name: string;
  /** the name compared with SHOW GRANTS */
  canon: string;
  column?: string;
}

const privKey = (p: { canon: string; column?: string }) => (p.column === undefined ? p.canon : `${p.canon} (${p.column.toLowerCase()})`);

/** Split a privilege list (up to `stop`) into items: words plus an optional column list. */
function readPrivs(tokens: Token[], start: number, stop: (t: Token) => boolean): { privs: { name: string; columns?: string[] }[]; next: number } {
  const privs: { name: string; columns?: string[] }[] = [];
  let words: string[] = [];
  let columns: string[] | undefined;
  let i = start;
  const flush = () => {
    if (words.length) privs.push({ name: words.join(' ').toUpperCase(), columns });
    else if (columns) throw new StateFailure('a column list needs a privilege before it');
    words = [];
    columns = undefined;
  };
  for (; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (stop(t)) break;
    if (t.t === 'punct' && t.v === ',') {
      flush();
    } else if (t.t === 'punct' && t.v === '(') {
      columns = [];
      for (i++; i < tokens.length; i++) {
        const c = tokens[i]!;
        if (c.t === 'punct' && c.v === ')') break;
        if (c.t === 'punct' && c.v === ',') continue;
        if (c.t !== 'word' && c.t !== 'ident') throw new StateFailure('a column list holds column names');
        columns.push(c.v);
      }
    } else if (t.t === 'word') {
      words.push(t.v);
    } else {
      throw new StateFailure(`unexpected '${t.v}' in privilege list`);
    }
  }
  flush();
  return { privs, next: i };
}

function expand(items: { name: string; columns?: string[] }[]): Priv[] {
  const out: Priv[] = [];
  for (const it of items) {
    const canon = CANONICAL[it.name] ?? it.name;
    if (it.columns?.length) for (const column of it.columns) out.push({ name: it.name, canon, column });
    else out.push({ name: it.name, canon });
  }
  return out;
}

export interface WantedGrant {
  privs: Priv[];
  /** GRANT OPTION given in the list itself */
  grantOption: boolean;
}

/** Parse a state's `grant` ("select,insert", "ALL PRIVILEGES", "select (a, b), update"). */
export function parseWanted(grant: string): WantedGrant {
  const { privs: items } = readPrivs(tokenize(grant), 0, () => false);
  if (!items.length) throw new StateFailure('grant is empty: give privileges like "select,insert" or "ALL PRIVILEGES"');
  for (const it of items) {
    const n = it.name.replace(/\s+/g, ' ');
    it.name = n === 'ALL' ? 'ALL PRIVILEGES' : n;
    if (!KNOWN.has(it.name)) throw new StateFailure(`Invalid grant : '${it.name}'`);
    if (it.columns && !COLUMN_PRIVS.has(it.name)) throw new StateFailure(`${it.name} cannot be limited to columns`);
  }
  const grantOption = items.some((i) => i.name === 'GRANT OPTION');
  const privs = expand(items.filter((i) => i.name !== 'GRANT OPTION'));
  return { privs, grantOption };
}

// ---- levels ----

export interface Level {
  /** '*' for global; otherwise the database name as stored (a pattern with \_ \% at db level) */
  db: string;
  /** '*' for every table */
  table: string;
}

export const levelKey = (l: Level) => `${l.db}\0${l.table}`;

export function levelSql(l: Level): string {
  return `${l.db === '*' ? '*' : quoteIdent(l.db)}.${l.table === '*' ? '*' : quoteIdent(l.table)}`;
}

/**
 * The state's `database`: `db.*`, `db.table`, `*.*`, or quoted with backticks (`my.db`.*). With
 * `escape` (Salt's default), `_` and `%` in a database-level name are literal characters,
 * not the wildcards GRANT would make of them.
 */
export function parseLevel(database: string, escape: boolean): Level {
  let db: string;
  let table: string;
  const bad = () => new StateFailure(`database must name a privilege level like 'db.*', 'db.table' or '*.*', got '${database}'`);
  // quoted form only when it starts quoted: a backtick inside a plain name is part of it
  if (database.startsWith('`')) {
    const t = tokenize(database);
    const part = (x: Token | undefined) => (x && (x.t === 'ident' || x.t === 'word' || (x.t === 'punct' && x.v === '*')) ? x.v : undefined);
    const a = part(t[0]);
    const b = part(t[2]);
    if (t.length !== 3 || a === undefined || b === undefined || t[1]!.t !== 'punct' || t[1]!.v !== '.') throw bad();
    db = a;
    table = b;
  } else {
    const dot = database.lastIndexOf('.');
    if (dot <= 0 || dot === database.length - 1) throw bad();
    db = database.slice(0, dot);
    table = database.slice(dot + 1);
  }
  if (db === '*' && table !== '*') throw bad();
  if (escape && db !== '*' && table === '*') db = db.replace(/[\\_%]/g, (c) => `\\${c}`);
  return { db, table };
}

// ---- what an account holds ----

export interface Held {
  /** privilege keys (canonical names, `NAME (column)` for column privileges); USAGE left out */
  privs: Set<string>;
  grantOption: boolean;
}

function parseLine(line: string): { level: Level; privs: Priv[]; grantOption: boolean } | undefined {
  let tokens: Token[];
  try {
    tokens = tokenize(line);
  } catch {
    return undefined;
  }
  if (tokens[0]?.t !== 'word' || tokens[0].v.toUpperCase() !== 'GRANT') return undefined;
  const isWord = (t: Token | undefined, w: string) => t?.t === 'word' && t.v.toUpperCase() === w;
  let items: { name: string; columns?: string[] }[];
  let i: number;
  try {
    ({ privs: items, next: i } = readPrivs(tokens, 1, (t) => isWord(t, 'ON') || isWord(t, 'TO')));
  } catch {
    return undefined;
  }
  // role grants (GRANT `r` TO ...) have no ON; PROXY and routine grants are not ours
  if (!isWord(tokens[i], 'ON') || items.some((p) => p.name === 'PROXY')) return undefined;
  i++;
  if (isWord(tokens[i], 'TABLE')) i++;
  else if (['PROCEDURE', 'FUNCTION', 'PACKAGE'].some((w) => isWord(tokens[i], w))) return undefined;
  const part = (x: Token | undefined) => (x && (x.t === 'ident' || x.t === 'word' || (x.t === 'punct' && x.v === '*')) ? x.v : undefined);
  const db = part(tokens[i]);
  const dot = tokens[i + 1];
  const table = part(tokens[i + 2]);
  if (db === undefined || table === undefined || dot?.t !== 'punct' || dot.v !== '.') return undefined;
  i += 3;
  // WITH GRANT OPTION (possibly among resource limits) after TO user@host
  let grantOption = false;
  let withSeen = false;
  for (; i < tokens.length; i++) {
    if (isWord(tokens[i], 'WITH')) withSeen = true;
    else if (withSeen && isWord(tokens[i], 'GRANT') && isWord(tokens[i + 1], 'OPTION')) grantOption = true;
  }
  return { level: { db, table }, privs: expand(items), grantOption };
}

/** What SHOW GRANTS lines say the account holds, per level. */
export function parseHeld(lines: readonly string[]): Map<string, Held> {
  const held = new Map<string, Held>();
  for (const line of lines) {
    const g = parseLine(line);
    if (!g) continue;
    const k = levelKey(g.level);
    let h = held.get(k);
    if (!h) held.set(k, (h = { privs: new Set(), grantOption: false }));
    for (const p of g.privs) if (p.canon !== 'USAGE') h.privs.add(privKey(p));
    h.grantOption ||= g.grantOption;
  }
  return held;
}

// ---- comparing ----

const NONE: Held = { privs: new Set(), grantOption: false };

/** Whether `held` already gives `p` (ALL PRIVILEGES gives everything; a table privilege gives its columns). */
export function covers(held: Held | undefined, p: Priv): boolean {
  const h = held ?? NONE;
  if (p.canon === 'USAGE') return true;
  if (h.privs.has('ALL PRIVILEGES')) return true;
  if (h.privs.has(privKey(p))) return true;
  return p.column !== undefined && h.privs.has(p.canon);
}

/** Privileges of `want` that `held` lacks. */
export function missing(held: Held | undefined, want: Priv[]): Priv[] {
  return want.filter((p) => !covers(held, p));
}

/** revoke_first: the level holds exactly these privileges and grant option setting. */
export function exactly(held: Held | undefined, want: Priv[], grantOption: boolean): boolean {
  const h = held ?? NONE;
  const keys = new Set(want.filter((p) => p.canon !== 'USAGE').map(privKey));
  return keys.size === h.privs.size && [...keys].every((k) => h.privs.has(k)) && h.grantOption === grantOption;
}

/** Privileges of `want` the account holds at this level (what absent must revoke). */
export function heldOf(held: Held | undefined, want: Priv[]): Priv[] {
  if (!held) return [];
  return want.filter((p) => {
    if (p.canon === 'USAGE') return false;
    // ALL PRIVILEGES revokes whatever is there
    if (p.canon === 'ALL PRIVILEGES') return held.privs.size > 0;
    // a column privilege is revoked by column; a table-wide one covers it only as a whole
    if (p.column !== undefined) return held.privs.has(privKey(p));
    return held.privs.has('ALL PRIVILEGES') || held.privs.has(p.canon);
  });
}

// ---- SQL ----

/** `SELECT (`a`, `b`), INSERT`: column privileges of one name gathered again. */
export function privListSql(privs: Priv[]): string {
  const order: string[] = [];
  const cols = new Map<string, string[] | undefined>();
  for (const p of privs) {
    if (!cols.has(p.name)) order.push(p.name), cols.set(p.name, p.column === undefined ? undefined : []);
    const c = cols.get(p.name);
    if (p.column === undefined) cols.set(p.name, undefined); // the whole table wins over its columns
    else if (c) c.push(p.column);
  }
  return order.map((n) => (cols.get(n) ? `${n} (${cols.get(n)!.map(quoteIdent).join(', ')})` : n)).join(', ');
}

export function account(user: string, host: string): string {
  return `${quoteString(user)}@${quoteString(host)}`;
}
