/**
 * 50 agents (five processes of ten) on loopback: `tsalt apply '*'` reaches every one and the
 * wall time is printed (a figure for the closing note, not an assertion on speed).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Fleet } from './fleet-harness.js';

const N = 50;
const PER_PROCESS = 10;
const states = {
  'top.sls': "base:\n  '*':\n    - common\n  'roles:web':\n    - match: grain\n    - web\n",
  'common.sls': "motd_{{ grains['id'] }}:\n  test.succeed_with_changes: []\nsecret_{{ pillar['n'] }}:\n  test.succeed_without_changes: []\n",
  'web.sls': 'web:\n  test.succeed_without_changes: []\n',
};
const pillar = {
  'top.sls': "base:\n  '*':\n    - common\n",
  'common.sls': "n: {{ grains['id'] }}\n",
};

describe('fleet: 50 agents', () => {
  let fleet: Fleet;
  const ids = Array.from({ length: N }, (_, i) => `node${String(i).padStart(2, '0')}`);
  beforeAll(async () => {
    buildOnce();
    fleet = new Fleet({ states, pillar, master: { auto_accept: true } });
    await fleet.startMaster();
    for (let p = 0; p < N / PER_PROCESS; p++) {
      const slice = ids.slice(p * PER_PROCESS, (p + 1) * PER_PROCESS);
      fleet.startAgents(slice.map((id, i) => fleet.agentConfig(id, { grains: { roles: i % 2 ? ['web'] : ['db'] } })));
    }
    await fleet.waitConnected(ids, 120_000);
  });
  afterAll(async () => {
    await fleet?.stop();
  });

  it("tsalt apply '*' on 50 agents", async () => {
    for (const round of ['first', 'second']) {
      const t0 = performance.now();
      const r = await fleet.cli(['apply', '*', '--json'], 120_000);
      const ms = performance.now() - t0;
      const out = JSON.parse(r.stdout) as { code: number; agents: Record<string, { status: string; body: { report: { results: { id: string }[] } } }> };
      expect(r.code).toBe(0);
      expect(Object.keys(out.agents).sort()).toEqual(ids);
      for (const [id, a] of Object.entries(out.agents)) {
        expect(a.status).toBe('done');
        // each agent rendered with its own pillar
        expect(a.body.report.results.map((x) => x.id)).toContain(`secret_${id}`);
      }
      process.stdout.write(`\n[fleet-scale] ${round} tsalt apply '*' on ${N} agents: ${(ms / 1000).toFixed(2)} s wall (CLI process start to exit)\n`);
    }
    const t0 = performance.now();
    const r = await fleet.cli(['run', '*', 'true', '--json'], 120_000);
    expect(r.code).toBe(0);
    process.stdout.write(`[fleet-scale] tsalt run '*' true on ${N} agents: ${((performance.now() - t0) / 1000).toFixed(2)} s wall\n`);
  });
});
