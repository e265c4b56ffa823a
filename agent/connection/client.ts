/**
 * The agent's connection to a master: wss with the agent's own certificate (mutual TLS), each
 * master's key pinned by fingerprint (config, or trust on first use when allowed), ping
 * heartbeats. With several masters listed it holds one connection, to the first it reaches;
 * a lost or refused master moves it on to the next one at once (Salt's master_type: failover),
 * and a whole round of the list failing waits a jittered exponential backoff before the next.
 * Frames that do not parse close the connection; the agent then reconnects, it never crashes
 * on what a master sends.
 */
import net from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import { WebSocket, type ClientOptions } from 'ws';
import {
  CloseCode,
  closeReason,
  decodeFrame,
  MasterMessageSchema,
  ValidFrames,
  type AgentMessage,
  type MasterMessage,
} from '../../protocol/messages.js';
import { peerIdentity } from '../../core/identity.js';
import type { Logger } from '../../core/log.js';
import { startHeartbeat, type HeartbeatClock } from '../../core/heartbeat.js';
import type { MasterEndpoint, PinBook } from './masters.js';

export interface ConnectionOptions {
  /** the masters in the order they are tried */
  masters: readonly MasterEndpoint[];
  keyPem: string;
  certPem: string;
  /** each master's pinned key, and the ones learnt on first use */
  pins: PinBook;
  /** go back to the first master when it answers again, checked this often (ms); 0: never */
  failbackMs: number;
  backoffMinS: number;
  backoffMaxS: number;
  heartbeatS: number;
  maxFrameBytes: number;
  log: Logger;
  /** the connection is open and the master verified */
  onOpen(): void;
  onMessage(msg: MasterMessage): void;
  onClose(): void;
}

/** Delay before reconnect attempt n (0-based): half fixed, half random, capped. */
export function backoffDelay(n: number, minS: number, maxS: number, rnd = Math.random): number {
  const cap = Math.min(maxS, minS * 2 ** Math.min(n, 30));
  return (cap / 2 + (rnd() * cap) / 2) * 1000;
}

/**
 * The attempt number to back off from after a failed round. A refused TCP connect (nothing
 * listening: a master restarting) costs the master nothing, so it never climbs past the second
 * step: a fleet whose master takes a few seconds to come back is not left waiting 4-8 s and more
 * after it is up (the reconnect storm's long tail). Anything else (timeouts, TLS or key
 * failures, a master that answered and closed) backs off all the way to backoff_max_s.
 */
export function backoffStep(attempts: number, refused: boolean): number {
  return refused ? Math.min(attempts, 1) : attempts;
}

const UNREACHABLE_WARN_MS = 60_000;
/** a TCP connect that neither succeeds nor fails (SYNs dropped) is given up after this */
const CONNECT_TIMEOUT_MS = 15_000;

/** the master's frames checked already, for every agent of this process (the same job and ack reach them all) */
const validFrames = new ValidFrames();

export class MasterConnection {
  private ws: WebSocket | undefined;
  private attempts = 0;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  /** the TCP connect of the attempt under way, before TLS and the websocket are built on it */
  private dialing: net.Socket | undefined;
  private tlsContext: tls.SecureContext | undefined;
  /** the last attempt's TCP connect was refused (ECONNREFUSED) */
  private lastRefused = false;
  /** every attempt of this round of the master list so far was refused */
  private roundRefused = true;
  private beat: HeartbeatClock | undefined;
  private alive = true;
  private verified = false;
  /** index in o.masters of the master being tried or talked to */
  private current = 0;
  /** attempts that failed since the last verified connection */
  private failedInRow = 0;
  private failbackTimer: NodeJS.Timeout | undefined;
  /** failed connection attempts since the last connection (or the start), and the last warning */
  private unreachable: { since: number; failures: number; warnedAt: number } | undefined;

  constructor(private readonly o: ConnectionOptions) {}

  /** The master being tried or talked to. */
  get master(): MasterEndpoint {
    return this.o.masters[this.current]!;
  }

