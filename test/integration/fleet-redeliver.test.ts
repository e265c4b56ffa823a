/**
 * A job message lost with its connection. Under load an agent can be cut off (a missed
 * heartbeat) while its job message is still on the way: it comes back with a hello that names
 * neither a run nor a spooled return of that job. A run the agent had acknowledged is lost (the
 * agent restarted mid-run); one it never acknowledged never reached it, and the master sends it
 * again on the new connection instead of calling it lost (at 10,000 agents on a slow machine a
 * quarter of a job's agents were marked lost that way). Bounded: an agent that drops the job
 * message every time is given up on after three sends.
 *
 * The agent is played by hand (RawAgent). On the pair (fleet-pg) also: the job sent by the other
 * master for its owner, and an agent that moved from the owner to the other master.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Fleet, RawAgent, TEST_MASTERS, waitFor } from './fleet-harness.js';

interface RunJson {
  code: number;
  agents: Record<string, { status: string; error?: string; body?: { stdout?: string } }>;
}
interface JobJson {
  agents: { agent_id: string; status: string; error: string | null; body: { stdout?: string } | null }[];
}

describe('fleet: a job message lost with its connection is sent again', () => {
  let fleet: Fleet;
  const keys = () => path.join(fleet.dir, 'raw');

  beforeAll(async () => {
    buildOnce();
    fleet = new Fleet({ states: { 'top.sls': "base:\n  '*': []\n" } });
    await fleet.startMaster();
  }, 120_000);
  afterAll(async () => {
    await fleet?.stop();
  });

  /** A hand-driven agent `id`, accepted, connected to the master on `port`. */
  async function accepted(id: string, port: number): Promise<RawAgent> {
    const pending = await RawAgent.connectTo(keys(), port, id);
    pending.hello();
    await waitFor(`${id} pending`, async () => (await fleet.keys()).keys.some((k) => k.id === id) || undefined);
    expect((await fleet.cli(['keys', 'accept', id])).code).toBe(0);
    await pending.closed;
    return again(id, port);
  }

  /** The agent's next connection, as a restarted or reconnecting agent makes it: a hello naming no job. */
  async function again(id: string, port: number): Promise<RawAgent> {
    const a = await RawAgent.connectTo(keys(), port, id);
    a.hello();
    return a;
  }

  /** Waits for the job message, then drops the connection without acknowledging it. */
  async function dropJob(a: RawAgent): Promise<string> {
    const jid = (await a.waitMsg('job')).jid as string;
    a.ws.terminate();
    await a.closed;
    return jid;
  }

  async function finishRun(a: RawAgent, jid: string, stdout: string): Promise<void> {
    const job = await a.waitMsg('job');
    expect(job.jid).toBe(jid);
    a.send({ type: 'job_ack', jid });
    a.send({ type: 'job_return', jid, body: { kind: 'run', retcode: 0, stdout, stderr: '' } });
    await a.waitMsg('return_ack');
  }

  it('an agent back without a job it never acknowledged gets it again, and the job finishes', async () => {
    const first = await accepted('r1', fleet.port);
    const run = fleet.json<RunJson>(['run', 'r1', 'echo hi', '--timeout', '60']);
    const jid = await dropJob(first);
    const back = await again('r1', fleet.port);
    await finishRun(back, jid, 'again\n');
    const r = await run;
    expect(r.agents.r1).toMatchObject({ status: 'done', body: { stdout: 'again\n' } });
    expect(r.code).toBe(0);
    expect(fleet.master!.out).toMatch(new RegExp(`job ${jid}: r1 came back without the job, which it had not acknowledged; sending it again`));
    back.ws.close();
  });

  it('an agent back without a job it had acknowledged is lost (it restarted mid-run)', async () => {
    const first = await accepted('r2', fleet.port);
    const run = fleet.json<RunJson>(['run', 'r2', 'sleep 30', '--timeout', '60']);
    const jid = (await first.waitMsg('job')).jid as string;
    first.send({ type: 'job_ack', jid });
    await waitFor('r2 running', async () => (await fleet.json<JobJson>(['jobs', jid])).agents[0]?.status === 'running' || undefined);
    first.ws.terminate();
    const back = await again('r2', fleet.port);
    const r = await run;
    expect(r.agents.r2).toMatchObject({ status: 'lost', error: 'agent came back without the job (restarted or killed mid-run)' });
    expect(back.messages.filter((m) => m.type === 'job')).toEqual([]);
    back.ws.close();
  });

  it('sent again at most three times: an agent that drops it every time is lost', async () => {
    let a = await accepted('r3', fleet.port);
    const run = fleet.json<RunJson>(['run', 'r3', 'echo hi', '--timeout', '60']);
    const jid = await dropJob(a);
    for (let i = 0; i < 3; i++) {
      a = await again('r3', fleet.port);
      expect(await dropJob(a)).toBe(jid);
    }
    a = await again('r3', fleet.port);
    const r = await run;
    expect(r.agents.r3).toMatchObject({ status: 'lost', error: 'agent came back without the job (restarted or killed mid-run)' });
    expect(a.messages.filter((m) => m.type === 'job')).toEqual([]);
    a.ws.close();
  });

  it('sent again within the time the job gave the agent: its timeout counts from the first send', async () => {
    const a = await accepted('r6', fleet.port);
    const t0 = Date.now();
    const run = fleet.json<RunJson>(['run', 'r6', 'echo hi', '--timeout', '6']);
    const jid = (await a.waitMsg('job')).jid as string;
    await new Promise((r) => setTimeout(r, Math.max(0, t0 + 4000 - Date.now())));
    a.ws.terminate();
    await a.closed;
    const b = await again('r6', fleet.port);
    expect((await b.waitMsg('job')).jid).toBe(jid); // sent again, and never answered
    const r = await run;
    expect(r.agents.r6).toMatchObject({ status: 'timeout', error: 'no return within 6s' });
    // the deadline stayed the first send's (~6 s), not the second's (10 s or more)
    expect(Date.now() - t0).toBeLessThan(9000);
    b.ws.close();
  });

  it.runIf(TEST_MASTERS === 2).each([
    // on m2 both times; the CLI (the job's owner) is m1
    { id: 'r4', what: 'the master that sent it for its owner sends it again', first: 'port2', back: 'port2' },
    { id: 'r5', what: 'an agent that moved from the owner to the other master gets it there', first: 'port', back: 'port2' },
  ] as const)('pair: $what', async ({ id, first, back }) => {
    const a = await accepted(id, fleet[first]);
    const run = fleet.json<RunJson>(['run', id, 'echo hi', '--timeout', '60']);
    const jid = await dropJob(a);
    const b = await again(id, fleet[back]);
    await finishRun(b, jid, `${id}\n`);
    expect(await run).toMatchObject({ code: 0, agents: { [id]: { status: 'done', body: { stdout: `${id}\n` } } } });
    expect(fleet.master2!.out).toMatch(new RegExp(`job ${jid}: ${id} came back without the job`));
    b.ws.close();
  });
});
