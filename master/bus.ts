/**
 * The masters' bus: events between masters that share one store (master/bus-events.ts), so that
 * a job started on one master reaches agents connected to another, their returns reach the job's
 * owner, and a key accepted on one master lets in a connection waiting on another.
 *
 * Delivery is at most once: an event may be lost (a dropped connection). A bus that may have lost
 * events says so (the gap handlers), and the master then re-reads what matters from the store,
 * which is the truth; events only save it from polling.
 *
 * Which bus a master uses follows from its store (BUS_FOR_STORE): SQLite is one master's file, so
 * its bus is in-process; PostgreSQL carries the events itself (LISTEN/NOTIFY, master/bus-pg.ts).
 */
import type { Logger } from '../core/log.js';
import type { BusEvent, MasterId } from './bus-events.js';
import type { Bound } from './stop-deadline.js';

export type BusListener = (ev: BusEvent) => void;

export interface Bus {
  /** this master's id: events it publishes carry it, and it never receives its own */
  readonly self: MasterId;
  /** Sends an event to the other masters (queued; never throws). */
  publish(ev: BusEvent): void;
  /** Events from the other masters, parsed. Returns the unsubscribe function. */
  subscribe(listener: BusListener): () => void;
  /** Called after events may have been lost (the bus's connection came back). */
  onGap(fn: () => void): void;
  /** Everything published so far has been handed on (tests, orderly shutdown). */
  flush(): Promise<void>;
  /** bound: on a master's stop, what may wait on the store (sending what is left, ending a connection) */
  close(bound?: Bound): Promise<void>;
}

/**
 * In-process: one master alone (SQLite), or several masters in one process sharing a hub (tests).
 * Events are delivered on a later tick, as a network bus would, never inside publish().
 */
export class LocalBus implements Bus {
  private readonly listeners = new Set<BusListener>();
  private pending = Promise.resolve();

  constructor(
    readonly self: MasterId,
    private readonly hub: Set<LocalBus> = new Set(),
  ) {
    hub.add(this);
  }

  publish(ev: BusEvent): void {
    for (const other of this.hub) {
      if (other === this) continue;
      this.pending = this.pending.then(() => other.deliver(ev));
    }
  }

  private deliver(ev: BusEvent): void {
    for (const l of this.listeners) {
      try {
        l(ev);
      } catch {
        // a listener's failure is its own (the router logs it)
      }
    }
  }

  subscribe(listener: BusListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onGap(): void {
    // in-process delivery loses nothing
  }

  flush(): Promise<void> {
    return this.pending;
  }

  async close(): Promise<void> {
    this.hub.delete(this);
    this.listeners.clear();
  }
}

/** What a bus is made from: the store's kind and its location (the postgres:// URL). */
export interface BusOptions {
  self: MasterId;
  /** the store's URL (postgres) or file (sqlite) */
  location: string;
  log: Logger;
}

export type StoreKind = 'sqlite' | 'postgres';

/** The bus for each kind of store. PgBus is loaded only when used (the pg client stays off the SQLite path). */
export const BUS_FOR_STORE: Record<StoreKind, (o: BusOptions) => Promise<Bus>> = {
  sqlite: async (o) => new LocalBus(o.self),
  postgres: async (o) => {
    const { PgBus } = await import('./bus-pg.js');
    const bus = new PgBus(o.location, o.self, o.log);
    await bus.start();
    return bus;
  },
};

export function openBus(kind: StoreKind, o: BusOptions): Promise<Bus> {
  return BUS_FOR_STORE[kind](o);
}
