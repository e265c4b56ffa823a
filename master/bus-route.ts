/**
 * Routing between masters that share one store: the jobs' RemoteAgents (who holds which agent,
 * events out) and the bus's dispatch table (events in).
 *
 *   owner m1                         holder m2
 *   start: targets every agent with a live session anywhere
 *   dispatch {jid, to: m2, agents} ─▶ builds each job from the store, sends it
 *                                     the agent's return is stored here, once (atomic finish)
 *   stream results from the store ◀── progress {jid, agents}  (results stored here)
 *   finish from the store ◀───────── returned {jid, agents}
 *   kill {jid} ─────────────────────▶ job_kill to its agents
 *   key {accepted, agents} ─────────▶ a pending connection here is accepted (or dropped)
 *   call {id, to: m2} ──────────────▶ calls its agents (master/calls-route.ts), answers stored
 *   reads the answers from the store ◀── answered {id, to: m1}
 *
 * After a gap (the bus connection came back), this master re-reads the store: returns it missed,
 * key changes for its connections, and asks the owners for dispatches it missed (resync).
 */
import type { Logger } from '../core/log.js';
import { dispatchBusEvent, type BusHandlers } from './bus-events.js';
import { openBus, type Bus } from './bus.js';
import type { CallRoutes, FleetCalls } from './calls-route.js';
import type { JobManager, RemoteAgents } from './jobs.js';
import { Presence, type PresenceStore } from './presence.js';
import type { AgentServer } from './server.js';
import type { KeyState, Store } from './store-api.js';
import type { Bound } from './stop-deadline.js';

/** What the router reads from the store beyond presence: keys, to re-check connections after a gap. */
export interface RouteStore extends Pick<PresenceStore, 'liveSessions'> {
  getAgent(id: string): { key_state: KeyState } | undefined | Promise<{ key_state: KeyState } | undefined>;
}

export interface RouterOptions {
  bus: Bus;
  presence: Presence;
  store: RouteStore;
  log: Logger;
}

export class Router implements RemoteAgents, CallRoutes {
  private jobs: JobManager | undefined;
  private server: AgentServer | undefined;
  private calls: FleetCalls | undefined;
  private readonly unsubscribe: () => void;

  constructor(private readonly o: RouterOptions) {
    const table = this.handlers();
    this.unsubscribe = o.bus.subscribe((ev) => {
      void Promise.resolve()
        .then(() => dispatchBusEvent(table, ev))
        .catch((e: Error) => o.log.error(`bus: '${ev.type}' from ${ev.from}: ${e.message}`));
    });
    o.bus.onGap(() => void this.resync().catch((e: Error) => o.log.error(`bus: re-sync failed: ${e.message}`)));
  }

  /** The jobs, the agent server and the calls are made after the router (they are given it). */
  attach(jobs: JobManager, server: AgentServer, calls?: FleetCalls): void {
    this.jobs = jobs;
    this.server = server;
    this.calls = calls;
  }

  get self(): string {
    return this.o.bus.self;
  }

  // ------------------------------------------------------------ RemoteAgents (events out)

  elsewhere(): Promise<Map<string, string>> {
    return this.o.presence.elsewhere();
  }

  holderOf(id: string): Promise<string | undefined> {
    return this.o.presence.holderOf(id);
  }

  dispatch(jid: string, to: string, agents: string[], pillar?: Record<string, unknown>, waitIdle?: boolean): void {
    this.o.bus.publish({ type: 'dispatch', from: this.self, to, jid, agents, ...(pillar ? { pillar } : {}), ...(waitIdle ? { wait_idle: true as const } : {}) });
  }

  returned(jid: string, agents: string[]): void {
    this.o.bus.publish({ type: 'returned', from: this.self, jid, agents });
  }

  kill(jid: string, by: string): void {
    this.o.bus.publish({ type: 'kill', from: this.self, jid, by });
  }

