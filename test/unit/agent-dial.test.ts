/**
 * The agent's attempt to reach a master starts with the TCP connect alone (agent/connection/
 * client.ts): while the master is down, a refused attempt builds no HTTP request, TLS socket or
 * websocket (each of those cost a fleet retrying every 1-2 s the CPU a restarting master needed),
 * and once it listens, TLS and the websocket run on that same connection (one TCP connection per
 * attempt, not a probe and then another).
 */
import diagnostics from 'node:diagnostics_channel';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { MasterConnection } from '../../agent/connection/client.js';
import { parseMasterEntry, PinBook, type MasterEndpoint } from '../../agent/connection/masters.js';
import { loadOrCreateIdentity } from '../../core/identity.js';
import { makeLogger } from '../../core/log.js';
import { tempDir } from '../helpers/harness.js';
import { freePort } from '../helpers/net.js';

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanup.splice(0).reverse()) c();
});

async function until(what: string, ok: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** An agent's connection to `endpoint` retrying fast, trusting the master's key on first use, its log lines in `lines`. */
function connection(endpoint: MasterEndpoint, agent: { keyPem: string; certPem: string }, dir: string, lines: string[], onOpen = () => {}): MasterConnection {
  return new MasterConnection({
    masters: [endpoint],
    keyPem: agent.keyPem,
    certPem: agent.certPem,
    pins: new PinBook([endpoint], undefined, path.join(dir, 'agent', 'master.fp'), 'test'),
    failbackMs: 0,
    backoffMinS: 0.02,
    backoffMaxS: 0.05,
    heartbeatS: 30,
    maxFrameBytes: 1 << 20,
    log: makeLogger('debug', 'agent', (l) => void lines.push(l)),
    onOpen,
    onMessage: () => {},
    onClose: () => {},
  });
}

describe('agent: dialling the master', () => {
  it('a refused attempt makes no HTTP request; when the master listens, one TCP connection carries TLS and the websocket', async () => {
    const dir = tempDir();
    const agent = await loadOrCreateIdentity(path.join(dir, 'agent'), 'agent', 'dialler');
    const master = await loadOrCreateIdentity(path.join(dir, 'master'), 'master', 'master');
    const port = await freePort(); // nothing listens on it yet: connects are refused
    const endpoint = parseMasterEntry(`127.0.0.1:${port}`, port);
    const lines: string[] = [];

    // every HTTP client request this process starts (ws builds one per attempt it makes)
    const requests: string[] = [];
    const onRequest = (m: unknown) => {
      const req = (m as { request: { host?: string; getHeader(n: string): unknown } }).request;
      requests.push(String(req.getHeader('host') ?? req.host));
    };
    diagnostics.subscribe('http.client.request.start', onRequest);
    cleanup.push(() => diagnostics.unsubscribe('http.client.request.start', onRequest));

    let opened = 0;
    const conn = connection(endpoint, agent, dir, lines, () => void opened++);
    conn.start();
    cleanup.push(() => conn.stop());

    const refused = () => lines.filter((l) => l.includes('ECONNREFUSED')).length;
    await until('five refused attempts', () => refused() >= 5);
    expect(requests.filter((h) => h.includes(String(port)))).toEqual([]);

    // the master comes up on that port: TLS with client certificates, a websocket server
    const tcp: net.Socket[] = [];
    const server = https.createServer({ key: master.keyPem, cert: master.certPem, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.3' });
    server.on('connection', (s: net.Socket) => tcp.push(s));
    const wss = new WebSocketServer({ server });
    const clientCerts: (string | undefined)[] = [];
    wss.on('connection', (_ws, req) => clientCerts.push((req.socket as import('node:tls').TLSSocket).getPeerX509Certificate()?.subject));
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    cleanup.push(() => {
      wss.close();
      server.closeAllConnections();
      server.close();
    });

    await until('the websocket open', () => opened === 1 && conn.connected);
    expect(tcp).toHaveLength(1);
    expect(clientCerts).toEqual(['CN=dialler']); // mutual TLS on the dialled socket
    expect(requests.filter((h) => h.includes(String(port)))).toHaveLength(1);
    expect(lines.some((l) => l.includes('trusting master key'))).toBe(true);
  });

  it('stop() ends an attempt under way: nothing reported, nothing retried', async () => {
    const dir = tempDir();
    const agent = await loadOrCreateIdentity(path.join(dir, 'agent'), 'agent', 'dialler');
    const port = await freePort();
    const endpoint = parseMasterEntry(`127.0.0.1:${port}`, port);
    const lines: string[] = [];
    const conn = connection(endpoint, agent, dir, lines);
    conn.start();
    conn.stop();
    await new Promise((r) => setTimeout(r, 300));
    // stopped while the connect was under way: no error reported, no retry scheduled
    expect(lines.filter((l) => l.includes('connecting to'))).toEqual([]);
    expect(lines.filter((l) => l.includes('cannot reach'))).toEqual([]);
  });
});
