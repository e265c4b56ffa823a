/**
 * A stream to a reader the master does not control (the CLI's Unix socket, a console page's
 * event stream): what waits for that reader in the master is bounded. A suspended `tsalt apply`
 * (Ctrl-Z) or a pager nobody scrolls must not make a 10,000-agent job's events pile up here.
 *
 * Writes go to the stream while it holds less than half the cap; after that they wait here, in
 * order, for the stream's 'drain'. When all that waits passes the cap, the reader has stopped
 * reading: it is dropped (the stream destroyed, one line logged with its name and what
 * was pending) and later writes do nothing, so the producer (a job) goes on and its results
 * still reach the store. A single chunk larger than half the cap still goes through when
 * nothing waits, and counts as half the cap only: one big answer (`tsalt jobs` of a large job)
 * is not a stalled reader. So at most the cap plus one chunk waits for a reader.
 * Producers that can wait (a console page's next look) ask `behind` and `whenDrained`.
 */
import type { Logger } from '../core/log.js';

/** What may wait in the master for one reader (stream and held chunks together). */
export const MAX_PENDING_BYTES = 8 * 1024 * 1024;

/** The part of a net.Socket / http.ServerResponse this needs. */
export interface ReaderStream {
  write(chunk: string): boolean;
  end(): unknown;
  destroy(): unknown;
  readonly writableLength: number;
  readonly writableNeedDrain: boolean;
  readonly destroyed: boolean;
  once(ev: 'drain', fn: () => void): unknown;
}

export interface BoundedWriterOptions {
  /** who the reader is, for the log line (called when dropping: it can name a job learnt since) */
  name: () => string;
  log: Logger;
  /** bytes; default MAX_PENDING_BYTES */
  cap?: number;
  /** said after the drop in the log line (what happens to the work the reader was following) */
  hint?: () => string;
}

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

export class BoundedWriter {
  readonly cap: number;
  private held: string[] = [];
  private heldBytes = 0;
  private waiting = false;
  private ending = false;
  private drained: (() => void)[] = [];
  /** the reader stopped reading and was cut off: writes are ignored */
  dropped = false;
  /** times the reader caught up after being behind (a stream that stays behind with no new one has stopped) */
  catchUps = 0;

  constructor(
    private readonly out: ReaderStream,
    private readonly o: BoundedWriterOptions,
  ) {
    this.cap = o.cap ?? MAX_PENDING_BYTES;
  }

  /** bytes waiting for this reader in the master: in the stream's buffer and held here */
  get pending(): number {
    return this.out.writableLength + this.heldBytes;
  }

  /** the reader is behind: a producer that can skip or merge its output waits for whenDrained */
  get behind(): boolean {
    return this.held.length > 0 || this.out.writableNeedDrain;
  }

  /** `fn` once the reader has caught up (at once when it is not behind); never when dropped */
  whenDrained(fn: () => void): void {
    if (this.dropped || this.out.destroyed) return;
    if (!this.behind) return fn();
    this.drained.push(fn);
    this.waitDrain();
  }

  /** false when the reader is gone (dropped now or before, or its stream destroyed) */
  write(chunk: string): boolean {
    if (this.dropped || this.out.destroyed) return false;
    if (!this.held.length && this.out.writableLength < this.cap / 2) {
      this.out.write(chunk);
      return true;
    }
    this.held.push(chunk);
    this.heldBytes += Buffer.byteLength(chunk);
    // a big chunk already in the stream counts for half the cap only (see above)
    if (this.heldBytes + Math.min(this.out.writableLength, this.cap / 2) > this.cap) {
      this.drop();
      return false;
    }
    this.waitDrain();
    return true;
  }

  /** End the stream once what is held has been written. */
  end(): void {
    if (this.dropped || this.out.destroyed) return;
    this.ending = true;
    if (!this.held.length) this.out.end();
  }

  /** Cut the reader off now (it stopped reading), with the log line. */
  drop(why = 'stopped reading'): void {
    if (this.dropped) return;
    const pending = this.pending;
    this.dropped = true;
    this.held = [];
    this.heldBytes = 0;
    this.drained = [];
    this.out.destroy();
    const hint = this.o.hint?.();
    const over = pending > this.cap ? `, over the cap of ${mib(this.cap)}` : '';
    this.o.log.warn(`${this.o.name()}: ${why} with ${pending} bytes (${mib(pending)}) waiting for it${over}; dropped it${hint ? `; ${hint}` : ''}`);
  }

  private waitDrain(): void {
    if (this.waiting) return;
    // held chunks exist only once the stream holds half the cap (well over its high-water
    // mark), so its last write returned false and 'drain' will come when it empties
    this.waiting = true;
    this.out.once('drain', () => {
      this.waiting = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.dropped || this.out.destroyed) return;
    while (this.held.length && this.out.writableLength < this.cap / 2) {
      const c = this.held.shift()!;
      this.heldBytes -= Buffer.byteLength(c);
      this.out.write(c);
    }
    if (this.held.length || this.out.writableNeedDrain) return this.waitDrain();
    this.catchUps++;
    if (this.ending) this.out.end();
    const fns = this.drained;
    this.drained = [];
    for (const fn of fns) fn();
  }
}
