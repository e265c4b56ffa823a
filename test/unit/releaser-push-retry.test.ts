/**
 * Releaser: a push whose handling throws after it was recorded (the store failing as it is made
 * desired) is failed with the reason and tried again, a bounded number of times, while nothing
 * else moved the desired revision; never taken as dealt with (fleet-release has the real store
 * fault on both stores; these are the rules around it).
 */
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../core/log.js';
import { PUSH_TRIES, Releaser, RolloutConfigSchema, type ReleaserDeps } from '../../master/rollout.js';
import type { RevisionRow, Store } from '../../master/store-api.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const C = 'c'.repeat(40);

function setup(o: { cfg?: boolean; desired?: string; head: string; failDesired: number; failRollingOut?: number }) {
  const revs = new Map<string, RevisionRow>();
  let desired = o.desired;
  let failures = o.failDesired;
  let rollingOutFailures = o.failRollingOut ?? 0;
  const calls = { setDesired: 0 };
  const store = {
    desired: async () => desired,
    setDesired: async (sha: string) => {
      calls.setDesired++;
      if (failures-- > 0) throw new Error('desired revision refused by the test');
      desired = sha;
    },
    getRevision: async (sha: string) => revs.get(sha),
    addRevision: async (r: { sha: string }) => {
      if (!revs.has(r.sha)) revs.set(r.sha, { sha: r.sha, seen: '', date: null, author: null, subject: null, outcome: 'seen', detail: null });
    },
    setRevisionOutcome: async (sha: string, outcome: RevisionRow['outcome'], detail?: string) => {
      if (outcome === 'rolling_out' && rollingOutFailures-- > 0) throw new Error('outcome refused by the test');
      const r = revs.get(sha);
      if (r) Object.assign(r, { outcome, detail: detail ?? null });
    },
    assign: async () => {},
    listAgents: async () => [],
    listKeys: async () => [],
    listRollouts: async () => [],
  } as unknown as Store;
  const state = { head: o.head };
  const deps: ReleaserDeps = {
    cfg: o.cfg ? RolloutConfigSchema.parse({}) : undefined,
    source: {
      head: async () => state.head,
      isAncestor: async () => true,
      snapshot: async (rev?: string) => ({ revision: rev }),
      commitInfo: async () => undefined,
      watchPaths: async () => [],
    } as unknown as ReleaserDeps['source'],
    jobs: { start: async () => undefined, resolveTargets: async () => [] } as unknown as ReleaserDeps['jobs'],
    store,
    agents: { ready: () => false },
    log: silentLogger,
    settle_s: 0,
    timeout_s: 10,
  };
  const r = new Releaser(deps);
  const settled = () => new Promise((res) => setTimeout(res, 20)); // a queued rollout runs
  return { r, revs, calls, state, desired: () => desired, setDesired: (sha: string) => (desired = sha), settled };
}

describe('Releaser: a push the store fails to act on', () => {
  it('is failed with the reason, tried again at the next check, and rolled out once the store answers', async () => {
    const t = setup({ cfg: true, desired: A, head: B, failDesired: 2 });
    await t.r.check();
    expect(t.revs.get(B)).toMatchObject({ outcome: 'failed', detail: 'the push could not be acted on: desired revision refused by the test' });
    expect(t.desired()).toBe(A);
    await t.r.check();
    expect(t.revs.get(B)?.outcome).toBe('failed');
    await t.r.check();
    await t.settled();
    expect(t.desired()).toBe(B);
    expect(t.revs.get(B)).toMatchObject({ outcome: 'rolled_out', detail: 'no agent targeted' });
    t.r.stop();
  });

  it('without rollout: it becomes desired and seen (no longer failed) once tried again', async () => {
    const t = setup({ desired: A, head: B, failDesired: 1 });
    await t.r.check();
    expect(t.revs.get(B)?.outcome).toBe('failed');
    await t.r.check();
    expect(t.desired()).toBe(B);
    expect(t.revs.get(B)).toMatchObject({ outcome: 'seen', detail: null });
    t.r.stop();
  });

  it(`is left failed after ${PUSH_TRIES} tries`, async () => {
    const t = setup({ cfg: true, desired: A, head: B, failDesired: Infinity });
    for (let i = 0; i < PUSH_TRIES + 3; i++) await t.r.check();
    expect(t.calls.setDesired).toBe(PUSH_TRIES);
    expect(t.revs.get(B)).toMatchObject({ outcome: 'failed', detail: expect.stringMatching(/^the push could not be acted on: /) });
    expect(t.desired()).toBe(A);
    t.r.stop();
  });

  it('is not tried again once the desired revision moved elsewhere (an operator, another master)', async () => {
    const t = setup({ cfg: true, desired: A, head: B, failDesired: 1 });
    await t.r.check();
    t.setDesired(C);
    await t.r.check();
    expect(t.calls.setDesired).toBe(1);
    expect(t.desired()).toBe(C);
    expect(t.revs.get(B)?.outcome).toBe('failed');
    t.r.stop();
  });

  it('a newer push is acted on; the one that failed stays failed', async () => {
    const t = setup({ cfg: true, desired: A, head: B, failDesired: 1 });
    await t.r.check();
    t.state.head = C;
    await t.r.check();
    await t.settled();
    expect(t.desired()).toBe(C);
    expect(t.revs.get(C)?.outcome).toBe('rolled_out');
    expect(t.revs.get(B)?.outcome).toBe('failed');
    t.r.stop();
  });

  it('the first revision, failing as it is made desired, is tried again', async () => {
    const t = setup({ cfg: true, head: A, failDesired: 1 });
    await t.r.check();
    expect(t.revs.get(A)?.outcome).toBe('failed');
    await t.r.check();
    expect(t.desired()).toBe(A);
    expect(t.revs.get(A)?.outcome).toBe('rolling_out');
    t.r.stop();
  });

  it('made desired before the error, it is rolled out when tried again (not taken as done because it is desired)', async () => {
    const t = setup({ cfg: true, desired: A, head: B, failDesired: 0, failRollingOut: 1 });
    await t.r.check();
    expect(t.desired()).toBe(B);
    expect(t.revs.get(B)).toMatchObject({ outcome: 'failed', detail: 'the push could not be acted on: outcome refused by the test' });
    await t.r.check();
    await t.settled();
    expect(t.calls.setDesired).toBe(1);
    expect(t.revs.get(B)).toMatchObject({ outcome: 'rolled_out', detail: 'no agent targeted' });
    t.r.stop();
  });
});
