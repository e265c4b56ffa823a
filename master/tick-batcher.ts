/**
 * The store calls of one tick, made as one: the returns (and streamed results) of thousands of
 * agents arrive together, and one commit each was most of the master's per-agent cost; so are
 * the single-row reads of a tick. Items added in the same turn of the event loop (or until
 * `max`) go to `all` at once (writes: one transaction; reads: one statement); when that fails
 * (locked, disk full, one bad row) nothing of it was written, and each item goes on its own to
 * `one`, so an item the store refuses does not hold back the others and its caller sees its own
 * error (and holds it for a retry: nothing lost, nothing twice).
 */
export class TickBatcher<T, R> {
  private pending: { item: T; resolve: (r: R) => void; reject: (e: unknown) => void }[] = [];
  private scheduled = false;

  constructor(
    private readonly all: (items: T[]) => Promise<R[]>,
    private readonly one: (item: T) => Promise<R>,
    private readonly max = 500,
  ) {}

  /** `item`'s call, made with the rest of the tick's; resolves to its own result */
  add(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (this.pending.length >= this.max) void this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          void this.flush();
        });
      }
    });
  }

  private async flush(): Promise<void> {
    const batch = this.pending.splice(0);
    if (!batch.length) return;
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
