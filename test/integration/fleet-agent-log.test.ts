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
});
