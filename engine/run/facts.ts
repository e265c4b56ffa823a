/**
 * Memoised system queries for one run. A state asks `facts.get('pkg:installed', load)`; the
 * first caller runs `load`, everyone else shares the promise. A state that changed the system
 * calls `invalidate` so later states see the new truth.
 */
export class FactCache {
  private readonly entries = new Map<string, Promise<unknown>>();

  get<T>(key: string, load: () => Promise<T>): Promise<T> {
    let p = this.entries.get(key) as Promise<T> | undefined;
    if (!p) {
      p = load();
      this.entries.set(key, p);
      // a failed query is not cached: the next state may try again
      p.catch(() => this.entries.delete(key));
    }
    return p;
  }

  invalidate(key: string): void {
    this.entries.delete(key);
  }

  /** Every key that starts with `prefix` (the variants of one fact, e.g. a service read per sig). */
  invalidatePrefix(prefix: string): void {
    for (const k of this.entries.keys()) if (k.startsWith(prefix)) this.entries.delete(k);
  }
}
