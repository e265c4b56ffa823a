/**
 * The bus of masters sharing a PostgreSQL store: NOTIFY on one channel, LISTEN on a connection of
 * its own (a pooled connection cannot hold a LISTEN).
 *
 * - A NOTIFY payload holds at most 8000 bytes: events are sent as JSON arrays packed up to
 *   NOTIFY_MAX_BYTES, and an event over it is split by its agent list (splitEvent).
 * - Events published in one tick go out together (one payload where they fit): a job's thousand
 *   returns are a few notifications, not a thousand.
 * - The listening connection is pinged; when it drops it is opened again (backoff up to 5 s) and
 *   the gap handlers run, since notifications sent meanwhile are lost: the master re-reads the
 *   store. Publishing retries on a new connection until it goes through.
 */
import pg from 'pg';
import type { Logger } from '../core/log.js';
import { BusEventSchema, splitEvent, type BusEvent, type MasterId } from './bus-events.js';
import type { Bus, BusListener } from './bus.js';
import { unbounded, type Bound } from './stop-deadline.js';

export const BUS_CHANNEL = 'tsalt_bus';
/** PostgreSQL refuses payloads of 8000 bytes or more; some room for multi-byte surprises. */
export const NOTIFY_MAX_BYTES = 7900;
/** How often the listening connection is checked (a dead TCP peer says nothing by itself). */
const PING_MS = 5000;
const BACKOFF_MIN_MS = 200;
const BACKOFF_MAX_MS = 5000;
/** Events waiting while PostgreSQL cannot be reached; beyond it the oldest are dropped (logged). */
const OUTBOX_MAX = 100_000;

export class PgBus implements Bus {
  private readonly listeners = new Set<BusListener>();
  private readonly gapHandlers = new Set<() => void>();
  private listener: pg.Client | undefined;
  private publisher: pg.Client | undefined;
  private ping: NodeJS.Timeout | undefined;
  private reconnecting = false;
  private closed = false;
  /** events published, not yet sent */
  private outbox: BusEvent[] = [];
  private sending: Promise<void> | undefined;

  constructor(
    private readonly url: string,
    readonly self: MasterId,
    private readonly log: Logger,
  ) {}

  /** Opens the listening connection; fails when PostgreSQL cannot be reached. */
  async start(): Promise<void> {
    await this.listen();
    this.ping = setInterval(() => void this.checkListener(), PING_MS);
    this.ping.unref();
  }

  private client(role: 'listen' | 'notify'): pg.Client {
    // application_name: who holds the connection, in pg_stat_activity
    return new pg.Client({ connectionString: this.url, application_name: `tsalt-bus-${role}:${this.self}`.slice(0, 63), keepAlive: true, query_timeout: 10_000 });
  }

