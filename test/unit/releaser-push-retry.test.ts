/**
 * Releaser: a push whose handling throws after it was recorded (the store failing as it is made
 * desired) is failed with the reason and tried again, a bounded number of times, while nothing
 * else acted on it; never taken as dealt with. The tries are the store's: a restarted master
 * (a new Releaser over the same store) goes on with them, within the same bound, and an
 * operator's command recorded in the store by another master ends them.
 *
 * A real SQLite store (a temp file) and the fault a real SQL trigger on it, as fleet-release
 * does on both stores; the git source is a stand-in (this project runs no external program,
 * and fleet-release pushes to a real repository).
 */
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../core/log.js';
import { PUSH_TRIES, PUSH_TRIES_KEY, Releaser, RolloutConfigSchema, type ReleaserDeps } from '../../master/rollout.js';
import { SqliteStore } from '../../master/store-sqlite.js';
import { tempDir } from '../helpers/harness.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const C = 'c'.repeat(40);

/** The store refuses to move the desired revision (as fleet-release's trigger; the first one is an insert). */
const REFUSE_DESIRED = `
CREATE TRIGGER test_refuse_desired_u BEFORE UPDATE ON meta WHEN NEW.key = 'desired.revision' BEGIN SELECT RAISE(ABORT, 'desired revision refused by the test'); END;
CREATE TRIGGER test_refuse_desired_i BEFORE INSERT ON meta WHEN NEW.key = 'desired.revision' BEGIN SELECT RAISE(ABORT, 'desired revision refused by the test'); END;`;
const ALLOW_DESIRED = 'DROP TRIGGER test_refuse_desired_u; DROP TRIGGER test_refuse_desired_i;';
/** The store refuses a revision's `rolling_out` (after the push was made desired). */
const REFUSE_ROLLING_OUT = "CREATE TRIGGER test_refuse_rolling_out BEFORE UPDATE ON revisions WHEN NEW.outcome = 'rolling_out' BEGIN SELECT RAISE(ABORT, 'outcome refused by the test'); END;";
const ALLOW_ROLLING_OUT = 'DROP TRIGGER test_refuse_rolling_out;';
/** The store refuses every meta write: the desired revision, and the record of the tries too. */
const REFUSE_META = `
CREATE TRIGGER test_refuse_meta_u BEFORE UPDATE ON meta BEGIN SELECT RAISE(ABORT, 'meta refused by the test'); END;
CREATE TRIGGER test_refuse_meta_i BEFORE INSERT ON meta BEGIN SELECT RAISE(ABORT, 'meta refused by the test'); END;`;
const ALLOW_META = 'DROP TRIGGER test_refuse_meta_u; DROP TRIGGER test_refuse_meta_i;';

const open: { stores: SqliteStore[]; releasers: Releaser[] } = { stores: [], releasers: [] };
afterEach(async () => {
  for (const r of open.releasers.splice(0)) r.stop();
  for (const s of open.stores.splice(0)) await s.close();
});

/** A master's store: the SQLite file `file` (a new one by default), opened as a master opens it. */
function openStore(file = path.join(tempDir(), 'master.db')): SqliteStore {
  const s = new SqliteStore(file);
  open.stores.push(s);
  return s;
}

/** The branch, as every master of a store sees it. */
class Branch {
  /** runs once, as the next snapshot is taken (a master checking a commit before it makes it desired) */
  onSnapshot: (() => Promise<void>) | undefined;
  /** runs once, as a commit's subject is next read (a command recording the revision it moves to) */
  onCommitInfo: (() => Promise<void>) | undefined;
  constructor(public head: string) {}
}

