/**
 * A master stopping (SIGTERM) with agents connected ends its connections with one line and one
 * store write (last seen) for them all, not with each agent's bookkeeping (a store write, a
 * store read of its open jobs, a lost-agent timer and a log line per agent: 10,000 agents made
 * that a stop of more than 15 s), and still stops when a connection never answers its close
 * frame (its socket is never read): that one is cut after the 1 s grace.
 */
import crypto from 'node:crypto';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateIdentity } from '../../core/identity.js';
import { buildOnce, Fleet } from './fleet-harness.js';

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

  it('closes every connection with one line and one last-seen write for all; a silent one is cut after the grace', async () => {
    const side = fleet.agentSide;
    const master = side.proc!;
    silent = await silentConnection(path.join(fleet.dir, 'raw'), side.port, 'silent1');
    await master.waitOutput(/agent silent1 connected from/);
    const from = master.out.length;
    const sigterm = new Date().toISOString();
    master.child.kill('SIGTERM');
    await master.exited;
    const stop = master.out.slice(from);
    expect(stop).toMatch(/closing 3 agent connection\(s\)/);
    expect(stop).not.toMatch(/agent (st1|st2|silent1) disconnected/);
    // last seen written at the stop for every agent connected
    const rows = await fleet.storeQuery("SELECT id, last_seen FROM agents WHERE id IN ('silent1', 'st1', 'st2') ORDER BY id");
    expect(rows.map((r) => [r.id, String(r.last_seen) >= sigterm])).toEqual([['silent1', true], ['st1', true], ['st2', true]]);
  });
});
