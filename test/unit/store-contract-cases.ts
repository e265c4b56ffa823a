/**
 * What every Store implementation does (master/store-api.ts), as one set of cases run on each:
 * store-contract-sqlite.test.ts and store-contract-pg.test.ts. `open(name)` opens a new empty
 * store per name; the same name again opens the same store a second time (a second master, or
 * a restart), which the concurrency cases use.
 */
import { describe, expect, it } from 'vitest';
import type { Store } from '../../master/store-api.js';
import { newJid } from '../../master/store-api.js';
import type { ReturnBody } from '../../protocol/messages.js';
import type { StateResult } from '../../protocol/results.js';

export type OpenStore = (name: string) => Promise<Store>;

const FP = 'ab'.repeat(32);

const result = (n: number, ok: boolean | null, extra: Partial<StateResult> = {}): StateResult => ({
  id: `s${n}`,
  sls: 'web',
  fun: 'test.nop',
  name: `s${n}`,
  result: ok,
  changes: n ? { x: { old: 1, new: 2 } } : {},
  comment: 'c',
  start: '2026-01-01T00:00:00.000Z',
  duration_ms: 1.25,
  run_num: n,
  ...extra,
});

const applied = (results: StateResult[], test = false): ReturnBody => ({
  kind: 'apply',
  report: { id: 'a', test, results, counts: { total: results.length, succeeded: results.length, changed: 0, failed: 0 }, duration_ms: 3 },
});

let seq = 0;
/** a store name no other case of this file uses */
const fresh = (what: string) => `${what.replace(/[^a-z0-9]+/gi, '_').toLowerCase()}_${++seq}`;

/** Opens a new store for one case and closes it after, whatever happens. */
async function withStore<T>(open: OpenStore, what: string, fn: (s: Store, again: () => Promise<Store>) => Promise<T>): Promise<T> {
  const name = fresh(what);
  const s = await open(name);
  const others: Store[] = [];
  try {
    return await fn(s, async () => {
      const o = await open(name);
      others.push(o);
      return o;
    });
  } finally {
    for (const o of others) await o.close();
    await s.close();
  }
}

async function job(s: Store, agents: string[], o: { revision?: string | null; args?: Record<string, unknown>; started_by?: string } = {}): Promise<string> {
  const jid = newJid();
  await s.createJob(
    { jid, kind: 'apply', target: '*', tgt_type: 'glob', args: o.args ?? { sls: [] }, revision: o.revision === undefined ? 'r1' : o.revision, started_by: o.started_by ?? 'root@cli' },
    agents.map((id) => ({ id, status: 'queued' as const })),
  );
  return jid;
}

