/**
 * Two masters, one PostgreSQL store, releases on: what an operator sees and starts must be the
 * fleet's, whichever master is asked.
 *
 * m1 and m2 serve one state tree (a git work tree, rollout: configured) from one store; a
 * hand-driven agent (raw1) is connected to m2 only, and the operator works on either socket:
 * - m1's console lists raw1 as connected (its session in the store), not offline;
 * - a rollout from m1 meeting raw1 busy with a state run neither master knows of: m2, which
 *   sees the refusal, sends the job again when raw1 is free, as one master does; not failed;
 * - `tsalt rollout` / `tsalt rollback` on m2 while m1's rollout runs are refused, naming m1
 *   (the `rollout` lease), before anything changes; once it ended, m2's go ahead.
 */
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Fleet, newPgDatabase, RawAgent, TEST_STORE, waitFor } from './fleet-harness.js';
import { ConsoleClient, TOKEN } from '../console/console-harness.js';

const site = (tag: string) => ({ 'site.sls': `site:\n  test.succeed_without_changes:\n    - name: ${tag}\n` });
const states = { 'top.sls': "base:\n  '*':\n    - site\n", ...site('v1') };

interface Status {
  desired: string;
  last_rollout: { revision: string; reason: string; status: string } | null;
  agents: { id: string; connected: boolean; revision_applied: string | null; sync: string }[];
}

/** How the hand-driven agent answers the jobs it is sent. */
type Mode = 'answer' | 'busy-once' | 'hold';

/** raw1: a websocket agent that answers each job as `mode` says (an empty, successful state run). */
class ScriptedAgent {
  mode: Mode = 'answer';
  readonly jobs: string[] = [];
  private held: string[] = [];
  constructor(readonly raw: RawAgent) {
    raw.ws.on('message', (d) => {
      const m = JSON.parse(d.toString()) as { type: string; jid?: string; spec?: { revision?: string } };
      if (m.type !== 'job' || !m.jid) return;
      this.jobs.push(m.jid);
      if (this.mode === 'busy-once') {
        this.mode = 'answer';
        // what a real agent says while a run the masters did not start (a `tsalt local apply`, a race) goes on
        raw.send({ type: 'job_refused', jid: m.jid, message: 'a state run is already in progress on raw1 (job 20261206000000000000); one at a time' });
        return;
      }
      raw.send({ type: 'job_ack', jid: m.jid });
      if (this.mode === 'hold') this.held.push(m.jid);
      else this.answer(m.jid);
    });
  }
  private answer(jid: string): void {
    const report = { id: 'raw1', test: false, results: [], counts: { total: 0, succeeded: 0, changed: 0, failed: 0 }, duration_ms: 1 };
    this.raw.send({ type: 'job_return', jid, body: { kind: 'apply', report } });
  }
  /** Answer the held jobs; answer the next ones at once. */
  release(): void {
    this.mode = 'answer';
    for (const jid of this.held.splice(0)) this.answer(jid);
  }
}

