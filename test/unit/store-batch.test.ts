/**
 * Batched store writes (issue 14): the returns of a tick go to SQLite in one transaction
 * (master/tick-batcher.ts + store.finishJobAgents). Every return is stored exactly once, also
 * when the store fails in the middle of a batch (one row refused by SQLite, the disk full): the
 * batch is rolled back whole, each return is then written on its own, the refused ones fail to
 * their callers (the master holds them and tries again) and are stored once when the store
 * recovers. A real SQLite database; the failures are SQLite's own (a RAISE in a trigger,
 * max_page_count).
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { newJid, type JobReturnRow } from '../../master/store-api.js';
import { SqliteStore } from '../../master/store-sqlite.js';
import { TickBatcher } from '../../master/tick-batcher.js';
import type { StateResult } from '../../protocol/results.js';
import { tempDir } from '../helpers/harness.js';
import { applyReturn, nopResult } from '../helpers/job-rows.js';

const result = (agent: string, n: number): StateResult => nopResult(n, `${agent}-s${n}-${'x'.repeat(2000)}`);
const ret = (jid: string, agentId: string): JobReturnRow => applyReturn(jid, agentId, [result(agentId, 0), result(agentId, 1)]);

async function fleetJob(n: number, windowMs = 0) {
  const s = new SqliteStore(path.join(tempDir(), 'm.db'));
  const ids = Array.from({ length: n }, (_, i) => `a${i}`);
  for (const id of ids) await s.addAgent(id, id.padEnd(64, '0'), 'accepted');
  const jid = newJid();
  await s.createJob({ jid, kind: 'apply', target: '*', tgt_type: 'glob', args: {}, revision: 'r1', started_by: 'test' }, ids.map((id) => ({ id, status: 'queued' as const })));
  const calls = { batches: [] as number[], single: 0 };
  const batcher = new TickBatcher<JobReturnRow, boolean>(
    (rows) => (calls.batches.push(rows.length), s.finishJobAgents(rows)),
    (r) => (calls.single++, s.finishJobAgent(r.jid, r.agentId, r.status, r.body)),
    500,
    windowMs,
  );
  const rows = (sql: string, ...a: unknown[]) => s.db.prepare(sql).all(...a) as Record<string, unknown>[];
  /** results stored per agent, and agents whose run is done */
  const stored = () => ({
    results: Object.fromEntries(rows('SELECT agent_id, count(*) AS n FROM state_results WHERE jid = ? GROUP BY agent_id', jid).map((r) => [r.agent_id, r.n])),
    done: rows("SELECT agent_id FROM job_agents WHERE jid = ? AND status = 'done' ORDER BY agent_id", jid).map((r) => r.agent_id),
  });
  return { s, ids, jid, batcher, stored, calls };
}

