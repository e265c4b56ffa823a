/**
 * A job message lost with its connection. Under load an agent can be cut off (a missed
 * heartbeat) while its job message is still on the way: it comes back with a hello that names
 * neither a run nor a spooled return of that job. A state run the agent never acknowledged is
 * sent again on the new connection instead of being called lost (at 10,000 agents on a slow
 * machine a quarter of a job's agents were marked lost that way), at most three times and
 * within the agent's first deadline. One it had acknowledged is lost (the agent restarted
 * mid-run), and so is a command (`tsalt run`): an agent killed right after taking it may not
 * have got its acknowledgement out, and a command must not run twice.
 *
 * The agent is played by hand (RawAgent). On the pair (fleet-pg) also: the job sent by the other
 * master for its owner, and an agent that moved from the owner to the other master.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Fleet, RawAgent, TEST_MASTERS, waitFor } from './fleet-harness.js';

interface RunJson {
  code: number;
  agents: Record<string, { status: string; error?: string; body?: { kind: string; stdout?: string; report?: { id: string } } }>;
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
    const a = await RawAgent.admitted(fleet, keys(), port, id);
    a.hello();
    return a;
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

  /** A state run, targeting one agent, as the CLI starts it. */
  const apply = (id: string, timeout = 60) => fleet.json<RunJson>(['apply', id, '--timeout', String(timeout)]);

  /** Takes the job message again and answers it: an empty state run, done. */
  async function finishRun(a: RawAgent, jid: string, id: string): Promise<void> {
    const job = await a.waitMsg('job');
    expect(job.jid).toBe(jid);
    a.send({ type: 'job_ack', jid });
    const report = { id, test: false, results: [], counts: { total: 0, succeeded: 0, changed: 0, failed: 0 }, duration_ms: 1 };
    a.send({ type: 'job_return', jid, body: { kind: 'apply', report } });
    await a.waitMsg('return_ack');
  }

  it('a state run never acknowledged is sent again to the agent back without it, and the job finishes', async () => {
    const first = await accepted('r1', fleet.port);
    const run = apply('r1');
    const jid = await dropJob(first);
    const back = await again('r1', fleet.port);
    await finishRun(back, jid, 'r1');
    const r = await run;
    expect(r.agents.r1).toMatchObject({ status: 'done', body: { kind: 'apply', report: { id: 'r1' } } });
    expect(r.code).toBe(0);
    expect(fleet.master!.out).toMatch(new RegExp(`job ${jid}: r1 came back without the job, which it had not acknowledged; sending it again`));
    back.ws.close();
  });

  it('a state run acknowledged is lost, even with its acknowledgement not stored yet (the agent restarted mid-run)', async () => {
    for (const [id, wait] of [['r2', true], ['r7', false]] as const) {
      const first = await accepted(id, fleet.port);
      const run = apply(id);
      const jid = (await first.waitMsg('job')).jid as string;
      first.send({ type: 'job_ack', jid });
      if (wait) await waitFor(`${id} running`, async () => (await fleet.json<JobJson>(['jobs', jid])).agents[0]?.status === 'running' || undefined);
      first.ws.terminate();
      const back = await again(id, fleet.port);
      const r = await run;
      expect(r.agents[id]).toMatchObject({ status: 'lost', error: 'agent came back without the job (restarted or killed mid-run)' });
      expect(back.messages.filter((m) => m.type === 'job')).toEqual([]);
      back.ws.close();
    }
  });

  it('a command (tsalt run) is not sent again: it may have started on an agent killed before its acknowledgement got out', async () => {
    const first = await accepted('r8', fleet.port);
    const run = fleet.json<RunJson>(['run', 'r8', 'echo once', '--timeout', '60']);
    const jid = await dropJob(first);
    const back = await again('r8', fleet.port);
    const r = await run;
    expect(r.agents.r8).toMatchObject({ status: 'lost', error: 'agent came back without the job (restarted or killed mid-run)' });
    expect(back.messages.filter((m) => m.type === 'job')).toEqual([]);
    expect(fleet.master!.out).not.toMatch(new RegExp(`job ${jid}: r8 came back without the job, which`));
    back.ws.close();
  });

  it('sent again at most three times: an agent that drops it every time is lost', async () => {
    let a = await accepted('r3', fleet.port);
    const run = apply('r3');
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
    const run = apply('r6', 6);
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
    const run = apply(id);
    const jid = await dropJob(a);
    const b = await again(id, fleet[back]);
    await finishRun(b, jid, id);
    expect(await run).toMatchObject({ code: 0, agents: { [id]: { status: 'done' } } });
    expect(fleet.master2!.out).toMatch(new RegExp(`job ${jid}: ${id} came back without the job`));
    b.ws.close();
  });
});
