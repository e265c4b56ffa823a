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

export async function listenCli(file: string, handler: CliHandler, log: Logger): Promise<net.Server> {
  const dir = path.dirname(file);
  if (!fs.existsSync(dir)) fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (fs.existsSync(file)) {
    if (await socketInUse(file)) throw new Error(`${file}: another master is listening on this socket`);
    fs.unlinkSync(file); // left behind by a master that died
  }
  const server = net.createServer((sock) => {
    let buf = '';
    let handled = false;
    sock.setEncoding('utf8');
    sock.on('error', () => {}); // a CLI that went away (Ctrl-C) is not the master's problem
    // a job's events come a few per agent: written a loop turn at a time (one writev, not one
    // write each); end() uncorks what is left
    let corked = false;
    const send = (ev: CliEvent) => {
      if (sock.destroyed || !sock.writable) return;
      if (!corked) {
        corked = true;
        sock.cork();
        setImmediate(() => {
          corked = false;
          sock.uncork();
        });
      }
      sock.write(JSON.stringify(ev) + '\n');
    };
    sock.on('data', (chunk: string) => {
      if (handled) return;
      buf += chunk;
      if (buf.length > MAX_REQUEST) {
        handled = true;
        send({ type: 'error', message: 'request too large' });
        send({ type: 'end', code: 1 });
        sock.end();
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
        send({ type: 'error', message: `bad request: ${r.error.issues[0]?.message ?? 'invalid'}` });
        send({ type: 'end', code: 1 });
        sock.end();
        return;
      }
      log.debug(`cli: ${r.data.type}`);
      handler(r.data, send).then(
        (code) => {
          send({ type: 'end', code });
          sock.end();
        },
        (e: Error) => {
          log.error(`cli ${r.data.type} failed: ${e.message}`);
          send({ type: 'error', message: e.message });
          send({ type: 'end', code: 1 });
          sock.end();
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
  return server;
}
