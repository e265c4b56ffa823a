/**
 * Calls routed between masters (master/calls-route.ts) on one real store opened twice (two
 * masters), with the bus played by the test so that it can lose events: after a gap the holding
 * master takes the calls it missed and the asking master reads the answers it missed; a call
 * the asker gave up on is deleted and never sent; a stored answer that does not parse is that
 * agent's error; rows a dead master left behind are pruned by age.
 * (test/integration/fleet-route-calls.test.ts runs it all on PostgreSQL with real masters.)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../core/log.js';
import { FleetCalls, type CallRoutes } from '../../master/calls-route.js';
import type { CallOutcome } from '../../master/calls.js';
import type { AgentRow } from '../../master/store-api.js';
import { SqliteStore } from '../../master/store-sqlite.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsalt-calls-route-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const FP = 'ab'.repeat(32);
let n = 0;

/** The bus as the test plays it: events kept until delivered (or lost). */
class HandBus {
  readonly sent: { type: 'call' | 'answered'; to: string; id: string }[] = [];
  routes(self: string, away: Record<string, string>): CallRoutes {
    return {
      self,
      elsewhere: async () => new Map(Object.entries(away)),
      askCall: (to, id) => void this.sent.push({ type: 'call', to, id }),
      callAnswered: (to, id) => void this.sent.push({ type: 'answered', to, id }),
    };
  }
  take(type: 'call' | 'answered') {
    const i = this.sent.findIndex((e) => e.type === type);
    return i < 0 ? undefined : this.sent.splice(i, 1)[0];
  }
}

/** The holding master's own agents: what each was asked. */
function agentsHere(ids: string[]) {
  const asked: string[] = [];
  return {
    asked,
    has: (id: string) => ids.includes(id),
    call: async (id: string, body: { fun: string }): Promise<CallOutcome> => {
      asked.push(`${id} ${body.fun}`);
      return { status: 'ok', return: true, rtt_ms: 0.5 };
    },
  };
}

describe('calls routed between masters', () => {
  let s1: SqliteStore;
  let s2: SqliteStore;
  let agents: AgentRow[];
  beforeEach(async () => {
    const file = path.join(dir, `m${++n}.db`);
    s1 = new SqliteStore(file);
    s2 = new SqliteStore(file);
    await s1.addAgent('web1', FP, 'accepted');
    agents = [(await s1.getAgent('web1'))!];
  });
  afterEach(async () => {
    await s1.close();
    await s2.close();
  });

  const masters = (bus: HandBus) => {
    const here2 = agentsHere(['web1']);
    const source = { snapshot: () => Promise.reject(new Error('no tree needed')) };
    const log = silentLogger;
    const m1 = new FleetCalls({ local: agentsHere([]), store: s1, source, routes: bus.routes('m1', { web1: 'm2' }), log });
    const m2 = new FleetCalls({ local: here2, store: s2, source, routes: bus.routes('m2', {}), log });
    return { m1, m2, here2 };
  };
  const rows = () => s1.db.prepare('SELECT count(*) AS n FROM calls').get() as { n: number };

  it('events lost both ways: the holder takes the call after its gap, the asker reads the answer after its gap', async () => {
    const bus = new HandBus();
    const { m1, m2, here2 } = masters(bus);
    const out = m1.callAll(agents, { fun: 'test.ping', args: [], kwargs: {} }, 10_000);
    await vi_until(() => bus.sent.length > 0);
    const call = bus.take('call')!; // lost
    expect(call.to).toBe('m2');
    await m2.resync();
    await vi_until(() => bus.sent.length > 0);
    expect(here2.asked).toEqual(['web1 test.ping']);
    expect(bus.take('answered')).toMatchObject({ to: 'm1' }); // lost too
    await m1.resync();
    expect(await out).toEqual([['web1', { status: 'ok', return: true, rtt_ms: 0.5 }]]);
    expect(rows().n).toBe(0);
    // the call event arriving late finds the call taken: nothing is sent twice
    await m2.onAsked(call.id);
    expect(here2.asked).toHaveLength(1);
  });

  it('many agents on the other master: each called once, each answer read once', async () => {
    const ids = Array.from({ length: 30 }, (_, i) => `web${i + 2}`);
    for (const id of ids) await s1.addAgent(id, FP, 'accepted');
    const bus = new HandBus();
    const here2 = agentsHere(ids);
    const log = silentLogger;
    const source = { snapshot: () => Promise.reject(new Error('no tree needed')) };
    const m1 = new FleetCalls({ local: agentsHere([]), store: s1, source, routes: bus.routes('m1', Object.fromEntries(ids.map((id) => [id, 'm2']))), log });
    const m2 = new FleetCalls({ local: here2, store: s2, source, routes: bus.routes('m2', {}), log });
    const out = m1.callAll(await s1.listAgents().then((a) => a.filter((x) => ids.includes(x.id))), { fun: 'test.ping', args: [], kwargs: {} }, 10_000);
    await vi_until(() => bus.sent.length > 0);
    await m2.onAsked(bus.take('call')!.id);
    expect(here2.asked.sort()).toEqual(ids.map((id) => `${id} test.ping`).sort());
    await vi_until(() => bus.sent.length > 0);
    // one event for the call, however many answers
    const answered = bus.sent.splice(0);
    expect(answered.map((e) => e.type)).toEqual(['answered']);
    await m1.onAnswered(answered[0]!.id);
    const got = await out;
    expect(got.map(([id]) => id).sort()).toEqual([...ids].sort());
    for (const [, o] of got) expect(o).toEqual({ status: 'ok', return: true, rtt_ms: 0.5 });
    expect(rows().n).toBe(0);
  });

  it('a call the asker gave up on is deleted: the holder never sends it', async () => {
    const bus = new HandBus();
    const { m1, m2, here2 } = masters(bus);
    const [[, outcome]] = (await m1.callAll(agents, { fun: 'test.ping', args: [], kwargs: {} }, 10)) as [[string, CallOutcome]];
    expect(outcome).toEqual({ status: 'timeout', error: 'Minion did not return. [No response within 0.01s]' });
    await vi_until(() => rows().n === 0);
    await m2.onAsked(bus.take('call')!.id);
    await m2.resync();
    expect(here2.asked).toEqual([]);
  });

  it("an answer that does not parse is that agent's error; old rows of a dead asker are pruned", async () => {
    const bus = new HandBus();
    const { m1 } = masters(bus);
    await s2.askCalls([{ id: 'ee'.repeat(16), agent_id: 'web1', asked_by: 'm0', sent_by: 'm2', request: {}, expires: new Date(Date.now() - 3_600_000).toISOString() }]);
    const out = m1.callAll(agents, { fun: 'test.ping', args: [], kwargs: {} }, 10_000);
    await vi_until(() => bus.sent.length > 0);
    const id = bus.take('call')!.id;
    // the dead asker's row went with this call (pruned by age)
    await vi_until(() => rows().n === 1);
    expect(await s2.takeCalls(id, 'm2')).toHaveLength(1);
    expect(await s2.answerCall(id, 'web1', { status: 'ok', rtt_ms: 'fast' })).toBe(true);
    await m1.onAnswered(id);
    const [[, outcome]] = (await out) as [[string, CallOutcome]];
    expect(outcome).toMatchObject({ status: 'error', error: expect.stringMatching(/^the answer stored for web1 does not parse/) });
    expect(rows().n).toBe(0);
  });
});

/** Until `fn` holds (the store writes and events of a call happen on later ticks). */
async function vi_until(fn: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !fn(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(fn()).toBe(true);
}