// on PostgreSQL in every project: the fleet-pg rerun would run the same test again
describe.skipIf(TEST_STORE === 'postgres')('fleet: two masters on one PostgreSQL, releases and console', () => {
  let m1: Fleet;
  let m2: Fleet;
  let agent: ScriptedAgent;
  const console1 = new ConsoleClient();
  const status = () => m1.json<Status>(['status']);
  const inSync = (rev: string) =>
    waitFor(`raw1 on ${rev.slice(0, 12)}`, async () => {
      const s = await status();
      return s.desired === rev && s.last_rollout?.status !== 'running' && s.agents.every((a) => a.revision_applied === rev && a.sync === 'in_sync') ? s : undefined;
    }, 40_000);

  beforeAll(async () => {
    buildOnce();
    const store = await newPgDatabase();
    const shared = { store, master_heartbeat_s: 1, rollout: { target: '*', batch: 1 }, timeout_s: 60 };
    m1 = new Fleet({ states, master: { ...shared, master_id: 'm1', console: { interface: '127.0.0.1', port: 0, token: TOKEN } } });
    await console1.attach(await m1.startMaster());
    // m2 serves m1's work tree: one git repository, the same revisions
    m2 = new Fleet({ states: {}, git: false, master: { ...shared, master_id: 'm2', state_tree: path.join(m1.dir, 'states'), pillar_tree: path.join(m1.dir, 'pillar') } });
    await m2.startMaster();
    const keys = path.join(m1.dir, 'raw');
    const raw = await RawAgent.admitted(m1, keys, m2.port, 'raw1');
    agent = new ScriptedAgent(raw);
    raw.hello({ roles: ['raw'] });
    // connected to m2, it converges to the first desired revision (m2 sends it the job)
    await inSync(m1.gitRev('HEAD'));
  }, 120_000);

  // a failure here is a timing one: both masters' logs say which connection or session went
  afterEach(({ task }) => {
    if (task.result?.state !== 'fail') return;
    for (const [name, m] of [['m1', m1], ['m2', m2]] as const) console.error(`--- ${name}'s log (last 6 KB)\n${m?.master?.out.slice(-6000) ?? ''}`);
  });

  afterAll(async () => {
    agent?.raw.ws.close();
    await m2?.stop();
    await m1?.stop();
  });

  it("m1's console lists the agent connected to m2 as connected", async () => {
    const page = await console1.text('/agents');
    const row = /<tr data-agent="raw1">[\s\S]*?<\/tr>/.exec(page)?.[0];
    expect(row).toContain('connected');
    expect(row).not.toContain('offline');
    const one = await console1.text('/agents/raw1');
    expect(one).toMatch(/<th>Connection<\/th><td><span class="badge up">connected<\/span>/);
  });

  it('a rollout meeting the agent busy on the other master: that master sends the job again when it is free', async () => {
    agent.mode = 'busy-once';
    const before = agent.jobs.length;
    m1.writeTree('states', site('v2'));
    const v2 = m1.commit('v2');
    const s = await inSync(v2);
    expect(s.last_rollout).toMatchObject({ revision: v2, status: 'succeeded' });
    // one job, sent twice: refused while busy, then run
    const sent = agent.jobs.slice(before);
    expect(sent).toHaveLength(2);
    expect(sent[1]).toBe(sent[0]);
    expect(m2.master!.out).toMatch(new RegExp(`job ${sent[0]}: raw1 is busy \\(a state run is already in progress on raw1 .*\\); sent again when it is free`));
  });

  it('tsalt rollout and rollback on m2 while m1 rolls out are refused, naming m1; afterwards they run', async () => {
    agent.mode = 'hold';
    const v2 = m1.gitRev('HEAD');
    const before = agent.jobs.length;
    m1.writeTree('states', site('v3'));
    const v3 = m1.commit('v3');
    // m1 (holding the releases lease) rolls v3 out; raw1 holds the job
    await waitFor('the v3 job at raw1', () => (agent.jobs.length > before ? true : undefined), 30_000);
    for (const args of [['rollout'], ['rollback', v2]]) {
      const r = await m2.cli(args);
      expect([r.code, r.stderr]).toEqual([1, expect.stringMatching(/a rollout is in progress on master m1 \(it holds the rollout lease\)/)]);
    }
    // refused before anything changed: v3 is still desired; m2's status shows m1's rollout running
    expect((await status()).desired).toBe(v3);
    expect((await m2.json<Status & { rollout: { revision: string } | null }>(['status'])).rollout).toMatchObject({ revision: v3 });
    agent.release();
    await inSync(v3);
    // m1 gives the lease up once its rollout ended: an operator on m2 rolls back
    await waitFor('the rollout lease free', async () => ((await m1.storeQuery("SELECT holder FROM leases WHERE name = 'rollout'")).length ? undefined : true));
    const back = await m2.cli(['rollback', v2]);
    expect(back.code, back.stderr + back.stdout).toBe(0);
    await inSync(v2);
    expect(m2.master!.out).toMatch(/lease rollout: taken by this master \(m2\)/);
  });
});
