/**
 * The master's PostgreSQL store going away (the database host down or restarted) and coming back:
 * the operator gets a clear error, the master stays up, and no agent's result is lost: a return
 * that arrives while the server is down is held and stored once it is back. Real master and
 * agent processes, a real PostgreSQL stopped and started again on the same data.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Fleet, waitFor } from '../integration/fleet-harness.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';

const states = { 'top.sls': "base:\n  '*':\n    - common\n", 'common.sls': 'hello:\n  test.succeed_without_changes: []\n' };

interface JobDetail {
  agents: { agent_id: string; status: string; body: { kind: string; stdout?: string } | null }[];
}

describe('faults: the PostgreSQL store down', () => {
  let server: Postgres;
  let fleet: Fleet;
  beforeAll(async () => {
    buildOnce();
    server = await startPostgres();
    fleet = new Fleet({ states, master: { heartbeat_s: 30, lost_after_s: 60, store: await server.createDatabase('faults') } });
    await fleet.startMaster();
    fleet.startAgent('f1', { cfg: { heartbeat_s: 30 } });
    await fleet.acceptAll(['f1']);
  });
  afterAll(async () => {
    await fleet?.stop();
    await server?.stop();
  });

  it('a job started while the server is down is refused with a clear error; the master stays up and works once it is back', async () => {
    await server.halt();
    try {
      const r = await fleet.cli(['run', 'f1', 'echo never']);
      expect(r.code).not.toBe(0);
      // the error names the store (without its password): "connect ECONNREFUSED" alone reads like the master being down
      expect(r.stderr).toContain(`postgres://postgres:***@127.0.0.1:${server.port}/faults: `);
      expect(r.stderr).toMatch(/ECONNREFUSED|terminating connection|Connection terminated/);
      expect(fleet.master!.running).toBe(true);
    } finally {
      await server.resume();
    }
    const ok = await fleet.cli(['run', 'f1', 'echo after']);
    expect(ok.stdout).toMatch(/after/);
    expect(fleet.master!.running).toBe(true);
  });

  it('a return arriving while the server is down is stored once it is back', async () => {
    const agent = fleet.agents[0]!;
    const from = agent.out.length;
    const run = fleet.cli(['run', 'f1', 'sleep 1; echo survived', '--json']);
    const jid = (await agent.waitOutput(/job (\d{20})/, 20_000, from))[1]!;
    await server.halt();
    try {
      await agent.waitOutput(new RegExp(`job ${jid}: finished`), 20_000, from);
      // down until the return has met it, as the master's log says (not a fixed wait)
      await fleet.master!.waitOutput(new RegExp(`job ${jid}: the return of f1 could not be stored \\(.*\\); kept`), 60_000);
      expect(fleet.master!.running).toBe(true);
    } finally {
      await server.resume();
    }
    await run;
    const d = await waitFor(
      'the return stored',
      async () => {
        const j = await fleet.json<JobDetail>(['jobs', jid]);
        return j.agents[0]?.status === 'done' ? j : undefined;
      },
      60_000,
    );
    expect(d.agents[0]!.body!.stdout).toBe('survived\n');
    expect(fleet.master!.out).toMatch(new RegExp(`job ${jid}: the held return of f1 is stored now`));
    expect(fleet.master!.running).toBe(true);
  });
});
