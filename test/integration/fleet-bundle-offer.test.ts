/**
 * What the master serves an agent is the bundle of the job that agent is running now, nothing
 * it was offered before. The master used to keep every bundle it ever offered, per agent, for
 * its whole life (each revision's tree for every agent sent it: memory growing with every push,
 * found by bench/soak.mjs --push-every); an agent could fetch any of them during a later job.
 * A hand-driven agent on a real master, the tree in git.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Fleet, RawAgent, waitFor } from './fleet-harness.js';

const states = { 'top.sls': "base:\n  '*':\n    - common\n", 'common.sls': 'v1:\n  test.succeed_without_changes: []\n' };

describe('fleet: bundles are offered per job', () => {
  let fleet: Fleet;
  let agent: RawAgent;
  beforeAll(async () => {
    buildOnce();
    fleet = new Fleet({ states });
    await fleet.startMaster();
    const pending = await RawAgent.connect(fleet, 'r1');
    await pending.waitMsg('key_status');
    pending.hello();
    await fleet.cli(['keys', 'accept', 'r1']);
    await pending.closed; // accepted while connected: asked to reconnect
    agent = await RawAgent.connect(fleet, 'r1');
    agent.hello();
    await fleet.waitConnected(['r1']);
  });
  afterAll(async () => {
    await fleet?.stop();
  });

  const jobFor = async (n: number) => {
    const run = fleet.cli(['apply', 'r1', '--timeout', '2', '--json']);
    const job = await waitNth(agent, 'job', n);
    return { run, jid: job.jid as string, bundle: (job.spec as { bundle: string }).bundle };
  };

  it("a later job's agent cannot fetch an earlier job's bundle; a finished job's bundle is gone", async () => {
    const first = await jobFor(1);
    agent.send({ type: 'bundle_get', jid: first.jid, hash: first.bundle });
    expect((await waitNth(agent, 'bundle', 1)).hash).toBe(first.bundle);
    await first.run; // no return: the job ends at its timeout

    fleet.writeTree('states', { 'common.sls': 'v2:\n  test.succeed_without_changes: []\n' });
    fleet.commit('v2');
    const second = await jobFor(2);
    expect(second.bundle).not.toBe(first.bundle);
    // the old revision's bundle, asked for under the running job: not this job's, denied
    agent.send({ type: 'bundle_get', jid: second.jid, hash: first.bundle });
    expect(String((await waitNth(agent, 'denied', 1)).message)).toMatch(/not offered to you/);
    // the finished job's own bundle: denied too
    agent.send({ type: 'bundle_get', jid: first.jid, hash: first.bundle });
    await waitNth(agent, 'denied', 2);
    // this job's bundle is served
    agent.send({ type: 'bundle_get', jid: second.jid, hash: second.bundle });
    expect((await waitNth(agent, 'bundle', 2)).hash).toBe(second.bundle);
    await second.run;
  });
});

/** The n-th message of a type the raw agent received (1-based). */
function waitNth(agent: RawAgent, type: string, n: number): Promise<Record<string, unknown>> {
  return waitFor(`message ${type} #${n}`, () => agent.messages.filter((m) => m.type === type)[n - 1]);
}
