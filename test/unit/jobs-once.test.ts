/**
 * An agent's run ends exactly once in JobManager, now that every store call is a wait: the same
 * return arriving twice at once (a re-sent spool on a new connection) is stored and reported
 * once; a run whose return another master stored is released with that end when this master's
 * timeout fires, not reported again as a timeout.
 */
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { JobManager } from '../../master/jobs.js';
import { SqliteStore } from '../../master/store-sqlite.js';
import type { AgentConn } from '../../master/server.js';
import type { CliEvent, MasterMessage } from '../../protocol/messages.js';
import type { ConfigSource } from '../../master/tree.js';
import { makeLogger } from '../../core/log.js';
import { tempDir } from '../helpers/harness.js';

/** An accepted, connected agent: what it is sent is kept. */
function fakeConn(id: string): AgentConn & { sent: MasterMessage[] } {
  const sent: MasterMessage[] = [];
  return { id, grains: {}, sent, open: true, send: (m: MasterMessage) => (sent.push(m), true), close: () => {} } as unknown as AgentConn & { sent: MasterMessage[] };
}

const noSource = { label: 'none', snapshot: () => Promise.reject(new Error('no tree in this test')) } as unknown as ConfigSource;

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
    const jobs = new JobManager({ store, source: noSource, agents: { ready: (id) => (id === 'a1' ? conn : undefined) }, cfg: { nodegroups: {}, lost_after_s: 60, timeout_s, held_return_retry_s: 2, held_returns_max_bytes: 256 * 1024 * 1024 }, log: makeLogger('error', 'jobs') });
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

  it('a return another master stored: the timeout here releases the run with the stored end', async () => {
    const { store, events, done, jid } = await setup(0.2);
    // the agent failed over and its return reached the other master
    expect(await store.finishJobAgent(jid, 'a1', 'done', { kind: 'run', retcode: 0, stdout: 'there\n', stderr: '' })).toBe(true);
    expect(await done).toBe(0);
    const ends = events.filter((e) => e.type === 'agent_done');
    expect(ends).toEqual([expect.objectContaining({ agent: 'a1', status: 'done' })]);
    expect(await store.getJobAgent(jid, 'a1')).toMatchObject({ status: 'done', error: null });
  });
});
