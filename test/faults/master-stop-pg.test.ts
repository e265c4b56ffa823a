/**
 * A master stopping (SIGTERM) while its PostgreSQL store does not answer: a database host cut
 * off or hung, not one that refuses (that fails at once). Every store call on the stop path
 * (agents' last seen, the leases given up, leaving the masters table, the bus's connection, the
 * pool) would wait for the pool's 15 s connection timeout or for ever on an open connection;
 * the stop must end within a couple of seconds, exit 0, and log what it did not write. With the
 * store there, the same stop still writes all of it. Real master and agent processes, a real
 * PostgreSQL frozen with SIGSTOP (every process of it).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Fleet } from '../integration/fleet-harness.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';

const states = { 'top.sls': "base:\n  '*':\n    - common\n", 'common.sls': 'hello:\n  test.succeed_without_changes: []\n' };
// run_on_start takes the schedule's lease at start-up: a stop gives it up
const schedule = { boot: { function: 'cmd.run', arg: 'echo booted', target: 's1', hours: 1, run_on_start: true } };
const LONG_AGO = '2000-01-01T00:00:00.000Z';

describe('faults: a master stopping while PostgreSQL does not answer', () => {
  let server: Postgres;
  let fleet: Fleet;
  const one = async <T>(sql: string): Promise<T | undefined> => (await fleet.storeQuery(sql))[0] as T | undefined;
  /** a started master that took the schedule's lease and holds s1's session */
  const started = async () => {
    const m = await fleet.startMaster();
    await fleet.waitConnected(['s1']);
    await m.waitOutput(/lease schedule\.boot: taken by this master/);
    const c = await server.admin('stop');
    try {
      await c.query('UPDATE agents SET last_seen = $1', [LONG_AGO]);
    } finally {
      await c.end();
    }
    return m;
  };
  /** SIGTERM; how long until the process ended (SIGKILL after 30 s), and its exit code */
  const stop = async () => {
    const m = fleet.master!;
    const t0 = Date.now();
    m.child.kill('SIGTERM');
    const killer = setTimeout(() => m.child.kill('SIGKILL'), 30_000);
    const code = await m.exited;
    clearTimeout(killer);
    return { ms: Date.now() - t0, code };
  };

  beforeAll(async () => {
    buildOnce();
    server = await startPostgres();
    fleet = new Fleet({ states, master: { heartbeat_s: 30, lost_after_s: 60, master_heartbeat_s: 1, schedule, store: await server.createDatabase('stop') } });
    await fleet.startMaster();
    fleet.startAgent('s1', { cfg: { heartbeat_s: 30 } });
    await fleet.acceptAll(['s1']);
  });
  afterAll(async () => {
    server?.thaw();
    await fleet?.stop();
    await server?.stop();
  });

  it('with the store there, a stop writes the agents last seen, gives the lease up and leaves the masters table', async () => {
    await fleet.master!.kill('SIGTERM');
    await started();
    const { code, ms } = await stop();
    expect(code).toBe(0);
    expect(ms).toBeLessThan(5000);
    const a = await one<{ last_seen: string }>("SELECT last_seen FROM agents WHERE id = 's1'");
    expect(a!.last_seen > LONG_AGO).toBe(true);
    expect(await one("SELECT holder FROM leases WHERE name = 'schedule.boot'")).toBeUndefined();
    expect(await one('SELECT id FROM masters')).toBeUndefined();
    expect(fleet.master!.out).not.toMatch(/did not answer within/);
  });

  it('with the store frozen, SIGTERM ends the master within a couple of seconds, exit 0, saying what it did not write', async () => {
    await started();
    // the bus's and the pool's connections are open: frozen, their queries get no answer
    server.freeze();
    try {
      const { code, ms } = await stop();
      expect(fleet.master!.out.slice(-3000)).toMatch(/SIGTERM: shutting down/);
      expect(code).toBe(0);
      expect(ms).toBeLessThan(5000);
      const out = fleet.master!.out;
      expect(out).toMatch(/recording last seen of 1 agent\(s\) failed: the store did not answer within \d+ ms/);
      expect(out).toMatch(/lease schedule\.boot: not released \(the store did not answer within \d+ ms\); it expires/);
      expect(out).toMatch(/presence: leaving failed: the store did not answer within \d+ ms/);
      expect(out).toMatch(/stopped without the store/);
    } finally {
      server.thaw();
    }
    // nothing half-written: the store is whole and the next master starts on it
    await started();
  });

  it('with the store frozen, a CLI request waiting on it does not hold the stop', async () => {
    server.freeze();
    try {
      // its store read gets no answer: the request is open when the master stops
      const cli = fleet.cli(['jobs'], 30_000);
      await new Promise((r) => setTimeout(r, 500));
      const { code, ms } = await stop();
      expect(code).toBe(0);
      expect(ms).toBeLessThan(5000);
      expect((await cli).code).not.toBe(0);
    } finally {
      server.thaw();
    }
    await started();
  });
});
