/**
 * A bound on the store calls of a master's stop: the last writes (the agents' last seen, the
 * leases given up, leaving the masters table), the bus's connection and the pool's end. A store
 * that does not answer (its host cut off or hung, not one that refuses: that fails at once)
 * held each of them for the pool's connection timeout (15 s) or, on a connection already open,
 * for ever, and `tsalt master` did not exit. What a store takes in time is written as before;
 * what it has not taken by its deadline is logged by the caller and left (the call goes on: a
 * store that answers late still gets it, unless the process has ended).
 *
 * The first call gets `ms`; once a call has missed its deadline the store counts as gone and the
 * later ones get `afterMiss` (a store that was only slow still takes them): a stop waits about a
 * second on an unreachable store in all, not a second per call.
 */

/** What a stop-path store call is wrapped in: `p`, or a StopTimeout once its time is up. */
export type Bound = <T>(p: Promise<T>) => Promise<T>;

/** no bound (a store call outside a stop) */
export const unbounded: Bound = (p) => p;

export class StopTimeout extends Error {
  constructor(readonly ms: number) {
    super(`the store did not answer within ${ms} ms`);
  }
}

export class StopDeadline {
  private missed = false;

  constructor(
    readonly ms = 1000,
    readonly afterMiss = 150,
  ) {}

  /** whether a call of this stop missed its deadline (the store counts as gone) */
  get storeGone(): boolean {
    return this.missed;
  }

  readonly bound: Bound = <T>(p: Promise<T>): Promise<T> => {
    const ms = this.missed ? this.afterMiss : this.ms;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.missed = true;
        reject(new StopTimeout(ms));
      }, ms);
    });
    // the call's own failure after its deadline is nobody's to see
    p.catch(() => undefined);
    return Promise.race([p, late]).finally(() => clearTimeout(timer));
  };
}
