/**
 * An agent's run ends exactly once in JobManager, now that every store call is a wait: the same
 * return arriving twice at once (a re-sent spool on a new connection) is stored and reported
 * once; a run whose return another master stored is released with that end when this master's
 * timeout fires, not reported again as a timeout.
 */
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { JobManager, type RemoteAgents } from '../../master/jobs.js';
import { newJid } from '../../master/store-api.js';
import { SqliteStore } from '../../master/store-sqlite.js';
import type { AgentConn } from '../../master/server.js';
import type { MasterMessage, ReturnBody } from '../../protocol/messages.js';
import type { CliEvent } from '../../protocol/cli-messages.js';
import type { ConfigSource, Snapshot } from '../../master/tree.js';
import { MemoryTree } from '../../master/pillar.js';
import { bundleHash } from '../../engine/tree/bundle.js';
import { makeLogger } from '../../core/log.js';
import { tempDir } from '../helpers/harness.js';

/** An accepted, connected agent: what it is sent is kept. */
function fakeConn(id: string): AgentConn & { sent: MasterMessage[] } {
  const sent: MasterMessage[] = [];
  return { id, grains: {}, sent, open: true, send: (m: MasterMessage) => (sent.push(m), true), sendText: (t: string) => (sent.push(JSON.parse(t) as MasterMessage), true), close: () => {} } as unknown as AgentConn & { sent: MasterMessage[] };
}

const noSource = { label: 'none', snapshot: () => Promise.reject(new Error('no tree in this test')) } as unknown as ConfigSource;

/** States and pillar (`p.sls` for every agent) held in memory, one revision. */
function memorySource(pillarSls: string): ConfigSource {
  const entry = (p: string, t: string) => ({ path: p, data: Buffer.from(t), executable: false });
  const states = [entry('top.sls', "base:\n  '*':\n    - a\n"), entry('a.sls', 'a:\n  test.nop: []\n')];
  const pillarTree = new MemoryTree('pillar', [entry('top.sls', "base:\n  '*':\n    - p\n"), entry('p.sls', pillarSls)]);
  const snap: Snapshot = { revision: 'r1', bundle: { revision: 'r1', hash: bundleHash(states), entries: states, bytes: 0 }, pillar: () => pillarTree };
  return { label: 'memory', snapshot: () => Promise.resolve(snap) } as unknown as ConfigSource;
}

/** The master's job settings of these tests (`cfg` overrides some). */
const jobsCfg = (cfg: { lost_after_s?: number; timeout_s?: number } = {}) => ({ nodegroups: {}, lost_after_s: 60, timeout_s: 600, held_return_retry_s: 2, held_returns_max_bytes: 256 * 1024 * 1024, ...cfg });
const jobsLog = makeLogger('error', 'jobs', () => {});