describe('batched store writes', () => {
  it('returns of one tick are one transaction, each stored once; a duplicate changes nothing', async () => {
    const { s, ids, jid, batcher, stored, calls } = await fleetJob(50);
    const out = await Promise.all(ids.map((id) => batcher.add(ret(jid, id))));
    expect(out).toEqual(ids.map(() => true));
    expect(calls).toEqual({ batches: [50], single: 0 });
    const got = stored();
    expect(got.done).toHaveLength(50);
    expect(Object.values(got.results)).toEqual(ids.map(() => 2));
    // the same returns again (re-sent spools): nothing written twice
    expect(await Promise.all(ids.slice(0, 5).map((id) => batcher.add(ret(jid, id))))).toEqual([false, false, false, false, false]);
    expect(Object.values(stored().results)).toEqual(ids.map(() => 2));
    await s.close();
  });

  it('returns arriving one per turn of the event loop within the write window are one transaction, not one each; a lone return is stored in its turn', async () => {
    const windowMs = 200;
    const { s, ids, jid, batcher, stored, calls } = await fleetJob(40, windowMs);
    // a quiet master: the first return is written at once, not after the window
    const timer = new Promise<'timer'>((r) => setTimeout(() => r('timer'), windowMs));
    expect(await Promise.race([batcher.add(ret(jid, ids[0]!)), timer])).toBe(true);
    expect(calls).toEqual({ batches: [], single: 1 });
    // a busy one: the next 39 arrive a turn apart (as a loaded master reads them), inside the window
    const out: Promise<boolean>[] = [];
    for (const id of ids.slice(1)) {
      await new Promise((r) => setImmediate(r));
      out.push(batcher.add(ret(jid, id)));
    }
    expect(await Promise.all(out)).toEqual(ids.slice(1).map(() => true));
    // one transaction (a machine stalled past the window may make it two or three), never one per return
    expect(calls.single).toBe(1);
    expect(calls.batches.length).toBeLessThanOrEqual(3);
    expect(calls.batches.reduce((a, b) => a + b, 0)).toBe(39);
    expect(stored().done).toHaveLength(40);
    await s.close();
  });

  it('one return refused mid-batch: the others are stored once, the refused one fails alone and is stored once later', async () => {
    const { s, ids, jid, batcher, stored } = await fleetJob(20);
    s.db.exec("CREATE TRIGGER refuse_a7 BEFORE UPDATE ON job_agents WHEN NEW.agent_id = 'a7' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END");
    const out = await Promise.allSettled(ids.map((id) => batcher.add(ret(jid, id))));
    expect(out.filter((o) => o.status === 'rejected').map((o) => String((o as PromiseRejectedResult).reason))).toEqual([expect.stringMatching(/refused by the test/)]);
    // each caller learns its own return was stored (true), so the master finishes that agent's run
    expect(out.map((o) => (o.status === 'fulfilled' ? o.value : 'refused'))).toEqual(ids.map((id) => (id === 'a7' ? 'refused' : true)));
    let got = stored();
    expect(got.done).toEqual(ids.filter((id) => id !== 'a7').sort());
    expect(got.results.a7).toBeUndefined();
    expect(Object.values(got.results)).toEqual(Array(19).fill(2));
    // the store recovers: the held return is written (once), the others are not written again
    s.db.exec('DROP TRIGGER refuse_a7');
    expect(await Promise.all(ids.map((id) => batcher.add(ret(jid, id))))).toEqual(ids.map((id) => id === 'a7'));
    got = stored();
    expect(got.done).toHaveLength(20);
    expect(Object.values(got.results)).toEqual(Array(20).fill(2));
    await s.close();
  });

  it('the disk full mid-batch: nothing half written, every return stored once after it recovers', async () => {
    const { s, ids, jid, batcher, stored } = await fleetJob(40);
    s.db.pragma('wal_checkpoint(TRUNCATE)');
    const pages = Number(s.db.pragma('page_count', { simple: true }));
    // room for a few returns, not for all forty (each holds two 2 KiB results)
    s.db.pragma(`max_page_count = ${pages + 6}`);
    const out = await Promise.allSettled(ids.map((id) => batcher.add(ret(jid, id))));
    const failed = ids.filter((_, i) => out[i]!.status === 'rejected');
    expect(failed.length).toBeGreaterThan(0);
    for (const o of out) if (o.status === 'rejected') expect(String(o.reason)).toMatch(/full/i);
    for (const o of out) if (o.status === 'fulfilled') expect(o.value).toBe(true);
    let got = stored();
    // whatever was stored is whole: each stored run has both its results, no failed one has any
    expect(got.done).toEqual(ids.filter((id) => !failed.includes(id)).sort());
    for (const id of got.done) expect(got.results[id as string]).toBe(2);
    for (const id of failed) expect(got.results[id]).toBeUndefined();
    s.db.pragma('max_page_count = 1073741823');
    const again = await Promise.all(ids.map((id) => batcher.add(ret(jid, id))));
    expect(again).toEqual(ids.map((id) => failed.includes(id)));
    got = stored();
    expect(got.done).toHaveLength(40);
    expect(Object.values(got.results)).toEqual(Array(40).fill(2));
    await s.close();
  });

  it('streamed results of a tick are one transaction too', async () => {
    const { s, ids, jid } = await fleetJob(10);
    const results = new TickBatcher<{ jid: string; agentId: string; result: StateResult }, void>(
      async (rows) => (await s.putStateResults(rows), rows.map(() => undefined)),
      (r) => s.putStateResult(r.jid, r.agentId, r.result),
    );
    await Promise.all(ids.flatMap((id) => [0, 1, 2].map((n) => results.add({ jid, agentId: id, result: result(id, n) }))));
    for (const id of ids) expect((await s.stateResults(jid, id)).map((r) => r.id)).toEqual(['s0', 's1', 's2']);
    await s.close();
  });
});
