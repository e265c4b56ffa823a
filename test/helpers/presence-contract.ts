/**
 * What every store does with masters, sessions and leases (schema migration "masters, sessions,
 * leases"), run against SQLite (test/unit/store-presence.test.ts) and PostgreSQL
 * (test/integration/store-presence-pg.test.ts) alike.
 */
import { expect, it } from 'vitest';
import type { PresenceStore } from '../../master/presence.js';
import type { Store as FullStore } from '../../master/store-api.js';

type Store = PresenceStore & Pick<FullStore, 'addAgent' | 'deleteAgent'>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function presenceContract(open: () => Promise<Store>): void {
  it('masters: a heartbeat records a master, live masters are those heard from recently, a master that leaves is gone', async () => {
    const s = await open();
    await s.heartbeatMaster('m1', 'wss://10.0.0.1:4506');
    await s.heartbeatMaster('m2', 'wss://10.0.0.2:4506');
    expect((await s.liveMasters(60)).map((m) => [m.id, m.url])).toEqual([
      ['m1', 'wss://10.0.0.1:4506'],
      ['m2', 'wss://10.0.0.2:4506'],
    ]);
    await sleep(300);
    await s.heartbeatMaster('m2', 'wss://10.0.0.2:4506');
    // m1 is silent longer than 0.2 s: dead at that horizon
    expect((await s.liveMasters(0.2)).map((m) => m.id)).toEqual(['m2']);
    const m2 = (await s.liveMasters(60)).find((m) => m.id === 'm2')!;
    expect(m2.seen > m2.started).toBe(true);
    await s.forgetMaster('m1');
    expect((await s.liveMasters(60)).map((m) => m.id)).toEqual(['m2']);
  });

  it("sessions: one master per agent, taken over by the newest claim, released only by its holder, void with a dead master", async () => {
    const s = await open();
    for (const id of ['a1', 'a2', 'a3']) await s.addAgent(id, id.repeat(32).slice(0, 64), 'accepted');
    await s.heartbeatMaster('m1', 'u1');
    await s.heartbeatMaster('m2', 'u2');
    await s.claimSession('a1', 'm1');
    await s.claimSession('a2', 'm1');
    await s.claimSession('a3', 'm2');
    await s.claimSession('a2', 'm2'); // a2 moved to m2
    expect((await s.liveSessions(60)).map((x) => [x.agent_id, x.master_id])).toEqual([
      ['a1', 'm1'],
      ['a2', 'm2'],
      ['a3', 'm2'],
    ]);
    // m1's old connection of a2 closes late: a2 stays on m2
    expect(await s.releaseSession('a2', 'm1')).toBe(false);
    expect((await s.sessionOf('a2', 60))?.master_id).toBe('m2');
    expect(await s.releaseSession('a3', 'm2')).toBe(true);
    expect(await s.sessionOf('a3', 60)).toBeUndefined();
    // m1 goes silent: its sessions do not count, m2's do
    await sleep(300);
    await s.heartbeatMaster('m2', 'u2');
    expect((await s.liveSessions(0.2)).map((x) => x.agent_id)).toEqual(['a2']);
    expect(await s.sessionOf('a1', 0.2)).toBeUndefined();
    expect((await s.sessionOf('a1', 60))?.master_id).toBe('m1');
    // m1 restarts: its previous run's sessions are voided
    expect(await s.voidSessions('m1')).toBe(1);
    expect((await s.liveSessions(60)).map((x) => x.agent_id)).toEqual(['a2']);
    // a deleted agent has no session
    await s.deleteAgent('a2');
    expect(await s.liveSessions(60)).toEqual([]);
  });

  it('leases: one holder at a time, renewed by it, taken over once expired, released only by its holder', async () => {
    const s = await open();
    expect(await s.acquireLease('schedule:highstate', 'm1', 60)).toBe(true);
    expect(await s.acquireLease('schedule:highstate', 'm2', 60)).toBe(false);
    expect(await s.acquireLease('schedule:highstate', 'm1', 60)).toBe(true); // renewed
    expect(await s.acquireLease('rollout', 'm2', 0.2)).toBe(true); // another name is another lease
    expect(await s.releaseLease('schedule:highstate', 'm2')).toBe(false);
    expect(await s.releaseLease('schedule:highstate', 'm1')).toBe(true);
    expect(await s.acquireLease('schedule:highstate', 'm2', 60)).toBe(true);
    // m2's rollout lease expires unrenewed: m1 takes it over, and m2 cannot renew it any more
    expect(await s.acquireLease('rollout', 'm1', 60)).toBe(false);
    await sleep(400);
    expect(await s.acquireLease('rollout', 'm1', 60)).toBe(true);
    expect(await s.acquireLease('rollout', 'm2', 60)).toBe(false);
    // the holder is named (an operator refused a lease is told who has it); expired is nobody
    expect(await s.leaseOf('rollout')).toMatchObject({ name: 'rollout', holder: 'm1' });
    expect(await s.leaseOf('nothing')).toBeUndefined();
    expect(await s.acquireLease('short', 'm3', 0.2)).toBe(true);
    expect((await s.leaseOf('short'))?.holder).toBe('m3');
    await sleep(400);
    expect(await s.leaseOf('short')).toBeUndefined();
  });

  it('leases: many masters racing for a free lease, exactly one gets it', async () => {
    const s = await open();
    const got = await Promise.all(Array.from({ length: 8 }, (_, i) => s.acquireLease('race', `m${i}`, 60)));
    expect(got.filter(Boolean)).toHaveLength(1);
  });
}
