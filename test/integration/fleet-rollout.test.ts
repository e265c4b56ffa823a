/**
 * `git push` rolls out: a master with `rollout:` applies each new commit of its state tree,
 * batch by batch, and stops at the first failing agent; `--revision` rolls back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Fleet, waitFor } from './fleet-harness.js';

interface JobSummary {
  jid: string;
  started_by: string;
  revision: string;
  counts: Record<string, number>;
}
interface JobDetail {
  revision: string;
  agents: { agent_id: string; status: string; error: string | null; results: { id: string; result: boolean | null }[] }[];
}

const site = (id: string, fun = 'test.succeed_without_changes') => ({ 'site.sls': `${id}:\n  ${fun}: []\n` });

describe('fleet: automatic rollout of new revisions', () => {
  let fleet: Fleet;
  const rolloutJobs = async () => (await fleet.json<JobSummary[]>(['jobs'])).filter((j) => j.started_by === 'rollout');
  const finished = (jid: string) =>
    waitFor(`job ${jid} finished`, async () => {
      const d = await fleet.json<JobDetail>(['jobs', jid]);
      return d.agents.every((m) => !['queued', 'running'].includes(m.status)) ? d : undefined;
    }, 40_000);

  beforeAll(async () => {
    buildOnce();
    fleet = new Fleet({
      states: { 'top.sls': "base:\n  '*':\n    - site\n", ...site('v1') },
      master: { rollout: { target: 'o*', batch: '1', poll_s: 0.3, stop_on_failure: true } },
    });
    await fleet.startMaster();
    fleet.startAgents([fleet.agentConfig('o1'), fleet.agentConfig('o2')]);
    await fleet.acceptAll(['o1', 'o2']);
  });
  afterAll(async () => {
    await fleet?.stop();
  });

  it('a new master records HEAD without applying it', async () => {
    await new Promise((r) => setTimeout(r, 1000));
    expect(await rolloutJobs()).toEqual([]);
    await fleet.master!.waitOutput(/rollout: first start, revision [0-9a-f]{12} recorded/);
  });

  it('a new commit is applied to every targeted agent, one batch at a time', async () => {
    fleet.writeTree('states', site('v2'));
    const rev = fleet.commit('v2');
    const job = await waitFor('rollout job', async () => (await rolloutJobs()).find((j) => j.revision === rev));
    const d = await finished(job.jid);
    expect(d.agents.map((m) => [m.agent_id, m.status, m.results.map((x) => x.id)])).toEqual([
      ['o1', 'done', ['v2']],
      ['o2', 'done', ['v2']],
    ]);
  });

  it('a broken commit stops at the first failing batch; the rest is cancelled, not applied', async () => {
    fleet.writeTree('states', site('broken', 'test.fail_without_changes'));
    const rev = fleet.commit('broken');
    const job = await waitFor('rollout job', async () => (await rolloutJobs()).find((j) => j.revision === rev));
    const d = await finished(job.jid);
    const statuses = d.agents.map((m) => m.status).sort();
    expect(statuses).toEqual(['cancelled', 'failed']);
    expect(d.agents.find((m) => m.status === 'cancelled')!.error).toMatch(/stops on failure/);
    expect(d.agents.find((m) => m.status === 'cancelled')!.results).toEqual([]);
  });

  it('rolling back: apply an earlier revision to everyone', async () => {
    const r = await fleet.json<{ code: number; revision: string; agents: Record<string, { status: string; body?: { report?: { results: { id: string }[] } } }> }>([
      'apply',
      'o*',
      '--revision',
      'HEAD~1',
    ]);
    expect(r.code).toBe(0);
    expect(Object.values(r.agents).map((a) => a.body!.report!.results.map((x) => x.id))).toEqual([['v2'], ['v2']]);
    // the rollout does not fight the rollback: HEAD did not move, so no new rollout job
    await new Promise((res) => setTimeout(res, 1000));
    expect((await rolloutJobs()).length).toBe(2);
  });
});