  get connected(): boolean {
    return this.verified && this.ws?.readyState === WebSocket.OPEN;
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.beat?.stop();
    clearInterval(this.failbackTimer);
    this.dialing?.destroy();
    this.ws?.close(CloseCode.shutdown, 'agent stopping');
    const ws = this.ws;
    setTimeout(() => ws?.terminate(), 1000).unref();
  }

  send(msg: AgentMessage): boolean {
    return this.sendJson(JSON.stringify(msg));
  }

  /** Bytes sent and not yet taken by the kernel (0 when not connected). */
  get buffered(): number {
    return this.connected ? this.ws!.bufferedAmount : 0;
  }

  /** A message already in JSON (the JSON of an AgentMessage: fit.ts fittedJson). */
  sendJson(json: string): boolean {
    if (!this.connected) return false;
    this.coalesce();
    this.ws!.send(json);
    return true;
  }

  /** the TLS socket under the websocket (from its upgrade response) */
  private socket: TLSSocket | undefined;
  private corked = false;
  /**
   * Frames sent in one turn of the event loop leave in one write: a job's ack, its state results
   * and its return are one TLS write and one syscall instead of four (an agent process running
   * hundreds of agents spent a tenth of a job's CPU in writev). Uncorked before the next turn's
   * I/O, so nothing waits longer than the code that sent it runs.
   */
  private coalesce(): void {
    const sock = this.socket;
    if (this.corked || !sock || sock.destroyed) return;
    this.corked = true;
    sock.cork();
    setImmediate(() => {
      this.corked = false;
      sock.uncork();
    });
  }

  /** Drop the connection (bad frame from the master); a reconnect follows. */
  drop(reason: string): void {
    this.o.log.warn(`closing the connection: ${reason}`);
    this.ws?.close(CloseCode.protocolError, closeReason(reason));
    const ws = this.ws;
    setTimeout(() => ws?.terminate(), 2000).unref();
  }

  /**
   * A failed attempt to connect: a warning the first time, then once a minute while it lasts
   * (each retry at debug), so an agent that never reaches its master says so at the default level.
   */
  private cannotReach(why: string): void {
    const now = Date.now();
    const u = (this.unreachable ??= { since: now, failures: 0, warnedAt: 0 });
    u.failures++;
    if (u.failures === 1) {
      this.o.log.warn(`cannot reach the master at ${this.master.url}: ${why}; retrying${this.o.masters.length > 1 ? ' the listed masters in turn' : ''} (a warning every minute while it lasts)`);
      u.warnedAt = now;
    } else if (now - u.warnedAt >= UNREACHABLE_WARN_MS) {
      this.o.log.warn(`still cannot reach the master at ${this.master.url}: ${why} (${u.failures} attempts since ${new Date(u.since).toISOString()})`);
      u.warnedAt = now;
    } else {
      this.o.log.debug(`connection error: ${why} (${this.master.url})`);
    }
  }

  /**
   * Connected to a later master with master_failback on: check now and then whether the first
   * answers on its port again; if so, close this connection and go back to it (its key is
   * checked as on any connection: a first master that is not the pinned one is refused and the
   * agent moves on down the list again).
   */
  private watchFailback(): void {
    clearInterval(this.failbackTimer);
    if (!this.o.failbackMs || this.current === 0) return;
    const first = this.o.masters[0]!;
    this.failbackTimer = setInterval(() => {
      const probe = net.connect({ host: first.host, port: first.port, timeout: 5000 });
      probe.once('connect', () => {
        probe.destroy();
        if (this.stopped || this.current === 0 || !this.connected) return;
        this.o.log.info(`the first master ${first.url} answers again: failing back to it (master_failback)`);
        clearInterval(this.failbackTimer);
        this.failBackPending = true;
        this.ws?.close(CloseCode.shutdown, 'failing back to the first master');
      });
      probe.once('timeout', () => probe.destroy());
      probe.once('error', () => probe.destroy());
    }, this.o.failbackMs);
    this.failbackTimer.unref();
  }

  private failBackPending = false;
  /** the master accepted the agent's key on the current connection */
  private accepted = false;

