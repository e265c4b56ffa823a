/**
 * The agents' side of the master: websockets over mutual TLS. An agent's id is the CN of the
 * client certificate it proved during the TLS handshake, bound to its public key fingerprint
 * in the key store; nothing it sends can change who it is. Each connection has an
 * authentication level (pending, accepted) and a dispatch table per level: a message type
 * absent from the table, a frame that does not parse or one over max_frame_bytes closes the
 * connection. Handler errors are logged and close that one connection, never the master.
 *
 * Before a key is accepted, nobody vouches for the peer: anyone with a fresh self-signed
 * certificate gets this far. So the unauthenticated side is bounded: its frames go through a
 * websocket server with a small frame limit (pending_max_frame_bytes; a real hello is ~1 KiB),
 * pending connections and pending key rows are capped (logged when hit), the TLS handshake and
 * the upgrade request must finish within tls_handshake_timeout_s, and the listener takes at most
 * max_connections sockets. An agent accepted while connected is asked to reconnect, so that it
 * gets the accepted agents' frame limit.
 */
import https from 'node:https';
import { constants as cryptoConstants } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { IncomingMessage } from 'node:http';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import {
  AgentIdSchema,
  AgentMessageSchema,
  CloseCode,
  closeReason,
  decodeFrame,
  PROTOCOL_VERSION,
  type AgentMessage,
  type AgentMessageType,
  type MasterMessage,
} from '../protocol/messages.js';
import { peerIdentity, type Identity } from '../core/identity.js';
import type { Logger } from '../core/log.js';
import { startHeartbeat, type HeartbeatClock } from '../core/heartbeat.js';
import type { Store } from './store-api.js';
import { unbounded, type Bound } from './stop-deadline.js';
import { MAX_PENDING_BYTES } from './bounded-writer.js';

export type AuthLevel = 'pending' | 'accepted';

export class AgentConn {
  /** hello received: grains known, the agent can take jobs (when accepted) */
  hello = false;
  grains: Record<string, unknown> = {};
  /** came in through the pending (small-frame) websocket server */
  preAuth = false;
  alive = true;
  /** the agent sent something (a frame, its own ping) since the last heartbeat: no ping needed */
  heard = false;
  /** this connection's messages are handled one after the other, in the order they came */
  inbox: Promise<void> = Promise.resolve();
  /** bytes that may wait for this agent before it counts as not reading (set by the server) */
  maxPending = Infinity;
  /** called instead of sending when more than maxPending waits for the agent */
  onStalled: ((pending: number) => void) | undefined;
  constructor(
    readonly id: string,
    readonly fingerprint: string,
    public level: AuthLevel,
    private readonly ws: WebSocket,
    readonly remote: string,
    /** the TLS socket under ws: a stopping master checks that its close frame was written */
    private readonly socket?: Duplex,
  ) {}

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(msg: MasterMessage): boolean {
    return this.sendText(JSON.stringify(msg));
  }

  /**
   * A message serialised once for many agents (a job's message): the caller built it from a
   * MasterMessage. A Buffer (its UTF-8) goes out as the same text frame without being encoded
   * again for each agent.
   */
  sendText(text: string | Buffer): boolean {
    if (!this.open) return false;
    // an agent that stopped reading (a stopped process; one asking for its bundle again and
    // again without reading it) is cut off before the master holds more than this for it
    const pending = this.ws.bufferedAmount;
    if (pending > this.maxPending) {
      this.onStalled?.(pending);
      return false;
    }
    this.ws.send(text, { binary: false });
    return true;
  }

  close(code: number, reason: string): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code, closeReason(reason));
    // a peer that does not finish the close handshake is cut off
    setTimeout(() => this.ws.terminate(), 2000).unref();
  }

  /**
   * The close frame alone, for a master whose process ends next: no closing handshake waited
   * for and no socket torn down (the kernel closes it as the process exits).
   */
  closeFrame(code: number, reason: string): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.ws.close(code, closeReason(reason));
    // nothing more is read: the agent's answering close frame and its end of the connection
    // would each start the socket's teardown in JS (TLS shutdown, close), what this avoids
    this.ws.pause();
  }

  /** Nothing of what was sent is left in the process: written to the kernel (or the socket is gone). */
  get flushed(): boolean {
    return !this.socket || this.socket.destroyed || this.socket.writableLength === 0;
  }

  ping(): void {
    if (this.open) this.ws.ping();
  }

  terminate(): void {
    this.ws.terminate();
  }
}

