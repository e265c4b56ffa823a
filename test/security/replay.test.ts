/**
 * Replays: a return sent again (the same frame, or altered) for a job that already returned is
 * acknowledged and never changes what is stored, before and after a master restart; state
 * results replayed after the return change nothing; a job that returned is never sent again.
 * The agent is played by the test over a real mutual-TLS websocket.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Fleet, RawAgent, waitFor } from '../integration/fleet-harness.js';

const states = { 'top.sls': "base:\n  '*':\n    - common\n", 'common.sls': 'hello:\n  test.succeed_without_changes: []\n' };

interface JobDetail {
  agents: { agent_id: string; status: string; body: { kind: string; stdout?: string } | null; results: { id: string }[] }[];
}

describe('security: replayed returns and jobs', () => {
  let fleet: Fleet;
  let agent: RawAgent;
  beforeAll(async () => {
    buildOnce();
    fleet = new Fleet({ states });
    await fleet.startMaster();
    agent = await RawAgent.connect(fleet, 'rp1');
    await agent.waitMsg('key_status');
    agent.hello();
    await fleet.cli(['keys', 'accept', 'rp1']);
    // accepted while connected: the master asks for a reconnect through the accepted agents' door
    await agent.closed;
    agent = await RawAgent.connect(fleet, 'rp1');
    agent.hello();
    await fleet.waitConnected(['rp1']);
  });
  afterAll(async () => {
    agent?.ws.terminate();
    await fleet?.stop();
  });

  const detail = (jid: string) => fleet.json<JobDetail>(['jobs', jid]);
  let jid = '';
  let captured = '';

  it('a return replayed, or altered and resent, is acknowledged and changes nothing', async () => {
    const run = fleet.cli(['run', 'rp1', 'echo hi', '--json']);
    const job = await agent.waitMsg('job');
    jid = String(job.jid);
    captured = JSON.stringify({ type: 'job_return', jid, body: { kind: 'run', retcode: 0, stdout: 'first\n', stderr: '' } });
    agent.send(captured);
    expect(JSON.parse((await run).stdout).agents.rp1.body.stdout).toBe('first\n');
    agent.messages.length = 0;
    agent.send(captured);
    agent.send({ type: 'job_return', jid, body: { kind: 'run', retcode: 1, stdout: 'forged\n', stderr: '' } });
    agent.send({ type: 'state_result', jid, result: { id: 'late', name: 'late', fun: 'test.nop', result: false, changes: {}, comment: 'replayed', duration_ms: 0, start_time: '00:00:00' } });
    await waitFor('two acks', () => (agent.messages.filter((m) => m.type === 'return_ack' && m.jid === jid).length >= 2 ? true : undefined));
    const d = await detail(jid);
    expect(d.agents).toHaveLength(1);
    expect(d.agents[0]!.status).toBe('done');
    expect(d.agents[0]!.body!.stdout).toBe('first\n');
    expect(JSON.stringify(d)).not.toMatch(/forged|replayed/);
  });

  it('after a master restart: the replay changes nothing and the job is not sent again', async () => {
    await fleet.master!.kill('SIGTERM');
    await agent.closed;
    await fleet.startMaster();
    agent = await RawAgent.connect(fleet, 'rp1');
    // claims to hold the return in its spool: the master acks it and stores nothing new
    agent.send({ type: 'hello', version: 1, grains: {}, running: [], spooled: [jid] });
    await fleet.waitConnected(['rp1']);
    agent.send(captured);
    agent.send({ type: 'job_return', jid, body: { kind: 'run', retcode: 1, stdout: 'forged\n', stderr: '' } });
    await waitFor('acks', () => (agent.messages.filter((m) => m.type === 'return_ack' && m.jid === jid).length >= 2 ? true : undefined));
    const d = await detail(jid);
    expect(d.agents[0]!.status).toBe('done');
    expect(d.agents[0]!.body!.stdout).toBe('first\n');
    // a fresh job proves the connection is live; the old jid was never re-sent
    const run = fleet.cli(['run', 'rp1', 'echo again', '--json']);
    const next = await waitFor('a job', () => agent.messages.find((m) => m.type === 'job'));
    expect(next.jid).not.toBe(jid);
    agent.send({ type: 'job_return', jid: next.jid, body: { kind: 'run', retcode: 0, stdout: 'again\n', stderr: '' } });
    expect((await run).code).toBe(0);
    expect(agent.messages.filter((m) => m.type === 'job' && m.jid === jid)).toHaveLength(0);
  });

  it("a return for another job id, or one that does not exist, is never stored", async () => {
    const fake = '2'.repeat(20);
    agent.send({ type: 'job_return', jid: fake, body: { kind: 'run', retcode: 0, stdout: 'ghost\n', stderr: '' } });
    await waitFor('ack', () => agent.messages.find((m) => m.type === 'return_ack' && m.jid === fake));
    const r = await fleet.cli(['jobs', fake]);
    expect(r.code).not.toBe(0);
    expect(JSON.stringify(await fleet.json(['jobs']))).not.toMatch(/ghost/);
  });
});
