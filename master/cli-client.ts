/** The CLI's side of the master socket: send one request, receive events until `end`. */
import net from 'node:net';
import fs from 'node:fs';
import { CliEventSchema, type CliEvent, type CliRequest } from '../protocol/cli-messages.js';
import { loadMasterConfig, DEFAULT_MASTER_CONFIG } from './config.js';

export class CliConnectError extends Error {}

/** --socket, else TSALT_SOCKET, else the socket named in the master config (--config or default). */
export function socketPath(o: { socket?: string; config?: string }): string {
  if (o.socket) return o.socket;
  if (process.env.TSALT_SOCKET) return process.env.TSALT_SOCKET;
  if (o.config || fs.existsSync(DEFAULT_MASTER_CONFIG)) return loadMasterConfig(o.config).socket;
  return loadMasterConfig(undefined).socket;
}

/** Resolves with the master's exit code; rejects when the master cannot be reached or goes away. */
export function request(file: string, req: CliRequest, onEvent: (ev: CliEvent) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(file);
    let buf = '';
    let code: number | undefined;
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(JSON.stringify(req) + '\n'));
    sock.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let raw: unknown;
        try {
          raw = JSON.parse(line);
        } catch {
          continue;
        }
        const r = CliEventSchema.safeParse(raw);
        if (!r.success) continue;
        if (r.data.type === 'end') code = r.data.code;
        else onEvent(r.data);
      }
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      if (code !== undefined) return;
      const hint = e.code === 'ENOENT' || e.code === 'ECONNREFUSED' ? ' (is tsalt master running? --socket/--config name its socket)' : e.code === 'EACCES' ? ' (root only)' : '';
      reject(new CliConnectError(`cannot reach the master at ${file}: ${e.message}${hint}`));
    });
    sock.on('close', () => {
      if (code !== undefined) resolve(code);
      else reject(new CliConnectError(`the master closed the connection before the answer was complete: it restarted, or it dropped this client for not reading its answer (see the master's log); a job goes on without it, 'tsalt jobs <jid>' has its results`));
    });
  });
}
