/**
 * Before a key is accepted the master holds little for anyone: an outsider with fresh
 * self-signed certificates (new ids) sending huge hellos, opening many connections, filling the
 * key list or leaving TLS handshakes half done. Real master process, real TLS clients on loopback.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { buildOnce, Fleet, TEST_MASTERS, waitFor } from '../integration/fleet-harness.js';
import { loadOrCreateIdentity } from '../../core/identity.js';

const states = { 'top.sls': "base:\n  '*':\n    - common\n", 'common.sls': 'hello:\n  test.succeed_without_changes: []\n' };

/** kB of the master process from /proc: current and peak resident set. */
function memory(pid: number): { rss: number; hwm: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)![1]);
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** A websocket client with a new self-signed identity; resolves once open, or rejects with why not. */
async function outsider(fleet: Fleet, id: string): Promise<WebSocket & { closedWith: Promise<number> }> {
  const ident = await loadOrCreateIdentity(path.join(fleet.dir, 'outsiders', id), 'agent', id);
  const ws = new WebSocket(`wss://127.0.0.1:${fleet.port}/`, { key: ident.keyPem, cert: ident.certPem, rejectUnauthorized: false }) as WebSocket & {
    closedWith: Promise<number>;
  };
  ws.closedWith = new Promise((r) => ws.on('close', (code) => r(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
  return ws;
}

async function restart(fleet: Fleet, cfg: Record<string, unknown>): Promise<void> {
  await fleet.master?.kill('SIGTERM');
  fleet.masterCfg = { ...fleet.masterCfg, ...cfg };
  await fleet.startMaster();
}

describe('security: before authentication', () => {
  let fleet: Fleet;
  beforeAll(async () => {
    buildOnce();
    // long heartbeats: a slow attacker is not dropped for missing a ping while it uploads
    fleet = new Fleet({ states, master: { heartbeat_s: 30, lost_after_s: 60 } });
    await fleet.startMaster();
    fleet.startAgent('real1');
    await fleet.acceptAll(['real1']);
  });
  afterAll(async () => {
    await fleet?.stop();
  });

  it('40 new ids each sending a 15 MiB hello: frames refused, master memory stays bounded', async () => {
    const pid = fleet.master!.child.pid!;
    const before = memory(pid);
    const grains = { junk: 'x'.repeat(15 * 1024 * 1024) };
    const hello = Buffer.from(JSON.stringify({ type: 'hello', version: 1, grains, running: [], spooled: [] }));
    const clients = await Promise.all(Array.from({ length: 40 }, (_, i) => outsider(fleet, `big${i}`)));
    for (const c of clients) c.send(hello, { binary: false });
    // every hello is refused: each connection closes (a client's buffer can empty, its socket
    // cut by the master, before its close event comes: wait for the close itself)
    const codes = await waitFor('every big hello refused (its connection closed)', async () => {
      const settled = await Promise.all(clients.map((c) => Promise.race([c.closedWith, new Promise<undefined>((r) => setTimeout(() => r(undefined), 50))])));
      return settled.every((code) => code !== undefined) ? settled : undefined;
    }, 120_000);
    // once sent, the master needs a moment to parse what it was sent; give it the time a
    // heartbeat takes (the clients answer pings, as a real attacker would)
    await new Promise((r) => setTimeout(r, 3000));
    // 1009: message too big, said by the master before it buffers the frame (1006 when the
    // master's reset reaches the client, still writing, before the close frame does)
    const after = memory(pid);
    console.log(`master RSS before ${before.rss} kB, peak after 40 x 15 MiB hellos ${after.hwm} kB, now ${after.rss} kB`);
    // generous: 40 x 15 MiB held would be 600 MiB; a bounded master grows by a few MiB
    expect((after.hwm - before.rss) / 1024).toBeLessThan(150);
    for (const c of clients) c.terminate();
    expect(codes.filter((c) => c !== 1009 && c !== 1006)).toEqual([]);
    expect(fleet.master!.running).toBe(true);
    // the accepted agent still works
    const r = await fleet.cli(['run', 'real1', 'echo still-here']);
    expect(r.stdout).toMatch(/still-here/);
  });

  it('pending connections are capped and logged; accepted agents still get in', async () => {
    await restart(fleet, { max_pending_connections: 5 });
    await fleet.waitConnected(['real1']);
    const from = fleet.master!.out.length;
    // opened together, before the master has set up any of them: the cap counts them from their upgrade
    const tries = await Promise.allSettled(Array.from({ length: 9 }, (_, i) => outsider(fleet, `pc${i}`)));
    const held = tries.flatMap((t) => (t.status === 'fulfilled' ? [t.value] : []));
    const refusedWhy = tries.flatMap((t) => (t.status === 'rejected' ? [String((t.reason as Error).message)] : []));
    expect([held.length, refusedWhy]).toEqual([5, Array(4).fill('HTTP 503')]);
    await expect(outsider(fleet, 'pc9')).rejects.toThrow(/HTTP 503/);
    await fleet.master!.waitOutput(/pending connection cap reached \(max_pending_connections 5\)/, 20_000, from);
    // an accepted agent is not pending: it reconnects over a full pending cap
    fleet.agents[0]!.child.kill('SIGKILL');
    await fleet.agents[0]!.exited;
    fleet.agents.length = 0;
    fleet.startAgents([path.join(fleet.dir, 'agents', 'real1', 'agent.yaml')]);
    await fleet.waitConnected(['real1']);
    for (const c of held) c.terminate();
    // a pending connection that leaves frees its place
    await waitFor('a pending place again', async () => {
      const c = await outsider(fleet, 'pc6').catch(() => undefined);
      c?.terminate();
      return c ? true : undefined;
    });
  });

  it('pending keys are capped: new ids beyond max_pending_keys are refused and logged', async () => {
    const pendingNow = (await fleet.keys()).keys.filter((k) => k.state === 'pending').length;
    // (the pending connection cap of the case before, 5, would refuse part of the burst below)
    await restart(fleet, { max_pending_keys: pendingNow + 2, max_pending_connections: 100 });
    const from = fleet.master!.out.length;
    const codes: number[] = [];
    for (let i = 0; i < 5; i++) {
      const c = await outsider(fleet, `pk${i}`);
      const code = await Promise.race([c.closedWith, new Promise<number>((r) => setTimeout(() => r(0), 500))]);
      codes.push(code);
      c.terminate();
    }
    expect(codes.filter((c) => c === 4401)).toHaveLength(3);
    const keys = (await fleet.keys()).keys.map((k) => k.id);
    expect(keys).toEqual(expect.arrayContaining(['pk0', 'pk1']));
    expect(keys).not.toContain('pk2');
    await fleet.master!.waitOutput(/pending key cap reached \(max_pending_keys \d+\): new id pk2/, 20_000, from);
    // accepting or deleting makes room again
    await fleet.cli(['keys', 'delete', 'pk0']);
    const again = await outsider(fleet, 'pk2');
    await new Promise((r) => setTimeout(r, 500));
    expect((await fleet.keys()).keys.map((k) => k.id)).toContain('pk2');
    again.terminate();
    // new ids all at once, with room for two: two keys are stored, the rest refused
    for (const id of ['pk1', 'pk2']) expect((await fleet.cli(['keys', 'delete', id])).code).toBe(0);
    const burst = await Promise.all(Array.from({ length: 6 }, (_, i) => outsider(fleet, `pkb${i}`)));
    let closed = 0;
    for (const c of burst) void c.closedWith.then(() => closed++);
    const stored = async () => (await fleet.keys()).keys.filter((k) => k.id.startsWith('pkb')).length;
    await waitFor('each of the burst stored or refused', async () => ((await stored()) + closed === 6 ? true : undefined));
    for (const c of burst) c.terminate();
    expect(await stored()).toBe(2);
  });

  it('half-open sockets: a TCP connect with no TLS, or TLS with no upgrade, is closed after tls_handshake_timeout_s', async () => {
    await restart(fleet, { tls_handshake_timeout_s: 1 });
    const tcp = net.connect(fleet.port, '127.0.0.1');
    const tcpClosed = new Promise<void>((r) => tcp.on('close', () => r()));
    tcp.on('error', () => {});
    const { default: tls } = await import('node:tls');
    const ident = await loadOrCreateIdentity(path.join(fleet.dir, 'outsiders', 'silent'), 'agent', 'silent');
    const t = tls.connect({ host: '127.0.0.1', port: fleet.port, key: ident.keyPem, cert: ident.certPem, rejectUnauthorized: false });
    t.on('error', () => {});
    const tlsClosed = new Promise<void>((r) => t.on('close', () => r()));
    await new Promise<void>((r) => t.once('secureConnect', () => r()));
    // Node's defaults would keep both for 120 s / 60 s; the test's own timeout is well under that
    await waitFor('both closed by the master', async () => {
      const done = await Promise.all([tcpClosed, tlsClosed].map((p) => Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 50))])));
      return done.every(Boolean) || undefined;
    }, 30_000);
  });

  it('each master holds at most max_connections sockets; the cap is logged', async () => {
    // every master restarted with the cap (pair mode: both, each with its own listener)
    await fleet.killMasters();
    fleet.masterCfg = { ...fleet.masterCfg, max_connections: 20, tls_handshake_timeout_s: 60 };
    await fleet.startMaster();
    // the agent's connection takes one place, on the master holding it (pair mode: either one,
    // the one it reached first: its session in the store says which)
    await fleet.waitConnected(['real1']);
    const masters = [{ proc: fleet.master!, port: fleet.port }, ...(TEST_MASTERS === 2 ? [{ proc: fleet.master2!, port: fleet.port2 }] : [])];
    const agentOn =
      TEST_MASTERS === 2
        ? await waitFor('real1 held by a master', async () => {
            const rows = await fleet.storeQuery("SELECT m.url FROM sessions s JOIN masters m ON m.id = s.master_id WHERE s.agent_id = 'real1'");
            return rows.length ? Number(String(rows[0]!.url).split(':').pop()) : undefined;
          })
        : fleet.port;
    expect(masters.map((m) => m.port)).toContain(agentOn);
    // the cap is each master's own: 30 sockets at each, 20 places each, one of them the agent's there
    for (const m of masters) {
      const from = m.proc.out.length;
      const socks = Array.from({ length: 30 }, () => {
        const s = net.connect(m.port, '127.0.0.1');
        s.on('error', () => {});
        return s;
      });
      const closed = new Set<net.Socket>();
      for (const s of socks) s.on('close', () => closed.add(s));
      const refused = m.port === agentOn ? 11 : 10;
      await m.proc.waitOutput(/connection cap reached \(max_connections 20\)/, 20_000, from);
      await waitFor(`${refused} refused by the master on port ${m.port}`, () => (closed.size >= refused ? true : undefined));
      expect(closed.size).toBe(refused);
      for (const s of socks) s.destroy();
    }
    await fleet.waitConnected(['real1']);
  });
});