export type Handler<T extends AgentMessageType> = (conn: AgentConn, msg: Extract<AgentMessage, { type: T }>) => void | Promise<void>;
export type DispatchTable = { [T in AgentMessageType]?: Handler<T> };

export interface ServerEvents {
  /** the agent became (or connected as) accepted and said hello: it can take jobs */
  ready(conn: AgentConn): void;
  disconnected(conn: AgentConn): void;
  /** handlers for accepted agents (hello is handled here and then forwarded) */
  accepted: DispatchTable;
}

/** What an unauthenticated peer may hold on the master (master.yaml keys in brackets). */
export interface ServerLimits {
  /** largest frame from an agent whose key is not accepted [pending_max_frame_bytes] */
  pendingMaxFrameBytes: number;
  /** websocket connections from keys not accepted, at once [max_pending_connections] */
  maxPendingConnections: number;
  /** pending key rows in the store; new ids beyond it are refused [max_pending_keys] */
  maxPendingKeys: number;
  /** TLS handshake plus the upgrade request [tls_handshake_timeout_s] */
  handshakeTimeoutS: number;
  /** sockets on the agent port, in any state [max_connections] */
  maxConnections: number;
  /** TLS handshakes in progress at once [max_handshakes] */
  maxHandshakes: number;
  /** TLS handshakes started per second; 0: no limit [max_handshake_rate] */
  maxHandshakeRate: number;
}

/** How long a stopping master waits for agents to answer its close frames before cutting them. */
const SHUTDOWN_GRACE_MS = 1000;

export const DEFAULT_SERVER_LIMITS: ServerLimits = {
  pendingMaxFrameBytes: 16 * 1024,
  maxPendingConnections: 100,
  maxPendingKeys: 1000,
  handshakeTimeoutS: 10,
  maxConnections: 10_000,
  maxHandshakes: 200,
  maxHandshakeRate: 500,
};

/** The limits from master.yaml's keys (absent keys: the defaults). */
export function serverLimits(cfg: {
  pending_max_frame_bytes?: number;
  max_pending_connections?: number;
  max_pending_keys?: number;
  tls_handshake_timeout_s?: number;
  max_connections?: number;
  max_handshakes?: number;
  max_handshake_rate?: number;
}): ServerLimits {
  const d = DEFAULT_SERVER_LIMITS;
  return {
    pendingMaxFrameBytes: cfg.pending_max_frame_bytes ?? d.pendingMaxFrameBytes,
    maxPendingConnections: cfg.max_pending_connections ?? d.maxPendingConnections,
    maxPendingKeys: cfg.max_pending_keys ?? d.maxPendingKeys,
    handshakeTimeoutS: cfg.tls_handshake_timeout_s ?? d.handshakeTimeoutS,
    maxConnections: cfg.max_connections ?? d.maxConnections,
    maxHandshakes: cfg.max_handshakes ?? d.maxHandshakes,
    maxHandshakeRate: cfg.max_handshake_rate ?? d.maxHandshakeRate,
  };
}

/** A cap that is hit under attack is logged at once, then at most every 10 s with a count. */
class CapLog {
  private last = 0;
  private suppressed = 0;
  constructor(private readonly log: Logger) {}
  hit(message: string): void {
    const now = Date.now();
    if (now - this.last < 10_000) {
      this.suppressed++;
      return;
    }
    this.log.warn(message + (this.suppressed ? ` (${this.suppressed} more refused since the last report)` : ''));
    this.last = now;
    this.suppressed = 0;
  }
}

export interface ServerOptions {
  identity: Identity;
  store: Store;
  log: Logger;
  maxFrameBytes: number;
  heartbeatS: number;
  autoAccept: boolean;
  events: ServerEvents;
  limits?: ServerLimits;
}