export function storeContract(open: OpenStore): void {
  describe('meta', () => {
    it('keeps a value per key, the last one set', () =>
      withStore(open, 'meta', async (s) => {
        expect(await s.getMeta('k')).toBeUndefined();
        await s.setMeta('k', 'one');
        await s.setMeta('k', 'two');
        expect(await s.getMeta('k')).toBe('two');
        expect(await s.desired()).toBeUndefined();
        await s.setDesired('c0ffee');
        expect(await s.desired()).toBe('c0ffee');
      }));
  });

  describe('agents', () => {
    it('adds a key once, lists agents in byte order, changes and deletes them', () =>
      withStore(open, 'agents', async (s) => {
        const a = await s.addAgent('web1', FP, 'pending');
        expect(a).toMatchObject({ id: 'web1', fingerprint: FP, key_state: 'pending', grains: {}, revision_applied: null, revision_assigned: null, attempt_jid: null });
        expect(a.first_seen).toMatch(/^\d{4}-\d\d-\d\dT/);
        // a second first contact (another master, a race) leaves the stored row as it is
        expect(await s.addAgent('web1', 'cd'.repeat(32), 'accepted')).toEqual(a);
        await s.addAgent('Web2', FP, 'accepted');
        await s.addAgent('app-1', FP, 'rejected');
        expect((await s.listAgents()).map((r) => r.id)).toEqual(['Web2', 'app-1', 'web1']);
        // the keys alone, in the same order, nothing else read
        expect(await s.listKeys()).toEqual([
          { id: 'Web2', fingerprint: FP, key_state: 'accepted' },
          { id: 'app-1', fingerprint: FP, key_state: 'rejected' },
          { id: 'web1', fingerprint: a.fingerprint, key_state: a.key_state },
        ]);
        expect(await s.setKeyState('web1', 'accepted')).toBe(true);
        expect(await s.setKeyState('nope', 'accepted')).toBe(false);
        expect((await s.getAgent('web1'))!.key_state).toBe('accepted');
        await s.touchAgent('web1', { os: 'Debian', roles: ['web'] });
        expect((await s.getAgent('web1'))!.grains).toEqual({ os: 'Debian', roles: ['web'] });
        await s.touchAgent('web1');
        expect((await s.getAgent('web1'))!.grains).toEqual({ os: 'Debian', roles: ['web'] });
        // a stopping master's whole fleet at once: only those named, grains kept
        const seen = async () => Object.fromEntries((await s.listAgents()).map((a) => [a.id, a.last_seen]));
        const before = await seen();
        await new Promise((r) => setTimeout(r, 5));
        await s.touchAgents([]);
        expect(await seen()).toEqual(before);
        await s.touchAgents(['web1', 'nobody']);
        const after = await seen();
        expect(after.web1! > before.web1!).toBe(true);
        expect(Object.entries(after).filter(([id]) => id !== 'web1')).toEqual(Object.entries(before).filter(([id]) => id !== 'web1'));
        expect((await s.getAgent('web1'))!.grains).toEqual({ os: 'Debian', roles: ['web'] });
        // grains are parsed when read; a row still copies, serialises and takes new grains whole
        const row = (await s.getAgent('web1'))!;
        expect({ ...row }.grains).toEqual({ os: 'Debian', roles: ['web'] });
        expect(JSON.parse(JSON.stringify(await s.getAgent('web1'))).grains).toEqual({ os: 'Debian', roles: ['web'] });
        expect(row.grains).toBe(row.grains);
        row.grains = { os: 'CentOS' };
        expect(row.grains).toEqual({ os: 'CentOS' });
        await s.recordAttempt('web1', '20260101000000000001', 'r9', 'timeout');
        expect(await s.getAgent('web1')).toMatchObject({ revision_attempted: 'r9', attempt_status: 'timeout', attempt_jid: '20260101000000000001' });
        await s.assign(['web1', 'Web2'], 'r7');
        expect((await s.listAgents()).map((r) => r.revision_assigned)).toEqual(['r7', null, 'r7']);
        await s.assign(['web1'], null);
        expect((await s.getAgent('web1'))!.revision_assigned).toBeNull();
        expect(await s.deleteAgent('web1')).toBe(true);
        expect(await s.deleteAgent('web1')).toBe(false);
        expect(await s.getAgent('web1')).toBeUndefined();
      }));
  });

  describe('jobs', () => {
    it('creates a job with its agents, each with its revision; ended ones have a finish time', () =>
      withStore(open, 'create', async (s) => {
        const jid = newJid();
        await s.createJob({ jid, kind: 'apply', target: 'web*', tgt_type: 'glob', args: { sls: ['web'], test: false }, revision: 'r1', started_by: 'root@cli' }, [
          { id: 'b', status: 'queued' },
          { id: 'a', status: 'queued', revision: 'r0' },
          { id: 'c', status: 'lost', error: 'offline' },
        ]);
        const j = await s.getJob(jid);
        expect(j).toMatchObject({ jid, kind: 'apply', target: 'web*', tgt_type: 'glob', args: { sls: ['web'], test: false }, revision: 'r1', started_by: 'root@cli', intent: 'intentional', killed: null });
        const rows = await s.jobAgents(jid);
        expect(rows.map((r) => [r.agent_id, r.status, r.revision, r.error, r.finished !== null])).toEqual([
          ['a', 'queued', 'r0', null, false],
          ['b', 'queued', 'r1', null, false],
          ['c', 'lost', 'r1', 'offline', true],
        ]);
        expect(await s.getJobAgent(jid, 'c')).toMatchObject({ status: 'lost', error: 'offline', body: null, started: null });
        expect(await s.getJobAgent(jid, 'zz')).toBeUndefined();
        expect(await s.getJob('20000101000000000000')).toBeUndefined();
        const corrective = newJid();
        await s.createJob({ jid: corrective, kind: 'run', target: 'a', tgt_type: 'list', args: { cmd: 'true' }, revision: null, started_by: 'schedule:x', intent: 'corrective' }, []);
        expect(await s.getJob(corrective)).toMatchObject({ kind: 'run', intent: 'corrective', revision: null });
        expect(await s.jobAgents(corrective)).toEqual([]);
      }));

    it('a job whose agents cannot all be stored is not stored at all', () =>
      withStore(open, 'atomic', async (s) => {
        const jid = newJid();
        await expect(
          s.createJob({ jid, kind: 'apply', target: '*', tgt_type: 'glob', args: {}, revision: null, started_by: 'x' }, [
            { id: 'a', status: 'queued' },
            { id: 'a', status: 'queued' },
          ]),
        ).rejects.toThrow();
        expect(await s.getJob(jid)).toBeUndefined();
        expect(await s.jobAgents(jid)).toEqual([]);
      }));

    it('lists jobs newest first with counts, a page at a time', () =>
      withStore(open, 'list', async (s) => {
        const jids: string[] = [];
        for (let i = 0; i < 5; i++) jids.push(await job(s, ['a', 'b']));
        await s.setJobAgentStatus(jids[4]!, 'a', 'timeout', 'no answer');
        const page = await s.listJobs(2);
        expect(page.map((j) => j.jid)).toEqual([jids[4], jids[3]]);
        expect(page[0]!.counts).toEqual({ queued: 1, running: 0, done: 0, failed: 0, timeout: 1, lost: 0, cancelled: 0 });
        expect((await s.listJobs(10, jids[3])).map((j) => j.jid)).toEqual([jids[2], jids[1], jids[0]]);
        expect(await s.listJobs(10, jids[0])).toEqual([]);
      }));

    it('remembers the first kill', () =>
      withStore(open, 'kill', async (s) => {
        const jid = await job(s, ['a']);
        await s.markKilled(jid, 'alice');
        await s.markKilled(jid, 'bob');
        const k = (await s.getJob(jid))!.killed;
        expect(k?.by).toBe('alice');
        expect(k?.at).toMatch(/^\d{4}-/);
      }));

    it('moves a run: started once, an end only once, nothing after an end', () =>
      withStore(open, 'status', async (s) => {
        const jid = await job(s, ['a', 'b']);
        expect(await s.setJobAgentStatus(jid, 'a', 'running')).toBe(true);
        const started = (await s.getJobAgent(jid, 'a'))!.started;
        expect(started).not.toBeNull();
        expect(await s.setJobAgentStatus(jid, 'a', 'running')).toBe(true);
        expect((await s.getJobAgent(jid, 'a'))!.started).toBe(started);
        expect((await s.openJobAgents()).map((r) => r.agent_id).sort()).toEqual(['a', 'b']);
        expect((await s.openJobAgents('b')).map((r) => r.agent_id)).toEqual(['b']);
        expect(await s.setJobAgentStatus(jid, 'a', 'timeout', 'no answer in 10 s')).toBe(true);
        expect(await s.getJobAgent(jid, 'a')).toMatchObject({ status: 'timeout', error: 'no answer in 10 s' });
        expect((await s.getJobAgent(jid, 'a'))!.finished).not.toBeNull();
        expect(await s.setJobAgentStatus(jid, 'a', 'lost')).toBe(false);
        expect(await s.setJobAgentStatus(jid, 'a', 'running')).toBe(false);
        expect((await s.getJobAgent(jid, 'a'))!.status).toBe('timeout');
        expect((await s.openJobAgents()).map((r) => r.agent_id)).toEqual(['b']);
        expect(await s.setJobAgentStatus(jid, 'nobody', 'lost')).toBe(false);
      }));

    it('moves several runs to running at once, as one each would', () =>
      withStore(open, 'running-many', async (s) => {
        const jid = await job(s, ['a', 'b', 'c']);
        expect(await s.setJobAgentStatus(jid, 'c', 'timeout', 'no answer')).toBe(true);
        expect(await s.setJobAgentsRunning([])).toEqual([]);
        expect(await s.setJobAgentsRunning([{ jid, agentId: 'a' }, { jid, agentId: 'b' }, { jid, agentId: 'c' }, { jid, agentId: 'nobody' }])).toEqual([true, true, false, false]);
        const started = (await s.getJobAgent(jid, 'a'))!.started;
        expect(started).not.toBeNull();
        expect(await s.getJobAgent(jid, 'b')).toMatchObject({ status: 'running' });
        // an ended run stays ended; a second move keeps the first start
        expect(await s.getJobAgent(jid, 'c')).toMatchObject({ status: 'timeout', started: null });
        expect(await s.setJobAgentsRunning([{ jid, agentId: 'a' }])).toEqual([true]);
        expect((await s.getJobAgent(jid, 'a'))!.started).toBe(started);
      }));

    it('stores a return once: results, status, the attempt and the revision applied', () =>
      withStore(open, 'finish', async (s) => {
        await s.addAgent('a', FP, 'accepted');
        const jid = await job(s, ['a'], { revision: 'r1' });
        await s.setJobAgentStatus(jid, 'a', 'running');
        await s.putStateResult(jid, 'a', result(0, null, { comment: 'streamed' }));
        expect((await s.stateResults(jid, 'a')).map((r) => r.comment)).toEqual(['streamed']);
        const body = applied([result(0, true), result(1, false, { warnings: ['careful'] })]);
        expect(await s.finishJobAgent(jid, 'a', 'failed', body)).toBe(true);
        // a result is written once: the streamed one of run_num 0 stands (the agent's two copies
        // of one result are the same; this one differs only to show which copy was kept), the
        // report adds run_num 1
        expect(await s.stateResults(jid, 'a')).toEqual([result(0, null, { comment: 'streamed' }), result(1, false, { warnings: ['careful'] })]);
        expect(await s.getJobAgent(jid, 'a')).toMatchObject({ status: 'failed', body, error: null });
        // a failed run is the agent's last attempt, not its revision
        expect(await s.getAgent('a')).toMatchObject({ revision_applied: null, revision_attempted: 'r1', attempt_status: 'failed', attempt_jid: jid });
        // the same return again (a re-sent spool) changes nothing
        expect(await s.finishJobAgent(jid, 'a', 'done', applied([result(0, true, { comment: 'again' })]))).toBe(false);
        expect(await s.getJobAgent(jid, 'a')).toMatchObject({ status: 'failed', body });
        expect((await s.stateResults(jid, 'a'))[0]!.comment).toBe('streamed');

        const ok = await job(s, ['a'], { revision: 'r2' });
        expect(await s.finishJobAgent(ok, 'a', 'done', applied([result(0, true)]))).toBe(true);
        expect(await s.getAgent('a')).toMatchObject({ revision_applied: 'r2', revision_attempted: 'r2', attempt_status: 'done', attempt_jid: ok });
        // a test run is neither
        const t = await job(s, ['a'], { revision: 'r3', args: { test: true } });
        expect(await s.finishJobAgent(t, 'a', 'done', applied([result(0, null)], true))).toBe(true);
        expect(await s.getAgent('a')).toMatchObject({ revision_applied: 'r2', attempt_jid: ok });
        // an error return: the error is the row's error
        const e = await job(s, ['a']);
        expect(await s.finishJobAgent(e, 'a', 'failed', { kind: 'error', error: 'top.sls: line 3: bad' })).toBe(true);
        expect(await s.getJobAgent(e, 'a')).toMatchObject({ status: 'failed', error: 'top.sls: line 3: bad' });
        expect(await s.stateResults(e, 'a')).toEqual([]);
      }));

    it("reads several agents' rows and results of a job at once, as one by one would", () =>
      withStore(open, 'of-many', async (s) => {
        const jid = await job(s, ['a', 'b', 'c']);
        const other = await job(s, ['a']);
        await s.setJobAgentStatus(jid, 'b', 'timeout', 'no answer');
        await s.putStateResults([
          { jid, agentId: 'a', result: result(1, true) },
          { jid, agentId: 'a', result: result(0, true) },
          { jid, agentId: 'c', result: result(0, false) },
          { jid: other, agentId: 'a', result: result(0, null) },
        ]);
        const rows = await s.jobAgentsOf(jid, ['c', 'b', 'nobody', 'b']);
        expect(rows.sort((x, y) => x.agent_id.localeCompare(y.agent_id))).toEqual([(await s.getJobAgent(jid, 'b'))!, (await s.getJobAgent(jid, 'c'))!]);
        expect(await s.jobAgentsOf(jid, [])).toEqual([]);
        const results = await s.stateResultsOf(jid, ['a', 'b', 'c']);
        expect([...results.keys()].sort()).toEqual(['a', 'c']);
        expect(results.get('a')).toEqual(await s.stateResults(jid, 'a'));
        expect(results.get('a')!.map((r) => r.run_num)).toEqual([0, 1]);
        expect(results.get('c')).toEqual([result(0, false)]);
        expect((await s.stateResultsOf(other, ['a'])).get('a')).toEqual([result(0, null)]);
        expect((await s.stateResultsOf(jid, [])).size).toBe(0);
      }));

    it('a tick of results and returns with any text in them is stored: emoji kept, a lone surrogate as U+FFFD', () =>
      withStore(open, 'text', async (s) => {
        const jid = await job(s, ['a', 'b']);
        const odd = 'x\ud800y é😀 \\ud800 "q"';
        await s.putStateResults([
          { jid, agentId: 'a', result: result(0, true, { comment: odd, name: 'n\udc00' }) },
          { jid, agentId: 'b', result: result(0, true, { comment: 'plain' }) },
        ]);
        // (SQLite writes a lone surrogate as three bytes read back as three U+FFFD, PostgreSQL as one)
        const stored = (await s.stateResults(jid, 'a'))[0]!;
        expect(stored.comment).toMatch(/^x\ufffd+y é😀 \\ud800 "q"$/);
        expect(stored.name).toMatch(/^n\ufffd+$/);
        const body: ReturnBody = { kind: 'run', retcode: 0, stdout: odd, stderr: '' };
        expect(await s.finishJobAgents([
          { jid, agentId: 'a', status: 'done', body },
          // run_num 0 was streamed (stored once already): the odd text is in the return's run_num 1
          { jid, agentId: 'b', status: 'done', body: applied([result(0, true, { comment: 'plain' }), result(1, true, { comment: odd })]) },
        ])).toEqual([true, true]);
        expect((await s.getJobAgent(jid, 'a'))!.body).toEqual(body);
        expect((await s.stateResults(jid, 'b'))[1]!.comment).toMatch(/^x\ufffd+y é😀 \\ud800 "q"$/);
      }));

    it("a NUL character (a command's output) in results, returns and errors is stored: kept, or U+FFFD where the store's text has none (PostgreSQL)", () =>
      withStore(open, 'nul', async (s) => {
        const jid = await job(s, ['a', 'b', 'c', 'd', 'e']);
        const nul = 'before\0after';
        const kept = /^before[\0\ufffd]after$/;
        // a tick of them, and one alone
        await s.putStateResults([
          { jid, agentId: 'a', result: result(0, true, { comment: nul, name: nul }) },
          { jid, agentId: 'b', result: result(0, true) },
        ]);
        await s.putStateResult(jid, 'c', result(0, true, { comment: nul }));
        expect((await s.stateResults(jid, 'a'))[0]).toMatchObject({ comment: expect.stringMatching(kept), name: expect.stringMatching(kept) });
        expect((await s.stateResults(jid, 'c'))[0]!.comment).toMatch(kept);
        const failed: ReturnBody = { kind: 'error', error: nul };
        const run: ReturnBody = { kind: 'run', retcode: 0, stdout: nul, stderr: '' };
        expect(await s.finishJobAgents([
          { jid, agentId: 'a', status: 'failed', body: failed },
          { jid, agentId: 'b', status: 'done', body: run },
        ])).toEqual([true, true]);
        expect(await s.finishJobAgent(jid, 'c', 'failed', failed)).toBe(true);
        expect(await s.setJobAgentStatus(jid, 'd', 'lost', nul)).toBe(true);
        for (const id of ['a', 'c']) expect((await s.getJobAgent(jid, id))!.error).toMatch(kept);
        expect((await s.getJobAgent(jid, 'b'))!.body).toEqual(run);
        expect((await s.getJobAgent(jid, 'd'))!.error).toMatch(kept);
        // the operator's text and a verify command's output quoted in a rollout's message
        const other = newJid();
        await s.createJob({ jid: other, kind: 'run', target: nul, tgt_type: 'glob', args: { command: nul }, revision: null, started_by: nul }, []);
        expect(await s.getJob(other)).toMatchObject({ target: expect.stringMatching(kept), started_by: expect.stringMatching(kept), args: { command: nul } });
        const r = await s.createRollout({ revision: 'r2', previous: 'r1', reason: 'push', started_by: nul });
        await s.updateRollout(r, { status: 'halted', message: `verify failed: ${nul}` });
        expect((await s.getRollout(r))!.message).toMatch(/^verify failed: before[\0\ufffd]after$/);
        const r2 = await s.createRollout({ revision: 'r3', previous: 'r2', reason: 'push', started_by: 'root@cli' });
        await s.closeRunningRollouts(`master restarted: ${nul}`);
        expect((await s.getRollout(r2))!.message).toMatch(/^master restarted: before[\0\ufffd]after$/);
      }));

    it('stores a tick of returns at once as one after the other would: each once, results, attempts, late ones', () =>
      withStore(open, 'finish-many', async (s) => {
        for (const id of ['a', 'b', 'c', 'd', 'e']) await s.addAgent(id, FP, 'accepted');
        const jid = await job(s, ['a', 'b', 'c', 'd', 'e'], { revision: 'r1' });
        const t = await job(s, ['a'], { revision: 'r9', args: { test: true } });
        expect(await s.finishJobAgent(jid, 'd', 'done', { kind: 'run', retcode: 0, stdout: 'before', stderr: '' })).toBe(true);
        await s.setJobAgentStatus(jid, 'e', 'timeout', 'no answer');
        await s.putStateResult(jid, 'a', result(0, null, { comment: 'streamed' }));
        const okBody = applied([result(0, true), result(1, true, { warnings: ['w'] })]);
        const failBody = applied([result(0, false)]);
        const moved = await s.finishJobAgents([
          { jid, agentId: 'a', status: 'done', body: okBody },
          { jid, agentId: 'b', status: 'failed', body: failBody },
          // a second copy in the same tick: the first is stored
          { jid, agentId: 'a', status: 'failed', body: failBody },
          { jid, agentId: 'c', status: 'failed', body: { kind: 'error', error: 'top.sls: bad' } },
          // a duplicate of a stored return; a late return after a timeout
          { jid, agentId: 'd', status: 'done', body: { kind: 'run', retcode: 0, stdout: 'again', stderr: '' } },
          { jid, agentId: 'e', status: 'done', body: applied([result(0, true)]) },
          { jid, agentId: 'nobody', status: 'done', body: okBody },
          // a test run of a: neither its attempt nor its revision
          { jid: t, agentId: 'a', status: 'done', body: applied([result(0, null)], true) },
        ]);
        expect(moved).toEqual([true, true, false, true, false, true, false, true]);
        expect(await s.getJobAgent(jid, 'a')).toMatchObject({ status: 'done', body: okBody, error: null });
        // its streamed run_num 0 stands (written once), the return added run_num 1
        expect(await s.stateResults(jid, 'a')).toEqual([result(0, null, { comment: 'streamed' }), result(1, true, { warnings: ['w'] })]);
        expect(await s.getJobAgent(jid, 'b')).toMatchObject({ status: 'failed', body: failBody });
        expect(await s.getJobAgent(jid, 'c')).toMatchObject({ status: 'failed', error: 'top.sls: bad' });
        expect(await s.stateResults(jid, 'c')).toEqual([]);
        expect((await s.getJobAgent(jid, 'd'))!.body).toMatchObject({ stdout: 'before' });
        expect(await s.getJobAgent(jid, 'e')).toMatchObject({ status: 'done' });
        expect(await s.getJobAgent(t, 'a')).toMatchObject({ status: 'done' });
        expect(await s.getAgent('a')).toMatchObject({ revision_applied: 'r1', revision_attempted: 'r1', attempt_status: 'done', attempt_jid: jid });
        expect(await s.getAgent('b')).toMatchObject({ revision_applied: null, revision_attempted: 'r1', attempt_status: 'failed', attempt_jid: jid });
        expect(await s.getAgent('c')).toMatchObject({ revision_applied: null, revision_attempted: null });
        expect(await s.getAgent('e')).toMatchObject({ revision_applied: 'r1', attempt_status: 'done' });
        expect(await s.finishJobAgents([])).toEqual([]);
      }));

    it('writes a result once: a later copy of its run_num (stream, return, a tick\'s second) changes nothing', () =>
      withStore(open, 'result-once', async (s) => {
        const jid = await job(s, ['a', 'b']);
        await s.putStateResults([
          { jid, agentId: 'a', result: result(0, true, { comment: 'first' }) },
          { jid, agentId: 'a', result: result(0, false, { comment: 'second' }) },
          { jid, agentId: 'b', result: result(0, true, { comment: 'b' }) },
        ]);
        expect(await s.finishJobAgent(jid, 'a', 'done', applied([result(0, true, { comment: 'returned' }), result(1, true)]))).toBe(true);
        // streamed after its return (the stream's write waited longer than the return's)
        await s.putStateResult(jid, 'a', result(1, false, { comment: 'late stream' }));
        expect((await s.stateResults(jid, 'a')).map((r) => [r.run_num, r.comment])).toEqual([
          [0, 'first'],
          [1, 'c'],
        ]);
        expect(await s.finishJobAgents([{ jid, agentId: 'b', status: 'done', body: applied([result(0, true, { comment: 'returned' })]) }])).toEqual([true]);
        expect((await s.stateResults(jid, 'b')).map((r) => r.comment)).toEqual(['b']);
      }));

    it('stores a late return after a timeout, not after a return', () =>
      withStore(open, 'late', async (s) => {
        const jid = await job(s, ['a']);
        await s.setJobAgentStatus(jid, 'a', 'timeout');
        expect(await s.finishJobAgent(jid, 'a', 'done', { kind: 'run', retcode: 0, stdout: 'hi', stderr: '' })).toBe(true);
        expect(await s.getJobAgent(jid, 'a')).toMatchObject({ status: 'done', body: { kind: 'run', retcode: 0, stdout: 'hi', stderr: '' } });
        // and a return is not turned into a timeout afterwards
        expect(await s.setJobAgentStatus(jid, 'a', 'timeout')).toBe(false);
      }));

    it('answers what the CLI and console ask of a job', () =>
      withStore(open, 'queries', async (s) => {
        const jid = await job(s, ['a', 'b', 'c'], { revision: 'r5' });
        await s.finishJobAgent(jid, 'a', 'done', applied([result(0, true), result(1, true), result(2, false)]));
        await s.setJobAgentStatus(jid, 'b', 'running');
        await s.putStateResult(jid, 'b', result(0, true));
        const p = await s.jobProgress(jid);
        expect(p.counts).toEqual({ queued: 1, running: 1, done: 1, failed: 0, timeout: 0, lost: 0, cancelled: 0 });
        expect(p.finished).toBe((await s.getJobAgent(jid, 'a'))!.finished);
        expect(await s.jobResultCounts(jid)).toEqual([
          { agent_id: 'a', status: 'done', results: 3 },
          { agent_id: 'b', status: 'running', results: 1 },
          { agent_id: 'c', status: 'queued', results: 0 },
        ]);
        // result true with changes: s1 of a (s0 has none, s2 failed)
        expect(await s.changedResults(jid)).toBe(1);
        const t1 = await job(s, ['a'], { revision: 'r5', args: { sls: [], test: true } });
        await job(s, ['a'], { revision: 'r5', args: { sls: [], test: false } });
        const t2 = await job(s, ['a'], { revision: 'r5', args: { sls: [], test: true } });
        await job(s, ['a'], { revision: 'r6', args: { test: true } });
        expect(await s.testRunJids('r5', 10)).toEqual([t2, t1]);
        expect(await s.testRunJids('r5', 1)).toEqual([t2]);
        const since = new Date().toISOString();
        const rb = await job(s, ['a'], { revision: 'r4', started_by: 'rollback:alice' });
        await job(s, ['a'], { revision: 'r4', started_by: 'root@cli' });
        expect(await s.rollbackJids('r4', since)).toEqual([rb]);
        expect(await s.rollbackJids('r4', '2999-01-01T00:00:00.000Z')).toEqual([]);
        const hist = await s.agentJobs('a', 3);
        expect(hist).toHaveLength(3);
        expect(hist[0]).toMatchObject({ kind: 'apply', target: '*', tgt_type: 'glob', started_by: 'root@cli', status: 'queued', finished: null });
        expect(hist.map((h) => h.jid)).toEqual([...hist.map((h) => h.jid)].sort().reverse());
        expect((await s.agentJobs('b', 10))[0]).toMatchObject({ jid, args: { sls: [] }, status: 'running' });
      }));
  });

  describe('releases', () => {
    it('records each revision once, newest first, and its outcome', () =>
      withStore(open, 'revisions', async (s) => {
        // seen in one burst (a push of several commits): still listed newest first
        for (const sha of ['a1', 'b2', 'c3']) await s.addRevision({ sha, date: '2026-01-01', author: 'al', subject: `s-${sha}` });
        await s.addRevision({ sha: 'a1', date: null, author: null, subject: 'other' });
        expect((await s.listRevisions(10)).map((r) => r.sha)).toEqual(['c3', 'b2', 'a1']);
        expect((await s.listRevisions(1)).map((r) => r.sha)).toEqual(['c3']);
        expect(await s.getRevision('a1')).toMatchObject({ sha: 'a1', subject: 's-a1', author: 'al', outcome: 'seen', detail: null });
        await s.setRevisionOutcome('a1', 'refused', 'top.sls does not render');
        expect(await s.getRevision('a1')).toMatchObject({ outcome: 'refused', detail: 'top.sls does not render' });
        await s.addRevision({ sha: 'd4', date: null, author: null, subject: null, outcome: 'rolled_out', detail: 'imported' });
        expect(await s.getRevision('d4')).toMatchObject({ outcome: 'rolled_out', detail: 'imported', date: null });
        expect(await s.getRevision('zz')).toBeUndefined();
      }));

    it('reads the release views at one moment (revisions, desired, agents, rollouts), also while another master acts on pushes', () =>
      withStore(open, 'release snapshot', async (s, again) => {
        expect(await s.releaseSnapshot({ revisions: 10, rollouts: { limit: 1 } })).toEqual({ desired: undefined, agents: [], revisions: [], rollouts: [], running: undefined, batches: [] });
        await s.addRevision({ sha: 'p00', date: null, author: null, subject: null, outcome: 'rolled_out' });
        await s.setDesired('p00');
        await s.addAgent('snap-b', 'fp-b', 'accepted');
        await s.addAgent('snap-a', 'fp-a', 'pending');
        expect(await s.releaseSnapshot({ revisions: 10 })).toEqual({
          desired: 'p00',
          agents: await s.listAgents(),
          revisions: await s.listRevisions(10),
          rollouts: [],
          running: undefined,
          batches: [],
        });
        // the parts asked for only
        expect((await s.releaseSnapshot()).revisions).toEqual([]);
        expect((await s.releaseSnapshot({ agents: false })).agents).toEqual([]);
        expect((await s.releaseSnapshot({ agents: 'snap-b' })).agents).toEqual([await s.getAgent('snap-b')]);
        expect((await s.releaseSnapshot({ agents: 'nobody' })).agents).toEqual([]);
        // the rollout shown: the one named running (this master's), else the newest while it runs
        const r1 = await s.createRollout({ revision: 'p00', previous: null, reason: 'push', started_by: 'git' });
        await s.addRolloutBatches(r1, [{ group_num: 1, group_name: 'all', agents: ['snap-b'] }]);
        const r2 = await s.createRollout({ revision: 'p00', previous: null, reason: 'rollout', started_by: 'al' });
        await s.addRolloutBatches(r2, [{ group_num: 1, group_name: 'one', agents: ['snap-b'] }, { group_num: 2, group_name: 'two', agents: [] }]);
        let snap = await s.releaseSnapshot({ rollouts: { limit: 5 } });
        expect(snap.rollouts.map((r) => r.id)).toEqual([r2, r1]);
        expect(snap.running?.id).toBe(r2);
        expect(snap.batches.map((b) => b.group_name)).toEqual(['one', 'two']);
        snap = await s.releaseSnapshot({ rollouts: { limit: 1, running: r1 } });
        expect([snap.rollouts.map((r) => r.id), snap.running?.id, snap.batches.map((b) => b.group_name)]).toEqual([[r2], r1, ['all']]);
        await s.updateRollout(r2, { status: 'succeeded' });
        snap = await s.releaseSnapshot({ rollouts: { limit: 1 } });
        expect([snap.running, snap.batches.map((b) => b.group_name)]).toEqual([undefined, ['one', 'two']]);
        // the other master acts on pushes while this one reads: each recorded, made desired, its
        // rollout started with a batch and verify checks, then failed
        const other = await again();
        let acting = true;
        const pushes = (async () => {
          for (let i = 1; i <= 40; i++) {
            const sha = `p${String(i).padStart(2, '0')}`;
            await other.addRevision({ sha, date: null, author: null, subject: null });
            await other.setDesired(sha);
            const id = await other.createRollout({ revision: sha, previous: null, reason: 'push', started_by: 'git' });
            await other.addRolloutBatches(id, [{ group_num: 1, group_name: 'all', agents: [] }]);
            await other.updateRolloutBatch(id, 1, { status: 'verifying' });
            await other.putVerifyResult(id, 1, { seq: 0, name: 'check', outcome: 'failed', attempts: 1, message: 'no', started: new Date().toISOString() });
            await other.updateRolloutBatch(id, 1, { status: 'failed' });
            await other.setRevisionOutcome(sha, 'failed', 'the rollout did not finish: refused');
          }
        })().finally(() => (acting = false));
        // a failed push was made desired before it failed, and the desired revision only moves on:
        // in any one moment, the newest failed push is desired or older than it, the newest
        // rollout's revision is not newer than the desired one, and a failed batch has its check
        const torn: string[] = [];
        let reads = 0;
        while (acting) {
          const { revisions, desired, rollouts, batches } = await s.releaseSnapshot({ revisions: 100, rollouts: { limit: 1 } });
          const direct = rollouts[0] ? await s.rolloutBatches(rollouts[0].id) : [];
          reads++;
          const failed = revisions.filter((r) => r.outcome === 'failed').map((r) => r.sha).sort().at(-1);
          if (failed && !(desired && desired >= failed)) torn.push(`${failed} failed, ${desired} desired`);
          if (rollouts[0] && rollouts[0].revision > (desired ?? '')) torn.push(`rollout of ${rollouts[0].revision}, ${desired} desired`);
          for (const b of [...batches, ...direct]) if (b.status === 'failed' && b.verify.length === 0) torn.push(`batch failed without its check`);
        }
        await pushes;
        expect(torn).toEqual([]);
        expect(reads).toBeGreaterThan(1);
        expect(await s.releaseSnapshot({ revisions: 2, agents: false })).toMatchObject({
          revisions: [{ sha: 'p40', outcome: 'failed' }, { sha: 'p39' }],
          desired: 'p40',
        });
      }));

    it('moves the desired revision only from the one named, with its pins, in one write; of two racing moves one wins', () =>
      withStore(open, 'move desired', async (s, again) => {
        await s.addAgent('pin-a', 'fp-a', 'accepted');
        await s.addAgent('pin-b', 'fp-b', 'accepted');
        expect(await s.moveDesired('r0', 'r1')).toBe(false); // none yet, not r0
        expect(await s.desired()).toBeUndefined();
        expect(await s.moveDesired(undefined, 'r1')).toBe(true);
        expect(await s.moveDesired(undefined, 'r2')).toBe(false); // one already
        // a move from a revision no longer desired writes nothing: neither the desired revision nor the pins
        expect(await s.moveDesired('r0', 'r2', [{ id: 'pin-a', sha: 'r1' }])).toBe(false);
        expect([await s.desired(), (await s.getAgent('pin-a'))?.revision_assigned]).toEqual(['r1', null]);
        expect(await s.moveDesired('r1', 'r2', [{ id: 'pin-a', sha: 'r1' }, { id: 'pin-b', sha: 'r0' }])).toBe(true);
        expect([await s.desired(), (await s.getAgent('pin-a'))?.revision_assigned, (await s.getAgent('pin-b'))?.revision_assigned]).toEqual(['r2', 'r1', 'r0']);
        // two masters move from the same revision at once, 30 times: exactly one wins each time
        const other = await again();
        let cur = 'r2';
        for (let i = 0; i < 30; i++) {
          const [mine, theirs] = await Promise.all([s.moveDesired(cur, `m${i}`), other.moveDesired(cur, `o${i}`)]);
          expect([mine, theirs].filter(Boolean), `round ${i}`).toHaveLength(1);
          cur = (await s.desired())!;
          expect(cur).toBe(mine ? `m${i}` : `o${i}`);
        }
      }));

    it('runs rollouts: numbered, updated in parts, finished once, closed after a crash', () =>
      withStore(open, 'rollouts', async (s) => {
        const one = await s.createRollout({ revision: 'r1', previous: null, reason: 'push', started_by: 'git' });
        const two = await s.createRollout({ revision: 'r2', previous: 'r1', reason: 'rollout', started_by: 'alice' });
        expect(two).toBeGreaterThan(one);
        expect(await s.getRollout(one)).toMatchObject({ id: one, revision: 'r1', previous: null, status: 'running', batch: 0, batches: 0, agents: [], jids: [], message: null, finished: null });
        await s.updateRollout(one, { batch: 1, batches: 2, agents: ['a'], jids: ['j1'] });
        expect(await s.getRollout(one)).toMatchObject({ status: 'running', batch: 1, batches: 2, agents: ['a'], jids: ['j1'], finished: null });
        await s.updateRollout(one, { status: 'succeeded', message: 'all batches done' });
        const done = (await s.getRollout(one))!;
        expect(done).toMatchObject({ status: 'succeeded', message: 'all batches done', batch: 1, agents: ['a'] });
        expect(done.finished).not.toBeNull();
        await s.updateRollout(one, { message: 'note' });
        expect((await s.getRollout(one))!.finished).toBe(done.finished);
        await s.updateRollout(9999, { status: 'failed' });
        expect(await s.getRollout(9999)).toBeUndefined();
        expect((await s.listRollouts(10)).map((r) => r.id)).toEqual([two, one]);

        await s.addRolloutBatches(two, [
          { group_num: 1, group_name: 'canary', agents: ['a'] },
          { group_num: 2, group_name: 'rest', agents: ['b', 'c'] },
          { group_num: 2, group_name: 'rest', agents: ['d'] },
        ]);
        await s.updateRolloutBatch(two, 1, { status: 'applying', jid: 'j9' });
        await s.putVerifyResult(two, 1, { seq: 0, name: 'http', outcome: 'running', attempts: 1, message: null, started: '2026-01-01T00:00:00.000Z' });
        await s.putVerifyResult(two, 1, { seq: 0, name: 'http', outcome: 'passed', attempts: 2, message: null, started: '2026-01-01T00:00:00.000Z', finished: '2026-01-01T00:00:01.000Z' });
        await s.putVerifyResult(two, 1, { seq: 1, name: 'tcp', outcome: 'failed', attempts: 1, message: 'refused', started: '2026-01-01T00:00:02.000Z', finished: '2026-01-01T00:00:03.000Z' });
        await s.updateRolloutBatch(two, 1, { status: 'done' });
        await s.updateRolloutBatch(two, 2, { status: 'applying', jid: 'j10', offline: ['c'] });
        let b = await s.rolloutBatches(two);
        expect(b.map((x) => [x.batch, x.group_num, x.group_name, x.agents, x.offline, x.jid, x.status])).toEqual([
          [1, 1, 'canary', ['a'], [], 'j9', 'done'],
          [2, 2, 'rest', ['b', 'c'], ['c'], 'j10', 'applying'],
          [3, 2, 'rest', ['d'], [], null, 'pending'],
        ]);
        expect(b[0]!.started).not.toBeNull();
        expect(b[0]!.finished).not.toBeNull();
        expect(b[1]!.finished).toBeNull();
        expect(b[2]!.started).toBeNull();
        expect(b[0]!.verify).toEqual([
          { seq: 0, name: 'http', outcome: 'passed', attempts: 2, message: null, started: '2026-01-01T00:00:00.000Z', finished: '2026-01-01T00:00:01.000Z' },
          { seq: 1, name: 'tcp', outcome: 'failed', attempts: 1, message: 'refused', started: '2026-01-01T00:00:02.000Z', finished: '2026-01-01T00:00:03.000Z' },
        ]);
        // a master killed mid-rollout: what ran failed, what had not started did not run
        await s.closeRunningRollouts('master restarted');
        b = await s.rolloutBatches(two);
        expect(b.map((x) => x.status)).toEqual(['done', 'failed', 'not_run']);
        expect(await s.getRollout(two)).toMatchObject({ status: 'failed', message: 'master restarted' });
        expect((await s.getRollout(one))!.status).toBe('succeeded');

        const three = await s.createRollout({ revision: 'r3', previous: 'r2', reason: 'rollback', started_by: 'bob' });
        await s.addRolloutBatches(three, [
          { group_num: 1, group_name: 'all', agents: ['a'] },
          { group_num: 1, group_name: 'all', agents: ['b'] },
        ]);
        await s.updateRolloutBatch(three, 1, { status: 'skipped' });
        await s.skipPendingBatches(three);
        expect((await s.rolloutBatches(three)).map((x) => x.status)).toEqual(['skipped', 'not_run']);
      }));
  });

  describe('two masters on one store', () => {
    it('sees what the other wrote, and survives a restart', () =>
      withStore(open, 'shared', async (s, again) => {
        const t = await again();
        await s.addAgent('a', FP, 'pending');
        expect(await t.setKeyState('a', 'accepted')).toBe(true);
        expect((await s.getAgent('a'))!.key_state).toBe('accepted');
        const jid = await job(t, ['a']);
        expect((await s.openJobAgents('a')).map((r) => r.jid)).toEqual([jid]);
        expect(t.schema.from).toBe(t.schema.to);
      }));

    it('stores one return when both get it at once', () =>
      withStore(open, 'race', async (s, again) => {
        const t = await again();
        await s.addAgent('a', FP, 'accepted');
        for (let round = 0; round < 10; round++) {
          const jid = await job(s, ['a'], { revision: `r${round}` });
          const bodies = [applied([result(0, true, { comment: 'from s' })]), applied([result(0, true, { comment: 'from t' })])];
          const won = await Promise.all([s.finishJobAgent(jid, 'a', 'done', bodies[0]!), t.finishJobAgent(jid, 'a', 'done', bodies[1]!), s.setJobAgentStatus(jid, 'a', 'lost')]);
          // exactly one return is stored; the lost mark only if it came first, and then the return still lands
          expect(won.slice(0, 2).filter(Boolean)).toHaveLength(1);
          const row = (await s.getJobAgent(jid, 'a'))!;
          expect(row.status).toBe('done');
          const winner = won[0] ? bodies[0]! : bodies[1]!;
          expect(row.body).toEqual(winner);
          expect((await s.stateResults(jid, 'a')).map((r) => r.comment)).toEqual([won[0] ? 'from s' : 'from t']);
        }
      }));

    it('adds a key once when both see its first contact at once', () =>
      withStore(open, 'addrace', async (s, again) => {
        const t = await again();
        const [x, y] = await Promise.all([s.addAgent('n', FP, 'pending'), t.addAgent('n', 'cd'.repeat(32), 'pending')]);
        expect(x).toEqual(y);
        expect(await s.listAgents()).toHaveLength(1);
      }));
  });

  describe('calls routed between masters', () => {
    const CALL = 'c0'.repeat(16);
    const later = (s: number) => new Date(Date.now() + s * 1000).toISOString();
    const ask = (id: string, agents: string[], expires = later(60), sent_by = 'm2') =>
      agents.map((agent_id) => ({ id, agent_id, asked_by: 'm1', sent_by, request: { fun: 'state.show_sls', args: ['web'], kwargs: {}, timeout_ms: 5000 }, expires }));

    it('the holding master takes a call once; another master, or the same again, gets nothing', () =>
      withStore(open, 'calls_take', async (s, again) => {
        const t = await again();
        await s.askCalls(ask(CALL, ['a', 'b']));
        expect(await s.untakenCalls('m2')).toEqual([CALL]);
        expect(await s.untakenCalls('m1')).toEqual([]);
        expect(await s.takeCalls(CALL, 'm1')).toEqual([]);
        // two connections of m2 (a re-sync racing the event): each row is taken by one of them
        const [x, y] = await Promise.all([s.takeCalls(CALL, 'm2'), t.takeCalls(CALL, 'm2')]);
        const taken = [...x, ...y].sort((p, q) => p.agent_id.localeCompare(q.agent_id));
        expect(taken).toEqual(ask(CALL, ['a', 'b']).map((r) => ({ ...r, expires: expect.any(String) })));
        expect(await s.takeCalls(CALL, 'm2')).toEqual([]);
        expect(await s.untakenCalls('m2')).toEqual([]);
      }));

    it('stores each answer once, any size; the asker reads each once and the rows go', () =>
      withStore(open, 'calls_answer', async (s, again) => {
        const t = await again();
        await s.askCalls(ask(CALL, ['a', 'b']));
        await s.takeCalls(CALL, 'm2');
        // state.show_sls of a big tree: far over a NOTIFY payload
        const big = { status: 'ok', return: { motd: { file: ['managed', { contents: 'x'.repeat(200_000) }] } }, rtt_ms: 1.5 };
        const answers = await Promise.all([s.answerCall(CALL, 'a', big), t.answerCall(CALL, 'a', { status: 'error', error: 'second' })]);
        expect(answers.filter(Boolean)).toHaveLength(1);
        expect(await s.answerCall(CALL, 'nobody', big)).toBe(false);
        const first = await t.collectAnswers(CALL);
        expect(first).toHaveLength(1);
        expect(first[0]!.agent_id).toBe('a');
        expect(first[0]!.answer).toEqual(answers[0] ? big : { status: 'error', error: 'second' });
        expect(await s.collectAnswers(CALL)).toEqual([]);
        // read and gone: a late copy of the answer finds no row
        expect(await s.answerCall(CALL, 'a', big)).toBe(false);
        expect(await s.answerCall(CALL, 'b', null)).toBe(true);
        expect(await s.collectAnswers(CALL)).toEqual([{ agent_id: 'b', answer: null }]);
        expect(await s.collectAnswers(CALL)).toEqual([]);
      }));

    it('an asker that stops waiting drops its call; rows a dead asker left go by age', () =>
      withStore(open, 'calls_prune', async (s) => {
        const other = 'd1'.repeat(16);
        const old = 'e2'.repeat(16);
        await s.askCalls(ask(CALL, ['a']));
        await s.askCalls(ask(other, ['a', 'b']));
        await s.askCalls(ask(old, ['a'], new Date(Date.now() - 600_000).toISOString()));
        expect(await s.untakenCalls('m2')).toEqual([CALL, other]);
        await s.dropCall(CALL);
        expect(await s.takeCalls(CALL, 'm2')).toEqual([]);
        expect(await s.answerCall(CALL, 'a', 1)).toBe(false);
        expect(await s.pruneCalls(900)).toBe(0);
        expect(await s.pruneCalls(300)).toBe(1);
        expect(await s.takeCalls(old, 'm2')).toEqual([]);
        expect((await s.takeCalls(other, 'm2')).map((r) => r.agent_id)).toEqual(['a', 'b']);
      }));
  });
}
