/**
 * The agent's connection to the master: wss with the agent's own certificate (mutual TLS),
 * the master's key pinned by fingerprint (config, or trust on first use when allowed), ping
 * heartbeats, and reconnects with jittered exponential backoff. Frames that do not parse
 * close the connection; the agent then reconnects, it never crashes on what a master sends.
 */
import fs from 'node:fs';
import type { TLSSocket } from 'node:tls';
import { WebSocket } from 'ws';
import {
  CloseCode,
  decodeFrame,
  MasterMessageSchema,
  type AgentMessage,
  type MasterMessage,
} from '../../protocol/messages.js';
import { fingerprintOf, normaliseFingerprint } from '../../core/identity.js';
import type { Logger } from '../../core/log.js';

export interface ConnectionOptions {
  url: string;
  keyPem: string;
  certPem: string;
  /** the master's key fingerprint; absent with tofuFile: learn it on first contact */
  pin: string | undefined;
  /** where a fingerprint learnt on first use is kept */
  tofuFile: string | undefined;
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

const UNREACHABLE_WARN_MS = 60_000;

export class MasterConnection {
  private ws: WebSocket | undefined;
  private attempts = 0;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private beatTimer: NodeJS.Timeout | undefined;
  private alive = true;
  private pin: string | undefined;
  private verified = false;
  /** failed connection attempts since the last connection (or the start), and the last warning */
  private unreachable: { since: number; failures: number; warnedAt: number } | undefined;

  constructor(private readonly o: ConnectionOptions) {
    this.pin = o.pin ? normaliseFingerprint(o.pin) : undefined;
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
    clearInterval(this.beatTimer);
    this.ws?.close(CloseCode.shutdown, 'agent stopping');
    const ws = this.ws;
    setTimeout(() => ws?.terminate(), 1000).unref();
  }

  send(msg: AgentMessage): boolean {
    if (!this.connected) return false;
    this.ws!.send(JSON.stringify(msg));
    return true;
  }

  /** Drop the connection (bad frame from the master); a reconnect follows. */
  drop(reason: string): void {
    this.o.log.warn(`closing the connection: ${reason}`);
    this.ws?.close(CloseCode.protocolError, reason.slice(0, 120));
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
      this.o.log.warn(`cannot reach the master at ${this.o.url}: ${why}; retrying (a warning every minute while it lasts)`);
      u.warnedAt = now;
    } else if (now - u.warnedAt >= UNREACHABLE_WARN_MS) {
      this.o.log.warn(`still cannot reach the master at ${this.o.url}: ${why} (${u.failures} attempts since ${new Date(u.since).toISOString()})`);
      u.warnedAt = now;
    } else {
      this.o.log.debug(`connection error: ${why}`);
    }
  }

  private connect(): void {
    if (this.stopped) return;
    const log = this.o.log;
    this.verified = false;
    const ws = new WebSocket(this.o.url, {
      key: this.o.keyPem,
      cert: this.o.certPem,
      // the master's certificate is self-signed: we check its key fingerprint ourselves
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
      maxPayload: this.o.maxFrameBytes,
      handshakeTimeout: 15_000,
      perMessageDeflate: false,
    });
    this.ws = ws;
    ws.on('upgrade', (res) => {
      const cert = (res.socket as TLSSocket).getPeerCertificate();
      const fp = cert?.raw ? fingerprintOf(cert.raw) : '';
      if (!this.pin) {
        if (!this.o.tofuFile) {
          log.error('no master_finger configured and tofu is off: refusing to talk to an unverified master');
          ws.terminate();
          return;
        }
        fs.writeFileSync(this.o.tofuFile, fp + '\n', { mode: 0o600 });
        this.pin = fp;
        log.warn(`trusting master key ${fp} on first use (pinned in ${this.o.tofuFile})`);
      }
      if (fp !== this.pin) {
        log.error(`master at ${this.o.url} presented key ${fp || '(none)'}, expected ${this.pin}: refusing it (impostor or re-keyed master)`);
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
      log.info(`connected to ${this.o.url}${u ? ` (after ${u.failures} failed attempt${u.failures > 1 ? 's' : ''} since ${new Date(u.since).toISOString()})` : ''}`);
      this.unreachable = undefined;
      this.alive = true;
      clearInterval(this.beatTimer);
      this.beatTimer = setInterval(() => {
        if (!this.alive) {
          log.warn('master missed a heartbeat; reconnecting');
          ws.terminate();
          return;
        }
        this.alive = false;
        ws.ping();
      }, this.o.heartbeatS * 1000);
      this.beatTimer.unref();
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
      const d = decodeFrame(MasterMessageSchema, data, isBinary);
      if (!d.ok) {
        this.drop(`from master: ${d.reason}`);
        return;
      }
      if (d.msg.type === 'key_status' && d.msg.state === 'accepted') this.attempts = 0;
      try {
        this.o.onMessage(d.msg);
      } catch (e) {
        log.error(`handling '${d.msg.type}': ${(e as Error).message}`);
      }
    });
    ws.on('error', (e) => {
      if (this.verified) {
        log.debug(`connection error: ${e.message}`);
        return;
      }
      this.cannotReach(e.message);
    });
    ws.on('close', (code, reason) => {
      clearInterval(this.beatTimer);
      const wasUp = this.verified;
      this.verified = false;
      if (this.ws !== ws) return;
      if (wasUp) log.info(`disconnected from master (${code}${reason.length ? ` ${reason.toString().slice(0, 120)}` : ''})`);
      try {
        this.o.onClose();
      } catch (e) {
        log.error(`on disconnect: ${(e as Error).message}`);
      }
      if (this.stopped) return;
      const delay = backoffDelay(this.attempts++, this.o.backoffMinS, this.o.backoffMaxS);
      log.debug(`reconnecting in ${(delay / 1000).toFixed(1)}s`);
      this.retryTimer = setTimeout(() => this.connect(), delay);
    });
  }
}
