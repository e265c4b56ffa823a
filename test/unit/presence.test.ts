/**
 * master/presence.ts on a real store (SQLite): an agent's claims and releases reach the store in
 * the order the master issued them, even when one store call is slower than the next (on
 * PostgreSQL each may run on another pool connection, and a busy backend runs late).
 */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Presence, type PresenceStore } from '../../master/presence.js';
import { SqliteStore } from '../../master/store-sqlite.js';
import { tempDir } from '../helpers/harness.js';
import { makeLogger } from '../../core/log.js';

const stores: SqliteStore[] = [];
afterAll(async () => {
  for (const s of stores) await s.close();
});
const log = makeLogger('error', 'presence', () => {});

/** The real store, with each call of `slow` (a session's release or claim) held back `delayMs` before it runs. */
function slowCalls(store: SqliteStore, slow: 'releaseSession' | 'claimSession', delayMs: number): PresenceStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === slow)
        return async (agentId: string, master: string) => {
          await new Promise((r) => setTimeout(r, delayMs));
          return target[slow](agentId, master);
        };
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

async function started(slow: 'releaseSession' | 'claimSession', delayMs: number): Promise<{ store: SqliteStore; presence: Presence }> {
  const store = new SqliteStore(path.join(tempDir(), 'master.db'));
  stores.push(store);
  await store.addAgent('a1', 'f'.repeat(64), 'accepted');
  const presence = new Presence({ store: slowCalls(store, slow, delayMs), self: 'm1', url: () => '127.0.0.1:4506', heartbeat_s: 60, log });
  await presence.start();
  return { store, presence };
}

describe('presence: sessions claimed and released in order', () => {
  it('a reconnect: the old connection slow to release, the new one quick to claim; the session stays', async () => {
    const { store, presence } = await started('releaseSession', 150);
    await presence.claim('a1');
    // the old connection ends, the agent is back at once (both issued before either ran)
    const released = presence.release('a1');
    const claimed = presence.claim('a1');
    await Promise.all([released, claimed]);
    expect(await store.sessionOf('a1', 60)).toMatchObject({ agent_id: 'a1', master_id: 'm1' });
    await presence.stop();
  });

  it('the last word wins the other way too: claimed (slowly), then released, stays released', async () => {
    const { store, presence } = await started('claimSession', 150);
    const claimed = presence.claim('a1');
    const released = presence.release('a1');
    await Promise.all([claimed, released]);
    expect(await store.sessionOf('a1', 60)).toBeUndefined();
    await presence.stop();
  });
});
