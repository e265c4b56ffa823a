/**
 * Masters, sessions and leases in SQLite (schema version 6, store-schema.ts). One
 * SQLite file has one master, but the tables and their rules are the same as PostgreSQL's, so a
 * lease or a session behaves alike on both stores (and the store contract test runs on both).
 *
 * Times are ISO-8601 UTC strings from the master's clock, compared as text (same width).
 */
import type Database from 'better-sqlite3';
import type { LeaseRow, MasterRow, SessionRow } from './store-api.js';
import type { PresenceStore } from './presence.js';

type Sync<T> = { [K in keyof T]: T[K] extends (...a: infer A) => infer R ? (...a: A) => Awaited<R> : T[K] };

const iso = (ms: number) => new Date(ms).toISOString();


/** The presence methods on a better-sqlite3 database at that schema version. */
export function sqlitePresence(db: Database.Database): Sync<PresenceStore> {
  const st = new Map<string, Database.Statement>();
  const q = (sql: string) => {
    let s = st.get(sql);
    if (!s) st.set(sql, (s = db.prepare(sql)));
    return s;
  };
  const now = () => Date.now();
  return {
    heartbeatMaster(id, url) {
      const t = iso(now());
      q('INSERT INTO masters (id, url, started, seen) VALUES (?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET url = excluded.url, seen = excluded.seen').run(id, url, t, t);
    },
    liveMasters(within_s) {
      return q('SELECT * FROM masters WHERE seen >= ? ORDER BY id').all(iso(now() - within_s * 1000)) as MasterRow[];
    },
    forgetMaster(id) {
      db.transaction(() => {
        q('DELETE FROM sessions WHERE master_id = ?').run(id);
        q('DELETE FROM masters WHERE id = ?').run(id);
      })();
    },
    claimSession(agentId, master) {
      q('INSERT INTO sessions (agent_id, master_id, since) VALUES (?, ?, ?) ON CONFLICT(agent_id) DO UPDATE SET master_id = excluded.master_id, since = excluded.since').run(agentId, master, iso(now()));
    },
    releaseSession(agentId, master) {
      return q('DELETE FROM sessions WHERE agent_id = ? AND master_id = ?').run(agentId, master).changes > 0;
    },
    voidSessions(master) {
      return q('DELETE FROM sessions WHERE master_id = ?').run(master).changes;
    },
    liveSessions(within_s) {
      return q('SELECT s.agent_id, s.master_id, s.since FROM sessions s JOIN masters m ON m.id = s.master_id WHERE m.seen >= ? ORDER BY s.agent_id').all(iso(now() - within_s * 1000)) as SessionRow[];
    },
    sessionOf(agentId, within_s) {
      return q('SELECT s.agent_id, s.master_id, s.since FROM sessions s JOIN masters m ON m.id = s.master_id WHERE s.agent_id = ? AND m.seen >= ?').get(agentId, iso(now() - within_s * 1000)) as SessionRow | undefined;
    },
    acquireLease(name, holder, ttl_s) {
      const t = now();
      // one statement: two masters racing for a free or expired lease cannot both get it
      return (
        q('INSERT INTO leases (name, holder, expires) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, expires = excluded.expires WHERE leases.holder = excluded.holder OR leases.expires < ?').run(
          name,
          holder,
          iso(t + ttl_s * 1000),
          iso(t),
        ).changes > 0
      );
    },
    releaseLease(name, holder) {
      return q('DELETE FROM leases WHERE name = ? AND holder = ?').run(name, holder).changes > 0;
    },
    leaseOf(name) {
      return q('SELECT name, holder, expires FROM leases WHERE name = ? AND expires >= ?').get(name, iso(now())) as LeaseRow | undefined;
    },
  };
}