describe('JobManager: an agent run ends once', () => {
  const stores: SqliteStore[] = [];
  const managers: JobManager[] = [];
  afterEach(async () => {
    for (const m of managers.splice(0)) m.stop();
    for (const s of stores.splice(0)) await s.close();
  });

  async function setup(timeout_s = 600) {
    const store = new SqliteStore(path.join(tempDir('tsalt-once-'), 'master.db'));
    stores.push(store);
    await store.addAgent('a1', 'ab'.repeat(32), 'accepted');
    const conn = fakeConn('a1');
    const jobs = new JobManager({ store, source: noSource, agents: { ready: (id) => (id === 'a1' ? conn : undefined) }, cfg: jobsCfg({ timeout_s }), log: jobsLog });
    managers.push(jobs);
    const events: CliEvent[] = [];
    const done = jobs.start({ type: 'run', target: 'a1', tgt_type: 'glob', command: 'true', user: 'root@cli' }, (ev) => events.push(ev));
    const jid = await new Promise<string>((resolve) => {
      const look = () => {
        const sent = conn.sent.find((m) => m.type === 'job');
        if (sent && sent.type === 'job') resolve(sent.jid);
        else setImmediate(look);
      };
      look();
    });
    return { store, conn, jobs, events, done, jid };
  }

  it('the same return twice at once: stored once, one agent_done, both copies acknowledged', async () => {
    const { store, conn, jobs, events, done, jid } = await setup();
    const h = jobs.handlers();
    const ret = { type: 'job_return' as const, jid, body: { kind: 'run' as const, retcode: 0, stdout: 'once\n', stderr: '' } };
    await Promise.all([h.job_return!(conn, ret), h.job_return!(conn, { ...ret, body: { ...ret.body, stdout: 'twice\n' } })]);
    expect(await done).toBe(0);
    expect(events.filter((e) => e.type === 'agent_done')).toHaveLength(1);
    expect(conn.sent.filter((m) => m.type === 'return_ack')).toHaveLength(2);
    const row = (await store.getJobAgent(jid, 'a1'))!;
    expect(row.status).toBe('done');
    expect(row.body).toMatchObject({ kind: 'run', stdout: 'once\n' });
  });

  it('a state result after its run ended is neither stored nor streamed (the job still running for another agent)', async () => {
    const store = new SqliteStore(path.join(tempDir('tsalt-once-'), 'master.db'));
    stores.push(store);
    const conns = new Map(['a1', 'a2'].map((id) => [id, fakeConn(id)]));
    for (const id of conns.keys()) await store.addAgent(id, 'ab'.repeat(32), 'accepted');
    const jobs = new JobManager({ store, source: noSource, agents: { ready: (id) => conns.get(id) }, cfg: jobsCfg(), log: jobsLog });
    managers.push(jobs);
    const events: CliEvent[] = [];
    const done = jobs.start({ type: 'run', target: 'a*', tgt_type: 'glob', command: 'true', user: 'root@cli' }, (ev) => events.push(ev));
    const a1 = conns.get('a1')!;
    while (!a1.sent.some((m) => m.type === 'job')) await new Promise((r) => setImmediate(r));
    const sent = a1.sent.find((m) => m.type === 'job')!;
    const jid = sent.type === 'job' ? sent.jid : '';
    const h = jobs.handlers();
    const result = { id: 's', sls: 'x', fun: 'test.nop', name: 's', result: true, changes: {}, comment: '', start: new Date().toISOString(), duration_ms: 1, run_num: 0 };
    await h.job_ack!(a1, { type: 'job_ack', jid });
    await h.state_result!(a1, { type: 'state_result', jid, result });
    await h.job_return!(a1, { type: 'job_return', jid, body: { kind: 'run', retcode: 0, stdout: '', stderr: '' } });
    // a stray result of a1's ended run, while a2's run keeps the job going
    await h.state_result!(a1, { type: 'state_result', jid, result: { ...result, run_num: 1, comment: 'stray' } });
    expect((await store.stateResults(jid, 'a1')).map((r) => r.run_num)).toEqual([0]);
    expect(events.filter((e) => e.type === 'state_result').map((e) => (e.type === 'state_result' ? e.result.run_num : -1))).toEqual([0]);
    expect(await store.getJobAgent(jid, 'a1')).toMatchObject({ status: 'done' });
    expect(await store.getJobAgent(jid, 'a2')).toMatchObject({ status: 'queued' });
    await h.job_return!(conns.get('a2')!, { type: 'job_return', jid, body: { kind: 'run', retcode: 0, stdout: '', stderr: '' } });
    expect(await done).toBe(0);
  });

  it('a return another master stored: the timeout here releases the run with the stored end', async () => {
    const { store, events, done, jid } = await setup(0.2);
    // the agent failed over and its return reached the other master
    expect(await store.finishJobAgent(jid, 'a1', 'done', { kind: 'run', retcode: 0, stdout: 'there\n', stderr: '' })).toBe(true);
    expect(await done).toBe(0);
    const ends = events.filter((e) => e.type === 'agent_done');
    expect(ends).toEqual([expect.objectContaining({ agent: 'a1', status: 'done' })]);
    expect(await store.getJobAgent(jid, 'a1')).toMatchObject({ status: 'done', error: null });
  });

  it("an agent's run ended: the job drops what it kept for that agent (row, bundle, pillar) while the others still run", async () => {
    const store = new SqliteStore(path.join(tempDir('tsalt-once-'), 'master.db'));
    stores.push(store);
    const conns = new Map(['a1', 'a2'].map((id) => [id, fakeConn(id)]));
    for (const id of conns.keys()) await store.addAgent(id, 'ab'.repeat(32), 'accepted');
    // an apply: each agent has a bundle and a rendered pillar in the job
    const source = memorySource('who: {{ grains.id }}\n');
    const jobs = new JobManager({ store, source, agents: { ready: (id) => conns.get(id) }, cfg: jobsCfg(), log: jobsLog });
    managers.push(jobs);
    const done = jobs.start({ type: 'apply', target: 'a*', tgt_type: 'glob', sls: [], test: true, user: 'root@cli' }, () => {});
    for (const c of conns.values()) while (!c.sent.some((m) => m.type === 'job')) await new Promise((r) => setImmediate(r));
    const sent = conns.get('a1')!.sent.find((m) => m.type === 'job')!;
    const jid = sent.type === 'job' ? sent.jid : '';
    // the job's per-agent state, as the master holds it (private: nothing else shows it)
    type PerAgent = { rows: Map<string, unknown>; timers: Map<string, unknown>; inflight: Set<string>; pillars: Map<string, unknown>; bundles: Map<string, unknown> };
    const job = (jobs as unknown as { active: Map<string, PerAgent> }).active.get(jid)!;
    const held = () => [job.rows, job.timers, job.pillars, job.bundles].map((m) => [...m.keys()].sort());
    expect(held()).toEqual(Array(4).fill(['a1', 'a2']));
    expect(sent.type === 'job' && sent.spec.kind === 'apply' ? sent.spec.pillar : undefined).toEqual({ who: 'a1' });
    const h = jobs.handlers();
    const report = (id: string): ReturnBody => ({ kind: 'apply', report: { id, test: true, results: [], counts: { total: 0, succeeded: 0, changed: 0, failed: 0 }, duration_ms: 1 } });
    await h.job_return!(conns.get('a1')!, { type: 'job_return', jid, revision: 'r1', body: report('a1') });
    expect([...job.inflight]).toEqual(['a2']);
    expect(held()).toEqual(Array(4).fill(['a2']));
    await h.job_return!(conns.get('a2')!, { type: 'job_return', jid, revision: 'r1', body: report('a2') });
    expect(await done).toBe(0);
    expect(held()).toEqual(Array(4).fill([]));
  });
});

