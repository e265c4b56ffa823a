/**
 * The CLI's door into the master: a Unix socket, mode 0600 in a 0700 directory, so only root
 * (or the master's own user) can open it. One JSON request line per connection; the answer is
 * a stream of JSON event lines ending with `{"type":"end","code":N}`.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { CliRequestSchema, type CliEvent, type CliRequest } from '../protocol/cli-messages.js';
import type { Logger } from '../core/log.js';
import { BoundedWriter } from './bounded-writer.js';

const MAX_REQUEST = 1024 * 1024;

export type CliHandler = (req: CliRequest, send: (ev: CliEvent) => void) => Promise<number>;

async function socketInUse(file: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(file);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

export interface CliSocketOptions {
  /** bytes of events that may wait for one CLI that stopped reading (default MAX_PENDING_BYTES) */
  maxPendingBytes?: number;
}

/** How long CLIs told that the master stops have to hang up before their sockets are cut. */
const CLOSE_GRACE_MS = 500;

export interface CliServer {
  /**
   * Stops listening and ends every open request: a request waits on a job or the store, and a
   * server's close waits for its connections, so a stop waited for every CLI still connected
   * (for ever with a job whose agents are gone, or a store that does not answer). Each is told
   * the master is stopping (with its job's id when it started one) and cut after a moment.
   */
  close(): Promise<void>;
}

/** A request in a few words, for the log: its type and target. */
function describe(req: CliRequest): string {
  return 'target' in req && typeof req.target === 'string' ? `${req.type} ${JSON.stringify(req.target.slice(0, 80))}` : req.type;
}

export async function listenCli(file: string, handler: CliHandler, log: Logger, opts: CliSocketOptions = {}): Promise<CliServer> {
  const dir = path.dirname(file);
  if (!fs.existsSync(dir)) fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (fs.existsSync(file)) {
    if (await socketInUse(file)) throw new Error(`${file}: another master is listening on this socket`);
    fs.unlinkSync(file); // left behind by a master that died
  }
  let clients = 0;
  /** open requests: how to end each one when the master stops */
  const open = new Map<net.Socket, () => void>();
  const server = net.createServer((sock) => {
    let buf = '';
    let handled = false;
    const n = ++clients;
    let what = 'request not read yet';
    let jid: string | undefined;
    sock.setEncoding('utf8');
    sock.on('error', () => {}); // a CLI that went away (Ctrl-C) is not the master's problem
    // a CLI that stopped reading (suspended, piped into a stalled pager) is cut off before its
    // events fill the master's memory; the job goes on without it
    const out = new BoundedWriter(sock, {
      name: () => `cli client #${n} (${what}${jid ? `, job ${jid}` : ''})`,
      log,
      cap: opts.maxPendingBytes,
      hint: () => (jid ? `job ${jid} goes on; \`tsalt jobs ${jid}\` has its results` : ''),
    });
    // a job's events come a few per agent: written a loop turn at a time (one writev, not one
    // write each); end() uncorks what is left
    let corked = false;
    const send = (ev: CliEvent) => {
      if (out.dropped || sock.destroyed || !sock.writable) return;
      if (ev.type === 'job_started') jid = ev.jid;
      if (!corked) {
        corked = true;
        sock.cork();
        setImmediate(() => {
          corked = false;
          sock.uncork();
        });
      }
      out.write(JSON.stringify(ev) + '\n');
    };
    let answered = false;
    open.set(sock, () => {
      if (answered) return;
      answered = true;
      send({ type: 'error', message: `the master is stopping; the request was cut off${jid ? ` (job ${jid} was started: \`tsalt jobs ${jid}\` has its results)` : ''}` });
      send({ type: 'end', code: 1 });
      out.end();
    });
    sock.once('close', () => open.delete(sock));
    sock.on('data', (chunk: string) => {
      if (handled) return;
      buf += chunk;
      if (buf.length > MAX_REQUEST) {
        handled = answered = true;
        send({ type: 'error', message: 'request too large' });
        send({ type: 'end', code: 1 });
        out.end();
        return;
      }
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      handled = true;
      let raw: unknown;
      try {
        raw = JSON.parse(buf.slice(0, nl));
      } catch {
        raw = undefined;
      }
      const r = CliRequestSchema.safeParse(raw);
      if (!r.success) {
        answered = true;
        send({ type: 'error', message: `bad request: ${r.error.issues[0]?.message ?? 'invalid'}` });
        send({ type: 'end', code: 1 });
        out.end();
        return;
      }
      what = describe(r.data);
      log.debug(`cli: ${r.data.type}`);
      handler(r.data, send).then(
        (code) => {
          if (answered) return;
          answered = true;
          send({ type: 'end', code });
          out.end();
        },
        (e: Error) => {
          log.error(`cli ${r.data.type} failed: ${e.message}`);
          if (answered) return;
          answered = true;
          send({ type: 'error', message: e.message });
          send({ type: 'end', code: 1 });
          out.end();
        },
      );
    });
  });
  const old = process.umask(0o177); // the socket is born 0600: no window where others can connect
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(file, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(old);
  }
  fs.chmodSync(file, 0o600);
  return {
    async close() {
      const closed = new Promise<void>((r) => server.close(() => r()));
      for (const end of open.values()) end();
      let grace: NodeJS.Timeout | undefined;
      await Promise.race([closed, new Promise<void>((r) => (grace = setTimeout(r, CLOSE_GRACE_MS)))]);
      clearTimeout(grace);
      for (const sock of open.keys()) sock.destroy();
      await closed;
    },
  };
}
