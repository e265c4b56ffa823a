/**
 * Things going wrong mid-job: an agent killed (job lost, master fine), an agent frozen
 * (heartbeats notice), the master restarted (agents reconnect, results delivered), the master
 * and the agent both restarted (the spooled return is delivered).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Fleet, waitFor } from './fleet-harness.js';

const MARKS = fs.mkdtempSync(path.join(os.tmpdir(), 'tsalt-resilience-'));

const states = {
  'top.sls': "base:\n  '*':\n    - quick\n",
  'quick.sls': 'quick:\n  test.succeed_with_changes: []\n',
  // each agent leaves a mark as its slow state starts: the masters are killed mid-state, not
  // while an agent still fetches the tree (which fails the job, as it should)
  'slow.sls': `before:\n  test.succeed_with_changes: []\nsleepy:\n  cmd.run:\n    - name: touch ${path.join(MARKS, "sleepy-{{ grains['id'] }}")} && sleep 4\nafter:\n  test.succeed_with_changes: []\n`,
};

interface JobDetail {
  agents: { agent_id: string; status: string; error: string | null; body: { kind: string; stdout?: string } | null; results: { id: string; result: boolean }[] }[];
}

describe('fleet: resilience', () => {
  let fleet: Fleet;
  beforeAll(async () => {
    buildOnce();
    fleet = new Fleet({ states });
    await fleet.startMaster();
    fleet.startAgent('r1');
    fleet.startAgent('r2');
    await fleet.acceptAll(['r1', 'r2']);
  });
  afterAll(async () => {
    await fleet?.stop();
    fs.rmSync(MARKS, { recursive: true, force: true });
  });

  const job = (jid: string) => fleet.json<JobDetail>(['jobs', jid]);

  it('an agent killed mid-job: its part is marked lost, the others finish, the master is fine', async () => {
    const r1 = fleet.agents[0]!;
    const pending = fleet.cli(['run', 'r*', 'sleep 2; echo finished']);
    await r1.waitOutput(/job \d{20}: run command/);
    await r1.kill('SIGKILL');
    const r = await pending;
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/r1:\n\s+LOST: agent disconnected mid-job/);
    expect(r.stdout).toMatch(/r2:\n\s+finished/);
    expect(r.stdout).toMatch(/lost:\s+r1/);
    const jid = /Job (\d{20})/.exec(r.stdout)![1]!;
    const d = await job(jid);
    expect(d.agents.map((m) => [m.agent_id, m.status])).toEqual([
      ['r1', 'lost'],
      ['r2', 'done'],
    ]);
    expect(fleet.master!.running).toBe(true);
    // a known agent that is offline is listed, not silently skipped
    const off = await fleet.cli(['run', '*', 'true']);
    expect(off.code).toBe(3);
    expect(off.stdout).toMatch(/offline:\s+r1 \(last seen \d{4}-/);
    fleet.agents[0] = fleet.startAgents([fleet.agentConfig('r1')]);
    await fleet.waitConnected(['r1']);
  });

  it('a frozen agent misses heartbeats and its job is marked lost', async () => {
    const r2 = fleet.agents[1]!;
    const from = r2.out.length;
    const pending = fleet.cli(['run', 'r2', 'sleep 1; echo hi']);
    await r2.waitOutput(/job \d{20}: run command/, 20_000, from);
    r2.child.kill('SIGSTOP');
    try {
      const r = await pending;
      expect(r.code).toBe(3);
      expect(r.stdout).toMatch(/r2:\n\s+LOST/);
      await fleet.agentSide.proc!.waitOutput(/agent r2: no heartbeat answer/); // the master holding r2's connection
    } finally {
      r2.child.kill('SIGCONT');
    }
    await fleet.waitConnected(['r2'], 30_000);
  });

  it('the master restarted mid-job: agents reconnect and every result arrives', async () => {
    const r1 = fleet.agents[0]!;
    const from = r1.out.length;
    const pending = fleet.cli(['apply', 'r*', 'slow']);
    const jid = (await r1.waitOutput(/job (\d{20}): apply slow/, 20_000, from))[1]!;
    await waitFor('both agents in their slow state', () => (['r1', 'r2'].every((id) => fs.existsSync(path.join(MARKS, `sleepy-${id}`))) ? true : undefined));
    await fleet.killMasters('SIGKILL'); // every master: the agents have none to fail over to
    const cli = await pending;
    expect(cli.code).not.toBe(0);
    expect(cli.stderr).toMatch(/master closed the connection/);
    await fleet.startMaster();
    await waitFor(
      'both returns stored',
      async () => {
        const d = await job(jid);
        return d.agents.every((m) => m.status === 'done') ? d : undefined;
      },
      40_000,
    ).then((d) => {
      for (const m of d.agents) expect(m.results.map((x) => [x.id, x.result])).toEqual([
        ['before', true],
        ['sleepy', true],
        ['after', true],
      ]);
    });
  });

  it('master and agent both restarted: the return spooled on the agent is delivered', async () => {
    const r2 = fleet.agents[1]!;
    const from = r2.out.length;
    const pending = fleet.cli(['run', 'r2', 'sleep 2; echo survived']);
    const jid = (await r2.waitOutput(/job (\d{20}): run command/, 20_000, from))[1]!;
    await fleet.killMasters('SIGKILL'); // every master: the agents have none to fail over to
    await pending;
    await r2.waitOutput(new RegExp(`job ${jid}: finished \\(master unreachable; spooled\\)`));
    await r2.kill('SIGKILL');
    await fleet.startMaster();
    fleet.agents[1] = fleet.startAgents([fleet.agentConfig('r2')]);
    await fleet.agents[1].waitOutput(new RegExp(`delivering spooled return of job ${jid}`));
    const d = await waitFor('return stored', async () => {
      const x = await job(jid);
      return x.agents[0]!.status === 'done' ? x : undefined;
    });
    expect(d.agents[0]!.body!.stdout).toBe('survived\n');
  });

  it('an agent restarted while its job ran (no spool, not running) is marked lost at once', async () => {
    const r1 = fleet.agents[0]!;
    // the master was restarted by the test before: r1 must be back before it can get a job
    await fleet.waitConnected(['r1'], 30_000);
    const from = r1.out.length;
    const pending = fleet.cli(['run', 'r1', 'sleep 3']);
    await r1.waitOutput(/job \d{20}: run command/, 20_000, from);
    await r1.kill('SIGKILL');
    fleet.agents[0] = fleet.startAgents([fleet.agentConfig('r1')]);
    const r = await pending;
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/LOST: agent came back without the job/);
  });
});