describe("JobManager: an agent on another master", () => {
  it('its streamed-results count leaves the job with its run, as the rest of what the job kept for it', async () => {
    const store = new SqliteStore(path.join(tempDir('tsalt-once-'), 'master.db'));
    const a1 = fakeConn('a1');
    for (const id of ['a1', 'a2']) await store.addAgent(id, 'ab'.repeat(32), 'accepted');
    // a2 is connected to m2: its results and return are stored there, this master streams them
    const remote: RemoteAgents = { elsewhere: async () => new Map([['a2', 'm2']]), holderOf: async () => 'm2', dispatch: () => {}, returned: () => {}, kill: () => {} };
    const jobs = new JobManager({ store, source: noSource, remote, agents: { ready: (id) => (id === 'a1' ? a1 : undefined) }, cfg: jobsCfg(), log: jobsLog });
    try {
      const events: CliEvent[] = [];
      const done = jobs.start({ type: 'run', target: 'a*', tgt_type: 'glob', command: 'true', user: 'root@cli' }, (ev) => events.push(ev));
      while (!a1.sent.some((m) => m.type === 'job')) await new Promise((r) => setImmediate(r));
      const sent = a1.sent.find((m) => m.type === 'job')!;
      const jid = sent.type === 'job' ? sent.jid : '';
      const job = (jobs as unknown as { active: Map<string, { streamed?: Map<string, number> }> }).active.get(jid)!;
      const result = { id: 'x', sls: 'x', fun: 'test.nop', name: 'x', result: true, changes: {}, comment: '', start: '00:00:00.000000', duration_ms: 1, run_num: 0 };
      await store.putStateResults([{ jid, agentId: 'a2', result }]);
      await jobs.remoteProgress(jid, ['a2']);
      expect(events.filter((e) => e.type === 'state_result')).toHaveLength(1);
      expect([...(job.streamed?.keys() ?? [])]).toEqual(['a2']);
      expect(await store.finishJobAgent(jid, 'a2', 'done', { kind: 'run', retcode: 0, stdout: '', stderr: '' })).toBe(true);
      await jobs.remoteReturned(jid, ['a2']);
      expect([...(job.streamed?.keys() ?? [])]).toEqual([]);
      await jobs.handlers().job_return!(a1, { type: 'job_return', jid, body: { kind: 'run', retcode: 0, stdout: '', stderr: '' } });
      expect(await done).toBe(0);
    } finally {
      jobs.stop();
      await store.close();
    }
  });
});

