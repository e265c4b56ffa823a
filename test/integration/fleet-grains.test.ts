/**
 * Grains follow the grains file without an agent restart: an edit reaches the master (for
 * `-G` targeting and `tsalt agents`), the next state run sees it, and a file that no longer
 * parses keeps the previous grains instead of taking the agent down.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Fleet, waitFor } from './fleet-harness.js';

const states = {
  'top.sls': "base:\n  'roles:web':\n    - match: grain\n    - web\n",
  'web.sls': "web_{{ grains['roles'] | join('_') }}:\n  test.succeed_without_changes: []\n",
};

interface AgentRow {
  id: string;
  roles: unknown;
}

describe('fleet: grains file edits', () => {
  let fleet: Fleet;
  let grainsFile: string;
  beforeAll(async () => {
    buildOnce();
    fleet = new Fleet({ states });
    await fleet.startMaster();
    fleet.startAgent('g1');
    await fleet.acceptAll(['g1']);
    grainsFile = path.join(fleet.dir, 'agents', 'g1', 'grains');
  });
  afterAll(async () => {
    await fleet?.stop();
  });

  const roles = async () => (await fleet.json<AgentRow[]>(['agents', '--json'])).find((a) => a.id === 'g1')?.roles;

  it('an edited grains file re-targets the agent without a restart', async () => {
    const before = await fleet.cli(['apply', '-G', 'roles:web']);
    expect(before.code).toBe(1);
    expect(before.stderr).toMatch(/matched no accepted agent/);

    fs.writeFileSync(grainsFile, 'roles:\n  - web\n  - cache\n');
    await waitFor('the master to see roles web,cache', async () => {
      const r = await roles();
      return Array.isArray(r) && r.join(',') === 'web,cache' ? true : undefined;
    });
    const after = await fleet.cli(['apply', '-G', 'roles:web', '--json']);
    expect(after.code).toBe(0);
    const ids = Object.values(JSON.parse(after.stdout).agents as Record<string, { body: { report: { results: { id: string }[] } } }>)
      .flatMap((a) => a.body.report.results.map((r) => r.id));
    expect(ids).toEqual(['web_web_cache']);
  });

  it('a broken grains file keeps the previous grains and the agent keeps working', async () => {
    fs.writeFileSync(grainsFile, 'roles: [web\n');
    const agent = fleet.agents[0]!;
    await agent.waitOutput(/grains file .*grains.*keeping the previous grains/);
    expect(await roles()).toEqual(['web', 'cache']);
    const r = await fleet.cli(['apply', '-G', 'roles:web']);
    expect(r.code).toBe(0);
    expect(agent.child.exitCode).toBeNull();
  });
  it('an agent that starts with a broken grains file runs without it and picks it up once fixed', async () => {
    const file = path.join(fleet.dir, 'agents', 'g2', 'grains');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, 'roles: [db\n');
    const agent = fleet.startAgent('g2');
    await agent.waitOutput(/grains file .*grains.*starting without its grains/);
    await fleet.acceptAll(['g2']);
    const none = await fleet.cli(['apply', '-G', 'roles:db']);
    expect(none.code).toBe(1);
    fs.writeFileSync(file, 'roles: [db]\n');
    await waitFor('the master to see g2 with roles db', async () => {
      const r = (await fleet.json<AgentRow[]>(['agents', '--json'])).find((a) => a.id === 'g2')?.roles;
      return Array.isArray(r) && r.join(',') === 'db' ? true : undefined;
    });
    expect(agent.child.exitCode).toBeNull();
  });
});
