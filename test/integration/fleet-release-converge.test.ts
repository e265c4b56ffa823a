/**
 * Convergence to the desired revision, with real pushes to a bare repository: a rollout that
 * meets a running state run waits for it (issue 8, failure 4); two pushes in one second never
 * mix one commit's states with another's pillar; a push made while the master is down is
 * rolled out once the agents are back (failure 3); an agent that was offline gets it when it
 * connects.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, waitFor } from './fleet-harness.js';
import { ReleaseFleet } from './release-harness.js';

interface JobSummary {
  jid: string;
  target: string;
  started_by: string;
  revision: string;
}
interface JobDetail {
  agents: { agent_id: string; status: string; revision: string | null; error: string | null }[];
}
interface Status {
  desired: string;
  last_rollout?: { revision: string; reason: string; agents: string[] };
  agents: { id: string; connected: boolean; revision_applied: string | null; sync: string }[];
}

/** States and pillar carrying the same tag; a job that mixed two commits fails on purpose. */
const tree = (tag: string) => ({
  'states/top.sls': "base:\n  '*':\n    - site\n",
  'states/site.sls':
    `/etc/site:\n  file.managed:\n    - makedirs: True\n    - contents: "${tag} {{ pillar['tag'] }}"\n` +
    `{% if pillar['tag'] != '${tag}' %}\nmixed:\n  test.fail_without_changes:\n    - name: "states ${tag}, pillar {{ pillar['tag'] }}"\n{% endif %}\n`,
  'states/slow.sls': 'sleepy:\n  cmd.run:\n    - name: sleep 3\n',
  'pillar/top.sls': "base:\n  '*':\n    - tag\n",
  'pillar/tag.sls': `tag: ${tag}\n`,
});

describe('fleet: convergence to the desired revision', () => {
  let fleet: ReleaseFleet;
  const status = () => fleet.json<Status>(['status']);
  const jobs = async () => (await fleet.json<JobSummary[]>(['jobs', '--limit', '500'])).reverse();
  const allOn = (rev: string, ms = 60_000) =>
    waitFor(`both agents on ${rev.slice(0, 12)}`, async () => {
      const s = await status();
      return s.desired === rev && s.agents.length === 2 && s.agents.every((a) => a.revision_applied === rev && a.sync === 'in_sync') ? s : undefined;
    }, ms);
  const detail = (jid: string) => fleet.json<JobDetail>(['jobs', jid]);

  beforeAll(async () => {
    buildOnce();
    // as docs/fleet.md: `git init --bare`, the master started on the empty repository, then the first push
    fleet = new ReleaseFleet({ files: {}, master: { rollout: { target: 'c*', batch: 1 }, lost_after_s: 8 } });
    await fleet.startMaster();
    await fleet.master!.waitOutput(/config\.git has no commits yet: push branch main to it/);
    fleet.startAgents([fleet.agentConfig('c1'), fleet.agentConfig('c2')]);
    await fleet.acceptAll(['c1', 'c2']);
    const empty = await fleet.cli(['apply', '*']);
    expect(empty.stderr).toMatch(/branch main does not exist in .*config\.git: push it first/);
    await allOn(fleet.push('a', tree('a')));
  });
  afterAll(async () => {
    if (process.env.TSALT_DEBUG) console.log(fleet?.master?.out);
    await fleet?.stop();
  });

  it('a rollout that meets a running state run waits for it, then runs: nothing dropped', async () => {
    // an operator's slow run on c1 (and c2) is going on when the push arrives
    const slow = fleet.cli(['apply', 'c*', 'slow']);
    await waitFor('the slow run running', async () => {
      const j = (await jobs()).find((x) => x.started_by.endsWith('@cli'));
      return j && (await detail(j.jid)).agents.some((a) => a.status === 'running') ? j : undefined;
    });
    const b = fleet.push('b', tree('b'));
    await allOn(b);
    expect((await slow).code).toBe(0);
    const rollout = (await jobs()).filter((j) => j.revision === b && j.started_by === 'rollout');
    expect(rollout.length).toBe(2);
    for (const j of rollout) for (const a of (await detail(j.jid)).agents) expect([a.agent_id, a.status, a.error]).toEqual([a.agent_id, 'done', null]);
    // logged by the master that ran the rollout (with two, the one holding the push's lease)
    expect(fleet.mastersOut).toMatch(/is busy with another state run; waiting for it/);
  });

  it('two pushes in one second: every job has one commit\'s states and the same commit\'s pillar', async () => {
    const before = (await jobs()).length;
    const c = fleet.push('c', tree('c'));
    const d = fleet.push('d', tree('d'));
    expect(c).not.toBe(d);
    await allOn(d);
    const after = (await jobs()).slice(before).filter((j) => j.started_by === 'rollout');
    expect(after.length).toBeGreaterThan(0);
    for (const j of after) {
      for (const a of (await detail(j.jid)).agents) expect([j.revision.slice(0, 12), a.agent_id, a.status]).toEqual([j.revision.slice(0, 12), a.agent_id, 'done']);
    }
    expect(fleet.agentFileText('c1')).toBe('d d');
    expect(fleet.agentFileText('c2')).toBe('d d');
  });

  it('a push made while the master is down is rolled out once the agents are back', async () => {
    await fleet.master!.kill('SIGTERM');
    const e = fleet.push('e: pushed while the master is down', tree('e'));
    await fleet.startMaster();
    await allOn(e);
    const rollout = (await jobs()).filter((j) => j.revision === e && j.started_by === 'rollout');
    // the agents were waited for: nobody was skipped as offline
    for (const j of rollout) for (const a of (await detail(j.jid)).agents) expect(a.status).toBe('done');
    expect(fleet.mastersOut).not.toMatch(/offline when the job started/);
    // the push's own rollout waited for the agents and reached both (not a later catch-up)
    const last = (await fleet.json<{ last_rollout: { revision: string; reason: string; agents: string[] } }>(['status'])).last_rollout;
    expect([last.revision, last.reason, [...last.agents].sort()]).toEqual([e, 'push', ['c1', 'c2']]);
    expect(fleet.agentFileText('c1')).toBe('e e');
  });

  it('an agent offline during a rollout gets the revision when it connects', async () => {
    // c2 runs in its own process for this test
    const [both] = fleet.agents;
    await both!.kill('SIGKILL');
    const solo1 = fleet.startAgents([fleet.agentConfig('c1')]);
    await fleet.waitConnected(['c1']);
    const f = fleet.push('f', tree('f'));
    await waitFor('c1 on f', async () => ((await status()).agents.find((a) => a.id === 'c1')?.revision_applied === f) || undefined, 60_000);
    expect((await status()).agents.find((a) => a.id === 'c2')).toMatchObject({ connected: false, sync: 'behind' });
    fleet.startAgents([fleet.agentConfig('c2')]);
    await allOn(f);
    expect(fleet.agentFileText('c2')).toBe('f f');
    void solo1;
  });
});