describe('JobManager: pillar targeting', () => {
  it('renders every agent\'s pillar to match, and keeps for the job only those of the agents it is sent to', async () => {
    const store = new SqliteStore(path.join(tempDir('tsalt-once-'), 'master.db'));
    const conns = new Map(['a1', 'a2'].map((id) => [id, fakeConn(id)]));
    for (const id of ['a1', 'a2', 'a3']) await store.addAgent(id, 'ab'.repeat(32), 'accepted');
    // a1 and a3 match; a3 is offline
    const jobs = new JobManager({ store, source: memorySource("{% if grains.id != 'a2' %}role: web{% endif %}\n"), agents: { ready: (id) => conns.get(id) }, cfg: jobsCfg(), log: jobsLog });
    try {
      const events: CliEvent[] = [];
      void jobs.start({ type: 'apply', target: 'role:web', tgt_type: 'pillar', sls: [], test: true, user: 'root@cli' }, (ev) => events.push(ev));
      const a1 = conns.get('a1')!;
      while (!a1.sent.some((m) => m.type === 'job')) await new Promise((r) => setImmediate(r));
      expect(events[0]).toMatchObject({ type: 'job_started', targets: ['a1', 'a3'], offline: [{ id: 'a3' }] });
      const sent = a1.sent.find((m) => m.type === 'job')!;
      const jid = sent.type === 'job' ? sent.jid : '';
      const job = (jobs as unknown as { active: Map<string, { pillars: Map<string, unknown> }> }).active.get(jid)!;
      expect([...job.pillars.keys()]).toEqual(['a1']);
    } finally {
      jobs.stop();
      await store.close();
    }
  });
});

describe("JobManager: another master's job sent from here is forgotten once nothing more comes of it here", () => {
  const stores: SqliteStore[] = [];
  const managers: JobManager[] = [];
  afterEach(async () => {
    for (const m of managers.splice(0)) m.stop();
    for (const s of stores.splice(0)) await s.close();
  });

  /** This master (m1) with agent a1 connected, and a run job of master m2's for a1 in the store. */
  async function setup() {
    const store = new SqliteStore(path.join(tempDir('tsalt-held-'), 'master.db'));
    stores.push(store);
    await store.addAgent('a1', 'ab'.repeat(32), 'accepted');
    let conn: ReturnType<typeof fakeConn> | undefined = fakeConn('a1');
    let holder: string | undefined;
    const remote: RemoteAgents = { elsewhere: async () => new Map(), holderOf: async () => holder, dispatch: () => {}, returned: () => {}, kill: () => {} };
    const jobs = new JobManager({ store, source: noSource, remote, agents: { ready: (id) => (id === 'a1' ? conn : undefined) }, cfg: jobsCfg({ lost_after_s: 0.05 }), log: jobsLog });
    managers.push(jobs);
    const jid = newJid();
    await store.createJob({ jid, kind: 'run', target: 'a1', tgt_type: 'glob', args: { command: 'true', timeout_s: 600 }, revision: null, started_by: 'root@m2', intent: 'intentional' }, [{ id: 'a1', status: 'queued', revision: null }]);
    const held = () => [...(jobs as unknown as { held: Map<string, unknown> }).held.keys()];
    return {
      store,
      jobs,
      jid,
      held,
      sent: () => conn?.sent.filter((m) => m.type === 'job').length ?? 0,
      /** a1's connection here ends and it is connected to `to` now */
      moveTo: (to: string) => {
        const c = conn!;
        conn = undefined;
        holder = to;
        return jobs.onDisconnect(c);
      },
    };
  }

  it('a dispatch for a run that ended meanwhile (timed out by its owner): nothing sent, nothing kept', async () => {
    const { store, jobs, jid, held, sent } = await setup();
    await store.setJobAgentStatus(jid, 'a1', 'timeout', 'no return within 600s');
    await jobs.runDispatched(jid, ['a1']);
    expect(sent()).toBe(0);
    expect(held()).toEqual([]);
  });

  it('the agent went on to another master mid-job (its return goes there): the job is forgotten here at the lost check', async () => {
    const { jobs, jid, held, sent, moveTo } = await setup();
    await jobs.runDispatched(jid, ['a1']);
    expect([sent(), held()]).toEqual([1, [jid]]);
    await moveTo('m3');
    // the lost check runs lost_after_s (50 ms) after the disconnect; given time to, whatever it does
    for (let i = 0; i < 100 && held().length; i++) await new Promise((r) => setTimeout(r, 20));
    expect(held()).toEqual([]);
  });
});

