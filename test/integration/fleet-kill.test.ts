/**
 * `tsalt jobs kill JID`: a running state run stops (its program and that program's children
 * are terminated), the states it never reached say so, agents still queued in a batch are
 * cancelled, and the agents stay up for the next job.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Fleet, waitFor } from './fleet-harness.js';

// a grandchild of the state's shell: only a process-group kill reaches it
const SLEEP = 'sleep 47.25';
const states = {
  'slow.sls': [
    'first:',
    '  test.succeed_with_changes: []',
    'sleepy:',
    '  cmd.run:',
    `    - name: "${SLEEP}; echo finished"`,
    'later:',
    '  test.succeed_without_changes: []',
  ].join('\n') + '\n',
  'quick.sls': 'quick:\n  test.succeed_without_changes: []\n',
};

interface ApplyJson {
  jid: string;
  code: number;
  agents: Record<string, { status: string; error?: string; body?: { report?: { results: { id: string; result: boolean | null; comment: string }[] } } }>;
}

const sleeping = () => spawnSync('pgrep', ['-f', SLEEP]).status === 0;

describe('fleet: killing a job', () => {
  let fleet: Fleet;
  beforeAll(async () => {
    buildOnce();
    fleet = new Fleet({ states });
    await fleet.startMaster();
    fleet.startAgent('k1');
    fleet.startAgent('k2');
    await fleet.acceptAll(['k1', 'k2']);
  });
  afterAll(async () => {
    spawnSync('pkill', ['-f', SLEEP]);
    await fleet?.stop();
  });

  const runningJid = () =>
    waitFor('the job to be running', async () => {
      const jobs = await fleet.json<{ jid: string; counts: Record<string, number> }[]>(['jobs', '--json']);
      return sleeping() && jobs[0] && (jobs[0].counts.running ?? 0) > 0 ? jobs[0].jid : undefined;
    });

  it('stops the running program and its children; later states report they were not run', async () => {
    const applying = fleet.cli(['apply', 'k1', 'slow', '--json'], 120_000);
    const jid = await runningJid();
    const t0 = Date.now();
    const k = await fleet.cli(['jobs', 'kill', jid]);
    expect(k.code, k.stderr).toBe(0);
    expect(k.stdout).toContain('told 1 running agent(s) to stop (k1)');
    const r = await applying;
    expect(Date.now() - t0).toBeLessThan(30_000); // well before the 47 s sleep would end
    expect(r.code).toBe(2);
    const out = JSON.parse(r.stdout) as ApplyJson;
    const results = Object.fromEntries(out.agents.k1!.body!.report!.results.map((x) => [x.id, x]));
    expect(results.first!.result).toBe(true);
    expect(results.sleepy!.result).toBe(false);
    expect(results.later).toMatchObject({ result: false, comment: 'Not run: the run was stopped before this state (tsalt jobs kill, or an interrupt)' });
    await waitFor('the sleep to be gone', () => (sleeping() ? undefined : true), 10_000);
  });

  it('cancels agents still queued in a batch', async () => {
    const applying = fleet.cli(['apply', 'k*', 'slow', '--batch', '1', '--json'], 120_000);
    const jid = await runningJid();
    const k = await fleet.cli(['jobs', 'kill', jid, '--json']);
    expect(k.code, k.stderr).toBe(0);
    const killed = JSON.parse(k.stdout) as { signalled: string[]; cancelled: string[] };
    expect(killed.signalled).toHaveLength(1);
    expect(killed.cancelled).toHaveLength(1);
    const out = JSON.parse((await applying).stdout) as ApplyJson;
    const queued = out.agents[killed.cancelled[0]!]!;
    expect(queued.status).toBe('cancelled');
    expect(queued.error).toMatch(/not started: the job was killed by .*@cli/);
  });

  it('refuses to kill a job that has finished; the agents take the next job', async () => {
    const done = await fleet.cli(['apply', 'k*', 'quick', '--json']);
    expect(done.code).toBe(0);
    const jid = (JSON.parse(done.stdout) as ApplyJson).jid;
    const k = await fleet.cli(['jobs', 'kill', jid]);
    expect(k.code).toBe(1);
    expect(k.stderr).toMatch(/is not running \(it has finished\)/);
    const bad = await fleet.cli(['jobs', 'kill', 'nope']);
    expect(bad.code).toBe(1);
  });
});
