/**
 * The SQLite store's writes made per agent (its connection, its part of every job) build no
 * temporary b-tree. SQLite builds one, at every execution, for a CHECK or WHERE with an IN list
 * of more than two values, for RETURNING, and for an UPDATE it cannot do in one pass; each is a
 * 64–88 KiB allocation, which the master's malloc setting (MALLOC_MMAP_THRESHOLD_=16384 in
 * packaging/tsalt-master.service) maps, faults in and unmaps: 0.3–0.5 ms per write, most of a
 * 2,000-agent no-op job's master CPU before schema version 9. The statements are the ones the
 * store really prepares (recorded as it runs a job's calls), each read with EXPLAIN.
 */
import path from 'node:path';
import type Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { newJid, type JobReturnRow } from '../../master/store-api.js';
import { SqliteStore } from '../../master/store-sqlite.js';
import type { StateResult } from '../../protocol/results.js';
import { tempDir } from '../helpers/harness.js';
import { applyReturn, nopResult } from '../helpers/job-rows.js';

const result = (n: number): StateResult => nopResult(n);
const ret = (jid: string, agentId: string): JobReturnRow => applyReturn(jid, agentId, [result(0), result(1)]);

/** A store whose prepared statements are recorded (the store prepares each on first use). */
function recordingStore() {
  const s = new SqliteStore(path.join(tempDir(), 'm.db'));
  const seen = new Set<string>();
  const prepare = s.db.prepare.bind(s.db);
  s.db.prepare = ((sql: string) => (seen.add(sql), prepare(sql))) as typeof s.db.prepare;
  return { s, seen, prepare };
}

/** The opcodes SQLite compiled `sql` to (its parameters bound to NULL: the plan does not depend on them). */
function opcodes(prepare: (sql: string) => Database.Statement, sql: string): string[] {
  const params = (sql.replace(/'[^']*'/g, '').match(/\?/g) ?? []).length;
  return (prepare(`EXPLAIN ${sql}`).all(...Array.from({ length: params }, () => null)) as { opcode: string }[]).map((r) => r.opcode);
}

describe('the SQLite store: writes per agent', () => {
  it('a job\'s and a connection\'s writes per agent build no temporary b-tree (no OpenEphemeral in any of their plans)', async () => {
    const { s, seen, prepare } = recordingStore();
    const ids = ['a1', 'a2', 'a3', 'a4'];
    seen.clear(); // the schema's own statements are not the job path
    // an agent's connection: first contact, hello, session on this master, the last attempt
    for (const id of ids) await s.addAgent(id, id.padEnd(64, '0'), 'accepted');
    await s.touchAgent('a1', { os: 'Debian' });
    await s.touchAgent('a1');
    // (touchAgents, a stopping master's whole fleet in one statement, builds one for all: not per agent)
    await s.claimSession('a1', 'm1');
    await s.releaseSession('a1', 'm1');
    await s.recordAttempt('a1', newJid(), 'r1', 'done');
    await s.assign(['a1'], 'r1');
    // a job: created, runs acknowledged (a tick's and one alone), results streamed, returns stored
    // (a tick's and one alone), runs ended without a return (lost, timed out)
    const jid = newJid();
    await s.createJob({ jid, kind: 'apply', target: '*', tgt_type: 'glob', args: {}, revision: 'r1', started_by: 'test' }, ids.map((id) => ({ id, status: 'queued' as const })));
    expect(await s.setJobAgentsRunning([{ jid, agentId: 'a1' }, { jid, agentId: 'a2' }])).toEqual([true, true]);
    expect(await s.setJobAgentStatus(jid, 'a3', 'running')).toBe(true);
    await s.putStateResult(jid, 'a1', result(0));
    await s.putStateResults([{ jid, agentId: 'a1', result: result(1) }, { jid, agentId: 'a2', result: result(0) }]);
    expect(await s.finishJobAgents([ret(jid, 'a1'), ret(jid, 'a2')])).toEqual([true, true]);
    expect(await s.finishJobAgent(jid, 'a3', 'done', ret(jid, 'a3').body)).toBe(true);
    expect(await s.setJobAgentStatus(jid, 'a4', 'lost', 'gone')).toBe(true);
    expect(await s.setJobAgentStatus(jid, 'a4', 'timeout')).toBe(false); // ended already: nothing moves
    // what the calls did, as before
    expect((await s.jobAgents(jid)).map((r) => [r.agent_id, r.status])).toEqual([['a1', 'done'], ['a2', 'done'], ['a3', 'done'], ['a4', 'lost']]);
    expect((await s.stateResults(jid, 'a1')).map((r) => r.id)).toEqual(['s0', 's1']);
    expect(await s.getAgent('a2')).toMatchObject({ revision_attempted: 'r1', attempt_status: 'done', revision_applied: 'r1' });

    const writes = [...seen].filter((sql) => /^\s*(INSERT|UPDATE|DELETE)\b/i.test(sql));
    expect(writes.length).toBeGreaterThanOrEqual(10);
    const building = writes.filter((sql) => opcodes(prepare, sql).includes('OpenEphemeral'));
    expect(building).toEqual([]);
    await s.close();
  });

  it('job_agents still refuses a status it does not know (the CHECK as comparisons is the same constraint)', async () => {
    const { s } = recordingStore();
    await s.addAgent('a1', 'f'.repeat(64), 'accepted');
    const jid = newJid();
    await s.createJob({ jid, kind: 'apply', target: '*', tgt_type: 'glob', args: {}, revision: 'r1', started_by: 'test' }, [{ id: 'a1', status: 'queued' }]);
    expect(() => s.db.prepare("UPDATE job_agents SET status = 'bogus' WHERE jid = ?").run(jid)).toThrow(/CHECK constraint failed/);
    expect(() => s.db.prepare("UPDATE job_agents SET status = NULL WHERE jid = ?").run(jid)).toThrow(/NOT NULL constraint failed/);
    for (const st of ['queued', 'running', 'done', 'failed', 'timeout', 'lost', 'cancelled']) s.db.prepare('UPDATE job_agents SET status = ? WHERE jid = ?').run(st, jid);
    await s.close();
  });
});