describe('JobManager: a state result is told to the observers (metrics) once', () => {
  it('when streamed, else with its stored return; a second copy of the return tells nothing', async () => {
    const store = new SqliteStore(path.join(tempDir('tsalt-once-'), 'master.db'));
    const conns = new Map(['a1', 'a2', 'a3'].map((id) => [id, fakeConn(id)]));
    for (const id of conns.keys()) await store.addAgent(id, 'ab'.repeat(32), 'accepted');
    const told: string[] = [];
    const events = { jobStarted: () => {}, agentDone: () => {}, jobCompleted: () => {}, stateResult: (_jid: string, r: { run_num: number; comment: string }) => told.push(`${r.comment}/${r.run_num}`) };
    const jobs = new JobManager({ store, source: noSource, events, agents: { ready: (id) => conns.get(id) }, cfg: jobsCfg(), log: jobsLog });
    try {
      const done = jobs.start({ type: 'run', target: 'a*', tgt_type: 'glob', command: 'true', user: 'root@cli' }, () => {});
      const a1 = conns.get('a1')!;
      while (![...conns.values()].every((c) => c.sent.some((m) => m.type === 'job'))) await new Promise((r) => setImmediate(r));
      const sent = a1.sent.find((m) => m.type === 'job')!;
      const jid = sent.type === 'job' ? sent.jid : '';
      const h = jobs.handlers();
      const result = (id: string, n: number) => ({ id: 's', sls: 'x', fun: 'test.nop', name: 's', result: true, changes: {}, comment: id, start: new Date().toISOString(), duration_ms: 1, run_num: n });
      const ret = (id: string): Parameters<NonNullable<typeof h.job_return>>[1] => {
        const results = [result(id, 0), result(id, 1)];
        return { type: 'job_return', jid, body: { kind: 'apply', report: { id, test: false, results, counts: { total: 2, succeeded: 2, changed: 0, failed: 0 }, duration_ms: 2 } } };
      };
      // a1: a run within the mark, nothing streamed; a2: a lasting run, both streamed; a3: one
      // streamed, the other's frame lost (sent while the connection was down)
      await h.state_result!(conns.get('a2')!, { type: 'state_result', jid, result: result('a2', 0) });
      await h.state_result!(conns.get('a2')!, { type: 'state_result', jid, result: result('a2', 1) });
      await h.state_result!(conns.get('a3')!, { type: 'state_result', jid, result: result('a3', 0) });
      expect(told).toEqual(['a2/0', 'a2/1', 'a3/0']);
      for (const id of ['a1', 'a2', 'a3']) await h.job_return!(conns.get(id)!, ret(id));
      await h.job_return!(a1, ret('a1')); // a re-sent spool
      expect(await done).toBe(0);
      expect(told.sort()).toEqual(['a1/0', 'a1/1', 'a2/0', 'a2/1', 'a3/0', 'a3/1']);
      for (const id of ['a1', 'a2', 'a3']) expect((await store.stateResults(jid, id)).map((r) => r.run_num), id).toEqual([0, 1]);
    } finally {
      jobs.stop();
      await store.close();
    }
  });
});
