/**
 * A master stopping (SIGTERM) with agents connected ends its connections with one line and one
 * store write (last seen) for them all, not with each agent's bookkeeping (a store write, a
 * store read of its open jobs, a lost-agent timer and a log line per agent: 10,000 agents made
 * that a stop of more than 15 s). It writes every agent its close frame (code 1001, shutdown)
 * and then exits without waiting for the closing handshakes or tearing each TLS socket down
 * (the kernel closes them): so it stops when a connection never answers its close frame (its
 * socket is never read) too, and that one has the frame in its socket when it reads again. The
 * store is closed cleanly (SQLite: the WAL checkpointed and removed) and the CLI socket removed.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateIdentity } from '../../core/identity.js';
import { buildOnce, Fleet, TEST_MASTERS, TEST_STORE } from './fleet-harness.js';

/** The websocket close frames (unmasked, server to client) in a byte stream: [code, reason] each. */
function closeFrames(bytes: Buffer): [number, string][] {
  const out: [number, string][] = [];
  let i = 0;
  // frames from the master are small (< 126 bytes of payload) and unmasked
  while (i + 2 <= bytes.length) {
    const op = bytes[i]! & 0x0f;
    const len = bytes[i + 1]! & 0x7f;
    if (len >= 126) break;
    if (op === 0x8 && len >= 2) out.push([bytes.readUInt16BE(i + 2), bytes.subarray(i + 4, i + 2 + len).toString('utf8')]);
    i += 2 + len;
  }
  return out;
}

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

  it('closes every connection with one line and one last-seen write for all, each told shutdown; exits with the store closed', async () => {
    const side = fleet.agentSide;
    const master = side.proc!;
    const sock = TEST_MASTERS === 2 ? path.join(fleet.dir, 'master2.sock') : fleet.sock;
    const db = path.join(fleet.dir, TEST_MASTERS === 2 ? 'master2.db' : 'master.db');
    expect(fs.existsSync(sock)).toBe(true);
    silent = await silentConnection(path.join(fleet.dir, 'raw'), side.port, 'silent1');
    await master.waitOutput(/agent silent1 connected from/);
    const from = master.out.length;
    const agentsFrom = fleet.agents[0]!.out.length;
    const sigterm = new Date().toISOString();
    master.child.kill('SIGTERM');
    expect(await master.exited).toBe(0);
    const stop = master.out.slice(from);
    expect(stop).toMatch(/closing 3 agent connection\(s\)/);
    expect(stop).not.toMatch(/agent (st1|st2|silent1) disconnected/);
    // every agent was told why: the shutdown close code (its backoff honours it)
    const agents = fleet.agents[0]!;
    for (const id of ['st1', 'st2']) {
      await agents.waitOutput(new RegExp(`agent ${id}.*disconnected from master wss://127\\.0\\.0\\.1:${side.port}\\S* \\(1001 master shutting down\\)`), 20_000, agentsFrom);
    }
    // the silent connection never read: its close frame waits in its socket all the same
    const bytes: Buffer[] = [];
    silent.on('data', (b: Buffer) => bytes.push(b));
    const ended = new Promise<void>((r) => silent!.once('close', () => r()));
    silent.resume();
    await ended;
    expect(closeFrames(Buffer.concat(bytes))).toEqual([[1001, 'master shutting down']]);
    // the store was closed before the process ended: SQLite checkpointed its WAL and removed it
    // (looked at before the query below opens the file)
    if (TEST_STORE === 'sqlite') expect(fs.existsSync(`${db}-wal`)).toBe(false);
    // last seen written at the stop for every agent connected
    const rows = await fleet.storeQuery("SELECT id, last_seen FROM agents WHERE id IN ('silent1', 'st1', 'st2') ORDER BY id");
    expect(rows.map((r) => [r.id, String(r.last_seen) >= sigterm])).toEqual([['silent1', true], ['st1', true], ['st2', true]]);
    expect(fs.existsSync(sock)).toBe(false);
  });
});