  /** Where and when the next attempt goes, after a lost connection or a failed attempt. */
  private scheduleNext(wasUp: boolean, code: number): void {
    const n = this.o.masters.length;
    let delay: number;
    if (code === CloseCode.replaced) {
      // the master asks for a reconnect (key just accepted: come back through the accepted
      // agents' door): the same master, at once (the backoff was reset by the acceptance)
      delay = backoffDelay(this.attempts++, this.o.backoffMinS, this.o.backoffMaxS);
    } else if (this.failBackPending) {
      this.failBackPending = false;
      this.current = 0;
      this.failedInRow = 0;
      delay = 0;
    } else {
      // a connection that ended before the master accepted the key counts as a failed attempt:
      // an agent refused everywhere must back off, not go round the list as fast as it can
      const served = wasUp && this.accepted;
      if (!served) this.failedInRow++;
      const roundDone = n === 1 || (!served && this.failedInRow % n === 0);
      if (n > 1) {
        const from = this.master.url;
        this.current = (this.current + 1) % n;
        if (served) this.o.log.info(`master ${from} lost: failing over to ${this.master.url}`);
      }
      // the next master at once (a jittered fraction of backoff_min_s, so a fleet failing
      // over together does not arrive in one instant); after a whole round, the backoff
      this.roundRefused &&= this.lastRefused;
      if (roundDone) {
        this.attempts = backoffStep(this.attempts, this.roundRefused);
        this.roundRefused = true;
      }
      delay = roundDone ? backoffDelay(this.attempts++, this.o.backoffMinS, this.o.backoffMaxS) : Math.random() * this.o.backoffMinS * 1000;
    }
    this.o.log.debug(`connecting to ${this.master.url} in ${(delay / 1000).toFixed(1)}s`);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  /**
   * An attempt starts with the TCP connect alone; TLS and the websocket are built on the socket
   * once it is connected. While a master is down (restarting) every agent retries every 1-2 s,
   * and a refused attempt made through ws cost ~0.5 ms of CPU (a ClientRequest, a TLSSocket, a
   * random key, errors with stacks) against ~0.1 ms for the bare connect: agents sharing cores
   * with a starting master (a lab, a bench, containers on one host) took the CPU it needed.
   */
  private connect(): void {
    if (this.stopped) return;
    this.verified = false;
    this.accepted = false;
    this.lastRefused = false;
    const master = this.master;
    const raw = net.connect({ host: master.host, port: master.port });
    this.dialing = raw;
    raw.setTimeout(CONNECT_TIMEOUT_MS);
    const failed = (why: string) => {
      raw.destroy();
      if (this.dialing !== raw) return;
      this.dialing = undefined;
      this.cannotReach(why);
      if (!this.stopped) this.scheduleNext(false, 1006); // as ws reports a connection that never opened
    };
    raw.once('timeout', () => failed(`connect to ${master.addr} timed out`));
    raw.once('error', (e) => {
      if ((e as NodeJS.ErrnoException).code === 'ECONNREFUSED') this.lastRefused = true;
      failed(e.message);
    });
    raw.once('connect', () => {
      raw.setTimeout(0);
      raw.removeAllListeners('timeout');
      raw.removeAllListeners('error');
      // its errors surface on the TLS socket built on it; none may go unhandled in between
      raw.on('error', () => {});
      if (this.dialing !== raw) return;
      this.dialing = undefined;
      if (this.stopped) {
        raw.destroy();
        return;
      }
      this.openWebSocket(master, raw);
    });
  }

  /** TLS and the websocket over a connected TCP socket to `master`. */
  private openWebSocket(master: MasterEndpoint, raw: net.Socket): void {
    const log = this.o.log;
    // one TLS context for every attempt: parsing the key and certificate anew on each reconnect
    // was most of an agent's CPU in a reconnect storm
    this.tlsContext ??= tls.createSecureContext({ key: this.o.keyPem, cert: this.o.certPem, minVersion: 'TLSv1.3' });
    // ws hands its options to tls.connect, which takes a ready secureContext (ws's own types omit it)
    const options: ClientOptions & Pick<tls.ConnectionOptions, 'secureContext'> = {
      secureContext: this.tlsContext,
      // the master's certificate is self-signed: we check its key fingerprint ourselves
      rejectUnauthorized: false,
      maxPayload: this.o.maxFrameBytes,
      handshakeTimeout: 15_000,
      perMessageDeflate: false,
      // TLS on the socket already connected (ws would connect again): no SNI for an address, as ws does
      createConnection: (opts) => tls.connect({ ...(opts as tls.ConnectionOptions), socket: raw, servername: net.isIP(master.host) ? '' : master.host }),
    };
    const ws = new WebSocket(master.url, options);
    this.ws = ws;
    ws.on('upgrade', (res) => {
      this.socket = res.socket as TLSSocket;
      const fp = peerIdentity(res.socket as TLSSocket)?.fingerprint ?? '';
      const pins = this.o.pins;
      if (fp && pins.canLearn(master)) {
        // a throw here (in ws's upgrade handler) would end the agent
        try {
          const file = pins.learn(master, fp);
          log.warn(`trusting master key ${fp} on first use for ${master.addr} (pinned in ${file})`);
        } catch (e) {
          log.error(`master key ${fp} of ${master.addr} cannot be pinned (${(e as Error).message}): not talking to it until it can be (trust on first use needs the pin kept)`);
          ws.terminate();
          return;
        }
      }
      const pin = pins.get(master);
      if (!pin) {
        log.error(`no master_finger for ${master.name} and tofu is off: refusing to talk to an unverified master`);
        ws.terminate();
        return;
      }
      if (fp !== pin) {
        log.error(`master at ${master.url} presented key ${fp || '(none)'}, expected ${pin}: refusing it (impostor or re-keyed master)`);
        ws.terminate();
        return;
      }
      this.verified = true;
    });
    ws.on('open', () => {
      if (!this.verified) {
        ws.terminate();
        return;
      }
      const u = this.unreachable;
      log.info(`connected to ${master.url}${u ? ` (after ${u.failures} failed attempt${u.failures > 1 ? 's' : ''} since ${new Date(u.since).toISOString()})` : ''}`);
      this.unreachable = undefined;
      this.failedInRow = 0;
      this.alive = true;
      this.watchFailback();
      this.beat?.stop();
      this.beat = startHeartbeat(this.o.heartbeatS * 1000, (judge) => {
        if (!this.alive && judge) {
          log.warn('master missed a heartbeat; reconnecting');
          ws.terminate();
          return;
        }
        this.alive = false;
        ws.ping();
      });
      try {
        this.o.onOpen();
      } catch (e) {
        log.error(`on connect: ${(e as Error).message}`);
      }
    });
    ws.on('pong', () => (this.alive = true));
    ws.on('message', (data, isBinary) => {
      this.alive = true;
      if (!this.verified) return;
      const d = decodeFrame(MasterMessageSchema, data, isBinary, validFrames);
      if (!d.ok) {
        this.drop(`from master: ${d.reason}`);
        return;
      }
      if (d.msg.type === 'key_status') {
        this.accepted = d.msg.state === 'accepted';
        if (this.accepted) this.attempts = 0;
      }
      try {
        this.o.onMessage(d.msg);
      } catch (e) {
        log.error(`handling '${d.msg.type}': ${(e as Error).message}`);
      }
    });
    ws.on('error', (e) => {
      if ((e as NodeJS.ErrnoException).code === 'ECONNREFUSED') this.lastRefused = true;
      if (this.verified) {
        log.debug(`connection error: ${e.message}`);
        return;
      }
      this.cannotReach(e.message);
    });
    ws.on('close', (code, reason) => {
      this.beat?.stop();
      clearInterval(this.failbackTimer);
      const wasUp = this.verified;
      this.verified = false;
      if (this.ws !== ws) return;
      if (wasUp) log.info(`disconnected from master ${master.url} (${code}${reason.length ? ` ${reason.toString().slice(0, 120)}` : ''})`);
      try {
        this.o.onClose();
      } catch (e) {
        log.error(`on disconnect: ${(e as Error).message}`);
      }
      if (this.stopped) return;
      this.scheduleNext(wasUp, code);
    });
  }
}
