/**
 * Releases: the desired revision and the rollouts that bring the fleet to it.
 *
 * - The master keeps, in SQLite, the revision the fleet should run (the desired revision). A
 *   push to the branch is noticed by watching the ref (fs.watch on the ref's directory and on
 *   packed-refs); a commit that descends from the desired one becomes desired and is rolled out.
 *   A commit that does not (a force-push of another history) is recorded as refused.
 * - A rollout goes group by group (rollout.groups, or serial_by a grain), batch by batch; hosts
 *   sharing a role are never all in one batch. After each batch, rollout.verify must pass.
 *   A batch whose failures pass max_fail_percent (or any failure, with stop_on_failure) stops
 *   it: on_failure `halt` leaves the agents it did not reach on their revision, `rollback`
 *   re-applies the previous desired revision to every agent it touched and makes it desired again.
 * - Each agent has an assigned revision (agents.revision_assigned): what a rollout gave it, or
 *   what it keeps while a rollout has not reached it. Scheduled highstates and plain applies give
 *   each agent its assigned revision (else the desired one), so a halted rollout or a rollback
 *   holds through them. `--revision` stays a one-off.
 * - An agent behind its revision (offline during a rollout, a new VM, a master restarted after a
 *   push) gets it when it connects, through the same batch rules.
 */
import fs from 'node:fs';
import * as z from 'zod';
import type { Logger } from '../core/log.js';
import { TargetTypeSchema, type AgentJobStatus } from '../protocol/cli-messages.js';
import type { JobManager } from './jobs.js';
import type { AgentRow, DesiredPin, RolloutRow, Store } from './store-api.js';
import type { ConfigSource } from './tree.js';
import { groupByGrain, planBatches, rolesOf } from './batches.js';
import { runVerify, VerifyCheckSchema } from './verify.js';
import type { Leases } from './leases.js';

/** Agents at a time: `N` or `N%`; a YAML number (`batch: 1`) as Salt users write it. */
export const BatchSchema = z
  .union([z.number().int().positive(), z.string().regex(/^\d+%?$/, 'batch is N or N%')])
  .transform((b) => String(b))
  .refine((b) => !/^0+%?$/.test(b), 'batch is at least 1 (or 1%)');

export const RolloutConfigSchema = z
  .strictObject({
    /** who receives new revisions (Salt target syntax, as `tsalt apply`) */
    target: z.string().min(1).default('*'),
    /** how `target` is read: glob, pcre, list, grain, grain_pcre, pillar, pillar_pcre, ipcidr, compound, nodegroup */
    tgt_type: TargetTypeSchema.default('glob'),
    /** ordered groups (compound targets, e.g. `G@roles:haproxy`): one group after the other */
    groups: z.array(z.string().min(1)).min(1).optional(),
    /** or: one group per value of this grain (e.g. roles), in the values' order */
    serial_by: z.string().min(1).optional(),
    /** agents at a time within a group: `N` or `N%` (default: 25%) */
    batch: BatchSchema.default('25%'),
    /** stop when a batch fails (an agent fails, does not return, or verify fails) */
    stop_on_failure: z.boolean().default(true),
    /** as Ansible's max_fail_percentage: stop only when more than this % of a batch failed */
    max_fail_percent: z.number().min(0).max(100).optional(),
    /** what a stopped rollout does: halt where it is, or roll back every agent it touched */
    on_failure: z.enum(['halt', 'rollback']).default('halt'),
    /** checks after each batch; a failing one fails the batch */
    verify: z.array(VerifyCheckSchema).default([]),
    /** the ref is watched; this is only a safety re-check of the branch head */
    poll_s: z.number().positive().default(60),
    /** per-agent timeout of a rollout job */
    timeout_s: z.number().positive().default(600),
  })
  .superRefine((c, ctx) => {
    if (c.groups && c.serial_by) ctx.addIssue({ code: 'custom', path: ['serial_by'], message: 'give groups or serial_by, not both' });
  });
export type RolloutConfig = z.infer<typeof RolloutConfigSchema>;

type Say = (msg: string, level?: 'info' | 'warn') => void;

/** What rollouts do, for observers (metrics). Must not throw. */
export interface ReleaseEvents {
  rolloutFinished(status: RolloutRow['status']): void;
}

export interface ReleaserDeps {
  /** absent: pushes move the desired revision, nothing is rolled out automatically */
  cfg: RolloutConfig | undefined;
  source: ConfigSource;
  jobs: Pick<JobManager, 'start' | 'resolveTargets'>;
  store: Store;
  /** refresh: re-read which agents other masters hold (masters sharing a store), before a batch */
  agents: { ready(id: string): unknown; refresh?(): Promise<void> };
  log: Logger;
  /** right after a start, wait (at most) this long for the agents to reconnect before a rollout */
  settle_s: number;
  /** per-agent timeout of convergence and rollback jobs without rollout: */
  timeout_s: number;
  events?: ReleaseEvents;
  /**
   * Masters sharing a store: pushes are acted on (recorded, made desired, rolled out) only by
   * the master holding the `releases` lease; another takes it over when that master dies.
   */
  leases?: Pick<Leases, 'want' | 'hold' | 'release' | 'holderOf'>;
}

/** The lease of the master acting on pushes. */
export const RELEASES_LEASE = 'releases';

/**
 * The lease of the master running rollouts now (a push's, an operator's `tsalt rollout` or
 * `rollback`, a converge): held from the first queued to the last finished, so that masters
 * sharing a store run one rollout at a time, as one master does.
 */
export const ROLLOUT_LEASE = 'rollout';

export class ReleaseError extends Error {}

/** How many times a push whose handling fails is tried before it is left failed (see Releaser.pushFailed). */
export const PUSH_TRIES = 8;
/** The reason of a pushed revision that could not be acted on. */
const PUSH_FAILED = 'the push could not be acted on: ';
/** The reason of a revision, and the message of a rollout, whose run threw before it recorded its end. */
const ROLLOUT_UNFINISHED = 'the rollout did not finish: ';

