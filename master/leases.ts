/**
 * Work that must happen once for the fleet, not once per master (a schedule's runs, acting on a
 * push), is done by the master holding its lease in the shared store. A master takes a free or
 * expired lease and renews it every third of its TTL for as long as it lives, so the work stays
 * with one master; a master that dies stops renewing and, once the TTL has passed, the next
 * master that asks takes the lease over. A master on SQLite (alone on its store) takes none.
 *
 * A store that fails is logged and counts as "not held": a master that cannot reach the store
 * must not act as if it were the only one.
 */
import type { Logger } from '../core/log.js';
import type { Store } from './store-api.js';
import { unbounded, type Bound } from './stop-deadline.js';

/** The store's lease methods (schema version 6, both stores). */
export type LeaseStore = Pick<Store, 'acquireLease' | 'releaseLease' | 'leaseOf'>;

export interface LeasesOptions {
  store: LeaseStore;
  /** this master's id */
  holder: string;
  /** a lease not renewed for this long is free again */
  ttl_s: number;
  log: Logger;
}

export class Leases {
  private readonly held = new Set<string>();
  /** leases asked for at every renewal even when not held, with what to do when gained */
  private readonly wanted = new Map<string, () => void>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly o: LeasesOptions) {}

  get holder(): string {
    return this.o.holder;
  }

  /** Starts renewing (every ttl/3). */
  start(): void {
    this.stopped = false;
    clearInterval(this.timer);
    this.timer = setInterval(() => void this.renewAll(), Math.max(100, (this.o.ttl_s * 1000) / 3));
    this.timer.unref();
  }

  /** Whether this master holds `name` now, taking it when free or expired; once held it is renewed. */
  async hold(name: string): Promise<boolean> {
    if (this.stopped) return false;
    const was = this.held.has(name);
    let ok = false;
    try {
      ok = await this.o.store.acquireLease(name, this.o.holder, this.o.ttl_s);
    } catch (e) {
      this.o.log.warn(`lease ${name}: the store did not answer (${(e as Error).message}); not acting on it`);
    }
    if (ok) {
      this.held.add(name);
      if (!was) {
        this.o.log.info(`lease ${name}: taken by this master (${this.o.holder})`);
        const gained = this.wanted.get(name);
        if (gained) {
          try {
            gained();
          } catch (e) {
            this.o.log.error(`lease ${name}: ${(e as Error).message}`);
          }
        }
      }
    } else if (was) {
      this.held.delete(name);
      this.o.log.warn(`lease ${name}: lost (another master holds it now)`);
    }
    return ok;
  }

  /** Ask for `name` now and at every renewal; `onGained` runs each time this master takes it. */
  want(name: string, onGained: () => void): void {
    this.wanted.set(name, onGained);
    void this.hold(name);
  }

  /** Whether this master held `name` at its last try (no store round trip). */
  holds(name: string): boolean {
    return this.held.has(name);
  }

  /** Gives `name` up now (work done): another master may take it at once. Not wanted any more. */
  async release(name: string): Promise<void> {
    this.wanted.delete(name);
    if (!this.held.delete(name)) return;
    try {
      await this.o.store.releaseLease(name, this.o.holder);
      this.o.log.info(`lease ${name}: given up by this master (${this.o.holder})`);
    } catch (e) {
      this.o.log.debug(`lease ${name}: not released (${(e as Error).message}); it expires`);
    }
  }

  /** The master holding `name` now, if any (undefined too when the store does not answer). */
  async holderOf(name: string): Promise<string | undefined> {
    try {
      return (await this.o.store.leaseOf(name))?.holder;
    } catch {
      return undefined;
    }
  }

  private async renewAll(): Promise<void> {
    for (const name of new Set([...this.held, ...this.wanted.keys()])) await this.hold(name);
  }

  /**
   * Gives every held lease up (a master stopping in order: the others need not wait the TTL), all
   * at once and each within `bound` (a master stopping: a lease the store did not take expires).
   */
  async stop(bound: Bound = unbounded): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    const held = [...this.held];
    this.held.clear();
    await Promise.all(
      held.map(async (name) => {
        try {
          await bound(this.o.store.releaseLease(name, this.o.holder));
        } catch (e) {
          this.o.log.warn(`lease ${name}: not released (${(e as Error).message}); it expires`);
        }
      }),
    );
  }
}