export class AgentServer {
  private readonly conns = new Map<string, AgentConn>();
  private readonly https: https.Server;
  /** accepted keys: max_frame_bytes */
  private readonly wss: WebSocketServer;
  /** everyone else: pending_max_frame_bytes */
  private readonly wssPending: WebSocketServer;
  private readonly tables: Record<AuthLevel, DispatchTable>;
  private heartbeat: HeartbeatClock | undefined;
  readonly limits: ServerLimits;
  private readonly caps: Record<'connections' | 'pendingConnections' | 'pendingKeys' | 'handshakes', CapLog>;
  /** TLS handshakes in progress: remote address:port -> release */
  private readonly handshaking = new Map<string, () => void>();
  /** the most handshakes in progress at once so far (logged at debug when it grows) */
  private handshakePeak = 0;
  /** sockets waiting for their turn to start TLS (max_handshake_rate), oldest first */
  private readonly held: { raw: Socket; at: number }[] = [];
  private readonly bucket: { tokens: number; at: number; timer: NodeJS.Timeout | undefined } = { tokens: 0, at: 0, timer: undefined };
  /**
   * Sockets let in as pending (not an accepted key) from their upgrade until they close: counted
   * from the upgrade, not from when their connection is set up (after store reads), so that
   * connections opened together cannot all pass the cap before any of them is counted.
   */
  private readonly pendingSockets = new Set<Duplex>();
  /** new ids between counting the pending keys and storing theirs: counted too, for the same reason */
  private newKeysInFlight = 0;
  /** the master is stopping: connections end without per-agent bookkeeping (one last-seen write and log line for all) */
  private stopping = false;
  /** handshakes started / sockets that had to wait for their turn, for tests and the bench */
  readonly handshakeStats = { started: 0, held: 0, peakHeld: 0 };