/** A pushed revision recorded and not acted on: `seen` (recording why it failed failed too), or failed with PUSH_FAILED. */
function unacted(row: { outcome: string; detail: string | null }): boolean {
  return row.outcome === 'seen' || (row.outcome === 'failed' && !!row.detail?.startsWith(PUSH_FAILED));
}

/**
 * The store's record of the pushed revision being tried again (meta PUSH_TRIES_KEY), so that
 * whichever master holds the releases lease (this one restarted, or another) goes on with it,
 * and an operator's command on any master ends it. One at a time: only the branch head is tried.
 */
const PushTriesSchema = z.object({
  sha: z.string(),
  /** the desired revision it was pushed over (null: none, the first revision); absent: the try failed before reading it */
  over: z.string().nullable().optional(),
  /** tries so far, every master's */
  tries: z.number().int().nonnegative(),
  /** when the last try failed (this master's clock) */
  at: z.string(),
  /** why it is not tried again (acted on, an operator's command, the tries used up...); absent: it is */
  end: z.string().optional(),
});
type PushTries = z.infer<typeof PushTriesSchema>;

/** The meta key of PushTries. */
export const PUSH_TRIES_KEY = 'releases.push_tries';

/** A stored PushTries, or undefined (none, or not one: another master's garbage is not acted on). */
function parsePushTries(raw: string | undefined): PushTries | undefined {
  if (!raw) return undefined;
  try {
    const r = PushTriesSchema.safeParse(JSON.parse(raw));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}

const short = (sha: string | null | undefined) => (sha ? sha.slice(0, 12) : '-');

/** Targets that follow the desired revision (none assigned), held on what they run (else `previous`). */
function pinsOf(targets: readonly AgentRow[], previous: string): DesiredPin[] {
  return targets.filter((a) => a.revision_assigned === null).map((a) => ({ id: a.id, sha: a.revision_applied ?? previous }));
}

export class Releaser {
  private queue: Promise<unknown> = Promise.resolve();
  private watchers: fs.FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private readonly startedAt = Date.now();
  private converging = new Set<string>();
  private convergeTimer: NodeJS.Timeout | undefined;
  /** the rollout running now, for `tsalt status` */
  current: number | undefined;
  /** rollouts of this master holding ROLLOUT_LEASE (queued or running) */
  private leasedRuns = 0;
  /** takes and releases of ROLLOUT_LEASE, in order (a release must not overtake a later take) */
  private leaseOps: Promise<unknown> = Promise.resolve();
  /** the wake-up of the next try of a push that failed (see pushFailed()); what is tried is the store's */
  private pushTimer: NodeJS.Timeout | undefined;
  /** a failed try the store could not record (it was failing): written before the next try is decided */
  private unsaved: PushTries | undefined;

  constructor(private readonly d: ReleaserDeps) {}

  private get cfg(): RolloutConfig | undefined {
    return this.d.cfg;
  }

  async start(): Promise<void> {
    const closeOrphans = () => this.d.store.closeRunningRollouts('the master stopped during this rollout; agents still behind get the revision when they connect');
    if (this.d.leases) {
      // a rollout left running is another live master's unless this one holds the lease: taking
      // it over (at start, or when its holder died) closes what the last holder left running;
      // a halted rollout stays halted, agents it did not reach keep their assigned revision
      this.d.leases.want(RELEASES_LEASE, () => {
        void (async () => {
          await closeOrphans();
          void this.check();
          await this.convergeAll();
        })().catch((e: Error) => this.d.log.warn(`rollout: taking the ${RELEASES_LEASE} lease over: ${e.message}`));
      });
    } else {
      await closeOrphans();
    }
    void this.check();
    void this.watch();
    this.timer = setInterval(() => void this.check(), (this.cfg?.poll_s ?? 60) * 1000);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.debounce);
    clearTimeout(this.convergeTimer);
    clearTimeout(this.pushTimer);
    for (const w of this.watchers) w.close();
  }

  /** The fleet's revision for jobs without --revision (JobManager's FleetRevisions). */
  desired(): Promise<string | undefined> {
    return this.d.store.desired();
  }

  /** the revision a rollout or a rollback holds it on, else the desired one */
  forAgent(a: AgentRow, desired: string | undefined): string | undefined {
    return a.revision_assigned ?? desired;
  }

  /** fs.watch on the ref's directory and the git dir (packed-refs): a push is seen at once. */
  private async watch(): Promise<void> {
    for (const w of this.watchers) w.close();
    this.watchers = [];
    let paths: string[];
    try {
      paths = await this.d.source.watchPaths();
    } catch {
      paths = [];
    }
    for (const p of paths) {
      try {
        const w = fs.watch(p, () => this.poke());
        w.on('error', () => {});
        w.unref();
        this.watchers.push(w);
      } catch (e) {
        this.d.log.debug(`rollout: cannot watch ${p}: ${(e as Error).message}`);
      }
    }
    if (paths.length) this.d.log.debug(`rollout: watching ${paths.join(', ')}`);
  }

  /** Something under the ref moved: look at the branch head shortly (a push writes several files). */
  private poke(): void {
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.check(), 100);
    this.debounce.unref();
  }

  /** One look at the branch head; never throws. Calls during a look make one more look after it. */
  check(): Promise<void> {
    if (this.checking) {
      this.again = true;
      return this.checking;
    }
    this.checking = (async () => {
      do {
        this.again = false;
        try {
          await this.checkOnce();
        } catch (e) {
          this.d.log.warn(`rollout: ${(e as Error).message}`);
        }
      } while (this.again && !this.stopped);
    })().finally(() => (this.checking = undefined));
    return this.checking;
  }

  private async checkOnce(): Promise<void> {
    const head = await this.d.source.head();
    if (!head || this.stopped) return;
    if (this.d.leases && !(await this.d.leases.hold(RELEASES_LEASE))) {
      this.d.log.debug(`rollout: branch head ${short(head)}: pushes are handled by the master holding the ${RELEASES_LEASE} lease`);
      return;
    }
    const { store, log } = this.d;
    const row = await store.getRevision(head);
    let retry: PushTries | undefined;
    if (row) {
      if (!unacted(row)) return; // seen (and dealt with) before
      retry = await this.pushToRetry(head);
      if (!retry) return; // failed and not to be tried again (or dealt with: a push without rollout: is `seen`)
    } else {
      await this.record(head);
    }
    let over = retry?.over;
    try {
      if (over === undefined) over = (await store.desired()) ?? null; // not `??=`: null is "no desired revision", read already
      await this.actOn(head, over ?? undefined, retry?.over !== undefined, !!retry);
    } catch (e) {
      await this.pushFailed(head, over, retry?.tries ?? 0, e as Error);
      return;
    }
    if (retry) {
      clearTimeout(this.pushTimer);
      await this.endPushTries(head, `acted on at try ${retry.tries + 1}`).catch((e: Error) => log.warn(`rollout: recording that pushed revision ${short(head)} was acted on: ${e.message}`));
    }
  }

  /**
   * Acts on the branch head `head`, recorded, pushed over the desired revision `previous`.
   * `tried`: an earlier try threw (pushFailed()); `made`: that try was over `previous`, and may
   * have made `head` desired before it threw.
   */
  private async actOn(head: string, previous: string | undefined, made: boolean, tried: boolean): Promise<void> {
    const { store, log } = this.d;
    const desired = await store.desired();
    if (desired === head && !made) return;
    // a try again, right before the desired revision moves: an operator's command (on any
    // master) may have ended the tries since pushToRetry() read them
    const goesOn = async () => !tried || (await this.stillTried(head));
    if (previous === undefined) {
      if (desired !== head) {
        if (!(await goesOn())) return;
        if (!(await store.moveDesired(desired, head))) return this.overtaken(head, desired);
      }
      await store.setRevisionOutcome(head, this.cfg ? 'rolling_out' : 'seen');
      log.info(`rollout: first revision ${short(head)} is the desired revision`);
      if (this.cfg) await this.convergeAll();
      void this.watch(); // the ref's directory may exist only now (first push)
      return;
    }
    if (desired !== head) {
      if (!(await this.d.source.isAncestor(previous, head))) {
        const why = `does not descend from the desired revision ${short(previous)} (a force-push?); not rolled out: \`tsalt rollout ${short(head)} --force\` does it`;
        await store.setRevisionOutcome(head, 'refused', why);
        log.warn(`rollout: pushed revision ${short(head)} ${why}`);
        return;
      }
      try {
        await this.d.source.snapshot(head); // a commit that cannot be served (no top.sls, ...) never becomes desired
      } catch (e) {
        await store.setRevisionOutcome(head, 'refused', (e as Error).message);
        log.warn(`rollout: pushed revision ${short(head)} refused: ${(e as Error).message}`);
        return;
      }
      if (!(await goesOn())) return;
      // the pins and the move in one write, only over the desired revision read above
      if (!(await store.moveDesired(desired, head, await this.unreachedPins(previous)))) return this.overtaken(head, desired);
    }
    if (!this.cfg) {
      if (tried) await store.setRevisionOutcome(head, 'seen'); // no longer failed
      log.info(`rollout: revision ${short(head)} is desired (no rollout: configured: it goes out with the next apply or schedule)`);
      return;
    }
    await store.setRevisionOutcome(head, 'rolling_out');
    log.info(`rollout: revision ${short(previous)} -> ${short(head)} pushed`);
    // the queue swallows a failed run (the next one goes on): said here, or a push's rollout ends unseen
    void this.enqueueRollingOut(head, () => this.leased('wait', () => this.run({ revision: head, previous, reason: 'push', user: 'push' }))).catch((e: Error) =>
      log.error(`rollout ${short(head)}: ${e.message}; the revision stays desired, agents behind get it when they next connect or at the next rollout`),
    );
  }

  /**
   * A push whose handling threw after it was recorded (the store failing as it is made desired,
   * say). Without more, the next check would take it as dealt with (it is recorded) and the push
   * would never be acted on, with nothing in `tsalt revisions` to say so.
   *
   * Retried, then failed: a store error is most often transient, and a push is what an operator
   * asked for, so it is tried again (as Salt's gitfs or Argo CD keep reconciling to the branch)
   * at the next check and after a backoff (1 s, 2 s, 4 s ... at most poll_s), PUSH_TRIES tries in
   * all. Meanwhile and after, the revision is `failed` with "the push could not be acted on:
   * <error>": `tsalt revisions` shows it, and the operator can `tsalt rollout` it.
   *
   * The tries are the store's (PushTries under PUSH_TRIES_KEY: the push, the desired revision it
   * was pushed over, the tries so far, why they ended), not this process's: a master that
   * restarts, or another master taking the releases lease over, goes on with them at its first
   * check, and the bound holds across them (a push that fails for good is tried PUSH_TRIES times
   * in all, however often masters restart; then it stays failed). This master's timer only wakes
   * it up. A retry acts on the push only while nothing else was (pushToRetry()). Best effort,
   * never throws.
   */
  private async pushFailed(head: string, over: string | null | undefined, before: number, e: Error): Promise<void> {
    const { store, log } = this.d;
    const tries = before + 1;
    const why = `${PUSH_FAILED}${e.message}`;
    clearTimeout(this.pushTimer);
    try {
      const row = await store.getRevision(head);
      if (row && !unacted(row)) {
        // it got its outcome before the error (a first revision rolling out whose converge threw...): that stays
        log.warn(`rollout: pushed revision ${short(head)} (${row.outcome}): ${e.message}`);
        return;
      }
      await store.setRevisionOutcome(head, 'failed', why);
    } catch (e2) {
      log.error(`rollout: recording that pushed revision ${short(head)} could not be acted on (${e.message}): ${(e2 as Error).message}`);
    }
    try {
      // an operator's command (on another master) ended the tries while this one ran: that stands
      const cur = parsePushTries(await store.getMeta(PUSH_TRIES_KEY));
      if (cur?.sha === head && cur.end !== undefined && before > 0) {
        log.warn(`rollout: pushed revision ${short(head)} ${why}; not tried again: ${cur.end}`);
        return;
      }
    } catch {
      // the store fails: the write below says so
    }
    const last = tries >= PUSH_TRIES;
    const rec: PushTries = { sha: head, ...(over !== undefined ? { over } : {}), tries, at: new Date().toISOString(), ...(last ? { end: `tried ${tries} times` } : {}) };
    try {
      await store.setMeta(PUSH_TRIES_KEY, JSON.stringify(rec));
      this.unsaved = undefined;
    } catch (e2) {
      this.unsaved = last ? undefined : rec; // written at the next check, before it decides
      log.error(`rollout: recording try ${tries} of pushed revision ${short(head)}: ${(e2 as Error).message}`);
    }
    if (last || this.stopped) {
      log.error(`rollout: pushed revision ${short(head)} ${why}; tried ${tries} time(s), it stays failed: \`tsalt rollout ${short(head)}\` acts on it`);
      return;
    }
    const delay = Math.min(1000 * 2 ** (tries - 1), (this.cfg?.poll_s ?? 60) * 1000);
    log.warn(`rollout: pushed revision ${short(head)} ${why}; trying again in ${Math.round(delay / 1000)} s (try ${tries + 1}/${PUSH_TRIES})`);
    this.pushTimer = setTimeout(() => void this.check(), delay);
    this.pushTimer.unref();
  }

  /**
   * The branch head `head`, recorded and not acted on: its tries as the store has them, if it is
   * to be tried again. It is while its tries are not over (PUSH_TRIES, or ended by an operator's
   * `tsalt rollout`/`rollback` on any master: stopPushTries()), and the desired revision is still
   * the one it was pushed over (or the push itself, made desired before the error): an operator
   * or another master that moved the fleet elsewhere is never overridden. A push failed by a
   * master that kept no record (an older tsalt) is not tried again.
   */
  private async pushToRetry(head: string): Promise<PushTries | undefined> {
    const { store, log } = this.d;
    let rec = parsePushTries(await store.getMeta(PUSH_TRIES_KEY));
    const mine = this.unsaved;
    if (mine) {
      // this master's last try, which the store could not record: unless the store has it (or its end) by now
      if (mine.sha === head && !(rec?.sha === head && (rec.end !== undefined || rec.tries >= mine.tries))) {
        await store.setMeta(PUSH_TRIES_KEY, JSON.stringify(mine));
        rec = mine;
      }
      this.unsaved = undefined;
    }
    if (rec?.sha !== head || rec.end !== undefined) return undefined;
    if (rec.tries >= PUSH_TRIES) return undefined;
    const desired = await store.desired();
    if (rec.over !== undefined && desired !== head && desired !== (rec.over ?? undefined)) {
      await this.endPushTries(head, `the desired revision moved to ${short(desired)} since`);
      return undefined;
    }
    log.info(`rollout: pushed revision ${short(head)} could not be acted on (${rec.tries} tr${rec.tries === 1 ? 'y' : 'ies'}, the last at ${rec.at}): trying again (try ${rec.tries + 1}/${PUSH_TRIES})`);
    return rec;
  }

  /** Whether the store's tries of pushed revision `sha` go on (not ended since pushToRetry() read them). */
  private async stillTried(sha: string): Promise<boolean> {
    const rec = parsePushTries(await this.d.store.getMeta(PUSH_TRIES_KEY));
    if (rec?.sha === sha && rec.end === undefined) return true;
    this.d.log.info(`rollout: pushed revision ${short(sha)} is not tried again: ${rec?.sha === sha ? rec.end : 'another push is tried'}`);
    return false;
  }

  /** The tries of pushed revision `sha` (if they are the store's current ones) end: `why`. Throws when the store does. */
  private async endPushTries(sha: string | undefined, why: string): Promise<void> {
    const rec = parsePushTries(await this.d.store.getMeta(PUSH_TRIES_KEY));
    if (!rec || rec.end !== undefined || (sha !== undefined && rec.sha !== sha)) return;
    await this.d.store.setMeta(PUSH_TRIES_KEY, JSON.stringify({ ...rec, end: why } satisfies PushTries));
    this.d.log.info(`rollout: pushed revision ${short(rec.sha)} is not tried again: ${why}`);
  }

  /**
   * An operator acts (`tsalt rollout`, `tsalt rollback`, on this master or another): a push that
   * failed is not tried again over it, by any master. Recorded in the store before anything
   * changes; a store that fails fails the command.
   */
  private async stopPushTries(why: string): Promise<void> {
    clearTimeout(this.pushTimer);
    this.unsaved = undefined;
    await this.endPushTries(undefined, why);
  }

  /**
   * The pins written with the move of the desired revision (store.moveDesired): the rollout's
   * targets that follow the desired revision (none assigned) are held on what they run (else
   * `previous`), as the rollout itself does when it starts. The rollout may first wait (for the
   * rollout lease, for agents to settle): a scheduled run in that gap took them to the new
   * revision ahead of their batch.
   */
  private async unreachedPins(previous: string): Promise<DesiredPin[]> {
    const cfg = this.cfg;
    if (!cfg) return [];
    return pinsOf(await this.d.jobs.resolveTargets(cfg.target, cfg.tgt_type).catch(() => [] as AgentRow[]), previous);
  }

  /** Agents that follow the desired revision (none assigned) are assigned what they run (else `previous`). */
  private async holdUnreached(targets: AgentRow[], previous: string): Promise<void> {
    for (const p of pinsOf(targets, previous)) await this.d.store.assign([p.id], p.sha);
  }

  /**
   * A push not made desired: the desired revision moved while it was handled (read `from`, now
   * another: an operator's rollout or rollback, on this master or another). The later command
   * stands; the push is refused with what moved it, and `tsalt rollout` still rolls it out.
   */
  private async overtaken(head: string, from: string | undefined): Promise<void> {
    const now = await this.d.store.desired();
    if (now === head) return; // made desired by someone else: dealt with
    const why = `the desired revision moved from ${short(from)} to ${short(now)} while this push was handled (an operator's rollout or rollback); not rolled out over it: \`tsalt rollout ${short(head)}\` does it`;
    await this.d.store.setRevisionOutcome(head, 'refused', why);
    this.d.log.warn(`rollout: pushed revision ${short(head)}: ${why}`);
  }

  private async record(sha: string): Promise<void> {
    const info = await this.d.source.commitInfo(sha).catch(() => undefined);
    await this.d.store.addRevision({ sha, date: info?.date ?? null, author: info?.author ?? null, subject: info?.subject ?? null });
  }

  /**
   * Runs `fn` holding ROLLOUT_LEASE (masters sharing a store; nothing to take on SQLite).
   * `refuse`: an operator's command, refused at once, naming the master holding it, before
   * anything changes; `wait`: a push or converge, which waits its turn as it would behind a
   * rollout of this master.
   */
  private async leased(mode: 'refuse' | 'wait', fn: () => Promise<number>): Promise<number> {
    const leases = this.d.leases;
    if (!leases) return fn();
    const take = async (): Promise<boolean> => {
      const p = this.leaseOps.then(() => leases.hold(ROLLOUT_LEASE));
      this.leaseOps = p.catch(() => undefined);
      return p;
    };
    for (let said = false; !(await take()); said = true) {
      if (this.stopped && mode === 'wait') return 3; // as run() when the master stops
      if (mode === 'refuse') {
        const holder = await leases.holderOf(ROLLOUT_LEASE);
        // nobody holds it: the store did not answer (Leases logged why), or it was given up just now
        if (!holder && !(await take())) throw new ReleaseError(`the ${ROLLOUT_LEASE} lease could not be taken (the store did not answer; see the master's log); nothing was changed`);
        if (holder) {
          throw new ReleaseError(
            `a rollout is in progress on master ${holder} (it holds the ${ROLLOUT_LEASE} lease): one rollout at a time for the fleet; wait for it to end (\`tsalt status\`) and try again`,
          );
        }
        break;
      }
      if (!said) this.d.log.info(`rollout: waiting for the ${ROLLOUT_LEASE} lease (held by ${(await leases.holderOf(ROLLOUT_LEASE)) ?? 'another master'})`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    this.leasedRuns++;
    try {
      return await fn();
    } finally {
      if (--this.leasedRuns === 0) {
        const p = this.leaseOps.then(() => (this.leasedRuns === 0 ? leases.release(ROLLOUT_LEASE) : undefined));
        this.leaseOps = p.catch(() => undefined);
        await p;
      }
    }
  }

  /** Rollouts run one at a time, in order. */
  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => {});
    return p;
  }

  /**
   * A rollout of a revision marked `rolling_out`, queued. Should it throw before it records how it
   * ended (the store failing in settle() or createRollout(), the lease wait failing...), the
   * revision is marked failed with the error, before the next queued rollout starts: it is not
   * shown rolling out forever. The error still goes to the caller. A rollout that waits (for the
   * rollout lease, for agents to settle) or that the master's stop ends (3) is not a failure:
   * the revision stays rolling out, a converge finishes it.
   */
  private enqueueRollingOut<T>(revision: string, fn: () => Promise<T>): Promise<T> {
    return this.enqueue(() => this.failsHonestly(revision, fn));
  }

  /** Runs `fn`, a rollout of `revision`; if it throws, see unfinished(). */
  private async failsHonestly<T>(revision: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      await this.unfinished(revision, e as Error);
      throw e;
    }
  }

  /**
   * A rollout of `revision` threw: still `rolling_out` (it recorded no outcome), it is failed,
   * the error its reason. Best effort: the store may be what failed; never throws.
   */
  private async unfinished(revision: string, e: Error): Promise<void> {
    const { store, log } = this.d;
    try {
      const row = await store.getRevision(revision);
      if (row && row.outcome !== 'rolling_out') return; // it ended (halted, rolled back...) before the error
      await store.setRevisionOutcome(revision, 'failed', `${ROLLOUT_UNFINISHED}${e.message}`);
    } catch (e2) {
      log.error(`rollout ${short(revision)}: recording that its rollout failed (${e.message}): ${(e2 as Error).message}; it shows as rolling out until a rollout or converge of it ends`);
    }
  }

  /**
   * A rollout whose run threw after its row was created: the row is closed as failed (not left
   * running: `tsalt status`, and convergence, which waits for a running rollout of the desired
   * revision on masters sharing a store). Best effort, never throws.
   */
  private async closeUnfinished(id: number, r: { revision: string }, e: Error): Promise<void> {
    const { store, log } = this.d;
    try {
      const row = await store.getRollout(id);
      if (row && row.status !== 'running') return; // it ended before the error
      await store.skipPendingBatches(id);
      for (const b of await store.rolloutBatches(id)) if (b.status === 'applying' || b.status === 'verifying') await store.updateRolloutBatch(id, b.batch, { status: 'failed' });
      await store.updateRollout(id, { status: 'failed', message: `${ROLLOUT_UNFINISHED}${e.message}` });
      this.d.events?.rolloutFinished('failed');
    } catch (e2) {
      log.error(`rollout ${short(r.revision)}: closing rollout ${id} as failed (${e.message}): ${(e2 as Error).message}; it shows as running until the master restarts`);
    }
  }

  // ---------------------------------------------------------------- operators' commands

  /** `tsalt rollout [REV] [--force]`: make REV (default: the branch head) desired and roll it out. */
  async rollout(rev: string | undefined, o: { force: boolean; user: string; say: Say }): Promise<number> {
    if (!this.cfg) throw new ReleaseError('no rollout: in master.yaml: nothing to roll out with (set rollout: target, batch, ...)');
    return this.leased('refuse', () => this.rolloutLeased(rev, o));
  }

  private async rolloutLeased(rev: string | undefined, o: { force: boolean; user: string; say: Say }): Promise<number> {
    const snap = await this.d.source.snapshot(rev); // resolves and checks (top.sls) before anything changes
    const sha = snap.revision;
    const desired = await this.d.store.desired();
    if (!o.force && desired && desired !== sha && !(await this.d.source.isAncestor(desired, sha))) {
      throw new ReleaseError(`revision ${short(sha)} does not descend from the desired revision ${short(desired)}; \`tsalt rollback ${short(sha)}\` goes back, --force rolls it out anyway`);
    }
    await this.stopPushTries(`\`tsalt rollout ${short(sha)}\` by ${o.user}`); // the operator acts: a push that failed is not tried again over it
    await this.record(sha);
    if (!(await this.d.store.moveDesired(desired, sha, desired ? await this.unreachedPins(desired) : []))) throw await this.movedUnder(desired);
    await this.d.store.setRevisionOutcome(sha, 'rolling_out');
    return this.enqueueRollingOut(sha, () => this.run({ revision: sha, previous: desired ?? null, reason: 'rollout', user: o.user, say: o.say }));
  }

  /** An operator's command that read the desired revision `from` and found it moved when it would move it: nothing changed. */
  private async movedUnder(from: string | undefined): Promise<ReleaseError> {
    const now = await this.d.store.desired();
    return new ReleaseError(`the desired revision moved from ${short(from)} to ${short(now)} while this command ran (a push acted on, or another operator's command); the desired revision was not changed: run it again`);
  }

  /** `tsalt rollback REV [target]`: REV becomes desired (or, with a target, those agents' revision) and is applied. */
  async rollback(rev: string, target: { target: string; tgt_type: z.infer<typeof TargetTypeSchema> } | undefined, o: { user: string; say: Say }): Promise<number> {
    return this.leased('refuse', () => this.rollbackLeased(rev, target, o));
  }

  private async rollbackLeased(rev: string, target: { target: string; tgt_type: z.infer<typeof TargetTypeSchema> } | undefined, o: { user: string; say: Say }): Promise<number> {
    const snap = await this.d.source.snapshot(rev);
    const sha = snap.revision;
    const desired = await this.d.store.desired();
    await this.stopPushTries(`\`tsalt rollback ${short(sha)}${target ? ` ${target.target}` : ''}\` by ${o.user}`); // the operator acts: a push that failed is not tried again over it
    await this.record(sha);
    let ids: string[] | undefined;
    if (target) {
      ids = (await this.d.jobs.resolveTargets(target.target, target.tgt_type)).map((a) => a.id);
    } else {
      if (!(await this.d.store.moveDesired(desired, sha))) throw await this.movedUnder(desired);
      if (desired && desired !== sha) await this.d.store.setRevisionOutcome(desired, 'rolled_back', `rolled back to ${short(sha)} by ${o.user}`);
    }
    return this.enqueue(() => this.run({ revision: sha, previous: desired ?? null, reason: 'rollback', user: o.user, say: o.say, ...(ids ? { only: ids } : {}) }));
  }

  // ---------------------------------------------------------------- convergence

  /** An agent connected (server's ready event): if it is behind its revision, it gets it. */
  onAgentReady(id: string): void {
    if (!this.cfg || this.stopped) return;
    this.converging.add(id);
    // agents reconnecting together converge together, through the batch rules
    clearTimeout(this.convergeTimer);
    this.convergeTimer = setTimeout(() => void this.flushConverge().catch((e: Error) => this.d.log.warn(`rollout: converging agents: ${e.message}`)), 500);
    this.convergeTimer.unref();
  }

  private async convergeAll(): Promise<void> {
    // agents on other masters as the store says now (the cached set may predate their connection)
    await this.d.agents.refresh?.().catch(() => undefined);
    for (const a of await this.d.store.listAgents()) if (a.key_state === 'accepted' && this.d.agents.ready(a.id)) this.onAgentReady(a.id);
  }

  private async flushConverge(): Promise<void> {
    const ids = [...this.converging];
    this.converging.clear();
    const desired = await this.desired();
    if (!desired) return;
    const behind = await this.behindCheck(desired);
    const rows = new Map((await this.d.store.listAgents()).map((a) => [a.id, a]));
    if (!ids.some((id) => behind(rows.get(id)))) return;
    // a converge finishes a revision left rolling out (the first revision, a master restarted
    // mid-rollout), so its failure is that revision's; only once it holds the rollout lease: on
    // masters sharing a store, one waiting for it must not fail another master's running rollout
    const run = () => this.failsHonestly(desired, () => this.run({ revision: desired, previous: null, reason: 'converge', user: 'converge', only: ids }));
    void this.enqueue(() => this.leased('wait', run)).catch((e: Error) =>
      this.d.log.warn(`rollout ${short(desired)}: converging ${ids.length} agent(s): ${e.message}; they are converged when they next connect`),
    );
  }

  /** Which agents are behind `desired` (see behind()). */
  private async behindCheck(desired: string): Promise<(a: AgentRow | undefined) => boolean> {
    // the revision's rollout halted: agents it did not reach stay where they are
    const last = (await this.d.store.listRollouts(20)).find((r) => r.revision === desired && r.reason !== 'converge');
    // another master's rollout of it is running: it reaches these agents in its batches
    if (last && last.status === 'running' && this.d.leases && this.current === undefined) return () => false;
    const held = !!last && (last.status === 'halted' || last.status === 'rolled_back');
    return (a) => behind(a, desired, held);
  }

  // ---------------------------------------------------------------- one rollout

  private async settle(): Promise<void> {
    const end = this.startedAt + this.d.settle_s * 1000;
    const back = async () => (await this.d.store.listKeys()).every((a) => a.key_state !== 'accepted' || this.d.agents.ready(a.id));
    while (!this.stopped && Date.now() < end && !(await back())) await new Promise((r) => setTimeout(r, 200));
  }

  private async run(r: { revision: string; previous: string | null; reason: 'push' | 'rollout' | 'rollback' | 'converge'; user: string; say?: Say; only?: string[] }): Promise<number> {
    const { store, log } = this.d;
    const cfg = this.cfg;
    const say: Say = (msg, level = 'info') => {
      log[level](`rollout ${short(r.revision)}: ${msg}`);
      try {
        r.say?.(msg, level);
      } catch {
        // a CLI that went away does not stop the rollout
      }
    };
    // a master that just started waits for its agents (a push made while it was down)
    await this.settle();
    if (this.stopped) return 3;
    let targets: AgentRow[];
    try {
      targets = cfg ? await this.d.jobs.resolveTargets(cfg.target, cfg.tgt_type) : (await store.listAgents()).filter((a) => a.key_state === 'accepted');
    } catch (e) {
      say(`no agents to roll out to: ${(e as Error).message}`, 'warn');
      return 1;
    }
    if (r.only) {
      const only = new Set(r.only);
      // a targeted rollback reaches the agents named, in the rollout's target or not
      const pool = r.reason === 'rollback' ? (await store.listAgents()).filter((a) => a.key_state === 'accepted') : targets;
      targets = pool.filter((a) => only.has(a.id));
    }
    if (r.reason === 'converge') {
      const behind = await this.behindCheck(r.revision);
      targets = targets.filter((a) => behind(a));
    }
    if (!targets.length) {
      if (r.reason !== 'converge') say('no agent targeted');
      if (r.reason === 'push' || r.reason === 'rollout') await store.setRevisionOutcome(r.revision, 'rolled_out', 'no agent targeted');
      return 0;
    }
    const id = await store.createRollout({ revision: r.revision, previous: r.previous, reason: r.reason, started_by: r.user });
    this.current = id;
    try {
      return await this.batches(id, r, targets, say);
    } catch (e) {
      await this.closeUnfinished(id, r, e as Error);
      throw e;
    } finally {
      this.current = undefined;
    }
  }

  /** The rollout's groups in order, each named for the batch record (`tsalt status`, the console). */
  private async groups(targets: AgentRow[]): Promise<{ name: string; agents: AgentRow[] }[]> {
    const cfg = this.cfg;
    if (cfg?.serial_by) {
      const byId = new Map(targets.map((a) => [a.id, a]));
      const grain = cfg.serial_by;
      return groupByGrain(targets, grain).map((ids) => {
        const v = byId.get(ids[0]!)!.grains[grain];
        const value = Array.isArray(v) ? (v.length ? String([...v].map(String).sort()[0]) : '') : v === undefined || v === null ? '' : String(v);
        return { name: value ? `${grain}:${value}` : `no ${grain}`, agents: ids.map((i) => byId.get(i)!) };
      });
    }
    if (cfg?.groups) {
      const inTargets = new Set(targets.map((a) => a.id));
      const out: { name: string; agents: AgentRow[] }[] = [];
      for (const g of cfg.groups) {
        const m = await this.d.jobs.resolveTargets(g, 'compound').catch(() => [] as AgentRow[]);
        out.push({ name: g, agents: m.filter((a) => inTargets.has(a.id)) });
      }
      out.push({ name: 'in no group', agents: targets }); // agents in no group go last (planBatches places each agent once)
      return out;
    }
    return [{ name: cfg ? cfg.target : '*', agents: targets }];
  }

  private async batches(id: number, r: Parameters<Releaser['run']>[0], targets: AgentRow[], say: Say): Promise<number> {
    const { store } = this.d;
    const cfg = this.cfg;
    const groups = await this.groups(targets);
    const batches = planBatches(
      groups.map((g) => g.agents.map((a) => ({ id: a.id, roles: rolesOf(a.grains) }))),
      cfg?.batch ?? '100%',
    );
    await store.updateRollout(id, { batches: batches.length });
    // each batch's group: the first group holding its agents (planBatches places an agent in the first)
    const groupOf = (agent: string) => Math.max(0, groups.findIndex((g) => g.agents.some((a) => a.id === agent)));
    await store.addRolloutBatches(
      id,
      batches.map((b) => {
        const g = groupOf(b[0]!);
        return { group_num: g + 1, group_name: groups[g]!.name, agents: b };
      }),
    );
    if (r.reason === 'push' || r.reason === 'rollout') {
      // agents the rollout has not reached keep what they run (scheduled runs included)
      if (r.previous) await this.holdUnreached(targets, r.previous);
    } else if (r.reason === 'rollback' && !r.only) {
      // the whole fleet follows the desired revision again; the offline agents converge to it
      await store.assign(targets.map((a) => a.id), null);
    }
    say(`${r.reason} by ${r.user}: ${targets.length} agent(s) in ${batches.length} batch(es): ${batches.map((b) => b.join(',')).join(' | ')}`);
    const touched: string[] = [];
    const jids: string[] = [];
    let failedAny = false;
    for (let k = 0; k < batches.length; k++) {
      if (this.stopped) return 3;
      await this.d.agents.refresh?.().catch(() => undefined);
      const online = batches[k]!.filter((a) => this.d.agents.ready(a));
      const offline = batches[k]!.filter((a) => !this.d.agents.ready(a));
      await store.updateRollout(id, { batch: k + 1 });
      if (offline.length) say(`batch ${k + 1}/${batches.length}: ${offline.join(', ')} offline: they get it when they connect`);
      if (!online.length) {
        await store.updateRolloutBatch(id, k + 1, { status: 'skipped', offline });
        continue;
      }
      await store.updateRolloutBatch(id, k + 1, { status: 'applying', offline });
      await store.assign(online, r.revision);
      touched.push(...online);
      await store.updateRollout(id, { agents: touched });
      const { statuses, jid } = await this.applyTo(online, r.revision, r.user, cfg?.timeout_s ?? this.d.timeout_s);
      if (jid) jids.push(jid);
      await store.updateRollout(id, { jids });
      const failed = online.filter((a) => statuses.get(a) !== 'done');
      let why = failed.length ? `${failed.map((a) => `${a} ${statuses.get(a) ?? 'not run'}`).join(', ')}` : undefined;
      if (!why && cfg?.verify.length) {
        await store.updateRolloutBatch(id, k + 1, { status: 'verifying', ...(jid ? { jid } : {}) });
        // each check's record is written in the order the checks report (start, then each try)
        let writes: Promise<void> = Promise.resolve();
        why = await runVerify(
          cfg.verify,
          online,
          this.d.jobs,
          (m, l) => say(`batch ${k + 1}/${batches.length}: ${m}`, l),
          (p) => {
            writes = writes.then(() => store.putVerifyResult(id, k + 1, p)).catch((e: Error) => this.d.log.warn(`rollout ${short(r.revision)}: recording a verify check: ${e.message}`));
          },
        );
        await writes;
      }
      await store.updateRolloutBatch(id, k + 1, { status: why ? 'failed' : 'done', ...(jid ? { jid } : {}) });
      if (!why) {
        say(`batch ${k + 1}/${batches.length} (${online.join(', ')}) done`);
        continue;
      }
      failedAny = true;
      const pct = ((failed.length || online.length) / online.length) * 100;
      say(`batch ${k + 1}/${batches.length} (${online.join(', ')}) failed: ${why}`, 'warn');
      const stop = (cfg?.stop_on_failure ?? true) && (cfg?.max_fail_percent === undefined || pct > cfg.max_fail_percent || !failed.length);
      if (stop) return this.onStop(id, r, targets, touched, `batch ${k + 1}/${batches.length}: ${why}`, say);
    }
    // done: every target follows the desired revision, the offline ones get it when they connect
    if (r.reason === 'push' || r.reason === 'rollout') await store.assign(targets.map((a) => a.id), null);
    const status = failedAny ? 'failed' : 'succeeded';
    await store.updateRollout(id, { status, message: failedAny ? 'some agents failed (within max_fail_percent)' : null });
    const outcome = (await store.getRevision(r.revision))?.outcome;
    // a converge finishes what a first start or a restarted master left rolling out
    if (r.reason === 'push' || r.reason === 'rollout' || (r.reason === 'converge' && outcome === 'rolling_out')) await store.setRevisionOutcome(r.revision, failedAny ? 'failed' : 'rolled_out');
    say(`${r.reason} of ${short(r.revision)} ${status}: ${touched.length} agent(s)`, failedAny ? 'warn' : 'info');
    this.d.events?.rolloutFinished(status);
    return failedAny ? 2 : 0;
  }

  /** A batch failed past the threshold. */
  private async onStop(id: number, r: Parameters<Releaser['run']>[0], targets: AgentRow[], touched: string[], why: string, say: Say): Promise<number> {
    const { store } = this.d;
    const cfg = this.cfg;
    const untouched = targets.map((a) => a.id).filter((a) => !touched.includes(a));
    await store.skipPendingBatches(id);
    if (cfg?.on_failure === 'rollback' && r.previous && (r.reason === 'push' || r.reason === 'rollout')) {
      if (!(await store.moveDesired(r.revision, r.previous))) {
        // an operator moved the fleet meanwhile: their command stands (its own run follows this one)
        say(`stopping: ${why}; not rolled back: the desired revision is no longer ${short(r.revision)} (${short(await store.desired())})`, 'warn');
        await store.setRevisionOutcome(r.revision, 'failed', why);
        await store.updateRollout(id, { status: 'halted', message: `${why}; not rolled back: the desired revision moved meanwhile` });
        this.d.events?.rolloutFinished('halted');
        return 2;
      }
      say(`stopping: ${why}; rolling back ${touched.join(', ')} to ${short(r.previous)}`, 'warn');
      await store.assign(targets.map((a) => a.id), null);
      const { statuses } = await this.applyTo(touched, r.previous, `rollback:${r.user}`, cfg.timeout_s);
      const bad = touched.filter((a) => statuses.get(a) !== 'done');
      await store.setRevisionOutcome(r.revision, 'rolled_back', why);
      await store.updateRollout(id, { status: 'rolled_back', message: `${why}; rolled back to ${short(r.previous)}${bad.length ? ` (failed on ${bad.join(', ')})` : ''}` });
      say(`rolled back to ${short(r.previous)}${bad.length ? `; the rollback failed on ${bad.join(', ')}` : ''}`, 'warn');
      this.d.events?.rolloutFinished('rolled_back');
      return 2;
    }
    say(`halted: ${why}; ${untouched.length ? `${untouched.join(', ')} not started (they stay on their revision)` : 'no agent left'}`, 'warn');
    if (r.reason === 'push' || r.reason === 'rollout') await store.setRevisionOutcome(r.revision, 'failed', why);
    await store.updateRollout(id, { status: 'halted', message: why });
    this.d.events?.rolloutFinished('halted');
    return 2;
  }

  /** One job for a batch: the revision to these agents, waiting for any run they are busy with. */
  private async applyTo(ids: string[], revision: string, user: string, timeout_s: number): Promise<{ statuses: Map<string, AgentJobStatus>; jid?: string }> {
    const statuses = new Map<string, AgentJobStatus>();
    let jid: string | undefined;
    await this.d.jobs.start(
      { type: 'apply', target: ids.join(','), tgt_type: 'list', sls: [], test: false, timeout_s, user: user === 'push' || user === 'converge' ? 'rollout' : user, revision },
      (ev) => {
        if (ev.type === 'job_started') jid = ev.jid;
        if (ev.type === 'agent_done') statuses.set(ev.agent, ev.status);
        if (ev.type === 'error') this.d.log.warn(`rollout ${short(revision)}: ${ev.message}`);
      },
      { intent: 'intentional', waitIdle: true },
    );
    return { statuses, ...(jid ? { jid } : {}) };
  }
}

/** Behind: its revision (assigned, else desired) is not what it last applied, and was not tried and failed; `held`: the desired revision's rollout halted. */
function behind(a: AgentRow | undefined, desired: string, held: boolean): boolean {
  if (!a || a.key_state !== 'accepted') return false;
  const want = a.revision_assigned ?? desired;
  if (want !== desired) return false; // held on another revision by a halted rollout or a targeted rollback
  if (a.revision_applied === want) return false;
  if (a.revision_attempted === want && a.attempt_status === 'failed') return false; // a failing state: not retried in a loop
  return !held;
}