  private async listen(): Promise<void> {
    const c = this.client('listen');
    c.on('error', (e) => this.listenerLost(c, e.message));
    c.on('end', () => this.listenerLost(c, 'connection ended'));
    c.on('notification', (n) => {
      if (n.channel === BUS_CHANNEL && n.payload) this.receive(n.payload);
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${BUS_CHANNEL}`);
    } catch (e) {
      c.removeAllListeners('end');
      c.on('error', () => {});
      void c.end().catch(() => {});
      throw e;
    }
    this.listener = c;
  }

  private async checkListener(): Promise<void> {
    const c = this.listener;
    if (!c || this.reconnecting) return;
    try {
      await c.query('SELECT 1');
    } catch (e) {
      this.listenerLost(c, (e as Error).message);
    }
  }

  private listenerLost(c: pg.Client, why: string): void {
    if (this.closed || this.listener !== c) return;
    this.listener = undefined;
    c.removeAllListeners('end');
    c.on('error', () => {});
    void c.end().catch(() => {});
    this.log.warn(`bus: the listening connection to PostgreSQL dropped (${why}); reconnecting`);
    void this.reconnect();
  }

  private async reconnect(): Promise<void> {
    if (this.reconnecting) return;
    this.reconnecting = true;
    let wait = BACKOFF_MIN_MS;
    while (!this.closed) {
      try {
        await this.listen();
        break;
      } catch (e) {
        this.log.debug(`bus: reconnect failed (${(e as Error).message}); next try in ${wait} ms`);
        await new Promise((r) => setTimeout(r, wait).unref());
        wait = Math.min(BACKOFF_MAX_MS, wait * 2);
      }
    }
    this.reconnecting = false;
    if (this.closed) return;
    this.log.info('bus: listening again; re-reading the store for what may have been missed');
    for (const fn of this.gapHandlers) {
      try {
        fn();
      } catch (e) {
        this.log.error(`bus: re-sync after reconnect failed: ${(e as Error).message}`);
      }
    }
  }

  private receive(payload: string): void {
    let raw: unknown;
    try {
      raw = JSON.parse(payload);
    } catch {
      this.log.warn(`bus: a notification that is not JSON was ignored (${payload.slice(0, 80)})`);
      return;
    }
    for (const item of Array.isArray(raw) ? raw : [raw]) {
      const r = BusEventSchema.safeParse(item);
      if (!r.success) {
        this.log.warn(`bus: an event that does not parse was ignored: ${r.error.issues[0]?.message ?? ''} (${JSON.stringify(item).slice(0, 120)})`);
        continue;
      }
      if (r.data.from === this.self) continue;
      for (const l of this.listeners) {
        try {
          l(r.data);
        } catch (e) {
          this.log.error(`bus: handling '${r.data.type}' from ${r.data.from} failed: ${(e as Error).message}`);
        }
      }
    }
  }

  publish(ev: BusEvent): void {
    if (this.closed) return;
    this.outbox.push(ev);
    if (this.outbox.length > OUTBOX_MAX) {
      const dropped = this.outbox.splice(0, this.outbox.length - OUTBOX_MAX);
      this.log.error(`bus: PostgreSQL unreachable for too long: ${dropped.length} event(s) dropped (the masters re-read the store)`);
    }
    // everything published in this tick goes out together
    this.sending ??= new Promise<void>((r) => setImmediate(r)).then(() => this.drain());
  }

  /** Sends the outbox, packed into as few notifications as fit; retries until sent or closed. */
  private async drain(): Promise<void> {
    let wait = BACKOFF_MIN_MS;
    while (this.outbox.length && !this.closed) {
      const payloads = pack(this.outbox, NOTIFY_MAX_BYTES, (m) => this.log.error(`bus: ${m}; dropped`));
      try {
        const c = await this.notifier();
        for (const p of payloads) {
          await c.query('SELECT pg_notify($1, $2)', [BUS_CHANNEL, p.text]);
          this.outbox.splice(0, p.count);
        }
        wait = BACKOFF_MIN_MS;
      } catch (e) {
        this.log.warn(`bus: publishing failed (${(e as Error).message}); ${this.outbox.length} event(s) retried in ${wait} ms`);
        this.dropNotifier();
        await new Promise((r) => setTimeout(r, wait).unref());
        wait = Math.min(BACKOFF_MAX_MS, wait * 2);
      }
    }
    this.sending = undefined;
    // published while the last query was in flight
    if (this.outbox.length && !this.closed) this.sending = this.drain();
  }

  private async notifier(): Promise<pg.Client> {
    if (this.publisher) return this.publisher;
    const c = this.client('notify');
    c.on('error', () => {
      if (this.publisher === c) this.publisher = undefined;
    });
    await c.connect();
    this.publisher = c;
    return c;
  }

  private dropNotifier(): void {
    const c = this.publisher;
    this.publisher = undefined;
    if (c) void c.end().catch(() => {});
  }

  subscribe(listener: BusListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onGap(fn: () => void): void {
    this.gapHandlers.add(fn);
  }

  async flush(): Promise<void> {
    while (this.sending) await this.sending;
  }

  /**
   * Sends what is left (2 s at most, and within `bound`), then ends the connections. Ending one
   * waits for the server to close it: a server that does not answer never does (`bound`: a
   * master stopping leaves it to the process's exit).
   */
  async close(bound: Bound = unbounded): Promise<void> {
    await bound(Promise.race([this.flush(), new Promise((r) => setTimeout(r, 2000).unref())])).catch((e: Error) =>
      this.log.warn(`bus: ${this.outbox.length} event(s) not sent: ${e.message}`),
    );
    this.closed = true;
    clearInterval(this.ping);
    const l = this.listener;
    this.listener = undefined;
    await bound(l?.end() ?? Promise.resolve()).catch((e: Error) => this.log.debug(`bus: closing the listening connection: ${e.message}`));
    this.dropNotifier();
  }
}

/**
 * Events packed into JSON arrays of at most maxBytes, in order; `count` is how many outbox events
 * each payload took (an event split in parts counts once, with its last part).
 */
export function pack(events: readonly BusEvent[], maxBytes: number, onTooBig: (message: string) => void): { text: string; count: number }[] {
  const out: { text: string; count: number }[] = [];
  let parts: string[] = [];
  let bytes = 2;
  let count = 0;
  const close = () => {
    if (parts.length || count) out.push({ text: `[${parts.join(',')}]`, count });
    parts = [];
    bytes = 2;
    count = 0;
  };
  for (const ev of events) {
    let pieces: BusEvent[];
    try {
      pieces = splitEvent(ev, maxBytes - 2);
    } catch (e) {
      onTooBig((e as Error).message);
      count++;
      continue;
    }
    for (const p of pieces) {
      const s = JSON.stringify(p);
      const b = Buffer.byteLength(s) + (parts.length ? 1 : 0);
      if (bytes + b > maxBytes) close();
      parts.push(s);
      bytes += Buffer.byteLength(s) + (parts.length > 1 ? 1 : 0);
    }
    count++;
  }
  close();
  return out;
}
