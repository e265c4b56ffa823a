/**
 * A stream to a reader the master does not control (the CLI's Unix socket, a console page's
 * event stream): what waits for that reader in the master is bounded. A suspended `tsalt apply`
 * (Ctrl-Z) or a pager nobody scrolls must not make a 10,000-agent job's events pile up here.
 *
 * Writes go to the stream while it holds less than half the cap; after that they wait here, in
 * order, for the stream's 'drain'. Past the cap the reader is on the clock: one that takes
 * nothing for `stallMs` has stopped reading and is dropped (the stream destroyed, one line
 * logged with its name and what was pending; later writes do nothing, so the producer, a job,
 * goes on and its results still reach the store). One that still reads, only slower than a
 * job's events come (a CLI on a busy machine, 10,000 agents' results), is not dropped unless it
 * falls `hardCap` behind. A single chunk larger than half the cap still goes through when
 * nothing waits, and counts as half the cap only: one big answer (`tsalt jobs` of a large job)
 * is not a stalled reader. So at most the hard cap plus one chunk waits for a reader.
 * Producers that can wait (a console page's next look) ask `behind` and `whenDrained`.
 */
import type { Logger } from '../core/log.js';

/** What may wait in the master for one reader (stream and held chunks together) before it must show it still reads. */
export const MAX_PENDING_BYTES = 8 * 1024 * 1024;
/** A reader past the cap that takes nothing for this long has stopped reading. */
export const STALL_MS = 10_000;
/** What may wait for a reader that still reads, in caps: past it, it is dropped however it reads. */
export const HARD_CAP_FACTOR = 8;

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
  /** bytes; default HARD_CAP_FACTOR caps */
  hardCap?: number;
  /** ms without progress past the cap that make a stopped reader; default STALL_MS */
  stallMs?: number;
  /** said after the drop in the log line (what happens to the work the reader was following) */
  hint?: () => string;
}

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

export class BoundedWriter {
  readonly cap: number;
  readonly hardCap: number;
  private readonly stallMs: number;
  /** past the cap: checks that the reader still takes bytes */
  private watch: NodeJS.Timeout | undefined;
  private lastProgress = 0;
  private lastLength = 0;
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
    this.hardCap = o.hardCap ?? HARD_CAP_FACTOR * this.cap;
    this.stallMs = o.stallMs ?? STALL_MS;
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
    const waiting = this.heldBytes + Math.min(this.out.writableLength, this.cap / 2);
    if (waiting > this.hardCap) {
      this.drop(`fell more than ${mib(this.hardCap)} behind`);
      return false;
    }
    if (waiting > this.cap) this.startWatch();
    this.waitDrain();
    return true;
  }

  /** Past the cap: a reader that takes nothing for stallMs is dropped; checked a few times per stallMs. */
  private startWatch(): void {
    if (this.watch) return;
    this.lastProgress = Date.now();
    this.lastLength = this.out.writableLength;
    this.watch = setInterval(() => {
      if (this.dropped || this.out.destroyed) return this.stopWatch();
      const length = this.out.writableLength;
      if (length < this.lastLength) this.lastProgress = Date.now();
      this.lastLength = length;
      if (Date.now() - this.lastProgress >= this.stallMs) this.drop();
    }, Math.max(10, Math.min(1000, this.stallMs / 4)));
    this.watch.unref();
  }

  private stopWatch(): void {
    clearInterval(this.watch);
    this.watch = undefined;
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
    this.stopWatch();
    this.held = [];
    this.heldBytes = 0;
    this.drained = [];
    this.out.destroy();
    const hint = this.o.hint?.();
    const over = pending > this.cap ? `, over the cap of ${mib(this.cap)}${why === 'stopped reading' ? ` and nothing read for ${(this.stallMs / 1000).toFixed(1)} s` : ''}` : '';
    this.o.log.warn(`${this.o.name()}: ${why} with ${pending} bytes (${mib(pending)}) waiting for it${over}; dropped it${hint ? `; ${hint}` : ''}`);
  }

  private waitDrain(): void {
    if (this.waiting) return;
    // held chunks exist only once the stream holds half the cap (well over its high-water
    // mark), so its last write returned false and 'drain' will come when it empties
    this.waiting = true;
    this.out.once('drain', () => {
      this.waiting = false;
      this.lastProgress = Date.now(); // the stream emptied: the reader took all it held
      this.lastLength = 0;
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
    if (this.pending <= this.cap) this.stopWatch();
    if (this.held.length || this.out.writableNeedDrain) return this.waitDrain();
    this.catchUps++;
    if (this.ending) this.out.end();
    const fns = this.drained;
    this.drained = [];
    for (const fn of fns) fn();
  }
}
