/**
 * When an agent acknowledges a job (issue 14: fewer frames per agent and job). A state run is
 * acknowledged (`job_ack`, which moves its row to `running`) only once it has run ACK_AFTER_MS
 * (agent/daemon.ts), and not at all when its return goes first: a no-op run, done in
 * milliseconds, costs the master one frame from the agent (the return) instead of two, and no
 * `running` write. A run that lasts is acknowledged and shows `running` meanwhile; a command
 * (`tsalt run`, which must not run twice) is acknowledged at once. An agent that reconnects
 * before its run's mark names the run in its hello's `running`, which counts as the
 * acknowledgement: coming back without it later, it restarted mid-run (`lost`, not sent again);
 * one that has the return spooled is not sent the job again either.
 *
 * A real agent daemon in this process (multiprocessing: False), whose connection's frames are
 * recorded, over mutual TLS to a real master process; `running` writes are counted by the
 * test's own trigger on job_agents (SQLite and PostgreSQL). The last case plays the agent by
 * hand (RawAgent).
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAgentConfig } from '../../agent/connection/config.js';
import { ACK_AFTER_MS, AgentDaemon } from '../../agent/daemon.js';
import { makeLogger } from '../../core/log.js';
import { buildOnce, Fleet, RawAgent, waitFor } from './fleet-harness.js';

const states = {
  'quick.sls': 'first:\n  test.succeed_without_changes: []\nsecond:\n  test.succeed_without_changes: []\n',
  'slow.sls': 'wait:\n  cmd.run:\n    - name: sleep 2\n',
};

interface JobJson {
  agents: { agent_id: string; status: string; error: string | null; body: { kind: string; report?: { results: { id: string }[] }; stdout?: string } | null }[];
}

/** The test's write log of job_agents rows moved to running (by the ack's write). */
async function countRunning(fleet: Fleet): Promise<void> {
  if (/^postgres/.test(String(fleet.masterCfg.store ?? ''))) {
    await fleet.storeExec(`
      CREATE TABLE test_running_writes (jid text, agent_id text);
      CREATE FUNCTION test_running_write() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.status = 'running' THEN INSERT INTO test_running_writes VALUES (NEW.jid, NEW.agent_id); END IF; RETURN NULL; END $$;
      CREATE TRIGGER test_running_write AFTER UPDATE ON job_agents FOR EACH ROW EXECUTE FUNCTION test_running_write();`);
    return;
  }
  await fleet.storeExec(`
    CREATE TABLE test_running_writes (jid TEXT, agent_id TEXT);
    CREATE TRIGGER test_running_write AFTER UPDATE ON job_agents WHEN NEW.status = 'running' BEGIN INSERT INTO test_running_writes VALUES (NEW.jid, NEW.agent_id); END;`);
}

const runningWrites = async (fleet: Fleet, jid: string) => (await fleet.storeQuery(`SELECT agent_id FROM test_running_writes WHERE jid = '${jid}'`)).length;

