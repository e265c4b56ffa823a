/**
 * Opening the master's store: master.yaml's `store:` (or `db:`, the SQLite file) names it, and
 * the implementation is chosen from a table keyed by the URL's scheme. A plain path or
 * `sqlite:///abs/path` is SQLite (store-sqlite.ts), `postgres://` / `postgresql://` is a
 * PostgreSQL shared by several masters (store-pg.ts). Each implementation is imported only
 * when it is used. The interface and its row types are in store-api.ts.
 */
import type { Store } from './store-api.js';

export type StoreSpec = { scheme: 'sqlite'; file: string } | { scheme: 'postgres'; url: string };

export class StoreSpecError extends Error {}

/** What a store spec names; throws StoreSpecError saying what is accepted. */
export function parseStoreSpec(spec: string): StoreSpec {
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(spec);
  if (!m) {
    if (spec.trim() === '') throw new StoreSpecError('an empty store');
    return { scheme: 'sqlite', file: spec };
  }
  const scheme = m[1]!.toLowerCase();
  if (scheme === 'sqlite') {
    const file = spec.slice(m[0].length);
    if (!file.startsWith('/') || file === '/') throw new StoreSpecError(`'${spec}': a SQLite URL names an absolute path, sqlite:///var/lib/tsalt/master.db`);
    return { scheme: 'sqlite', file };
  }
  if (scheme === 'postgres' || scheme === 'postgresql') {
    let u: URL;
    try {
      u = new URL(spec);
    } catch {
      throw new StoreSpecError(`'${redact(spec)}': not a valid URL (postgres://user@host/database)`);
    }
    if (!u.hostname && !u.searchParams.get('host')) throw new StoreSpecError(`'${redact(spec)}': names no host (postgres://user@host/database)`);
    return { scheme: 'postgres', url: spec };
  }
  throw new StoreSpecError(`'${redact(spec)}': unknown store scheme '${scheme}://' (a SQLite path, sqlite:///path, postgres://user@host/database)`);
}

/** A URL without its password, for messages and logs. */
export function redact(spec: string): string {
  return spec.replace(/^([a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^:/@]*):[^@/]*@/, '$1:***@');
}

type Open = (spec: StoreSpec, log?: (msg: string) => void) => Promise<Store>;

/** What store-pg.ts exports. */
export interface PgStoreModule {
  openPgStore(url: string, log?: (msg: string) => void): Promise<Store>;
}

const OPENERS: Record<StoreSpec['scheme'], Open> = {
  sqlite: async (s, log) => {
    const { SqliteStore } = await import('./store-sqlite.js');
    return new SqliteStore((s as Extract<StoreSpec, { scheme: 'sqlite' }>).file, log);
  },
  postgres: async (s, log) => {
    // imported on use only: a SQLite master never loads pg (the bundle keeps it lazy too)
    const mod: PgStoreModule = await import('./store-pg.js');
    return mod.openPgStore((s as Extract<StoreSpec, { scheme: 'postgres' }>).url, log);
  },
};

/** Opens (and migrates) the store a spec names: a SQLite path, sqlite:///path or postgres://. */
export async function openStore(spec: string, log?: (msg: string) => void): Promise<Store> {
  const s = parseStoreSpec(spec);
  return OPENERS[s.scheme](s, log);
}
