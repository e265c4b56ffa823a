/**
 * `tsalt revisions`: whether a revision is desired agrees with its outcome, also when a push is
 * acted on while the command reads. The push's handling (made desired, rolled out, failed) runs
 * in the master's event loop (or on the other master of a pair) while the handler waits for git
 * (the branch head) or the store: a desired revision read before that wait and the outcomes read
 * after it listed a push failed and not desired, which it never was (fleet-release saw it on a
 * loaded machine, as "the desired revision moved off v3").
 *
 * A real SQLite store (a temp file); the push's writes are made where the handler waits.
 */
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../core/log.js';
import type { CliEvent } from '../../protocol/cli-messages.js';
import type { CliContext } from '../../master/cli-handlers.js';
import { releaseHandlers, type RevisionLine } from '../../master/release-handlers.js';
import { SqliteStore } from '../../master/store-sqlite.js';
import { tempDir } from '../helpers/harness.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);

const stores: SqliteStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

/** A's rolled out and desired, B pushed (recorded, not acted on yet); `during` is where the handler waits while B is acted on. */
async function listWhileActedOn(during: 'git head' | 'agents'): Promise<RevisionLine[]> {
  const store = new SqliteStore(path.join(tempDir(), 'master.db'));
  stores.push(store);
  await store.addRevision({ sha: A, date: null, author: null, subject: 'a', outcome: 'rolled_out' });
  await store.setDesired(A);
  await store.addRevision({ sha: B, date: null, author: null, subject: 'b' });
  // the push's handling, as Releaser.actOn() and the rollout the store fails do it
  const actOn = async () => {
    await store.setDesired(B);
    await store.setRevisionOutcome(B, 'rolling_out');
    await store.setRevisionOutcome(B, 'failed', 'the rollout did not finish: batches refused by the test');
  };
  const listAgents = store.listAgents.bind(store);
  if (during === 'agents') {
    store.listAgents = async () => {
      await actOn();
      return listAgents();
    };
  }
  const ctx = {
    store,
    source: {
      head: async () => {
        if (during === 'git head') await actOn();
        return B;
      },
    },
    releaser: {},
    log: silentLogger,
  } as unknown as CliContext;
  const out: CliEvent[] = [];
  const list = releaseHandlers['revisions.list'];
  const code = await list({ type: 'revisions.list', limit: 20 }, (e) => out.push(e), ctx);
  expect(code).toBe(0);
  return (out.find((e) => e.type === 'data') as { data: RevisionLine[] }).data;
}

describe('tsalt revisions while a push is acted on', () => {
  for (const during of ['git head', 'agents'] as const) {
    it(`a push failed during the read (while it waits for the ${during}) is listed desired, as it is`, async () => {
      const lines = await listWhileActedOn(during);
      expect(lines.find((l) => l.sha === B)).toMatchObject({ outcome: 'failed', desired: true, head: true });
      expect(lines.find((l) => l.sha === A)).toMatchObject({ outcome: 'rolled_out', desired: false });
      expect(lines.filter((l) => l.desired)).toHaveLength(1);
    });
  }
});
