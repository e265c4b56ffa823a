import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { newJid } from '../../master/store-api.js';
import { SqliteStore as Store } from '../../master/store-sqlite.js';
import { jobHistory } from '../../master/job-history.js';
import type { StateResult } from '../../protocol/results.js';
import { tempDir } from '../helpers/harness.js';

const result = (n: number, ok: boolean | null): StateResult => ({
  id: `s${n}`,
  sls: 'web',
  fun: 'test.nop',
  name: `s${n}`,
  result: ok,
  changes: n ? { x: { old: 1, new: 2 } } : {},
  comment: 'c',
  start: new Date().toISOString(),
  duration_ms: 1.5,
  run_num: n,
});

describe('store', () => {
  it('is a WAL database only root can read', async () => {
    const file = path.join(tempDir(), 'sub', 'm.db');
    const s = new Store(file);
    expect(s.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    await s.close();
  });

  it('keeps agents and key states', async () => {
    const s = new Store(path.join(tempDir(), 'm.db'));
    await s.addAgent('web1', 'ab'.repeat(32), 'pending');
    expect((await s.getAgent('web1'))!.key_state).toBe('pending');
    // the first key for an id stays (two connections, or two masters, adding it at once)
    expect(await s.addAgent('web1', 'cd'.repeat(32), 'pending')).toMatchObject({ fingerprint: 'ab'.repeat(32) });
    await s.setKeyState('web1', 'accepted');
    await s.touchAgent('web1', { roles: ['web'] });
    expect(await s.getAgent('web1')).toMatchObject({ key_state: 'accepted', grains: { roles: ['web'] } });
    expect(await s.deleteAgent('web1')).toBe(true);
    expect(await s.getAgent('web1')).toBeUndefined();
    await s.close();
  });

  it('job history pages through older jobs until it has enough matches, newest first', async () => {
    const s = new Store(path.join(tempDir(), 'm.db'));
    const t0 = Date.UTC(2026, 0, 1);
    for (let i = 0; i < 250; i++) {
      const by = i < 3 ? 'alice@cli' : 'bob@cli';
      await s.createJob({ jid: newJid(new Date(t0 + i * 1000)), kind: 'run', target: '*', tgt_type: 'glob', args: { command: `n${i}` }, revision: null, started_by: by }, []);
    }
    // alice's three jobs are the oldest: more than one page (100) back
    expect((await jobHistory(s, { limit: 2, by: 'alice' })).map((j) => j.args.command)).toEqual(['n2', 'n1']);
    expect((await jobHistory(s, { limit: 10, by: 'alice' })).map((j) => j.args.command)).toEqual(['n2', 'n1', 'n0']);
    expect((await jobHistory(s, { limit: 3 })).map((j) => j.args.command)).toEqual(['n249', 'n248', 'n247']);
    expect((await s.listJobs(2, (await s.listJobs(1))[0]!.jid)).map((j) => j.args.command)).toEqual(['n248', 'n247']);
    await s.close();
  });

  it('records a job from creation to every state result, and survives a reopen', async () => {
    const file = path.join(tempDir(), 'm.db');
    let s = new Store(file);
    await s.addAgent('a', 'ab'.repeat(32), 'accepted');
    const jid = newJid();
    await s.createJob({ jid, kind: 'apply', target: '*', tgt_type: 'glob', args: { sls: [] }, revision: 'r1', started_by: 'root@cli' }, [
      { id: 'a', status: 'queued' },
      { id: 'b', status: 'lost', error: 'offline' },
    ]);
    expect((await s.openJobAgents()).map((m) => m.agent_id)).toEqual(['a']);
    await s.setJobAgentStatus(jid, 'a', 'running');
    await s.putStateResult(jid, 'a', result(0, true)); // streamed
    await s.close();
    s = new Store(file); // a master restart in between
    expect((await s.getJobAgent(jid, 'a'))!.status).toBe('running');
    expect(await s.stateResults(jid, 'a')).toHaveLength(1);
    const report = { id: 'a', test: false, results: [result(0, true), result(1, false)], counts: { total: 2, succeeded: 1, changed: 1, failed: 1 }, duration_ms: 3 };
    await s.finishJobAgent(jid, 'a', 'failed', { kind: 'apply', report });
    expect((await s.stateResults(jid, 'a')).map((r) => [r.id, r.result, r.changes])).toEqual([
      ['s0', true, {}],
      ['s1', false, { x: { old: 1, new: 2 } }],
    ]);
    // a failed run is the agent's last attempt, not its revision (issue 8, item 7)
    expect(await s.getAgent('a')).toMatchObject({ revision_applied: null, revision_attempted: 'r1', attempt_status: 'failed', attempt_jid: jid });
    expect(await s.openJobAgents()).toEqual([]);
    const [j] = await s.listJobs(10);
    expect(j).toMatchObject({ jid, started_by: 'root@cli', revision: 'r1', counts: { failed: 1, lost: 1, done: 0 } });
    expect(await s.getJobAgent(jid, 'b')).toMatchObject({ status: 'lost', error: 'offline' });
    await s.close();
  });

  it('a test run does not count as the revision applied', async () => {
    const s = new Store(path.join(tempDir(), 'm.db'));
    await s.addAgent('a', 'ab'.repeat(32), 'accepted');
    const jid = newJid();
    await s.createJob({ jid, kind: 'apply', target: 'a', tgt_type: 'glob', args: {}, revision: 'r2', started_by: 'x' }, [{ id: 'a', status: 'queued' }]);
    await s.finishJobAgent(jid, 'a', 'done', { kind: 'apply', report: { id: 'a', test: true, results: [], counts: { total: 0, succeeded: 0, changed: 0, failed: 0 }, duration_ms: 0 } });
    expect((await s.getAgent('a'))!.revision_applied).toBeNull();
    await s.close();
  });

  it('jids are Salt-shaped and strictly increasing', async () => {
    const d = new Date('2099-01-31T12:00:00.123Z');
    const a = newJid(d);
    const b = newJid(d);
    expect(a).toMatch(/^20990131120000123\d{3}$/);
    expect(b > a).toBe(true);
  });
});
