/**
 * An accepted agent that stops reading its websocket while it asks for its job's bundle again
 * and again must not make the master hold bundle after bundle for it: past its cap (two of the
 * largest frames plus MAX_PENDING_BYTES) the master drops that agent with a log line; the job
 * goes on for the others and is stored, and the next job is served.
 */
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_PENDING_BYTES } from '../../master/bounded-writer.js';
import { buildOnce, Fleet, RawAgent, waitFor } from './fleet-harness.js';

const MiB = 1024 * 1024;
const MAX_FRAME = 8 * MiB;
const CAP = 2 * MAX_FRAME + MAX_PENDING_BYTES;
const states = {
  'top.sls': "base:\n  '*':\n    - common\n",
  'common.sls': 'v1:\n  test.succeed_without_changes: []\n',
  // makes the bundle a few MiB: each bundle_get asks the master to send all of it again
  'files/big.txt': 'y'.repeat(3 * MiB),
};

describe('fleet: an agent that stops reading is dropped, the job goes on', () => {
  let fleet: Fleet;
  let raw: RawAgent;
  beforeAll(async () => {
    buildOnce();
    fleet = new Fleet({ states, master: { max_frame_bytes: MAX_FRAME, lost_after_s: 2 } });
    await fleet.startMaster();
    const pending = await RawAgent.connect(fleet, 'r1');
    await pending.waitMsg('key_status');
    pending.hello();
    fleet.startAgent('a1');
    await fleet.acceptAll(['a1']);
    await fleet.cli(['keys', 'accept', 'r1']);
    await pending.closed; // accepted while connected: asked to reconnect
    raw = await RawAgent.connect(fleet, 'r1');
    raw.hello();
    await fleet.waitConnected(['r1', 'a1']);
  });
  afterAll(async () => {
    await fleet?.stop();
  });

  it('bundle_get over and over, never reading: dropped past the cap; a1 done, job stored, next job served', async () => {
    const from = fleet.master!.out.length;
    const run = fleet.cli(['apply', 'r1,a1', '-L', '--json']);
    const job = await raw.waitMsg('job');
    const jid = job.jid as string;
    const hash = (job.spec as { bundle: string }).bundle;
    // stops reading: the TLS socket under the websocket is paused, so the kernel's buffers fill
    (raw.ws as unknown as { _socket: Socket })._socket.pause();
    for (let i = 0; i < 60; i++) raw.send({ type: 'bundle_get', jid, hash });
    const m = await fleet.master!.waitOutput(/agent r1 from \S+: stopped reading with (\d+) bytes waiting for it \(cap (\d+)\); dropped it/, 60_000, from);
    expect(Number(m[2])).toBe(CAP);
    // dropped as soon as it was over the cap: at most one bundle beyond it
    expect(Number(m[1])).toBeGreaterThan(CAP);
    expect(Number(m[1])).toBeLessThanOrEqual(CAP + 4 * MiB);
    const r = await run;
    expect(r.code, r.stderr).toBe(3); // r1 did not return
    const shown = await fleet.json<{ agents: { agent_id: string; status: string }[] }>(['jobs', jid]);
    expect(Object.fromEntries(shown.agents.map((a) => [a.agent_id, a.status]))).toEqual({ a1: 'done', r1: 'lost' });
    expect(fleet.master!.out.slice(from).match(/stopped reading with/g)).toHaveLength(1);
    const next = await fleet.cli(['apply', 'a1']);
    expect(next.code, next.stderr).toBe(0);
    await waitFor('r1 gone', async () => (await fleet.json<{ id: string; connected: boolean }[]>(['agents'])).some((a) => a.id === 'r1' && !a.connected) || undefined);
  });
});
