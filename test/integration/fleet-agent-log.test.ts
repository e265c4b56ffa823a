/**
 * An agent that cannot reach its master says so at warning level: once when it starts failing,
 * then (not tested here: it is a minute) once a minute; each retry only at debug. Real agent and
 * master processes on loopback.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Fleet, waitFor } from './fleet-harness.js';

describe('fleet: agent logs', () => {
  let fleet: Fleet;
  beforeAll(async () => {
    buildOnce();
    fleet = new Fleet({ states: { 'top.sls': 'base: {}\n' } });
    await fleet.startMaster(); // for its port and key fingerprint
    await fleet.killMasters('SIGTERM');
  });
  afterAll(async () => {
    await fleet?.stop();
  });

  it('warns once that the master cannot be reached, retries at debug, says when it connected', async () => {
    const agent = fleet.startAgent('a1');
    const warnLine = /^\S+ warn  agent a1: cannot reach the master at wss:\/\/127\.0\.0\.1:\d+\/: .*ECONNREFUSED.*; retrying/m;
    await agent.waitOutput(warnLine);
    // several more failures (backoff 0.2-1 s), none of them a warning again
    await waitFor('3 more attempts', () => (agent.out.match(/debug agent a1: connection error: /g)?.length ?? 0) >= 3 || undefined);
    expect(agent.out.match(/ warn  agent a1: .*reach the master/g)).toHaveLength(1);
    await fleet.startMaster();
    await agent.waitOutput(/info  agent a1: connected to wss:\/\/127\.0\.0\.1:\d+\/ \(after \d+ failed attempts since \d{4}-/);
  });

  /** The delays the agent announced ("connecting to ... in 0.3s"), from output offset `from`. */
  const delays = (out: string) => [...out.matchAll(/connecting to wss:\/\/\S+ in (\d+\.\d)s/g)].map((m) => Number(m[1]));

  it('a refused connect (nothing listening: a master restarting) never backs off past the second step', async () => {
    await fleet.killMasters('SIGTERM');
    const agent = fleet.startAgent('a2', { cfg: { backoff_min_s: 0.2, backoff_max_s: 30 } });
    try {
      await waitFor('8 refused attempts', () => delays(agent.out).length >= 8 || undefined, 30_000);
      // first step 0.1-0.2 s, then 0.2-0.4 s for ever; growing, the 4th would be 0.8-1.6 s
      expect(Math.max(...delays(agent.out))).toBeLessThanOrEqual(0.4);
      expect(agent.out).toMatch(/ECONNREFUSED/);
    } finally {
      await agent.kill();
    }
  });

  it('a master port that answers and hangs up still backs the agent off all the way', async () => {
    const net = await import('node:net');
    await fleet.killMasters('SIGTERM');
    const port = fleet.agentSide.port;
    const srv = net.createServer((s) => s.destroy()); // accepted, then closed: not refused
    await new Promise<void>((r) => srv.listen(port, '127.0.0.1', () => r()));
    const agent = fleet.startAgent('a3', { cfg: { backoff_min_s: 0.2, backoff_max_s: 30 } });
    try {
      await waitFor('a delay past the refused cap', () => delays(agent.out).some((d) => d >= 0.8) || undefined, 30_000);
    } finally {
      await agent.kill();
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });
});
