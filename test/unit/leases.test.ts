/**
 * master/leases.ts on a real store (SQLite; the lease SQL itself is covered on both stores by
 * the presence contract): one holder at a time, kept by renewing, taken over once its holder
 * stops renewing and the TTL passed, given up on an orderly stop, and a store that fails
 * counts as not held.
 */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Leases } from '../../master/leases.js';
import { SqliteStore } from '../../master/store-sqlite.js';
import { tempDir } from '../helpers/harness.js';
import { makeLogger } from '../../core/log.js';

const stores: SqliteStore[] = [];
afterAll(async () => {
  for (const s of stores) await s.close();
});
const log = makeLogger('error', 'lease', () => {});
const TTL = 0.4;

async function waitFor<T>(what: string, fn: () => T | undefined, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function pair() {
  const store = new SqliteStore(path.join(tempDir(), 'master.db'));
  stores.push(store);
  const m1 = new Leases({ store, holder: 'm1', ttl_s: TTL, log });
  const m2 = new Leases({ store, holder: 'm2', ttl_s: TTL, log });
  return { store, m1, m2 };
}

describe('leases: work done by one master at a time', () => {
  it('one holder; kept while it renews, past several TTLs', async () => {
    const { m1, m2 } = pair();
    m1.start();
    expect(await m1.hold('schedule.a')).toBe(true);
    expect(await m2.hold('schedule.a')).toBe(false);
    expect(await m2.hold('schedule.b')).toBe(true); // leases are independent
    await new Promise((r) => setTimeout(r, TTL * 3 * 1000));
    expect(await m2.hold('schedule.a')).toBe(false);
    expect(m1.holds('schedule.a')).toBe(true);
    await m1.stop();
    await m2.stop();
  });

  it('a holder that stops renewing (died) loses it after the TTL; a master wanting it takes it over and is told', async () => {
    const { m1, m2 } = pair();
    expect(await m1.hold('releases')).toBe(true); // m1 never renews: as if killed
    let gained = 0;
    m2.start();
    m2.want('releases', () => gained++);
    expect(m2.holds('releases')).toBe(false);
    await waitFor('m2 takes releases over', () => (gained === 1 ? true : undefined), 10_000);
    expect(m2.holds('releases')).toBe(true);
    expect(await m1.hold('releases')).toBe(false); // the old holder, back, is refused
    await m2.stop();
  });

  it('an orderly stop gives the leases up at once', async () => {
    const { m1, m2 } = pair();
    expect(await m1.hold('schedule.a')).toBe(true);
    await m1.stop();
    expect(await m2.hold('schedule.a')).toBe(true);
    await m2.stop();
  });

  it('a lease given up after the work is free for another master at once; its holder is named while held', async () => {
    const { m1, m2 } = pair();
    m1.start();
    m2.start();
    expect(await m1.hold('rollout')).toBe(true);
    expect(await m2.hold('rollout')).toBe(false);
    expect(await m2.holderOf('rollout')).toBe('m1');
    // renewed while held, past several TTLs
    await new Promise((r) => setTimeout(r, TTL * 3 * 1000));
    expect(await m2.hold('rollout')).toBe(false);
    await m1.release('rollout');
    expect(m1.holds('rollout')).toBe(false);
    expect(await m2.holderOf('rollout')).toBeUndefined();
    expect(await m2.hold('rollout')).toBe(true);
    // m1's renewals do not take it back
    await new Promise((r) => setTimeout(r, TTL * 1000));
    expect(await m1.holderOf('rollout')).toBe('m2');
    await m1.stop();
    await m2.stop();
  });

  it('a store that fails counts as not held', async () => {
    const { store, m1 } = pair();
    await store.close();
    expect(await m1.hold('schedule.a')).toBe(false);
  });
});
