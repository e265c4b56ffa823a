/**
 * PgBus on a real PostgreSQL (test/helpers/postgres.ts): events between two masters' buses over
 * LISTEN/NOTIFY, large agent lists split under NOTIFY's 8000-byte limit, and the listening
 * connection cut by the server: the bus reconnects, says there was a gap, and events flow again.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PgBus } from '../../master/bus-pg.js';
import type { BusEvent } from '../../master/bus-events.js';
import { makeLogger } from '../../core/log.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';

const JID = '20261206120000123456';
let pgs: Postgres;
let url: string;
const buses: PgBus[] = [];
const log = makeLogger('error', 'bus');

beforeAll(async () => {
  pgs = await startPostgres();
  url = await pgs.createDatabase('bus');
}, 60_000);

afterAll(async () => {
  for (const b of buses) await b.close();
  await pgs?.stop();
});

async function bus(self: string): Promise<{ bus: PgBus; got: BusEvent[]; gaps: number[] }> {
  const b = new PgBus(url, self, log);
  await b.start();
  buses.push(b);
  const got: BusEvent[] = [];
  const gaps: number[] = [];
  b.subscribe((e) => got.push(e));
  b.onGap(() => gaps.push(Date.now()));
  return { bus: b, got, gaps };
}

async function until(what: string, fn: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

it('carries events between masters, never back to the publisher; a 3000-agent dispatch arrives whole', async () => {
  const m1 = await bus('m1');
  const m2 = await bus('m2');
  const agents = Array.from({ length: 3000 }, (_, i) => `agent-${String(i).padStart(5, '0')}.example.internal`);
  m1.bus.publish({ type: 'dispatch', from: 'm1', to: 'm2', jid: JID, agents });
  m1.bus.publish({ type: 'kill', from: 'm1', jid: JID, by: 'root' });
  m2.bus.publish({ type: 'returned', from: 'm2', jid: JID, agents: ['agent-00001.example.internal'] });
  await until('m2 gets the kill', () => m2.got.some((e) => e.type === 'kill'));
  await until('m1 gets the return', () => m1.got.length > 0);
  const dispatched = m2.got.filter((e) => e.type === 'dispatch').flatMap((e) => (e as { agents: string[] }).agents);
  expect(dispatched).toEqual(agents); // split in parts, in order, nothing lost
  expect(m2.got.filter((e) => e.type === 'dispatch').length).toBeGreaterThan(1);
  expect(m2.got.at(-1)).toEqual({ type: 'kill', from: 'm1', jid: JID, by: 'root' }); // after the dispatch
  expect(m1.got).toEqual([{ type: 'returned', from: 'm2', jid: JID, agents: ['agent-00001.example.internal'] }]);
  expect(m1.got.some((e) => e.from === 'm1')).toBe(false);
});

it('a notification that is not an event is ignored, the ones after it are handled', async () => {
  const m3 = await bus('m3');
  const admin = await pgs.admin('bus');
  try {
    await admin.query(`SELECT pg_notify('tsalt_bus', $1)`, ['{"type":"dispatch","from":"evil"}']);
    await admin.query(`SELECT pg_notify('tsalt_bus', $1)`, ['not json']);
    await admin.query(`SELECT pg_notify('tsalt_bus', $1)`, [JSON.stringify([{ type: 'resync', from: 'm9' }])]);
  } finally {
    await admin.end();
  }
  await until('the resync', () => m3.got.length > 0);
  expect(m3.got).toEqual([{ type: 'resync', from: 'm9' }]);
});

it('the listening connection cut by the server: the bus reconnects, reports the gap, and receives again', async () => {
  const m4 = await bus('m4');
  const m5 = await bus('m5');
  const admin = await pgs.admin('bus');
  try {
    const r = await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'tsalt-bus-listen:m5'`);
    expect(r.rowCount).toBe(1);
  } finally {
    await admin.end();
  }
  await until('m5 reports a gap', () => m5.gaps.length === 1);
  m4.bus.publish({ type: 'key', from: 'm4', state: 'accepted', agents: ['web1'] });
  await until('m5 receives after reconnecting', () => m5.got.some((e) => e.type === 'key'));
  expect(m4.gaps).toEqual([]);
});

it('the publishing connection cut: what is published next is sent on a new one', async () => {
  const m6 = await bus('m6');
  const m7 = await bus('m7');
  m6.bus.publish({ type: 'resync', from: 'm6' });
  await until('first event', () => m7.got.length === 1);
  const admin = await pgs.admin('bus');
  try {
    await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'tsalt-bus-notify:m6'`);
  } finally {
    await admin.end();
  }
  m6.bus.publish({ type: 'kill', from: 'm6', jid: JID, by: 'ops' });
  await until('the event after the cut', () => m7.got.length === 2);
  expect(m7.got[1]).toEqual({ type: 'kill', from: 'm6', jid: JID, by: 'ops' });
});
