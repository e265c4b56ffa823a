/**
 * Who holds which agent, among masters sharing one store. Each master records a heartbeat in
 * `masters` every master_heartbeat_s; an agent that says hello on a master claims its session
 * (`sessions`: one row per agent, the master holding its connection), and loses it when the
 * connection ends. A master silent for DEAD_AFTER_BEATS heartbeats is dead: its sessions no
 * longer count (its agents are offline until they connect to another master, which claims them).
 *
 * Store writes here are bookkeeping: a failing store is logged, never thrown at the caller.
 */
import type { Logger } from '../core/log.js';
import type { MasterId } from './bus-events.js';
import type { Store } from './store-api.js';
import { unbounded, type Bound } from './stop-deadline.js';

/** A master is dead after this many heartbeat intervals without one. */
export const DEAD_AFTER_BEATS = 3;

/** The store's methods for masters and sessions (schema version 6). */
export type PresenceStore = Pick<
  Store,
  'heartbeatMaster' | 'liveMasters' | 'forgetMaster' | 'claimSession' | 'releaseSession' | 'voidSessions' | 'liveSessions' | 'sessionOf' | 'acquireLease' | 'releaseLease' | 'leaseOf'
>;

export interface PresenceOptions {
  store: PresenceStore;
  self: MasterId;
  /** where agents reach this master (known once it listens) */
  url: () => string;
  heartbeat_s: number;
  log: Logger;
}

export class Presence {
  private timer: NodeJS.Timeout | undefined;
  private readonly o: PresenceOptions;
  /** each agent's claims and releases, in the order this master issued them */
  private readonly perAgent = new Map<string, Promise<void>>();

  constructor(o: PresenceOptions) {
    this.o = o;
  }

  get self(): MasterId {
    return this.o.self;
  }

  /** How old a heartbeat may be for its master to count as alive. */
  get liveWithinS(): number {
    return this.o.heartbeat_s * DEAD_AFTER_BEATS;
  }

  /** Sessions left by this master's previous run are void; the first heartbeat; the timer. */
  async start(): Promise<void> {
    const n = await this.o.store.voidSessions(this.o.self);
    if (n) this.o.log.info(`presence: ${n} session(s) of this master's previous run voided`);
    await this.o.store.heartbeatMaster(this.o.self, this.o.url());
    this.timer = setInterval(() => void this.safely('heartbeat', () => this.o.store.heartbeatMaster(this.o.self, this.o.url())), this.o.heartbeat_s * 1000);
    this.timer.unref();
  }

  /** An agent said hello here (accepted): its session is here. */
  claim(agentId: string): Promise<void> {
    return this.inOrder(agentId, `claiming ${agentId}'s session`, () => this.o.store.claimSession(agentId, this.o.self));
  }

  /** An agent's connection here ended. */
  release(agentId: string): Promise<void> {
    return this.inOrder(agentId, `releasing ${agentId}'s session`, () => this.o.store.releaseSession(agentId, this.o.self));
  }

  /**
   * Runs after this agent's earlier claim or release. Issued one after the other, they would
   * still race on a pool of store connections: an old connection's release landing after the
   * reconnected agent's claim left it connected here and offline for every other master.
   */
  private inOrder(agentId: string, what: string, fn: () => Promise<unknown>): Promise<void> {
    const next = (this.perAgent.get(agentId) ?? Promise.resolve()).then(() => this.safely(what, fn));
    this.perAgent.set(agentId, next);
    void next.then(() => {
      if (this.perAgent.get(agentId) === next) this.perAgent.delete(agentId);
    });
    return next;
  }

  /** Agents held by other live masters: agent id -> master id. */
  async elsewhere(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const s of await this.o.store.liveSessions(this.liveWithinS)) if (s.master_id !== this.o.self) out.set(s.agent_id, s.master_id);
    return out;
  }

  /** The other live master holding this agent, if any. */
  async holderOf(agentId: string): Promise<string | undefined> {
    const s = await this.o.store.sessionOf(agentId, this.liveWithinS);
    return s && s.master_id !== this.o.self ? s.master_id : undefined;
  }

  /** Leaves the masters table (and this master's sessions with it), within `bound` (a master stopping). */
  async stop(bound: Bound = unbounded): Promise<void> {
    clearInterval(this.timer);
    await this.safely('leaving', () => bound(this.o.store.forgetMaster(this.o.self)));
  }

  private async safely(what: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
    } catch (e) {
      this.o.log.error(`presence: ${what} failed: ${(e as Error).message}`);
    }
  }
}