describe('fleet: a state run is acknowledged only once it lasts', () => {
  let fleet: Fleet;
  let agent: AgentDaemon;
  /** every frame the agent sent: its type, job and when (performance.now()) */
  const sent: { type: string; jid?: string; at: number }[] = [];
  /** when each job message reached the agent */
  const received = new Map<string, number>();
  const sentFor = (jid: string) => sent.filter((m) => m.jid === jid).map((m) => m.type);

  beforeAll(async () => {
    buildOnce();
    fleet = new Fleet({ states, master: { lost_after_s: 60 } });
    await fleet.startMaster();
    const cfg = loadAgentConfig(fleet.agentConfig('k1', { cfg: { multiprocessing: false } }));
    agent = new AgentDaemon(cfg, makeLogger('info', 'agent k1', () => {}));
    await agent.start();
    const conn = (agent as unknown as { conn: { sendJson(json: string): boolean } }).conn;
    const sendJson = conn.sendJson.bind(conn);
    conn.sendJson = (json: string) => {
      const m = JSON.parse(json) as { type: string; jid?: string };
      sent.push({ type: m.type, ...(m.jid ? { jid: m.jid } : {}), at: performance.now() });
      return sendJson(json);
    };
    const onMessage = (agent as unknown as { onMessage(m: { type: string; jid?: string }): void }).onMessage.bind(agent);
    (agent as unknown as { onMessage(m: { type: string; jid?: string }): void }).onMessage = (m) => {
      if (m.type === 'job' && m.jid) received.set(m.jid, performance.now());
      onMessage(m);
    };
    await fleet.acceptAll(['k1']);
    await countRunning(fleet);
    // the first run loads the engine (past the mark, maybe): not the run looked at
    expect((await fleet.json<{ code: number }>(['apply', 'k1', 'quick'])).code).toBe(0);
  }, 120_000);
  afterAll(async () => {
    await agent?.stop();
    await fleet?.stop();
  });

  /** The jid of the job the agent received last after `n` jobs. */
  const nextJid = (n: number) => waitFor('the job on the agent', () => (received.size > n ? [...received.keys()].at(-1) : undefined));

  it('a state run done within the mark sends its return and no job_ack; it is stored and the job ends as before', async () => {
    const r = await fleet.json<{ code: number; agents: Record<string, { status: string; body?: { report?: { results: { id: string }[] } } }> }>(['apply', 'k1', 'quick']);
    expect(r.code).toBe(0);
    expect(r.agents.k1!.status).toBe('done');
    expect(r.agents.k1!.body!.report!.results.map((x) => x.id)).toEqual(['first', 'second']);
    const jid = [...received.keys()].at(-1)!;
    // the master got one frame of this job from the agent: its return
    expect(sentFor(jid)).toEqual(['job_return']);
    const shown = await fleet.json<JobJson>(['jobs', jid]);
    expect(shown.agents).toMatchObject([{ agent_id: 'k1', status: 'done', error: null }]);
    expect(shown.agents[0]!.body!.report!.results.map((x) => x.id)).toEqual(['first', 'second']);
    // nothing moved the row to running
    expect(await runningWrites(fleet, jid)).toBe(0);
  });

  it('a state run that lasts is acknowledged at the mark and shows running until its return', async () => {
    const n = received.size;
    const run = fleet.json<{ code: number; agents: Record<string, { status: string }> }>(['apply', 'k1', 'slow']);
    const jid = await nextJid(n);
    await waitFor(`${jid} running`, async () => (await fleet.json<JobJson>(['jobs', jid])).agents[0]?.status === 'running' || undefined);
    const r = await run;
    expect(r).toMatchObject({ code: 0, agents: { k1: { status: 'done' } } });
    // (its state's result streamed past agent/result-hold.ts's mark besides)
    expect(sentFor(jid).filter((t) => t !== 'state_result')).toEqual(['job_ack', 'job_return']);
    const ack = sent.find((m) => m.jid === jid && m.type === 'job_ack')!;
    expect(ack.at - received.get(jid)!).toBeGreaterThanOrEqual(ACK_AFTER_MS - 5);
    expect(await runningWrites(fleet, jid)).toBe(1);
  });

  it('a command (tsalt run) is acknowledged at once, however short', async () => {
    const n = received.size;
    const run = fleet.json<{ code: number; agents: Record<string, { status: string; body?: { stdout?: string } }> }>(['run', 'k1', 'echo once']);
    const jid = await nextJid(n);
    const r = await run;
    expect(r).toMatchObject({ code: 0, agents: { k1: { status: 'done', body: { stdout: 'once\n' } } } });
    expect(sentFor(jid)).toEqual(['job_ack', 'job_return']);
    // sent as the job came in, not at the mark
    const ack = sent.find((m) => m.jid === jid && m.type === 'job_ack')!;
    expect(ack.at - received.get(jid)!).toBeLessThan(ACK_AFTER_MS);
  });

  it("a run named in a reconnecting agent's hello counts as acknowledged: back without it later, it is lost, not sent again", async () => {
    const keys = path.join(fleet.dir, 'raw');
    const first = await RawAgent.admitted(fleet, keys, fleet.port2 || fleet.port, 'k2');
    first.hello();
    const run = fleet.json<{ code: number; agents: Record<string, { status: string; error?: string }> }>(['apply', 'k2', 'quick', '--timeout', '60']);
    const jid = (await first.waitMsg('job')).jid as string;
    // cut off before the mark: no job_ack went out; the agent says it runs the job
    first.ws.terminate();
    await first.closed;
    const mid = await RawAgent.connectTo(keys, fleet.port2 || fleet.port, 'k2');
    mid.send({ type: 'hello', version: 1, grains: {}, running: [jid], spooled: [] });
    await waitFor(`${jid} running`, async () => (await fleet.json<JobJson>(['jobs', jid])).agents[0]?.status === 'running' || undefined);
    // the agent restarted mid-run: back with a hello naming nothing
    mid.ws.terminate();
    await mid.closed;
    const back = await RawAgent.connectTo(keys, fleet.port2 || fleet.port, 'k2');
    back.hello();
    const r = await run;
    expect(r.agents.k2).toMatchObject({ status: 'lost', error: 'agent came back without the job (restarted or killed mid-run)' });
    expect(back.messages.filter((m) => m.type === 'job')).toEqual([]);
    expect(fleet.master!.out + (fleet.master2?.out ?? '')).not.toMatch(new RegExp(`job ${jid}: k2 came back without the job, which`));
    back.ws.close();
  });

  it('a run that returned without an ack, its return spooled across a reconnect, is stored and not sent again', async () => {
    const keys = path.join(fleet.dir, 'raw');
    const first = await RawAgent.admitted(fleet, keys, fleet.port2 || fleet.port, 'k3');
    first.hello();
    const run = fleet.json<{ code: number; agents: Record<string, { status: string }> }>(['apply', 'k3', 'quick', '--timeout', '60']);
    const jid = (await first.waitMsg('job')).jid as string;
    // done within the mark, no ack; the connection went before the return did
    first.ws.terminate();
    await first.closed;
    const back = await RawAgent.connectTo(keys, fleet.port2 || fleet.port, 'k3');
    back.send({ type: 'hello', version: 1, grains: {}, running: [], spooled: [jid] });
    const report = { id: 'k3', test: false, results: [], counts: { total: 0, succeeded: 0, changed: 0, failed: 0 }, duration_ms: 1 };
    back.send({ type: 'job_return', jid, body: { kind: 'apply', report } });
    await back.waitMsg('return_ack');
    expect(await run).toMatchObject({ code: 0, agents: { k3: { status: 'done' } } });
    expect(back.messages.filter((m) => m.type === 'job')).toEqual([]);
    back.ws.close();
  });
});
