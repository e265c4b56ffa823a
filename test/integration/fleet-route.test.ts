/**
 * Two masters, one PostgreSQL store (test/helpers/postgres.ts): jobs, returns and key changes
 * routed between them over the store's bus (LISTEN/NOTIFY).
 *
 * m1 and m2 serve the same state tree from the same store; the agents connect to m2 only, and
 * the operator works on m1's CLI socket:
 * - `tsalt keys accept` on m1 lets in the agents whose connections wait, pending, on m2;
 * - `tsalt apply '*'` on m1 reaches them through m2, each return is stored once (by m2, which
 *   received it) and m1 finishes the job with it;
 * - a return that reaches both masters (an agent that moved, re-sending its spool) is stored
 *   once, and the job's owner learns its end exactly once.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Fleet, newPgDatabase, RawAgent, TEST_STORE, waitFor } from './fleet-harness.js';

const states = {
  'top.sls': "base:\n  '*':\n    - site\n",
  'site.sls': [
    'site_file:',
    '  file.managed:',
    '    - name: /etc/site',
    '    - makedirs: True',
    "    - contents: \"{{ grains['id'] }} {{ pillar.get('colour', 'none') }}\"",
  ].join('\n') + '\n',
};
const pillar = { 'top.sls': "base:\n  '*':\n    - common\n", 'common.sls': 'colour: teal\n' };

interface ApplyJson {
  jid: string;
  code: number;
  errors: string[];
  offline: { id: string }[];
  agents: Record<string, { status: string; body?: { kind: string; stdout?: string; report?: { results: { id: string; result: boolean | null }[] } } }>;
}
interface JobJson {
  agents: { agent_id: string; status: string; body: { kind: string; stdout?: string } | null; results: unknown[] }[];
}

// on PostgreSQL in every project: the fleet-pg rerun would run the same test again
describe.skipIf(TEST_STORE === 'postgres')('fleet: two masters on one PostgreSQL', () => {
  let m1: Fleet;
  let m2: Fleet;

  beforeAll(async () => {
    buildOnce();
    // one database for both masters (the harness stops its PostgreSQL after the file)
    const store = await newPgDatabase();
    const shared = { store, master_heartbeat_s: 1 };
    m1 = new Fleet({ states, pillar, master: { ...shared, master_id: 'm1' } });
    await m1.startMaster();
    // m2 serves m1's trees (one git work tree, so both pin the same revision)
    m2 = new Fleet({ states: {}, master: { ...shared, master_id: 'm2', state_tree: path.join(m1.dir, 'states'), pillar_tree: path.join(m1.dir, 'pillar') } });
    await m2.startMaster();
  }, 120_000);

  afterAll(async () => {
    await m2?.stop();
    await m1?.stop();
  });

  const agentsOn = async (f: Fleet) => f.json<{ id: string; connected: boolean }[]>(['agents']);

  it('a key accepted on m1 lets in the agents waiting, pending, on m2', async () => {
    m2.startAgents([m2.agentConfig('web1', { grains: { roles: ['web'] } }), m2.agentConfig('web2', { grains: { roles: ['web'] } })]);
    // both keys are in the shared store: m1 lists them as pending
    await waitFor('pending keys seen on m1', async () => {
      const k = await m1.keys();
      return ['web1', 'web2'].every((id) => k.keys.some((x) => x.id === id && x.state === 'pending')) || undefined;
    });
    const r = await m1.cli(['keys', 'accept', 'web1', 'web2']);
    expect(r.code, r.stderr).toBe(0);
    // m2, where the connections wait, accepts them on the spot ('agent X accepted') and they come
    // back as accepted agents; nothing else would let them in (a pending agent just waits)
    const m2out = () => m2.master!.out;
    await waitFor('m2 accepts both waiting connections', () => ['web1', 'web2'].every((id) => m2out().includes(`agent ${id} accepted`)) || undefined, 30_000);
    await waitFor('both back on m2 as accepted agents', () => ['web1', 'web2'].every((id) => new RegExp(`agent ${id} connected from \\S+ \\(accepted\\)`).test(m2out())) || undefined, 30_000);
    await waitFor('both connected on m2', async () => {
      const a = await agentsOn(m2);
      return ['web1', 'web2'].every((id) => a.some((x) => x.id === id && x.connected)) || undefined;
    });
  });

  it("tsalt apply on m1 reaches the agents on m2; each return is stored once, by m2, and ends m1's job", async () => {
    const r = await m1.json<ApplyJson>(['apply', '*']);
    expect(r.errors).toEqual([]);
    expect(r.offline).toEqual([]);
    expect(Object.keys(r.agents).sort()).toEqual(['web1', 'web2']);
    for (const id of ['web1', 'web2']) {
      expect(r.agents[id]!.status, JSON.stringify(r.agents[id])).toBe('done');
      expect(r.agents[id]!.body?.report?.results.map((x) => [x.id, x.result])).toEqual([['site_file', true]]);
      // the job m2 sent was built from the store: this agent's pillar, the job's states
      expect(m2.agentFileText(id)).toBe(`${id} teal`);
    }
    expect(r.code).toBe(0);
    const job = await m1.json<JobJson>(['jobs', r.jid]);
    expect(job.agents.map((a) => [a.agent_id, a.status, a.results.length])).toEqual([
      ['web1', 'done', 1],
      ['web2', 'done', 1],
    ]);
    // stored by the master that received the return, once; the owner only finished the job
    const stored = (out: string, id: string) => out.split('\n').filter((l) => l.includes(`job ${r.jid}: ${id} returned`)).length;
    for (const id of ['web1', 'web2']) {
      expect(stored(m2.master!.out, id)).toBe(1);
      expect(stored(m1.master!.out, id)).toBe(0);
    }
  });

  it('a return that reaches both masters is stored once; the owner finishes the agent once', async () => {
    // a hand-driven agent on m2, accepted through m1
    const keys = path.join(m1.dir, 'raw');
    // pending on m2 until m1 accepts it; m2 then closes the pending connection and the agent
    // comes back through the accepted agents' server
    const agent = await RawAgent.admitted(m1, keys, m2.port, 'raw1');
    agent.hello({ roles: ['raw'] });
    await waitFor('raw1 connected on m2', async () => (await agentsOn(m2)).some((a) => a.id === 'raw1' && a.connected) || undefined);

    const run = m1.json<ApplyJson>(['run', 'raw1', 'echo hi', '--timeout', '30']);
    const job = await agent.waitMsg('job');
    const jid = job.jid as string;
    agent.send({ type: 'job_ack', jid });
    // the agent moved to m1 while re-sending its spool: the same return reaches m2 and m1 at once
    const moved = await RawAgent.connectTo(keys, m1.port, 'raw1');
    moved.send({ type: 'hello', version: 1, grains: { roles: ['raw'] }, running: [], spooled: [jid] });
    await waitFor('raw1 connected on m1', async () => (await agentsOn(m1)).some((a) => a.id === 'raw1' && a.connected) || undefined);
    const ret = (stdout: string) => ({ type: 'job_return', jid, body: { kind: 'run', retcode: 0, stdout, stderr: '' } });
    agent.send(ret('first'));
    moved.send(ret('second'));
    await agent.waitMsg('return_ack');
    await moved.waitMsg('return_ack');
    const r = await run;
    expect(r.code).toBe(0);
    const got = r.agents.raw1!.body?.stdout;
    expect(['first', 'second']).toContain(got);
    // one of the two was stored, the other taken for the duplicate it is
    const stored = [m1, m2].map((f) => f.master!.out.split('\n').filter((l) => l.includes(`job ${jid}: raw1 returned`)).length);
    expect(stored.reduce((a, b) => a + b)).toBe(1);
    const row = (await m1.json<JobJson>(['jobs', jid])).agents[0]!;
    expect([row.status, row.body?.stdout]).toEqual(['done', got]);
    // sent again later (a spool re-sent after a restart): still the first one
    moved.send(ret('third'));
    await waitFor('second ack', () => moved.messages.filter((m) => m.type === 'return_ack').length === 2 || undefined);
    expect((await m1.json<JobJson>(['jobs', jid])).agents[0]!.body?.stdout).toBe(got);
    agent.ws.close();
    moved.ws.close();
  });

  it('tsalt jobs kill on m1 reaches the agent running the job on m2', async () => {
    const keys = path.join(m1.dir, 'raw');
    const agent = await RawAgent.admitted(m1, keys, m2.port, 'raw2');
    agent.hello();
    await waitFor('raw2 connected on m2', async () => (await agentsOn(m2)).some((a) => a.id === 'raw2' && a.connected) || undefined);
    const run = m1.json<ApplyJson>(['run', 'raw2', 'sleep 60', '--timeout', '30']);
    const jid = (await agent.waitMsg('job')).jid as string;
    agent.send({ type: 'job_ack', jid });
    await waitFor('raw2 running', async () => (await m1.json<JobJson>(['jobs', jid])).agents[0]?.status === 'running' || undefined);
    const kill = await m1.cli(['jobs', 'kill', jid]);
    expect(kill.code, kill.stderr).toBe(0);
    // m2 tells its agent; the agent stops and returns as a killed run would
    expect(await agent.waitMsg('job_kill', 10_000)).toEqual({ type: 'job_kill', jid });
    agent.send({ type: 'job_return', jid, body: { kind: 'run', retcode: 143, stdout: '', stderr: 'killed' } });
    const r = await run;
    expect(r.agents.raw2!.status).toBe('failed');
    agent.ws.close();
  });
});
