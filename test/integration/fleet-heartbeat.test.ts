/**
 * Heartbeats at scale (issue 14): agents ping the master on their own heartbeat, so the master
 * pings only the agents it has not heard from since its last beat (half the heartbeat frames of
 * a large fleet). An agent that goes silent is still pinged, and dropped when it does not answer
 * (fleet-resilience.test.ts freezes one). Real master; hand-driven websocket agents.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Fleet, RawAgent, waitFor } from './fleet-harness.js';

describe('fleet: the master pings only agents it has not heard from', () => {
  let fleet: Fleet;
  beforeAll(async () => {
    buildOnce();
    fleet = new Fleet({
      states: { 'top.sls': "base:\n  '*':\n    - common\n", 'common.sls': 'hello:\n  test.succeed_without_changes: []\n' },
      master: { auto_accept: true, heartbeat_s: 1, lost_after_s: 30 },
    });
    await fleet.startMaster();
  }, 60_000);
  afterAll(async () => {
    await fleet?.stop();
  });

  it('a pinging agent gets (almost) no pings, a quiet one gets one per beat and stays connected by answering', async () => {
    const talker = await RawAgent.connect(fleet, 'talker');
    talker.hello();
    const quiet = await RawAgent.connect(fleet, 'quiet');
    quiet.hello();
    let talkerPings = 0;
    let quietPings = 0;
    talker.ws.on('ping', () => talkerPings++);
    quiet.ws.on('ping', () => quietPings++); // ws answers each with a pong by itself
    const chatter = setInterval(() => talker.ws.ping(), 100);
    try {
      await waitFor('five pings to the quiet agent', () => (quietPings >= 5 ? true : undefined), 60_000);
    } finally {
      clearInterval(chatter);
    }
    // the talker spoke before every beat (a beat may slip past a late timer under load)
    expect(talkerPings).toBeLessThan(quietPings / 2);
    const agents = await fleet.json<{ id: string; connected: boolean }[]>(['agents']);
    expect(agents.filter((a) => a.connected).map((a) => a.id).sort()).toEqual(['quiet', 'talker']);
  }, 120_000);
});