  constructor(private readonly o: ServerOptions) {
    const lim = (this.limits = o.limits ?? DEFAULT_SERVER_LIMITS);
    const handshakeMs = lim.handshakeTimeoutS * 1000;
    this.caps = { connections: new CapLog(o.log), pendingConnections: new CapLog(o.log), pendingKeys: new CapLog(o.log), handshakes: new CapLog(o.log) };
    this.https = https.createServer({
      key: o.identity.keyPem,
      cert: o.identity.certPem,
      // agents' certificates are self-signed: TLS proves key possession, we check the key
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
      // no TLS session tickets: agents keep one long-lived connection and never resume a session
      // (a reconnect proves its key again), and issuing the tickets left ~15 KiB of OpenSSL
      // memory behind per connection (10,000 agents: ~150 MiB)
      secureOptions: cryptoConstants.SSL_OP_NO_TICKET,
      // Node's defaults (120 s handshake, 60 s headers) let half-open sockets pile up
      handshakeTimeout: handshakeMs,
      headersTimeout: handshakeMs,
      requestTimeout: handshakeMs,
      connectionsCheckingInterval: Math.min(1000, handshakeMs),
    });
    // a TLS peer that sends no upgrade request at all is idle: cut it (ws clears the timeout on upgrade)
    this.https.setTimeout(handshakeMs);
    this.https.maxConnections = lim.maxConnections;
    this.https.on('drop', (d?: { remoteAddress?: string }) =>
      this.caps.connections.hit(`connection cap reached (max_connections ${lim.maxConnections}): refused ${d?.remoteAddress ?? 'a peer'}`),
    );
    this.capHandshakes();
    this.https.on('tlsClientError', (err) => o.log.debug(`tls handshake failed: ${err.message}`));
    // plain HTTP requests get nothing but a refusal
    this.https.on('request', (_req, res) => {
      res.writeHead(426, { connection: 'close', 'content-type': 'text/plain' });
      res.end('websocket upgrade required\n');
    });
    this.wss = new WebSocketServer({ noServer: true, maxPayload: o.maxFrameBytes, perMessageDeflate: false });
    this.wssPending = new WebSocketServer({ noServer: true, maxPayload: lim.pendingMaxFrameBytes, perMessageDeflate: false });
    for (const [wss, preAuth] of [
      [this.wss, false],
      [this.wssPending, true],
    ] as const) {
      wss.on('connection', (ws, req) => {
        this.onConnection(ws, req, preAuth).catch((e: Error) => {
          o.log.error(`connection setup failed: ${e.message}`);
          ws.terminate();
        });
      });
      wss.on('error', (e) => o.log.error(`websocket server: ${e.message}`));
    }
    this.https.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.onUpgrade(req, socket, head).catch((e: Error) => {
        o.log.error(`upgrade failed: ${e.message}`);
        socket.destroy();
      });
    });
    const onHello: Handler<'hello'> = (conn, msg) => this.onHello(conn, msg);
    const onGrains: Handler<'grains'> = (conn, msg) => this.onGrains(conn, msg);
    // pending agents may only introduce themselves; everything else closes the connection
    this.tables = {
      pending: { hello: onHello, grains: onGrains },
      accepted: { ...o.events.accepted, hello: onHello, grains: onGrains },
    };
  }

  /**
   * At most max_handshakes TLS handshakes at once: a fleet reconnecting together (after a master
   * restart) is let in a slice at a time instead of starving every handshake of CPU. And at most
   * max_handshake_rate started per second (a token bucket holding one second's worth): a socket
   * over either is held, its TLS not started, until its turn, so the agents behind it wait
   * instead of backing off further. A socket held longer than tls_handshake_timeout_s is dropped
   * (its agent retries). With max_handshake_rate 0, a socket over max_handshakes is dropped at once.
   */
  private capHandshakes(): void {
    const max = this.limits.maxHandshakes;
    const rate = this.limits.maxHandshakeRate;
    // tls.Server's own listener starts the handshake: it runs for a socket when its turn comes
    const startTls = this.https.listeners('connection') as ((s: Socket) => void)[];
    this.https.removeAllListeners('connection');
    const start = (raw: Socket) => {
      const key = `${raw.remoteAddress}:${raw.remotePort}`;
      let done = false;
      const release = () => {
        if (done) return;
        done = true;
        if (this.handshaking.get(key) === release) this.handshaking.delete(key);
        if (this.held.length) this.admitHeld();
      };
      this.handshaking.set(key, release);
      raw.once('close', release);
      this.handshakeStats.started++;
      if (this.handshaking.size > this.handshakePeak) {
        this.handshakePeak = this.handshaking.size;
        this.o.log.debug(`tls handshakes in progress: new peak ${this.handshakePeak} (max_handshakes ${max})`);
      }
      for (const l of startTls) l.call(this.https, raw);
    };
    this.startTls = start;
    this.https.on('connection', (raw: Socket) => {
      if (rate <= 0) {
        // before tls.Server wraps the socket: a refused one costs no handshake
        if (this.handshaking.size >= max) {
          this.caps.handshakes.hit(`handshake cap reached (max_handshakes ${max}): refused ${raw.remoteAddress ?? 'a peer'}`);
          raw.destroy();
          return;
        }
        return start(raw);
      }
      if (!this.held.length && this.handshaking.size < max && this.takeToken()) return start(raw);
      this.held.push({ raw, at: Date.now() });
      this.handshakeStats.held++;
      if (this.held.length > this.handshakeStats.peakHeld) {
        this.handshakeStats.peakHeld = this.held.length;
        this.o.log.debug(`tls handshakes waiting for their turn: new peak ${this.held.length} (max_handshake_rate ${rate}/s, max_handshakes ${max})`);
      }
      this.admitHeld();
    });
    this.https.on('secureConnection', (tls: TLSSocket) => this.handshaking.get(`${tls.remoteAddress}:${tls.remotePort}`)?.());
  }

  private startTls: (raw: Socket) => void = () => {};

  /** One token of the handshake rate, if there is one now. */
  private takeToken(): boolean {
    const rate = this.limits.maxHandshakeRate;
    const now = Date.now();
    this.bucket.tokens = Math.min(rate, this.bucket.tokens + ((now - this.bucket.at) * rate) / 1000);
    this.bucket.at = now;
    if (this.bucket.tokens < 1) return false;
    this.bucket.tokens -= 1;
    return true;
  }

  /** Starts the held sockets whose turn it is; comes back when the next token is due. */
  private admitHeld(): void {
    const max = this.limits.maxHandshakes;
    const waitMs = this.limits.handshakeTimeoutS * 1000;
    while (this.held.length) {
      const h = this.held[0]!;
      if (h.raw.destroyed) {
        this.held.shift();
        continue;
      }
      if (Date.now() - h.at > waitMs) {
        this.held.shift();
        this.caps.handshakes.hit(`a socket waited over tls_handshake_timeout_s (${this.limits.handshakeTimeoutS}) for its TLS handshake to start (max_handshake_rate ${this.limits.maxHandshakeRate}); dropped ${h.raw.remoteAddress ?? 'a peer'}, its agent retries`);
        h.raw.destroy();
        continue;
      }
      if (this.handshaking.size >= max) {
        this.caps.handshakes.hit(`handshake cap reached (max_handshakes ${max}): ${this.held.length} socket(s) held until handshakes in progress finish`);
        return; // a finishing handshake calls this again
      }
      if (!this.takeToken()) {
        if (!this.bucket.timer) {
          const due = Math.ceil(((1 - this.bucket.tokens) * 1000) / this.limits.maxHandshakeRate);
          this.bucket.timer = setTimeout(() => {
            this.bucket.timer = undefined;
            this.admitHeld();
          }, due);
          this.bucket.timer.unref();
        }
        return;
      }
      this.held.shift();
      this.startTls(h.raw);
    }
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.https.once('error', reject);
      // the kernel's accept queue is the first place a fleet reconnecting together waits: with
      // Node's default backlog (511) the rest of a burst had their SYNs dropped and retried it
      // 1, 2, 4, 8 s later, past the agents' connect timeout (the reconnect storm's long tail;
      // nstat ListenOverflows). Room for every connection the master takes (the kernel caps it
      // at net.core.somaxconn); the handshake caps then let them in at the master's pace.
      this.https.listen(port, host, this.limits.maxConnections, () => {
        this.https.off('error', reject);
        const a = this.https.address();
        resolve(typeof a === 'object' && a ? a.port : port);
      });
      this.heartbeat = startHeartbeat(this.o.heartbeatS * 1000, (judge) => this.beat(judge));
    });
  }

  /**
   * Ends every agent connection with a close frame (code shutdown: the agents reconnect with
   * their backoff). exiting: the process ends when this returns (`tsalt master` on SIGTERM):
   * once the frames are written, the sockets are left to the kernel, which closes them as the
   * process exits. Tearing down each TLS socket in JS (the closing handshake, TLS shutdown,
   * ws's and the stream's close path with an Error per socket) was most of a stop: 3.3 s at
   * 2,000 agents, over 15 s at 10,000. Without exiting (the demo's in-process master), each
   * connection's closing handshake is waited for, a second at most, and the rest are cut.
   * bound: the store write of the stop (the agents' last seen) within a deadline
   * (master/stop-deadline.ts), written while the close frames go out.
   */
  async close(o: { exiting?: boolean; bound?: Bound } = {}): Promise<void> {
    // The listener stays open until the connections are gone: closed first, every agent's
    // reconnect was refused at once and retried within 1-2 s (a refused connect does not climb
    // the backoff), and 5,000 agents retrying together took the CPU the stopping master and
    // the next one needed (the old master's exit 3.7 -> 13 s, the storm 19 -> 29 s and more).
    // Those that reconnect now wait in the handshake queue or get a 503 from the closed wss.
    this.stopping = true;
    this.heartbeat?.stop();
    clearTimeout(this.bucket.timer);
    for (const h of this.held.splice(0)) h.raw.destroy();
    // last seen for the whole fleet in one statement: per connection, with the sessions, lost-agent
    // timers and calls that end with the master anyway, it was 10,000 store round trips at a stop.
    // Written while the close frames go out: a store slow to answer does not hold the agents'.
    const ids = [...this.conns.keys()];
    const touched = (o.bound ?? unbounded)(this.o.store.touchAgents(ids)).catch((e: Error) =>
      this.o.log.error(`recording last seen of ${ids.length} agent(s) failed: ${e.message}`),
    );
    this.o.log.info(`closing ${ids.length} agent connection(s)`);
    if (o.exiting) {
      const conns = [...this.conns.values()];
      for (const c of conns) c.closeFrame(CloseCode.shutdown, 'master shutting down');
      const unsent = await this.flush(conns, SHUTDOWN_GRACE_MS);
      if (unsent) this.o.log.info(`${unsent} agent connection(s) did not take their close frame within ${SHUTDOWN_GRACE_MS} ms (not reading); closed without it`);
      // no new connections in the moments left; the open ones are the kernel's to close
      this.https.close();
      await touched;
      return;
    }
    await touched;
    for (const c of this.conns.values()) c.close(CloseCode.shutdown, 'master shutting down');
    // the servers' close waits for every agent's closing handshake: a second at most, then the
    // rest are cut (waiting for 1,000 busy agents took 4.7 s, and their retries in that time
    // were refused, so the fleet came back later)
    const closed = Promise.all([new Promise<void>((r) => this.wss.close(() => r())), new Promise<void>((r) => this.wssPending.close(() => r()))]);
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([closed, new Promise<void>((r) => (grace = setTimeout(r, SHUTDOWN_GRACE_MS)))]);
    clearTimeout(grace);
    for (const c of this.conns.values()) c.terminate();
    await closed;
    await new Promise<void>((r) => this.https.close(() => r()));
    this.https.closeAllConnections?.();
  }

  /** Waits until every connection's writes are in the kernel, at most `ms`; returns how many are not. */
  private async flush(conns: AgentConn[], ms: number): Promise<number> {
    const end = Date.now() + ms;
    let left = conns.filter((c) => !c.flushed);
    while (left.length && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 5));
      left = left.filter((c) => !c.flushed);
    }
    return left.length;
  }

  get(id: string): AgentConn | undefined {
    return this.conns.get(id);
  }

  /** Accepted, connected and introduced: can be sent a job. */
  ready(id: string): AgentConn | undefined {
    const c = this.conns.get(id);
    return c && c.open && c.level === 'accepted' && c.hello ? c : undefined;
  }

  connectedIds(): Set<string> {
    return new Set([...this.conns.values()].filter((c) => c.open).map((c) => c.id));
  }

  /** After `tsalt keys accept`: a waiting connection becomes accepted on the spot. */
  promote(id: string): void {
    const c = this.conns.get(id);
    if (!c || c.level === 'accepted') return;
    c.level = 'accepted';
    c.send({ type: 'key_status', state: 'accepted' });
    this.o.log.info(`agent ${id} accepted`);
    if (c.preAuth) {
      // still on the small-frame server: the agent reconnects (at once: its backoff was just
      // reset by key_status accepted) and says hello again with the accepted agents' limit
      if (c.hello) this.touch(id, c.grains);
      c.close(CloseCode.replaced, 'key accepted: reconnect');
      return;
    }
    if (c.hello) {
      this.touch(id, c.grains);
      this.o.events.ready(c);
    }
  }

  /** Last seen (and grains) is bookkeeping: a failing store (locked, disk full) is logged, never thrown. */
  private touch(id: string, grains?: Record<string, unknown>): void {
    this.o.store.touchAgent(id, grains).catch((e: Error) => this.o.log.error(`agent ${id}: recording last seen failed: ${e.message}`));
  }

  /** After reject/delete: the agent loses its connection (and gets nothing more). */
  drop(id: string, why: 'rejected' | 'deleted'): void {
    const c = this.conns.get(id);
    if (!c) return;
    if (why === 'rejected') c.send({ type: 'key_status', state: 'rejected' });
    c.close(CloseCode.rejected, `key ${why}`);
  }

  /** judge: false when this round came late (the master was stalled): no agent is dropped for it */
  private beat(judge: boolean): void {
    for (const c of this.conns.values()) {
      // an agent heard from since the last beat is alive: pinging it too would double the
      // heartbeat traffic of a large fleet (agents ping the master on their own heartbeat)
      if (c.heard) {
        c.heard = false;
        c.alive = true;
        continue;
      }
      if (!c.alive && judge) {
        this.o.log.warn(`agent ${c.id}: no heartbeat answer, dropping the connection`);
        c.terminate();
        continue;
      }
      c.alive = false;
      c.ping();
    }
  }

  /** Which websocket server takes this socket: the client certificate decides, before any frame. */
  private async onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const peer = peerIdentity(socket as TLSSocket);
    let accepted = false;
    if (peer) {
      const id = AgentIdSchema.safeParse(peer.name);
      if (id.success) {
        const row = await this.o.store.getAgent(id.data);
        accepted = row ? row.key_state === 'accepted' && row.fingerprint === peer.fingerprint : this.o.autoAccept;
      }
    }
    if (!accepted) {
      if (this.pendingSockets.size >= this.limits.maxPendingConnections) {
        this.caps.pendingConnections.hit(
          `pending connection cap reached (max_pending_connections ${this.limits.maxPendingConnections}): refused ${(socket as TLSSocket).remoteAddress ?? "a peer"}`,
        );
        socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        setTimeout(() => socket.destroy(), 1000).unref();
        return;
      }
      this.pendingSockets.add(socket);
      socket.once('close', () => this.pendingSockets.delete(socket));
    }
    const wss = accepted ? this.wss : this.wssPending;
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  }

  private async onConnection(ws: WebSocket, req: IncomingMessage, preAuth: boolean): Promise<void> {
    const sock = req.socket as TLSSocket;
    const remote = `${sock.remoteAddress}:${sock.remotePort}`;
    const log = this.o.log;
    ws.on('error', (e) => log.debug(`${remote}: socket error: ${e.message}`));
    const peer = peerIdentity(sock);
    if (!peer) {
      log.warn(`${remote}: no client certificate; closed`);
      ws.close(CloseCode.unauthenticated, 'client certificate required');
      return;
    }
    const idParse = AgentIdSchema.safeParse(peer.name);
    if (!idParse.success) {
      log.warn(`${remote}: certificate names no valid agent id; closed`);
      ws.close(CloseCode.unauthenticated, 'certificate CN is not a valid agent id');
      return;
    }
    const id = idParse.data;
    const fp = peer.fingerprint;
    // frames that come while the store is asked who this is are kept, and handled after
    const early: [RawData, boolean][] = [];
    const keep = (data: RawData, isBinary: boolean) => early.push([data, isBinary]);
    ws.on('message', keep);
    let row = await this.o.store.getAgent(id);
    if (!row) {
      this.newKeysInFlight++;
      try {
        if (!this.o.autoAccept) {
          // others in flight may be stored by now and counted twice: the cap errs on the safe side
          const pendingKeys = (await this.o.store.listKeys()).filter((a) => a.key_state === 'pending').length + this.newKeysInFlight - 1;
          if (pendingKeys >= this.limits.maxPendingKeys) {
            this.caps.pendingKeys.hit(`pending key cap reached (max_pending_keys ${this.limits.maxPendingKeys}): new id ${id} from ${remote} refused; accept or delete pending keys`);
            ws.close(CloseCode.unauthenticated, 'too many pending keys on the master');
            return;
          }
        }
        // the first key for an id wins (another connection or master may add it at the same time)
        row = await this.o.store.addAgent(id, fp, this.o.autoAccept ? 'accepted' : 'pending');
      } finally {
        this.newKeysInFlight--;
      }
      if (row.fingerprint === fp) log.info(`agent ${id}: new key ${fp.slice(0, 16)}… ${row.key_state}${row.key_state === 'pending' ? ' (tsalt keys accept ' + id + ')' : ''}`);
    }
    ws.off('message', keep);
    if (ws.readyState !== WebSocket.OPEN) return; // gone while the store was asked
    if (this.stopping) {
      ws.terminate(); // set up while the master began to stop
      return;
    }
    if (row.fingerprint !== fp) {
      log.warn(`agent ${id} from ${remote}: key ${fp.slice(0, 16)}… does not match the stored key ${row.fingerprint.slice(0, 16)}…; refused (tsalt keys delete ${id} if the agent was re-installed)`);
      ws.close(CloseCode.keyMismatch, 'key does not match the key stored for this id');
      return;
    }
    if (row.key_state === 'rejected') {
      log.info(`agent ${id}: key rejected; closed`);
      ws.send(JSON.stringify({ type: 'key_status', state: 'rejected' } satisfies MasterMessage));
      ws.close(CloseCode.rejected, 'key rejected');
      return;
    }
    if (preAuth && row.key_state === 'accepted') {
      // accepted between the upgrade and now: come back through the accepted agents' server
      ws.close(CloseCode.replaced, 'key accepted: reconnect');
      return;
    }
    const old = this.conns.get(id);
    const conn = new AgentConn(id, fp, row.key_state, ws, remote, sock);
    conn.preAuth = preAuth;
    // room for two of the largest frames (a bundle) besides the usual cap
    conn.maxPending = 2 * this.o.maxFrameBytes + MAX_PENDING_BYTES;
    conn.onStalled = (pending) => {
      log.warn(`agent ${id} from ${remote}: stopped reading with ${pending} bytes waiting for it (cap ${conn.maxPending}); dropped it`);
      conn.terminate();
    };
    this.conns.set(id, conn);
    if (old) {
      log.info(`agent ${id}: new connection replaces the old one`);
      old.close(CloseCode.replaced, 'replaced by a newer connection');
    }
    log.info(`agent ${id} connected from ${remote} (${conn.level})`);
    conn.send({ type: 'key_status', state: conn.level });

    ws.on('pong', () => (conn.alive = true));
    ws.on('ping', () => (conn.heard = true));
    const take = (data: unknown, isBinary: boolean) => {
      conn.alive = true;
      conn.heard = true;
      // one failed message must neither end the master (an unhandled rejection) nor leave the
      // chain rejected (every later message of the connection would be dropped unread)
      conn.inbox = conn.inbox
        .then(() => this.dispatch(conn, data, isBinary))
        .catch((e: Error) => {
          log.error(`agent ${id}: a message could not be handled: ${e.stack ?? e.message}; connection closed`);
          conn.terminate();
        });
    };
    ws.on('message', take);
    for (const [data, isBinary] of early) take(data, isBinary);
    // the closures below share this scope with `keep`: without this, the connection would hold its first frames (the hello) for its life
    early.length = 0;
    ws.on('close', (code) => {
      if (this.stopping) {
        // one line and one store write for them all (close)
        if (this.conns.get(id) === conn) this.conns.delete(id);
        return;
      }
      log.info(`agent ${id} disconnected (${code})`);
      // a connection replaced by a newer one is not the agent going away
      if (this.conns.get(id) !== conn) return;
      this.conns.delete(id);
      // an event handler: a store that fails (locked, disk full) must not take the master down
      this.touch(id);
      try {
        this.o.events.disconnected(conn);
      } catch (e) {
        log.error(`disconnect handler for ${id}: ${(e as Error).message}`);
      }
    });
  }

  private async dispatch(conn: AgentConn, data: unknown, isBinary: boolean): Promise<void> {
    const log = this.o.log;
    const d = decodeFrame(AgentMessageSchema, data, isBinary);
    if (!d.ok) {
      log.warn(`agent ${conn.id}: ${d.reason}; connection closed`);
      conn.close(CloseCode.protocolError, d.reason);
      return;
    }
    const msg = d.msg;
    const handler = this.tables[conn.level][msg.type] as Handler<typeof msg.type> | undefined;
    if (!handler) {
      log.warn(`agent ${conn.id}: message '${msg.type}' not allowed for a ${conn.level} agent; connection closed`);
      conn.close(CloseCode.protocolError, `'${msg.type}' not allowed (${conn.level})`);
      return;
    }
    try {
      await handler(conn, msg as never);
    } catch (e) {
      log.error(`agent ${conn.id}: handling '${msg.type}' failed: ${(e as Error).message}; connection closed`);
      conn.close(CloseCode.protocolError, 'message could not be handled');
    }
  }

  private async onGrains(conn: AgentConn, msg: Extract<AgentMessage, { type: 'grains' }>): Promise<void> {
    if (!conn.hello) return; // grains before hello mean nothing; hello carries them
    conn.grains = msg.grains;
    if (conn.level !== 'accepted') return;
    await this.o.store.touchAgent(conn.id, msg.grains);
    this.o.log.info(`agent ${conn.id}: grains updated`);
  }

  private async onHello(conn: AgentConn, msg: Extract<AgentMessage, { type: 'hello' }>): Promise<void> {
    if (msg.version !== PROTOCOL_VERSION) {
      this.o.log.warn(`agent ${conn.id}: protocol version ${msg.version}, master speaks ${PROTOCOL_VERSION}; closed`);
      conn.close(CloseCode.protocolError, `protocol version ${PROTOCOL_VERSION} required`);
      return;
    }
    const first = !conn.hello;
    conn.grains = msg.grains;
    conn.hello = true;
    if (conn.level !== 'accepted') return; // pending: remembered in memory only, never targeted
    // last seen and grains are bookkeeping: a failing store (locked, disk full) must not keep the
    // agent from connecting (its spooled returns wait for the store on the master's side)
    try {
      await this.o.store.touchAgent(conn.id, msg.grains);
    } catch (e) {
      this.o.log.error(`agent ${conn.id}: recording its hello failed: ${(e as Error).message}`);
    }
    const h = this.o.events.accepted.hello;
    if (h) void Promise.resolve(h(conn, msg)).catch((e: Error) => this.o.log.error(`agent ${conn.id}: handling its hello failed: ${e.message}`));
    if (first) this.o.events.ready(conn);
  }
}
