/**
 * A converge the store fails (on either store): the first revision pushed to a fleet with
 * `rollout:` is marked rolling_out and finished by a converge of the connected agents (no push
 * rollout). When that converge throws (the test's trigger refuses the rollout's batch plan, after
 * its row is created), the revision is failed with the reason, not left rolling out; its rollout
 * row is closed as failed; the masters stay up. The store back, an agent that reconnects is
 * converged and the next push rolls out.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, waitFor } from './fleet-harness.js';
import { ReleaseFleet } from './release-harness.js';

interface RevisionLine {
  sha: string;
  outcome: string;
  desired: boolean;
  detail: string | null;
}
interface Status {
  desired: string;
  last_rollout: { revision: string; status: string; reason: string } | null;
  agents: { id: string; revision_applied: string | null; sync: string }[];
}

const files = (tag: string) => ({
  'states/top.sls': "base:\n  '*':\n    - app\n",
  'states/app.sls': `/etc/app.conf:\n  file.managed:\n    - makedirs: True\n    - contents: "release=${tag} {{ pillar['tag'] }}"\n`,
  'pillar/top.sls': "base:\n  '*':\n    - tag\n",
  'pillar/tag.sls': `tag: ${tag}\n`,
});

describe('fleet: a converge the store fails', () => {
  let fleet: ReleaseFleet;
  let pg = false;
  const revisions = () => fleet.json<RevisionLine[]>(['revisions']);
  const status = () => fleet.json<Status>(['status']);
  const rolloutsOf = async (sha: string) =>
    (await fleet.storeQuery('SELECT id, revision, reason, status, message FROM rollouts ORDER BY id')).filter((r) => r.revision === sha) as {
      id: number;
      reason: string;
      status: string;
      message: string | null;
    }[];
  const inSync = (rev: string) =>
    waitFor(`every agent in sync on ${rev.slice(0, 12)}`, async () => {
      const s = await status();
      return s.desired === rev && s.agents.length === 2 && s.agents.every((a) => a.sync === 'in_sync' && a.revision_applied === rev) ? s : undefined;
    }, 40_000);
  // the store refuses the rollout's batch plan (after its row is created): the test's own trigger on either store, as fleet-release's
  const refuseBatches = () =>
    fleet.storeExec(
      pg
        ? `CREATE FUNCTION test_refuse_batches() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'batches refused by the test'; END $$;
           CREATE TRIGGER test_refuse_batches BEFORE INSERT ON rollout_batches FOR EACH ROW EXECUTE FUNCTION test_refuse_batches();`
        : "CREATE TRIGGER test_refuse_batches BEFORE INSERT ON rollout_batches BEGIN SELECT RAISE(ABORT, 'batches refused by the test'); END;",
    );
  const allowBatches = () => fleet.storeExec(pg ? 'DROP TRIGGER test_refuse_batches ON rollout_batches; DROP FUNCTION test_refuse_batches();' : 'DROP TRIGGER test_refuse_batches;');

  beforeAll(async () => {
    buildOnce();
    // the master started on the empty repository, the agents connected, then the first push
    fleet = new ReleaseFleet({ files: {}, master: { rollout: { target: 'k*', batch: 1 } } });
    await fleet.startMaster();
    await fleet.master!.waitOutput(/config\.git has no commits yet: push branch main to it/);
    pg = /^postgres/.test(String(fleet.masterCfg.store ?? ''));
    fleet.startAgents([fleet.agentConfig('k1'), fleet.agentConfig('k2')]);
    await fleet.acceptAll(['k1', 'k2']);
  });
  afterAll(async () => {
    if (process.env.TSALT_DEBUG) console.log(fleet?.mastersOut, fleet?.agents.map((a) => a.out).join('\n'));
    await fleet?.stop();
  });

  it('the first revision, whose converge the store fails, is failed with the reason, not left rolling out; the fleet recovers once the store is back', async () => {
    await refuseBatches();
    const v1 = fleet.push('v1', files('v1'));
    // the first revision is made desired and rolling_out; the converge of the connected agents creates its rollout row, then the batch plan is refused
    const rows = await waitFor('the converge rollout closed', async () => {
      const r = await rolloutsOf(v1);
      return r.length && r.every((x) => x.status !== 'running') ? r : undefined;
    }, 30_000);
    for (const r of rows) {
      expect(r).toMatchObject({ reason: 'converge', status: 'failed' });
      expect(r.message).toMatch(/^the rollout did not finish: .*batches refused by the test/);
    }
    // the revision is failed with the reason (the converge's failure is the revision's), not rolling out
    const failed = await waitFor(
      'the first revision no longer rolling out',
      async () => (await revisions()).find((r) => r.sha === v1 && r.outcome !== 'rolling_out' && r.outcome !== 'seen'),
      10_000,
    ).catch(async (e: Error) => {
      throw new Error(`${e.message}: ${JSON.stringify((await revisions()).find((r) => r.sha === v1))}`);
    });
    expect(failed).toMatchObject({ outcome: 'failed', desired: true });
    expect(failed.detail).toMatch(/^the rollout did not finish: .*batches refused by the test/);
    const listed = await fleet.cli(['revisions']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain(`${v1.slice(0, 12)}: the rollout did not finish: `);
    const s = await status();
    expect(s.last_rollout).toMatchObject({ revision: v1, status: 'failed', reason: 'converge' });
    // nothing was applied; the masters run
    expect(s.agents.map((a) => [a.id, a.revision_applied, a.sync]).sort()).toEqual([
      ['k1', null, 'behind'],
      ['k2', null, 'behind'],
    ]);
    expect(fleet.agentFile('k1', 'etc/app.conf')).toBeUndefined();
    expect(fleet.master!.running).toBe(true);
    if (fleet.master2) expect(fleet.master2.running).toBe(true);
    expect(fleet.mastersOut).toMatch(/rollout [0-9a-f]{12}: converging 2 agent\(s\): .*batches refused by the test; they are converged when they next connect/);

    // the store is back: agents that reconnect are converged to the desired revision
    await allowBatches();
    const [agents] = fleet.agents;
    await agents!.kill('SIGKILL');
    fleet.startAgents([fleet.agentConfig('k1'), fleet.agentConfig('k2')]);
    await inSync(v1);
    expect(fleet.agentFile('k1', 'etc/app.conf')?.trim()).toBe('release=v1 v1');
    expect(fleet.agentFile('k2', 'etc/app.conf')?.trim()).toBe('release=v1 v1');
    const after = await rolloutsOf(v1);
    expect(after.at(-1)).toMatchObject({ reason: 'converge', status: 'succeeded' });
    // (a converge records an outcome only for a revision rolling out: v1 keeps its failed outcome and reason, desired and applied by both)
    expect((await revisions()).find((r) => r.sha === v1)).toMatchObject({ desired: true, agents_applied: 2 });

    // and the next push rolls out as any
    const v2 = fleet.push('v2', files('v2'));
    await inSync(v2);
    expect(fleet.agentFile('k1', 'etc/app.conf')?.trim()).toBe('release=v2 v2');
    expect(fleet.agentFile('k2', 'etc/app.conf')?.trim()).toBe('release=v2 v2');
    expect((await revisions()).find((r) => r.sha === v2)).toMatchObject({ outcome: 'rolled_out', desired: true });
    expect((await status()).last_rollout).toMatchObject({ revision: v2, status: 'succeeded', reason: 'push' });
    expect(fleet.master!.running).toBe(true);
    if (fleet.master2) expect(fleet.master2.running).toBe(true);
  });
});
