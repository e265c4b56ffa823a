/**
 * The store calls of one tick, made as one: the returns (and streamed results) of thousands of
 * agents arrive together, and one commit each was most of the master's per-agent cost; so are
 * the single-row reads of a tick. Items added in the same turn of the event loop (or until
 * `max`) go to `all` at once (writes: one transaction; reads: one statement); when that fails
 * (locked, disk full, one bad row) nothing of it was written, and each item goes on its own to
 * `one`, so an item the store refuses does not hold back the others and its caller sees its own
 * error (and holds it for a retry: nothing lost, nothing twice).
 *
 * `windowMs`: a flush less than this after the last one waits for the rest of the window. Under
 * load the agents' returns reach a busy master a few per turn of its event loop, and a commit per
 * turn (≈ 0.1 ms of CPU and 0.3–0.5 ms of blocking writes to SQLite's WAL here) was most of what
 * a 2,000-agent no-op job cost the master; a quiet master still flushes within the turn.
 */
export class TickBatcher<T, R> {
  private pending: { item: T; resolve: (r: R) => void; reject: (e: unknown) => void }[] = [];
  private scheduled = false;
  /** when the last flush began (performance.now()), -Infinity before the first */
  private lastFlush = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly all: (items: T[]) => Promise<R[]>,
    private readonly one: (item: T) => Promise<R>,
    private readonly max = 500,
    private readonly windowMs = 0,
  ) {}

  /** `item`'s call, made with the rest of the tick's (or window's); resolves to its own result */
  add(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (this.pending.length >= this.max) void this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        const run = () => {
          this.scheduled = false;
          void this.flush();
        };
        const wait = this.lastFlush + this.windowMs - performance.now();
        if (wait > 0) setTimeout(run, wait);
        else setImmediate(run);
      }
    });
  }

  private async flush(): Promise<void> {
    const batch = this.pending.splice(0);
    if (!batch.length) return;
    this.lastFlush = performance.now();
    let results: R[] | undefined;
    if (batch.length > 1) {
      try {
        results = await this.all(batch.map((b) => b.item));
      } catch {
        results = undefined; // all or nothing: none of them was written
      }
    }
    if (results) return batch.forEach((b, i) => b.resolve(results[i]!));
    for (const b of batch) this.one(b.item).then(b.resolve, b.reject);
  }
}
