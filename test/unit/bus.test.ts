/**
 * The masters' bus without PostgreSQL: event schemas, splitting and packing into NOTIFY-sized
 * payloads, the in-process bus (test/integration/bus-pg.test.ts runs PgBus on a real server).
 */
import { describe, expect, it } from 'vitest';
import { BusEventSchema, dispatchBusEvent, splitEvent, type BusEvent, type BusHandlers } from '../../master/bus-events.js';
import { pack, NOTIFY_MAX_BYTES } from '../../master/bus-pg.js';
import { LocalBus } from '../../master/bus.js';

const JID = '20261206120000123456';
const CALL = 'ab'.repeat(16);
const ids = (n: number, prefix = 'web') => Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(5, '0')}.example.internal`);

describe('bus events', () => {
  it('parse with their schema; unknown fields, bad ids and empty agent lists are refused', () => {
    expect(BusEventSchema.safeParse({ type: 'dispatch', from: 'm1:4506', to: 'm2:4506', jid: JID, agents: ['web1'] }).success).toBe(true);
    expect(BusEventSchema.safeParse({ type: 'dispatch', from: 'm1', to: 'm2', jid: JID, agents: ['web1'], bundle: {} }).success).toBe(false);
    expect(BusEventSchema.safeParse({ type: 'returned', from: 'm1', jid: JID, agents: [] }).success).toBe(false);
    expect(BusEventSchema.safeParse({ type: 'key', from: 'm1', state: 'accepted', agents: ['../etc'] }).success).toBe(false);
    expect(BusEventSchema.safeParse({ type: 'kill', from: 'm 1', jid: JID, by: 'root' }).success).toBe(false);
    expect(BusEventSchema.safeParse({ type: 'resync', from: 'm1' }).success).toBe(true);
    // a call is named, never carried: no request, no answer on the bus
    expect(BusEventSchema.safeParse({ type: 'call', from: 'm1', to: 'm2', id: CALL }).success).toBe(true);
    expect(BusEventSchema.safeParse({ type: 'call', from: 'm1', to: 'm2', id: CALL, fun: 'test.ping' }).success).toBe(false);
    expect(BusEventSchema.safeParse({ type: 'answered', from: 'm2', to: 'm1', id: CALL, answer: true }).success).toBe(false);
    expect(BusEventSchema.safeParse({ type: 'answered', from: 'm2', to: 'm1', id: 'not-hex' }).success).toBe(false);
  });

  it('go to the handler of their type', async () => {
    const seen: string[] = [];
    const table: BusHandlers = {
      dispatch: (e) => void seen.push(`dispatch ${e.to} ${e.agents.join(',')}`),
      returned: (e) => void seen.push(`returned ${e.agents.join(',')}`),
      progress: (e) => void seen.push(`progress ${e.agents.join(',')}`),
      key: (e) => void seen.push(`key ${e.state}`),
      kill: (e) => void seen.push(`kill ${e.jid}`),
      resync: (e) => void seen.push(`resync ${e.from}`),
      call: (e) => void seen.push(`call ${e.to} ${e.id}`),
      answered: (e) => void seen.push(`answered ${e.to} ${e.id}`),
    };
    await dispatchBusEvent(table, { type: 'dispatch', from: 'm1', to: 'm2', jid: JID, agents: ['a', 'b'] });
    await dispatchBusEvent(table, { type: 'key', from: 'm1', state: 'rejected', agents: ['a'] });
    await dispatchBusEvent(table, { type: 'resync', from: 'm3' });
    await dispatchBusEvent(table, { type: 'progress', from: 'm2', jid: JID, agents: ['a'] });
    await dispatchBusEvent(table, { type: 'call', from: 'm1', to: 'm2', id: CALL });
    await dispatchBusEvent(table, { type: 'answered', from: 'm2', to: 'm1', id: CALL });
    expect(seen).toEqual(['dispatch m2 a,b', 'key rejected', 'resync m3', 'progress a', `call m2 ${CALL}`, `answered m1 ${CALL}`]);
  });

  it('an event over the size limit is split by its agents, each part under it, none lost', () => {
    const agents = ids(2000);
    const ev: BusEvent = { type: 'dispatch', from: 'm1', to: 'm2', jid: JID, agents };
    const parts = splitEvent(ev, 7900);
    expect(parts.length).toBeGreaterThan(5);
    for (const p of parts) expect(Buffer.byteLength(JSON.stringify(p))).toBeLessThanOrEqual(7900);
    expect(parts.flatMap((p) => (p as { agents: string[] }).agents)).toEqual(agents);
    expect(() => splitEvent({ type: 'kill', from: 'm1', jid: JID, by: 'x'.repeat(200) }, 100)).toThrow(/over the 100/);
  });

  it('packs a tick of events into as few payloads as fit, in order, each within NOTIFY_MAX_BYTES', () => {
    const evs: BusEvent[] = [
      ...ids(300).map((a): BusEvent => ({ type: 'returned', from: 'm2', jid: JID, agents: [a] })),
      { type: 'dispatch', from: 'm2', to: 'm1', jid: JID, agents: ids(1500, 'db') },
      { type: 'kill', from: 'm2', jid: JID, by: 'root' },
    ];
    const payloads = pack(evs, NOTIFY_MAX_BYTES, (m) => {
      throw new Error(m);
    });
    expect(payloads.length).toBeLessThan(20);
    for (const p of payloads) expect(Buffer.byteLength(p.text)).toBeLessThanOrEqual(NOTIFY_MAX_BYTES);
    expect(payloads.reduce((n, p) => n + p.count, 0)).toBe(evs.length);
    const back = payloads.flatMap((p) => (JSON.parse(p.text) as unknown[]).map((x) => BusEventSchema.parse(x)));
    expect(back.filter((e) => e.type === 'returned').map((e) => (e as { agents: string[] }).agents[0])).toEqual(ids(300));
    expect(back.filter((e) => e.type === 'dispatch').flatMap((e) => (e as { agents: string[] }).agents)).toEqual(ids(1500, 'db'));
    expect(back.at(-1)).toEqual({ type: 'kill', from: 'm2', jid: JID, by: 'root' });
  });
});

describe('LocalBus', () => {
  it('delivers to the other masters of its hub on a later tick, never to the publisher', async () => {
    const hub = new Set<LocalBus>();
    const [a, b, c] = [new LocalBus('a', hub), new LocalBus('b', hub), new LocalBus('c', hub)];
    const got: Record<string, BusEvent[]> = { a: [], b: [], c: [] };
    for (const [name, bus] of [['a', a], ['b', b], ['c', c]] as const) bus.subscribe((e) => got[name]!.push(e));
    const ev: BusEvent = { type: 'kill', from: 'a', jid: JID, by: 'root' };
    a.publish(ev);
    expect(got.b).toEqual([]); // not inside publish
    await a.flush();
    expect(got).toEqual({ a: [], b: [ev], c: [ev] });
    await c.close();
    a.publish(ev);
    await a.flush();
    expect(got.c).toHaveLength(1);
  });

  it('one master alone: publishing goes nowhere', async () => {
    const solo = new LocalBus('m1');
    const got: BusEvent[] = [];
    solo.subscribe((e) => got.push(e));
    solo.publish({ type: 'resync', from: 'm1' });
    await solo.flush();
    expect(got).toEqual([]);
  });
});
