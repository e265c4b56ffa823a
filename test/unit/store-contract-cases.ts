/**
 * What every Store implementation must do, as vitest cases: storeContract(open) registers them
 * for one implementation (store-contract-sqlite.test.ts runs them on SQLite; the PostgreSQL
 * store's test runs the same cases on a real server). `open` gives a new, empty store each time.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { newJid, type Store } from '../../master/store-api.js';
import type { StateResult } from '../../protocol/results.js';
import type { ReturnBody } from '../../protocol/messages.js';

const FP = 'ab'.repeat(32);

const result = (n: number, ok: boolean | null, changed = false): StateResult => ({
  id: `s${n}`,
  sls: 'web',
  fun: 'test.nop',
  name: `s${n}`,
  result: ok,
  changes: changed ? { x: { old: 1, new: 2 } } : {},
  comment: `comment ${n}`,
  start: '2026-01-01T00:00:00.000Z',
  duration_ms: 1.5,
  run_num: n,
  ...(n === 2 ? { warnings: ['careful'] } : {}),
});

const applied = (results: StateResult[], test = false): ReturnBody => ({
  kind: 'apply',
  report: {
    id: 'a',
    test,
    results,
    counts: { total: results.length, succeeded: results.filter((r) => r.result !== false).length, changed: results.filter((r) => Object.keys(r.changes).length).length, failed: results.filter((r) => r.result === false).length },
    duration_ms: 3,
  },
});

export function storeContract(name: string, open: () => Promise<Store>): void {
  describe(`store contract: ${name}`, () => {
    const opened: Store[] = [];
    const fresh = async () => {
      const s = await open();
      opened.push(s);
      return s;
    };
    afterEach(async () => {
      for (const s of opened.splice(0)) await s.close();
    });

    /** a job of kind apply for agents a (queued) and b (lost at the start) */
    const job = async (s: Store, o: { revision?: string | null; by?: string; test?: boolean; jid?: string } = {}) => {
      const jid = o.jid ?? newJid();
      await s.createJob(
        { jid, kind: 'apply', target: '*', tgt_type: 'glob', args: { sls: ['web'], test: o.test ?? false }, revision: o.revision === undefined ? 'r1' : o.revision, started_by: o.by ?? 'root@cli' },
        [
          { id: 'a', status: 'queued' },
          { id: 'b', status: 'lost', error: 'agent offline when the job started' },
        ],
      );
      return jid;
    };

    it('knows its kind and schema', async () => {
      const s = await fresh();
      expect(['sqlite', 'postgres']).toContain(s.kind);
      expect(s.schema.to).toBeGreaterThanOrEqual(5);
      expect(s.schema.from).toBeLessThanOrEqual(s.schema.to);
    });

    it('meta: set, overwrite, read; a missing key is undefined', async () => {
      const s = await fresh();
      expect(await s.getMeta('x')).toBeUndefined();
      await s.setMeta('x', '1');
      await s.setMeta('x', '2');
      expect(await s.getMeta('x')).toBe('2');
      await s.setDesired('d1');
      expect(await s.desired()).toBe('d1');
    });

    it('agents and key states; the first key for an id stays', async () => {
      const s = await fresh();
      expect(await s.getAgent('a')).toBeUndefined();
      const row = await s.addAgent('a', FP, 'pending');
      expect(row).toMatchObject({ id: 'a', fingerprint: FP, key_state: 'pending', grains: {}, last_seen: expect.any(String), revision_applied: null, revision_assigned: null, attempt_status: null });
      expect(await s.addAgent('a', 'cd'.repeat(32), 'accepted')).toMatchObject({ fingerprint: FP, key_state: 'pending' });
      await s.addAgent('b', FP, 'accepted');
      expect((await s.listAgents()).map((x) => x.id)).toEqual(['a', 'b']);
      expect(await s.setKeyState('a', 'accepted')).toBe(true);
      expect(await s.setKeyState('nobody', 'accepted')).toBe(false);
      await s.touchAgent('a', { roles: ['web'], os: 'Debian' });
      await s.touchAgent('a'); // last seen only: the grains stay
      expect(await s.getAgent('a')).toMatchObject({ key_state: 'accepted', grains: { roles: ['web'], os: 'Debian' } });
      expect(await s.deleteAgent('a')).toBe(true);
      expect(await s.deleteAgent('a')).toBe(false);
      expect(await s.getAgent('a')).toBeUndefined();
    });

    it('a job and its agents: created together, open runs, status counts', async () => {
      const s = await fresh();
      const jid = await job(s);
      expect(await s.getJob(jid)).toMatchObject({ jid, kind: 'apply', target: '*', tgt_type: 'glob', args: { sls: ['web'], test: false }, revision: 'r1', started_by: 'root@cli', intent: 'intentional', killed: null, created: expect.any(String) });
      expect(await s.getJob('nope')).toBeUndefined();
      expect((await s.jobAgents(jid)).map((m) => [m.agent_id, m.status, m.revision, m.error])).toEqual([
        ['a', 'queued', 'r1', null],
        ['b', 'lost', 'r1', 'agent offline when the job started'],
      ]);
      expect((await s.getJobAgent(jid, 'b'))!.finished).not.toBeNull();
      expect((await s.openJobAgents()).map((m) => [m.jid, m.agent_id])).toEqual([[jid, 'a']]);
      expect(await s.openJobAgents('b')).toEqual([]);
      const p = await s.jobProgress(jid);
      expect(p.counts).toEqual({ queued: 1, running: 0, done: 0, failed: 0, timeout: 0, lost: 1, cancelled: 0 });
      expect(p.finished).not.toBeNull();
      // a schedule's job is corrective
      const c = newJid();
      await s.createJob({ jid: c, kind: 'run', target: 'a', tgt_type: 'list', args: { command: 'true' }, revision: null, started_by: 'schedule:x', intent: 'corrective' }, [{ id: 'a', status: 'queued', revision: null }]);
      expect(await s.getJob(c)).toMatchObject({ intent: 'corrective', revision: null });
    });

    it('a run moves queued -> running -> an end once; an ended run does not move again', async () => {
      const s = await fresh();
      const jid = await job(s);
      expect(await s.setJobAgentStatus(jid, 'a', 'running')).toBe(true);
      const started = (await s.getJobAgent(jid, 'a'))!.started;
      expect(started).not.toBeNull();
      expect(await s.setJobAgentStatus(jid, 'a', 'running')).toBe(true); // a repeated ack keeps the start
      expect((await s.getJobAgent(jid, 'a'))!.started).toBe(started);
      expect(await s.setJobAgentStatus(jid, 'a', 'timeout', 'no return within 1s')).toBe(true);
      expect(await s.getJobAgent(jid, 'a')).toMatchObject({ status: 'timeout', error: 'no return within 1s', finished: expect.any(String) });
      // the timeout and the lost timer racing: only the first end counts
      expect(await s.setJobAgentStatus(jid, 'a', 'lost', 'gone')).toBe(false);
      expect(await s.setJobAgentStatus(jid, 'a', 'running')).toBe(false);
      expect(await s.getJobAgent(jid, 'a')).toMatchObject({ status: 'timeout', error: 'no return within 1s' });
      expect(await s.setJobAgentStatus(jid, 'nobody', 'lost')).toBe(false);
    });

    it('a return is stored exactly once, with its results and the agent\'s attempt', async () => {
      const s = await fresh();
      await s.addAgent('a', FP, 'accepted');
      const jid = await job(s);
      await s.setJobAgentStatus(jid, 'a', 'running');
      await s.putStateResult(jid, 'a', result(0, true)); // streamed first
      await s.putStateResult(jid, 'a', { ...result(0, true), comment: 'streamed again' }); // an upsert
      expect((await s.stateResults(jid, 'a')).map((r) => r.comment)).toEqual(['streamed again']);
      const body = applied([result(0, true), result(1, false, true), result(2, null)]);
      // two copies of the same return at once (a re-sent spool, two masters): one is stored
      const [x, y] = await Promise.all([s.finishJobAgent(jid, 'a', 'failed', body), s.finishJobAgent(jid, 'a', 'done', applied([result(9, true)]))]);
      expect([x, y].filter(Boolean)).toHaveLength(1);
      const stored = (await s.getJobAgent(jid, 'a'))!;
      const winner = x ? body : applied([result(9, true)]);
      expect(stored.body).toEqual(winner);
      expect(stored.status).toBe(x ? 'failed' : 'done');
      if (x) {
        expect((await s.stateResults(jid, 'a')).map((r) => [r.id, r.result, r.changes, r.warnings])).toEqual([
          ['s0', true, {}, undefined],
          ['s1', false, { x: { old: 1, new: 2 } }, undefined],
          ['s2', null, {}, ['careful']],
        ]);
        expect(await s.changedResults(jid)).toBe(0); // s1 changed but failed
        // a failed run is the agent's attempt, not its revision
        expect(await s.getAgent('a')).toMatchObject({ revision_applied: null, revision_attempted: 'r1', attempt_status: 'failed', attempt_jid: jid });
      }
      // a later copy changes nothing
      expect(await s.finishJobAgent(jid, 'a', 'done', applied([]))).toBe(false);
      expect((await s.getJobAgent(jid, 'a'))!.body).toEqual(winner);
      expect(await s.openJobAgents()).toEqual([]);
    });

    it('a late return (after a timeout) is stored; a successful one is the agent\'s revision; a test run is not', async () => {
      const s = await fresh();
      await s.addAgent('a', FP, 'accepted');
      const jid = await job(s);
      await s.setJobAgentStatus(jid, 'a', 'timeout', 'late');
      expect(await s.finishJobAgent(jid, 'a', 'done', applied([result(0, true, true)]))).toBe(true);
      expect(await s.getJobAgent(jid, 'a')).toMatchObject({ status: 'done', error: null });
      expect(await s.getAgent('a')).toMatchObject({ revision_applied: 'r1', revision_attempted: 'r1', attempt_status: 'done', attempt_jid: jid });
      expect(await s.changedResults(jid)).toBe(1);
      const t = await job(s, { revision: 'r2', test: true });
      expect(await s.finishJobAgent(t, 'a', 'done', applied([result(0, null)], true))).toBe(true);
      expect(await s.getAgent('a')).toMatchObject({ revision_applied: 'r1', revision_attempted: 'r1' });
      // an error body (refused, pillar error) keeps its error
      const e = await job(s);
      expect(await s.finishJobAgent(e, 'a', 'failed', { kind: 'error', error: 'pillar: boom' })).toBe(true);
      expect(await s.getJobAgent(e, 'a')).toMatchObject({ status: 'failed', error: 'pillar: boom', body: { kind: 'error', error: 'pillar: boom' } });
      await s.recordAttempt('a', e, 'r3', 'timeout');
      expect(await s.getAgent('a')).toMatchObject({ revision_attempted: 'r3', attempt_status: 'timeout', attempt_jid: e, revision_applied: 'r1' });
    });

    it('listJobs pages newest first with `before`; counts per status; kills are remembered once', async () => {
      const s = await fresh();
      const t0 = Date.UTC(2026, 0, 1);
      const jids: string[] = [];
      for (let i = 0; i < 7; i++) jids.push(await job(s, { jid: newJid(new Date(t0 + i * 1000)), by: i % 2 ? 'bob@cli' : 'alice@cli' }));
      const first = await s.listJobs(3);
      expect(first.map((j) => j.jid)).toEqual([jids[6], jids[5], jids[4]]);
      expect(first[0]!.counts).toMatchObject({ queued: 1, lost: 1, done: 0 });
      expect((await s.listJobs(3, first[2]!.jid)).map((j) => j.jid)).toEqual([jids[3], jids[2], jids[1]]);
      expect((await s.listJobs(3, jids[1])).map((j) => j.jid)).toEqual([jids[0]]);
      expect(await s.listJobs(3, jids[0])).toEqual([]);
      await s.markKilled(jids[2]!, 'alice@cli');
      await s.markKilled(jids[2]!, 'bob@cli');
      expect((await s.getJob(jids[2]!))!.killed).toMatchObject({ by: 'alice@cli', at: expect.any(String) });
      expect((await s.listJobs(1, jids[3]))[0]!.killed).toMatchObject({ by: 'alice@cli' });
    });

    it('what the console reads: results per agent, test runs and rollback jobs of a revision, an agent\'s jobs', async () => {
      const s = await fresh();
      const t0 = Date.UTC(2026, 0, 1);
      const a = await job(s, { jid: newJid(new Date(t0)), revision: 'r5' });
      const t1 = await job(s, { jid: newJid(new Date(t0 + 1000)), revision: 'r5', test: true });
      const t2 = await job(s, { jid: newJid(new Date(t0 + 2000)), revision: 'r5', test: true });
      await job(s, { jid: newJid(new Date(t0 + 3000)), revision: 'r6', test: true });
      const rb = await job(s, { jid: newJid(new Date(t0 + 4000)), revision: 'r5', by: 'rollback:alice' });
      await s.putStateResult(a, 'a', result(0, true));
      await s.putStateResult(a, 'a', result(1, true));
      expect(await s.jobResultCounts(a)).toEqual([
        { agent_id: 'a', status: 'queued', results: 2 },
        { agent_id: 'b', status: 'lost', results: 0 },
      ]);
      expect(await s.testRunJids('r5', 5)).toEqual([t2, t1]);
      expect(await s.testRunJids('r5', 1)).toEqual([t2]);
      const since = (await s.getJob(a))!.created;
      expect(await s.rollbackJids('r5', since)).toEqual([rb]);
      expect(await s.rollbackJids('r5', '2999-01-01T00:00:00Z')).toEqual([]);
      const mine = await s.agentJobs('b', 2);
      expect(mine.map((j) => [j.jid, j.status, j.kind])).toEqual([
        [rb, 'lost', 'apply'],
        [(await s.listJobs(2))[1]!.jid, 'lost', 'apply'],
      ]);
      expect(mine[0]!.args).toEqual({ sls: ['web'], test: false });
    });

    it('assigned revisions', async () => {
      const s = await fresh();
      for (const id of ['a', 'b', 'c']) await s.addAgent(id, FP, 'accepted');
      await s.assign(['a', 'b'], 'r2');
      expect((await s.listAgents()).map((x) => x.revision_assigned)).toEqual(['r2', 'r2', null]);
      await s.assign(['a'], null);
      expect((await s.listAgents()).map((x) => x.revision_assigned)).toEqual([null, 'r2', null]);
      await s.assign([], 'r9');
    });

    it('revisions: first sight only, outcomes, newest first', async () => {
      const s = await fresh();
      await s.addRevision({ sha: 'c1', date: '2026-01-01', author: 'A', subject: 'one' });
      await s.addRevision({ sha: 'c2', date: null, author: null, subject: null, outcome: 'refused', detail: 'no top.sls' });
      await s.addRevision({ sha: 'c1', date: 'x', author: 'x', subject: 'again' });
      expect(await s.getRevision('c1')).toMatchObject({ sha: 'c1', subject: 'one', outcome: 'seen', detail: null, seen: expect.any(String) });
      await s.setRevisionOutcome('c1', 'rolled_out');
      await s.setRevisionOutcome('c2', 'failed', 'batch 1');
      expect((await s.listRevisions(10)).map((r) => [r.sha, r.outcome, r.detail])).toEqual([
        ['c2', 'failed', 'batch 1'],
        ['c1', 'rolled_out', null],
      ]);
      expect(await s.listRevisions(1)).toHaveLength(1);
      expect(await s.getRevision('zz')).toBeUndefined();
    });

    it('rollouts, their batches and verify checks; a stopped master closes what it left running', async () => {
      const s = await fresh();
      const id = await s.createRollout({ revision: 'r3', previous: 'r2', reason: 'push', started_by: 'push' });
      expect(await s.getRollout(id)).toMatchObject({ id, revision: 'r3', previous: 'r2', reason: 'push', status: 'running', batch: 0, batches: 0, agents: [], jids: [], message: null, finished: null });
      await s.addRolloutBatches(id, [
        { group_num: 1, group_name: 'G@roles:lb', agents: ['lb1'] },
        { group_num: 2, group_name: 'G@roles:web', agents: ['w1', 'w2'] },
        { group_num: 2, group_name: 'G@roles:web', agents: ['w3'] },
      ]);
      await s.updateRollout(id, { batches: 3, batch: 1, agents: ['lb1'] });
      await s.updateRolloutBatch(id, 1, { status: 'applying', offline: [] });
      await s.updateRolloutBatch(id, 1, { status: 'verifying', jid: 'J1' });
      await s.putVerifyResult(id, 1, { seq: 0, name: 'GET /', outcome: 'running', attempts: 0, message: null, started: 't1' });
      await s.putVerifyResult(id, 1, { seq: 0, name: 'GET /', outcome: 'passed', attempts: 1, message: null, started: 't1', finished: 't2' });
      await s.putVerifyResult(id, 1, { seq: 1, name: 'cmd', outcome: 'failed', attempts: 2, message: 'exit 1', started: 't2', finished: 't3' });
      await s.updateRolloutBatch(id, 1, { status: 'failed' });
      await s.skipPendingBatches(id);
      await s.updateRollout(id, { status: 'halted', message: 'batch 1 failed', jids: ['J1'] });
      const r = (await s.getRollout(id))!;
      expect(r).toMatchObject({ status: 'halted', batch: 1, batches: 3, agents: ['lb1'], jids: ['J1'], message: 'batch 1 failed', finished: expect.any(String) });
      const b = await s.rolloutBatches(id);
      expect(b.map((x) => [x.batch, x.group_num, x.group_name, x.agents, x.offline, x.jid, x.status])).toEqual([
        [1, 1, 'G@roles:lb', ['lb1'], [], 'J1', 'failed'],
        [2, 2, 'G@roles:web', ['w1', 'w2'], [], null, 'not_run'],
        [3, 2, 'G@roles:web', ['w3'], [], null, 'not_run'],
      ]);
      expect(b[0]!.started).not.toBeNull();
      expect(b[0]!.finished).not.toBeNull();
      expect(b[1]!.started).toBeNull();
      expect(b[0]!.verify).toEqual([
        { seq: 0, name: 'GET /', outcome: 'passed', attempts: 1, message: null, started: 't1', finished: 't2' },
        { seq: 1, name: 'cmd', outcome: 'failed', attempts: 2, message: 'exit 1', started: 't2', finished: 't3' },
      ]);
      // a finished rollout keeps its first end
      const fin = r.finished;
      await s.updateRollout(id, { message: 'note' });
      expect((await s.getRollout(id))!.finished).toBe(fin);

      const id2 = await s.createRollout({ revision: 'r4', previous: 'r3', reason: 'rollout', started_by: 'alice' });
      expect(id2).toBeGreaterThan(id);
      await s.addRolloutBatches(id2, [{ group_num: 1, group_name: '*', agents: ['a'] }, { group_num: 1, group_name: '*', agents: ['b'] }]);
      await s.updateRolloutBatch(id2, 1, { status: 'applying', offline: ['x'] });
      await s.closeRunningRollouts('master stopped');
      expect(await s.getRollout(id2)).toMatchObject({ status: 'failed', message: 'master stopped', finished: expect.any(String) });
      expect((await s.rolloutBatches(id2)).map((x) => [x.status, x.offline])).toEqual([
        ['failed', ['x']],
        ['not_run', []],
      ]);
      expect(await s.getRollout(id)).toMatchObject({ status: 'halted', message: 'note' }); // not a running one: untouched
      expect((await s.listRollouts(10)).map((x) => x.id)).toEqual([id2, id]);
      expect(await s.listRollouts(1)).toHaveLength(1);
      expect(await s.getRollout(99999)).toBeUndefined();
      await s.updateRollout(99999, { status: 'failed' }); // nothing to update: no error
    });
  });
}
