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

/** A master is dead after this many heartbeat intervals without one. */
export const DEAD_AFTER_BEATS = 3;

export interface MasterRow {
  id: string;
  /** where its agents connect (wss://host:port) */
  url: string;
  started: string;
  /** its last heartbeat */
  seen: string;
}

export interface SessionRow {
  agent_id: string;
  master_id: string;
  since: string;
}

type Maybe<T> = T | Promise<T>;

/** The store's methods for masters, sessions and leases (schema migration 5). */
export interface PresenceStore {
  /** Records that master `id` is alive now (inserted on its first beat). */
  heartbeatMaster(id: string, url: string): Maybe<void>;
  /** Masters whose last heartbeat is at most `within_s` old. */
  liveMasters(within_s: number): Maybe<MasterRow[]>;
  /** A master that stops in order: its row goes (its sessions with it). */
  forgetMaster(id: string): Maybe<void>;
  /** The agent's connection is on `master` now (taking it over from any other master). */
  claimSession(agentId: string, master: string): Maybe<void>;
  /** The agent's connection on `master` ended; false when another master holds it by now. */
  releaseSession(agentId: string, master: string): Maybe<boolean>;
  /** Every session `master` held (its previous run's, at start). */
  voidSessions(master: string): Maybe<number>;
  /** Sessions held by masters whose heartbeat is at most `within_s` old. */
  liveSessions(within_s: number): Maybe<SessionRow[]>;
  /** The agent's session, if its master's heartbeat is at most `within_s` old. */
  sessionOf(agentId: string, within_s: number): Maybe<SessionRow | undefined>;
  /**
   * Takes lease `name` for `holder` for `ttl_s` seconds, atomically: granted when nobody holds
   * it, when `holder` holds it already (renewed), or when the holder's lease expired.
   */
  acquireLease(name: string, holder: string, ttl_s: number): Maybe<boolean>;
  /** Gives lease `name` up, if `holder` holds it; false otherwise. */
  releaseLease(name: string, holder: string): Maybe<boolean>;
}

export interface PresenceOptions {
  store: PresenceStore;
  self: MasterId;
  /** where agents reach this master */
  url: string;
  heartbeat_s: number;
  log: Logger;
}

export class Presence {
  private timer: NodeJS.Timeout | undefined;
  private readonly o: PresenceOptions;

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
    await this.o.store.heartbeatMaster(this.o.self, this.o.url);
    this.timer = setInterval(() => void this.safely('heartbeat', () => this.o.store.heartbeatMaster(this.o.self, this.o.url)), this.o.heartbeat_s * 1000);
    this.timer.unref();
  }

  /** An agent said hello here (accepted): its session is here. */
  claim(agentId: string): Promise<void> {
    return this.safely(`claiming ${agentId}'s session`, () => this.o.store.claimSession(agentId, this.o.self));
  }

  /** An agent's connection here ended. */
  release(agentId: string): Promise<void> {
    return this.safely(`releasing ${agentId}'s session`, () => this.o.store.releaseSession(agentId, this.o.self));
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

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.safely('leaving', () => this.o.store.forgetMaster(this.o.self));
  }

  private async safely(what: string, fn: () => Maybe<unknown>): Promise<void> {
    try {
      await fn();
    } catch (e) {
      this.o.log.error(`presence: ${what} failed: ${(e as Error).message}`);
    }
  }
}