/** A master's Releaser over `store` (no agents: a rollout targets none), watching `branch`. */
function master(store: SqliteStore, branch: Branch, o: { cfg?: boolean } = {}): Releaser {
  const deps: ReleaserDeps = {
    cfg: o.cfg === false ? undefined : RolloutConfigSchema.parse({}),
    source: {
      head: async () => branch.head,
      isAncestor: async () => true,
      snapshot: async (rev?: string) => {
        const hook = branch.onSnapshot;
        branch.onSnapshot = undefined;
        await hook?.();
        return { revision: rev ?? branch.head };
      },
      commitInfo: async () => {
        const hook = branch.onCommitInfo;
        branch.onCommitInfo = undefined;
        await hook?.();
        return undefined;
      },
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
  open.releasers.push(r);
  return r;
}

async function setup(o: { cfg?: boolean; desired?: string; head: string; fault?: string }) {
  const file = path.join(tempDir(), 'master.db');
  const store = openStore(file);
  if (o.desired) await store.setDesired(o.desired);
  store.db.exec(o.fault ?? REFUSE_DESIRED);
  const branch = new Branch(o.head);
  const r = master(store, branch, { cfg: o.cfg ?? true });
  return {
    file,
    store,
    branch,
    r,
    rev: async (sha: string) => store.getRevision(sha),
    tries: async () => JSON.parse((await store.getMeta(PUSH_TRIES_KEY)) ?? 'null') as { sha: string; over?: string | null; tries: number; end?: string } | null,
  };
}

/** a rollout queued by a check runs (no agents: it ends at once) */
const settled = () => new Promise((res) => setTimeout(res, 30));
const say = () => {};

describe('Releaser: a push the store fails to act on', () => {
  it('is failed with the reason, tried again at the next check, and rolled out once the store answers', async () => {
    const t = await setup({ desired: A, head: B });
    await t.r.check();
    expect(await t.rev(B)).toMatchObject({ outcome: 'failed', detail: 'the push could not be acted on: desired revision refused by the test' });
    expect(await t.store.desired()).toBe(A);
    expect(await t.tries()).toEqual({ sha: B, over: A, tries: 1, at: expect.any(String) });
    await t.r.check();
    expect((await t.rev(B))?.outcome).toBe('failed');
    expect((await t.tries())?.tries).toBe(2);
    t.store.db.exec(ALLOW_DESIRED);
    await t.r.check();
    await settled();
    expect(await t.store.desired()).toBe(B);
    expect(await t.rev(B)).toMatchObject({ outcome: 'rolled_out', detail: 'no agent targeted' });
    expect(await t.tries()).toMatchObject({ sha: B, tries: 2, end: 'acted on at try 3' });
  });

  it('without rollout: it becomes desired and seen (no longer failed) once tried again', async () => {
    const t = await setup({ cfg: false, desired: A, head: B });
    await t.r.check();
    expect((await t.rev(B))?.outcome).toBe('failed');
    t.store.db.exec(ALLOW_DESIRED);
    await t.r.check();
    expect(await t.store.desired()).toBe(B);
    expect(await t.rev(B)).toMatchObject({ outcome: 'seen', detail: null });
  });

  it(`is left failed after ${PUSH_TRIES} tries, and a restarted master does not try it again (the bound is the store's)`, async () => {
    const t = await setup({ desired: A, head: B });
    const setDesired = vi.spyOn(t.store, 'moveDesired');
    for (let i = 0; i < PUSH_TRIES + 3; i++) await t.r.check();
    expect(setDesired).toHaveBeenCalledTimes(PUSH_TRIES);
    expect(await t.rev(B)).toMatchObject({ outcome: 'failed', detail: expect.stringMatching(/^the push could not be acted on: /) });
    expect(await t.tries()).toMatchObject({ sha: B, tries: PUSH_TRIES, end: `tried ${PUSH_TRIES} times` });
    expect(await t.store.desired()).toBe(A);
    // the master restarts (the store answers again by then): the push stays failed, for `tsalt rollout` to act on
    t.r.stop();
    t.store.db.exec(ALLOW_DESIRED);
    const store2 = openStore(t.file);
    const setDesired2 = vi.spyOn(store2, 'moveDesired');
    await master(store2, t.branch).check();
    expect(setDesired2).not.toHaveBeenCalled();
    expect(await store2.desired()).toBe(A);
    expect((await store2.getRevision(B))?.outcome).toBe('failed');
  });

  it('is not tried again once another master moved the desired revision elsewhere', async () => {
    const t = await setup({ desired: A, head: B });
    await t.r.check();
    t.store.db.exec(ALLOW_DESIRED);
    await t.store.setDesired(C); // another master's doing, straight in the store
    const setDesired = vi.spyOn(t.store, 'moveDesired');
    await t.r.check();
    expect(setDesired).not.toHaveBeenCalled();
    expect(await t.store.desired()).toBe(C);
    expect((await t.rev(B))?.outcome).toBe('failed');
    expect((await t.tries())?.end).toMatch(/^the desired revision moved to c{12} since$/);
  });

  it("is not tried again after an operator's `tsalt rollout` of another revision on another master", async () => {
    const t = await setup({ desired: A, head: B });
    await t.r.check();
    t.store.db.exec(ALLOW_DESIRED);
    const other = master(openStore(t.file), t.branch);
    expect(await other.rollout(C, { force: false, user: 'alice', say })).toBe(0);
    await t.r.check();
    await settled();
    expect(await t.store.desired()).toBe(C);
    expect((await t.rev(B))?.outcome).toBe('failed');
    expect((await t.rev(C))?.outcome).toBe('rolled_out');
    expect((await t.tries())?.end).toBe(`\`tsalt rollout ${C.slice(0, 12)}\` by alice`);
  });

  it('a newer push is acted on; the one that failed stays failed', async () => {
    const t = await setup({ desired: A, head: B });
    await t.r.check();
    t.store.db.exec(ALLOW_DESIRED);
    t.branch.head = C;
    await t.r.check();
    await settled();
    expect(await t.store.desired()).toBe(C);
    expect((await t.rev(C))?.outcome).toBe('rolled_out');
    expect((await t.rev(B))?.outcome).toBe('failed');
  });

  it('the first revision, failing as it is made desired, is tried again', async () => {
    const t = await setup({ head: A });
    await t.r.check();
    expect((await t.rev(A))?.outcome).toBe('failed');
    expect(await t.tries()).toMatchObject({ sha: A, over: null, tries: 1 });
    t.store.db.exec(ALLOW_DESIRED);
    await t.r.check();
    expect(await t.store.desired()).toBe(A);
    expect((await t.rev(A))?.outcome).toBe('rolling_out');
  });

  it('made desired before the error, it is rolled out when tried again (not taken as done because it is desired)', async () => {
    const t = await setup({ desired: A, head: B, fault: REFUSE_ROLLING_OUT });
    const setDesired = vi.spyOn(t.store, 'moveDesired');
    await t.r.check();
    expect(await t.store.desired()).toBe(B);
    expect(await t.rev(B)).toMatchObject({ outcome: 'failed', detail: 'the push could not be acted on: outcome refused by the test' });
    t.store.db.exec(ALLOW_ROLLING_OUT);
    await t.r.check();
    await settled();
    expect(setDesired).toHaveBeenCalledTimes(1);
    expect(await t.rev(B)).toMatchObject({ outcome: 'rolled_out', detail: 'no agent targeted' });
  });

  it('a try the store could not record either is recorded and tried again once the store answers', async () => {
    const t = await setup({ desired: A, head: B, fault: REFUSE_META });
    await t.r.check();
    expect(await t.rev(B)).toMatchObject({ outcome: 'failed', detail: 'the push could not be acted on: meta refused by the test' });
    expect(await t.tries()).toBeNull();
    t.store.db.exec(ALLOW_META);
    await t.r.check();
    await settled();
    expect(await t.store.desired()).toBe(B);
    expect((await t.rev(B))?.outcome).toBe('rolled_out');
    expect(await t.tries()).toMatchObject({ sha: B, over: A, tries: 1, end: 'acted on at try 2' });
  });

  it('a restarted master tries again a push the old one left failed, and rolls it out once the store answers', async () => {
    const t = await setup({ desired: A, head: B });
    await t.r.check();
    await t.r.check();
    expect(await t.rev(B)).toMatchObject({ outcome: 'failed', detail: 'the push could not be acted on: desired revision refused by the test' });
    // the master stops (its timer with it) and starts again on the same store file
    t.r.stop();
    const store2 = openStore(t.file);
    const restarted = master(store2, t.branch);
    await restarted.check();
    expect(await store2.desired()).toBe(A);
    expect(JSON.parse((await store2.getMeta(PUSH_TRIES_KEY))!)).toMatchObject({ sha: B, over: A, tries: 3 });
    store2.db.exec(ALLOW_DESIRED);
    await restarted.check();
    await settled();
    expect(await store2.desired()).toBe(B);
    expect(await store2.getRevision(B)).toMatchObject({ outcome: 'rolled_out', detail: 'no agent targeted' });
    expect(JSON.parse((await store2.getMeta(PUSH_TRIES_KEY))!)).toMatchObject({ tries: 3, end: 'acted on at try 4' });
  });

  it("an operator's `tsalt rollback` to the desired revision on another master ends the tries: the push stays failed, the fleet where the operator put it", async () => {
    const t = await setup({ desired: A, head: B });
    await t.r.check();
    // the operator, on the other master: back to A, the revision the push failed over (the store refuses nothing the rollback writes)
    t.store.db.exec(ALLOW_DESIRED);
    const other = master(openStore(t.file), t.branch);
    expect(await other.rollback(A, undefined, { user: 'bob', say })).toBe(0);
    expect((await t.tries())?.end).toBe(`\`tsalt rollback ${A.slice(0, 12)}\` by bob`);
    // this master's next try (its timer, a check) does not override the operator
    const setDesired = vi.spyOn(t.store, 'moveDesired');
    await t.r.check();
    await new Promise((res) => setTimeout(res, 1200)); // the backoff's first wake-up (1 s)
    await settled();
    expect(setDesired).not.toHaveBeenCalled();
    expect(await t.store.desired()).toBe(A);
    expect(await t.rev(B)).toMatchObject({ outcome: 'failed', detail: 'the push could not be acted on: desired revision refused by the test' });
  });

  it("an operator's command on another master while a try runs (it fails again) ends the tries all the same", async () => {
    // the store refuses B only: the operator's rollback to A goes through
    const t = await setup({
      desired: A,
      head: B,
      fault: `CREATE TRIGGER test_refuse_b BEFORE UPDATE ON meta WHEN NEW.key = 'desired.revision' AND NEW.value = '${B}' BEGIN SELECT RAISE(ABORT, 'desired revision refused by the test'); END;`,
    });
    await t.r.check();
    expect((await t.tries())?.tries).toBe(1);
    const other = master(openStore(t.file), t.branch);
    // the second try: the operator's rollback lands between its last look at the tries and the store's refusal
    const moveDesired = t.store.moveDesired.bind(t.store);
    vi.spyOn(t.store, 'moveDesired').mockImplementationOnce(async (from, to, pins) => {
      expect(await other.rollback(A, undefined, { user: 'bob', say })).toBe(0);
      return moveDesired(from, to, pins);
    });
    await t.r.check();
    expect(await t.tries()).toMatchObject({ tries: 1, end: `\`tsalt rollback ${A.slice(0, 12)}\` by bob` });
    t.store.db.exec('DROP TRIGGER test_refuse_b;');
    await t.r.check();
    await settled();
    expect(await t.store.desired()).toBe(A);
    expect((await t.rev(B))?.outcome).toBe('failed');
  });

  it("an operator's command on another master while a try runs (the store answering by then) is not overridden by it", async () => {
    const t = await setup({ desired: A, head: B });
    await t.r.check();
    t.store.db.exec(ALLOW_DESIRED);
    const other = master(openStore(t.file), t.branch);
    // the operator's rollback lands after the try read the tries, as it checks the commit
    t.branch.onSnapshot = async () => {
      expect(await other.rollback(A, undefined, { user: 'bob', say })).toBe(0);
    };
    await t.r.check();
    await settled();
    expect(t.branch.onSnapshot).toBeUndefined(); // it ran
    expect(await t.store.desired()).toBe(A);
    expect((await t.rev(B))?.outcome).toBe('failed');
    expect((await t.tries())?.end).toBe(`\`tsalt rollback ${A.slice(0, 12)}\` by bob`);
  });
});

/**
 * The desired revision is compared and set in one write (store.moveDesired): a push, a rollout
 * and a rollback each read it, wait on git (the commit checked) and the agents, then move it; the
 * later write used to undo the other silently. These land the other command exactly in that wait.
 */
describe('Releaser: the desired revision moved while a push or a command was handled', () => {
  const Z = 'f'.repeat(40);

  it("an operator's rollback landing while a new push is checked holds: the push is refused with what moved it", async () => {
    const t = await setup({ desired: A, head: B, fault: 'SELECT 1' });
    const other = master(openStore(t.file), t.branch);
    t.branch.onSnapshot = async () => {
      expect(await other.rollback(Z, undefined, { user: 'bob', say })).toBe(0);
    };
    await t.r.check();
    await settled();
    expect(t.branch.onSnapshot).toBeUndefined(); // it ran
    expect(await t.store.desired()).toBe(Z);
    expect(await t.rev(B)).toMatchObject({
      outcome: 'refused',
      detail: `the desired revision moved from ${A.slice(0, 12)} to ${Z.slice(0, 12)} while this push was handled (an operator's rollout or rollback); not rolled out over it: \`tsalt rollout ${B.slice(0, 12)}\` does it`,
    });
    // the next checks leave it so
    await t.r.check();
    await settled();
    expect(await t.store.desired()).toBe(Z);
  });

  it('the same on the master acting on pushes itself (one Releaser): the rollback holds', async () => {
    const t = await setup({ desired: A, head: B, fault: 'SELECT 1' });
    t.branch.onSnapshot = async () => {
      expect(await t.r.rollback(Z, undefined, { user: 'bob', say })).toBe(0);
    };
    await t.r.check();
    await settled();
    expect(await t.store.desired()).toBe(Z);
    expect((await t.rev(B))?.outcome).toBe('refused');
  });

  it("an operator's rollout overtaken by a push acted on meanwhile is refused, and changes nothing", async () => {
    const t = await setup({ desired: A, head: B, fault: 'SELECT 1' });
    const other = master(openStore(t.file), new Branch(B));
    // the operator's command has read the desired revision (A) and records its commit when the push is acted on
    t.branch.onCommitInfo = async () => {
      await other.check();
      await settled();
      expect(await t.store.desired()).toBe(B);
    };
    await expect(t.r.rollout(C, { force: true, user: 'bob', say })).rejects.toThrow(
      `the desired revision moved from ${A.slice(0, 12)} to ${B.slice(0, 12)} while this command ran (a push acted on, or another operator's command); the desired revision was not changed: run it again`,
    );
    expect(await t.store.desired()).toBe(B);
    expect((await t.rev(B))?.outcome).toBe('rolled_out');
    expect((await t.rev(C))?.outcome).toBe('seen');
    // run again, it goes out
    expect(await t.r.rollout(C, { force: true, user: 'bob', say })).toBe(0);
    expect(await t.store.desired()).toBe(C);
  });

  it("an operator's rollback overtaken by a push acted on meanwhile is refused the same way", async () => {
    const t = await setup({ desired: A, head: B, fault: 'SELECT 1' });
    const other = master(openStore(t.file), new Branch(B));
    t.branch.onCommitInfo = async () => {
      await other.check();
      await settled();
    };
    await expect(t.r.rollback(Z, undefined, { user: 'bob', say })).rejects.toThrow(/moved from a{12} to b{12} while this command ran/);
    expect(await t.store.desired()).toBe(B);
    expect((await t.rev(A))?.outcome).not.toBe('rolled_back');
  });
});