  progress(jid: string, agents: string[]): void {
    this.o.bus.publish({ type: 'progress', from: this.self, jid, agents });
  }

  /** `tsalt keys accept/reject/delete` here: masters holding these agents' connections act too. */
  keysChanged(state: 'accepted' | 'rejected' | 'deleted', agents: string[]): void {
    if (agents.length) this.o.bus.publish({ type: 'key', from: this.self, state, agents });
  }

  /** Master `to` holds the agents of call `id` (its request is in the store). */
  askCall(to: string, id: string): void {
    this.o.bus.publish({ type: 'call', from: this.self, to, id });
  }

  /** Answers to call `id`, which master `to` asked, are in the store. */
  callAnswered(to: string, id: string): void {
    this.o.bus.publish({ type: 'answered', from: this.self, to, id });
  }

  // ------------------------------------------------------------ events in

  private handlers(): BusHandlers {
    return {
      dispatch: async (ev) => {
        if (ev.to !== this.self) return;
        await this.jobs?.runDispatched(ev.jid, ev.agents, ev.pillar, ev.wait_idle === true);
      },
      returned: (ev) => this.jobs?.remoteReturned(ev.jid, ev.agents),
      progress: (ev) => this.jobs?.remoteProgress(ev.jid, ev.agents),
      kill: (ev) => this.jobs?.remoteKill(ev.jid),
      key: (ev) => {
        for (const id of ev.agents) {
          if (ev.state === 'accepted') this.server?.promote(id);
          else this.server?.drop(id, ev.state);
        }
      },
      resync: (ev) => this.jobs?.redispatchTo(ev.from),
      call: (ev) => (ev.to === this.self ? this.calls?.onAsked(ev.id) : undefined),
      answered: (ev) => (ev.to === this.self ? this.calls?.onAnswered(ev.id) : undefined),
    };
  }

  /** After a gap: returns, answers and key changes from the store, calls missed, and the owners asked for missed dispatches. */
  async resync(): Promise<void> {
    await this.jobs?.resync();
    await this.calls?.resync();
    const server = this.server;
    if (server) {
      for (const id of server.connectedIds()) {
        const conn = server.get(id);
        if (!conn) continue;
        const row = await this.o.store.getAgent(id);
        if (!row) server.drop(id, 'deleted');
        else if (row.key_state === 'rejected') server.drop(id, 'rejected');
        else if (row.key_state === 'accepted' && conn.level !== 'accepted') server.promote(id);
      }
    }
    this.o.bus.publish({ type: 'resync', from: this.self });
  }

  close(): void {
    this.unsubscribe();
  }
}

/** A master's part in a group of masters: its bus, and with a shared store its presence and router. */
export interface Routing {
  bus: Bus;
  /** with a store other masters share (PostgreSQL); absent with SQLite (one master) */
  presence?: Presence;
  router?: Router;
  /** bound: a master stopping (its store calls within a deadline: master/stop-deadline.ts) */
  close(bound?: Bound): Promise<void>;
}

/**
 * The bus for the store's kind; with a shared store, presence (heartbeat, sessions) and the
 * router too. A SQLite master gets neither: nothing to route, nothing more written per agent.
 */
export async function openRouting(o: { store: Store; location: string; self: string; url: () => string; heartbeat_s: number; log: Logger }): Promise<Routing> {
  const bus = await openBus(o.store.kind, { self: o.self, location: o.location, log: o.log });
  if (o.store.kind !== 'postgres') return { bus, close: (bound) => bus.close(bound) };
  const presence = new Presence({ store: o.store, self: o.self, url: o.url, heartbeat_s: o.heartbeat_s, log: o.log });
  const router = new Router({ bus, presence, store: o.store, log: o.log });
  o.log.info(`master ${o.self}: routing jobs, returns and key changes with the other masters of ${o.store.label}`);
  return {
    bus,
    presence,
    router,
    async close(bound) {
      router.close();
      await presence.stop(bound);
      await bus.close(bound);
    },
  };
}
