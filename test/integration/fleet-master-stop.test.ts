/**
 * A master stopping (SIGTERM) with agents connected: it stops taking agent connections first,
 * so the fleet's reconnects are refused at once instead of being handshaked by a master that is
 * going away, and it ends its connections with one line and one store write for them all, not
 * with each agent's bookkeeping (10,000 agents made that a 15 s stop).
 *
 * A connection that never answers the close frame (its socket is never read) holds the stopping
 * master for its 1 s grace: the listener must be closed during it.
 */
import crypto from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateIdentity } from '../../core/identity.js';
import { buildOnce, Fleet, waitFor } from './fleet-harness.js';

/** A websocket connection whose owner then stops reading: the master's close frame is never answered. */
async function silentConnection(keyDir: string, port: number, id: string): Promise<tls.TLSSocket> {
  const ident = await loadOrCreateIdentity(path.join(keyDir, id), 'agent', id);
  const sock = tls.connect({ host: '127.0.0.1', port, key: ident.keyPem, cert: ident.certPem, rejectUnauthorized: false });
  sock.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    sock.once('secureConnect', () => resolve());
    sock.once('error', reject);
  });
  sock.write(
    `GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  await new Promise<void>((resolve) => {
    let got = '';
    const onData = (b: Buffer) => {
      got += b.toString('latin1');
      if (!got.includes('\r\n\r\n')) return;
      sock.off('data', onData);
      sock.pause();
      resolve();
    };
    sock.on('data', onData);
  });
  return sock;
}

/** Whether a TCP connect to the port is refused (nothing listening). */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

describe('fleet: a master stopping with agents connected', () => {
  let fleet: Fleet;
  let silent: tls.TLSSocket | undefined;
  beforeAll(async () => {
    buildOnce();
    fleet = new Fleet({ states: { 'top.sls': "base:\n  '*':\n    - one\n", 'one.sls': 'one:\n  test.succeed_without_changes: []\n' } });
    await fleet.startMaster();
    fleet.startAgents(['st1', 'st2'].map((id) => fleet.agentConfig(id)));
    await fleet.acceptAll(['st1', 'st2']);
    await fleet.waitConnected(['st1', 'st2']);
  }, 120_000);
  afterAll(async () => {
    silent?.destroy();
    await fleet?.stop();
  });

  it('refuses new connections from the start of its stop, and closes the rest with one line for all', async () => {
    const side = fleet.agentSide;
    const master = side.proc!;
    silent = await silentConnection(path.join(fleet.dir, 'raw'), side.port, 'silent1');
    await master.waitOutput(/agent silent1 connected from/);
    expect(await refused(side.port)).toBe(false);
    const from = master.out.length;
    master.child.kill('SIGTERM');
    await master.waitOutput(/SIGTERM: shutting down/, 20_000, from);
    // the silent connection keeps the master alive for its grace; new connects are refused in it
    const seen = await waitFor('a refused connect, or the master gone', async () => {
      if (!master.running) return 'the master exited first';
      if (!(await refused(side.port))) return undefined;
      return master.running ? 'refused while stopping' : 'the master exited first';
    }, 20_000);
    expect(seen).toBe('refused while stopping');
    await master.exited;
    const stop = master.out.slice(from);
    expect(stop).toMatch(/closing 3 agent connection\(s\)/);
    expect(stop).not.toMatch(/agent (st1|st2|silent1) disconnected/);
  });
});
