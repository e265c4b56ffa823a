/**
 * `tsalt revisions` and `tsalt status` while a push is acted on: what they print is one moment of
 * the store. The push's handling (made desired, rolled out, the agents' returns, its outcome) runs
 * in the master's event loop (or on the other master of a pair) while a handler waits for git
 * (the branch head), the connected agents or the store: a desired revision read before such a
 * wait and outcomes or agents read after it listed a push failed and not desired, which it never
 * was (fleet-release saw it on a loaded machine, as "the desired revision moved off v3"), or an
 * agent that had applied the new desired revision as behind the old one.
 *
 * The class, not one example: the push is acted on at each place a handler waits in turn (every
 * call it makes to the store, to git and to the other masters), and every answer must be one
 * the store could have held at one moment. A real SQLite store (a temp file).
 */
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../core/log.js';
import type { CliEvent } from '../../protocol/cli-messages.js';
import type { CliContext } from '../../master/cli-handlers.js';
import { releaseHandlers, type RevisionLine, type StatusData } from '../../master/release-handlers.js';
import { SqliteStore } from '../../master/store-sqlite.js';
import { tempDir } from '../helpers/harness.js';
import { applyReturn, nopResult } from '../helpers/job-rows.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);

const stores: SqliteStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

/** `ids` apply `revision` in job `jid`, and return (their revision applied is then `revision`). */
async function applied(store: SqliteStore, jid: string, revision: string, ids: string[]): Promise<void> {
  await store.createJob(
    { jid, kind: 'apply', target: ids.join(','), tgt_type: 'list', args: {}, revision, started_by: 'git' },
    ids.map((id) => ({ id, status: 'queued', revision })),
  );
  for (const id of ids) await store.finishJobAgent(jid, id, 'done', applyReturn(jid, id, [nopResult(0)]).body);
}

/** A rolled out and desired, applied by agents a1 and a2; B pushed (recorded, not acted on yet). */
async function fleetBeforePush(): Promise<SqliteStore> {
  const store = new SqliteStore(path.join(tempDir(), 'master.db'));
  stores.push(store);
  await store.addRevision({ sha: A, date: null, author: null, subject: 'a', outcome: 'rolled_out' });
  await store.setDesired(A);
  for (const id of ['a1', 'a2']) await store.addAgent(id, `fp-${id}`, 'accepted');
  await applied(store, 'j-a', A, ['a1', 'a2']);
  await store.addRevision({ sha: B, date: null, author: null, subject: 'b' });
  return store;
}

/** The push's handling, as Releaser.actOn() and its rollout write it: B desired, rolled out to a1, then its outcome. */
async function actOn(store: SqliteStore): Promise<void> {
  await store.setDesired(B);
  await store.setRevisionOutcome(B, 'rolling_out');
  const id = await store.createRollout({ revision: B, previous: A, reason: 'push', started_by: 'git' });
  await store.addRolloutBatches(id, [{ group_num: 1, group_name: 'all', agents: ['a1'] }]);
  await applied(store, 'j-b', B, ['a1']);
  await store.updateRolloutBatch(id, 1, { status: 'done', jid: 'j-b' });
  await store.updateRollout(id, { status: 'failed', message: 'verify failed' });
  await store.setRevisionOutcome(B, 'failed', 'the rollout did not finish');
}

/**
 * Runs a handler with the push acted on just before its `at`-th wait (a call to the store, git
 * or the other masters; 0: never). Returns its data and how many waits it made.
 */
async function runActingAt<D>(name: 'revisions.list' | 'status', at: number): Promise<{ data: D; waits: number }> {
  const store = await fleetBeforePush();
  let waits = 0;
  const wait = async () => {
    if (++waits === at) await actOn(store);
  };
  const proxied = new Proxy(store, {
    get(t, p, r) {
      const v = Reflect.get(t, p, r) as unknown;
      if (typeof v !== 'function') return v;
      return async (...args: unknown[]) => {
        await wait();
        return (v as (...a: unknown[]) => unknown).apply(t, args);
      };
    },
  });
  const ctx = {
    store: proxied,
    source: {
      label: 'git test',
      head: async () => {
        await wait();
        return B; // the branch moved before the push was recorded
      },
    },
    server: { connectedIds: () => new Set(['a1']) },
    elsewhere: async () => {
      await wait();
      return new Map([['a2', 'm2']]);
    },
    releaser: { current: undefined },
    log: silentLogger,
  } as unknown as CliContext;
  const out: CliEvent[] = [];
  const handler = releaseHandlers[name] as (req: unknown, send: (e: CliEvent) => void, c: CliContext) => Promise<number>;
  const code = await handler(name === 'status' ? { type: 'status' } : { type: 'revisions.list', limit: 20 }, (e) => out.push(e), ctx);
  expect(code).toBe(0);
  return { data: (out.find((e) => e.type === 'data') as { data: D }).data, waits };
}

/** Every place the handler waits, in turn (and once not at all). */
async function eachWait<D>(name: 'revisions.list' | 'status', check: (d: D, at: number) => void): Promise<number> {
  const { waits } = await runActingAt<D>(name, 0);
  expect(waits).toBeGreaterThan(0);
  for (let at = 0; at <= waits; at++) check((await runActingAt<D>(name, at)).data, at);
  return waits;
}

describe('tsalt revisions and tsalt status while a push is acted on', () => {
  it('tsalt revisions: the push is listed desired with its outcome, or not yet acted on, wherever it lands', async () => {
    await eachWait<RevisionLine[]>('revisions.list', (lines, at) => {
      const b = lines.find((l) => l.sha === B)!;
      const a = lines.find((l) => l.sha === A)!;
      const seen = { at, b: [b.outcome, b.desired, b.agents_applied], a: [a.desired, a.agents_applied] };
      // before the push: A desired on both agents; after: B desired, failed, on a1
      const before = b.outcome === 'seen' && !b.desired && b.agents_applied === 0 && a.desired && a.agents_applied === 2;
      const after = b.outcome === 'failed' && b.desired && b.agents_applied === 1 && !a.desired && a.agents_applied === 1;
      expect(before || after, JSON.stringify(seen)).toBe(true);
      expect(b.head).toBe(true);
    });
  });

  it('tsalt status: the desired revision, each agent against it and the rollout agree, wherever the push lands', async () => {
    await eachWait<StatusData>('status', (d, at) => {
      const seen = JSON.stringify({ at, desired: d.desired, agents: d.agents.map((x) => [x.id, x.revision, x.revision_applied, x.sync]), rollout: d.last_rollout?.revision });
      // every agent is measured against the desired revision printed
      for (const x of d.agents) expect(x.revision, seen).toBe(d.desired);
      if (d.desired === A) {
        // nothing of the push yet
        expect(d.agents.map((x) => x.sync), seen).toEqual(['in_sync', 'in_sync']);
        expect(d.last_rollout, seen).toBeNull();
      } else {
        expect(d.desired, seen).toBe(B);
        expect(d.agents.find((x) => x.id === 'a2')!.sync, seen).toBe('behind');
        // a rollout shown is B's, and its batches are that rollout's
        if (d.last_rollout) expect(d.last_rollout.revision, seen).toBe(B);
        if (d.rollout_batches.length) expect(d.last_rollout, seen).not.toBeNull();
      }
      expect(new Set(d.agents.filter((x) => x.connected).map((x) => x.id))).toEqual(new Set(['a1', 'a2']));
    });
  });
});
