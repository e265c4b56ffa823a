/**
 * A pillar that does not render for one agent fails that agent's part of the job (with the
 * file and line), is stored as failed, and does not stop the others.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Fleet } from './fleet-harness.js';

describe('fleet: a pillar error for one agent', () => {
  let fleet: Fleet;
  beforeAll(async () => {
    buildOnce();
    fleet = new Fleet({
      states: { 'top.sls': "base:\n  '*':\n    - ok\n", 'ok.sls': 'fine:\n  test.succeed_without_changes: []\n' },
      pillar: { 'top.sls': "base:\n  'p2':\n    - bad\n", 'bad.sls': 'key: {{ nope.missing }}\n' },
    });
    await fleet.startMaster();
    fleet.startAgent('p1');
    fleet.startAgent('p2');
    await fleet.acceptAll(['p1', 'p2']);
  });
  afterAll(async () => {
    await fleet?.stop();
  });

  it('fails that agent with the reason, stores it as failed, the other agent runs', async () => {
    const r = await fleet.cli(['apply', '*', '--json']);
    expect(r.code).toBe(2);
    const out = JSON.parse(r.stdout) as { jid: string; agents: Record<string, { status: string; body?: { kind: string; error?: string } }> };
    expect(out.agents.p1!.status).toBe('done');
    expect(out.agents.p2!.status).toBe('failed');
    expect(out.agents.p2!.body?.error).toMatch(/^pillar: .*bad\.sls/s);
    const job = await fleet.json<{ agents: { agent_id: string; status: string }[] }>(['jobs', out.jid]);
    expect(Object.fromEntries(job.agents.map((m) => [m.agent_id, m.status]))).toEqual({ p1: 'done', p2: 'failed' });
  });
});
