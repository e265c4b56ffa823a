/**
 * Keys and the wire: pending/accepted/rejected/deleted keys, key mismatch, an impostor master,
 * trust on first use, malformed, unknown, out-of-level and oversize frames. Real master and
 * agent processes on loopback.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Fleet, RawAgent, waitFor } from './fleet-harness.js';

const states = {
  'top.sls': "base:\n  '*':\n    - common\n",
  'common.sls': 'hello:\n  test.succeed_with_changes: []\n',
};

describe('fleet: keys and the wire', () => {
  let fleet: Fleet;
  beforeAll(async () => {
    buildOnce();
    fleet = new Fleet({ states, master: { max_frame_bytes: 65536 } });
    await fleet.startMaster();
  });
  afterAll(async () => {
    await fleet?.stop();
  });

  it('a new agent waits as pending and is sent nothing until accepted', async () => {
    const agent = fleet.startAgent('k1');
    await waitFor('k1 pending', async () => (await fleet.keys()).keys.find((k) => k.id === 'k1' && k.state === 'pending'));
    await agent.waitOutput(/key pending on the master/);
    // the pending agent is no target: the target matches nothing
    const r = await fleet.cli(['run', '*', 'echo should-not-run']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/matched no accepted agent/);
    expect(agent.out).not.toMatch(/job \d{20}/);

    const acc = await fleet.cli(['keys', 'accept', 'k1']);
    expect(acc.code).toBe(0);
    expect(acc.stdout).toMatch(/Accepted key: k1/);
    await fleet.waitConnected(['k1']);
    const ok = await fleet.cli(['run', 'k1', 'echo hello-from-k1']);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/k1:\n\s+hello-from-k1/);
    const keys = await fleet.cli(['keys', 'list']);
    expect(keys.stdout).toMatch(new RegExp(`Master fingerprint: ${fleet.fingerprint}`));
    expect(keys.stdout).toMatch(/Accepted Keys:\n  k1  [0-9a-f]{64}  \(connected\)/);
  });

  it('rejecting a key cuts the agent off; deleting it lets the agent come back as pending', async () => {
    const rej = await fleet.cli(['keys', 'reject', 'k1']);
    expect(rej.code).toBe(0);
    const agent = fleet.agents[0]!;
    await agent.waitOutput(/rejected this agent's key/);
    const r = await fleet.cli(['run', 'k1', 'echo no']);
    expect(r.code).toBe(1);
    expect((await fleet.keys()).keys.find((k) => k.id === 'k1')?.state).toBe('rejected');

    const del = await fleet.cli(['keys', 'delete', 'k1']);
    expect(del.code).toBe(0);
    expect(del.stdout).toMatch(/Deleted key: k1/);
    // the agent keeps retrying; its key shows up again as a new pending key (Salt behaviour)
    await waitFor('k1 pending again', async () => (await fleet.keys()).keys.find((k) => k.id === 'k1' && k.state === 'pending'), 30_000);
    const unknown = await fleet.cli(['keys', 'accept', 'nope']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no key for 'nope'/);
    await fleet.cli(['keys', 'accept', '--all']);
    await fleet.waitConnected(['k1']);
  });

  it('a second key claiming an accepted id is refused', async () => {
    const fake = await RawAgent.connect(fleet, 'k1'); // new key pair, same id
    const closed = await fake.closed;
    expect(closed.code).toBe(4409);
    expect(fake.messages).toEqual([]);
    await fleet.master!.waitOutput(/agent k1 from .*does not match the stored key/);
  });

  it('an agent refuses an impostor master and keeps running', async () => {
    // same port, different key: the real master is stopped and an impostor takes its place
    const impostor = new Fleet({ states, master: { auto_accept: true } });
    // on the port of the master the agents connect to, every master of the fleet stopped
    impostor.port = fleet.agentSide.port;
    const realKey = fleet.agentSide.fingerprint;
    await fleet.killMasters('SIGTERM');
    await impostor.startMaster();
    try {
      expect(impostor.fingerprint).not.toBe(realKey);
      const agent = fleet.agents[0]!;
      await agent.waitOutput(/presented key [0-9a-f]{64}, expected [0-9a-f]{64}: refusing it/, 30_000);
      const marker = path.join(fleet.dir, 'impostor-was-here');
      const r = await impostor.cli(['run', '*', `touch ${marker}`, '--timeout', '3']);
      expect(r.code).not.toBe(0);
      expect(fs.existsSync(marker)).toBe(false);
      expect(agent.running).toBe(true);
    } finally {
      await impostor.stop();
    }
    await fleet.startMaster();
    await fleet.waitConnected(['k1'], 30_000);
  });

  it('trust on first use pins the first master seen', async () => {
    const cfg = fleet.agentConfig('tofu1', { cfg: { master_finger: undefined, tofu: true } });
    const agent = fleet.startAgents([cfg]);
    await agent.waitOutput(/trusting master key [0-9a-f]{64} on first use/);
    const pinned = fs.readFileSync(path.join(path.dirname(cfg), 'pki', 'master.fp'), 'utf8').trim();
    expect(pinned).toBe(`${fleet.agentSide.fingerprint} 127.0.0.1:${fleet.agentSide.port}`); // one pin per master: `<key> <host:port>`
    await agent.kill();
    // without a fingerprint and without tofu the agent will not start at all
    const bare = fleet.startAgents([fleet.agentConfig('nofp', { cfg: { master_finger: undefined } })]);
    expect(await bare.exited).toBe(1);
    expect(bare.out).toMatch(/set master_finger .* or tofu: true/);
  });

  it('a first-use pin that cannot be written: the agent refuses the master and stays up, and pins it once it can', async () => {
    const cfg = fleet.agentConfig('tofu2', { cfg: { master_finger: undefined, tofu: true } });
    const pin = path.join(path.dirname(cfg), 'pki', 'master.fp');
    // the pin's temp file name taken by a directory: its write fails (EISDIR), as on a full disk
    fs.mkdirSync(`${pin}.tmp`, { recursive: true });
    const agent = fleet.startAgents([cfg]);
    try {
      await agent.waitOutput(/master key [0-9a-f]{64} of \S+ cannot be pinned \(EISDIR.*\): not talking to it/);
      expect(agent.running).toBe(true);
      expect(agent.out).not.toMatch(/trusting master key/);
      expect(fs.existsSync(pin)).toBe(false);
      // the disk fixed: the next connection pins the master and talks to it
      fs.rmdirSync(`${pin}.tmp`);
      await agent.waitOutput(/trusting master key [0-9a-f]{64} on first use/, 60_000);
      // (with two masters, whichever it reached first)
      const [, fp, addr] = /trusting master key ([0-9a-f]{64}) on first use for (\S+)/.exec(agent.out)!;
      expect(fs.readFileSync(pin, 'utf8').trim()).toBe(`${fp} ${addr}`);
      expect(agent.out).not.toMatch(/unhandled promise rejection/);
    } finally {
      await agent.kill();
    }
  });

  it('malformed, unknown, out-of-level and oversize frames close the connection; the master carries on', async () => {
    const cases: [string, (a: RawAgent) => void, number][] = [
      ['not JSON', (a) => a.send('{nope'), 4400],
      ['binary', (a) => a.send(Buffer.from([1, 2, 3])), 4400],
      ['unknown type', (a) => a.send({ type: 'pillar_get', id: 'k1' }), 4400],
      ['bad shape', (a) => a.send({ type: 'hello', version: 'one' }), 4400],
      ['extra field', (a) => a.send({ type: 'hello', version: 1, grains: {}, running: [], spooled: [], id: 'k1' }), 4400],
      // a pending agent may only say hello
      ['out of level', (a) => a.send({ type: 'job_ack', jid: '20240101000000000000' }), 4400],
      ['oversize', (a) => a.send(JSON.stringify({ type: 'hello', version: 1, grains: { x: 'y'.repeat(100_000) }, running: [], spooled: [] })), 1009],
    ];
    for (const [name, act, code] of cases) {
      const a = await RawAgent.connect(fleet, 'rawbad');
      await a.waitMsg('key_status');
      act(a);
      const c = await a.closed;
      expect(c.code, name).toBe(code);
    }
    expect(fleet.master!.running).toBe(true);
    expect((await fleet.cli(['keys', 'list'])).code).toBe(0);
  });

  it('the CLI socket is root-only and refuses bad requests without harm', async () => {
    expect(fs.statSync(fleet.sock).mode & 0o777).toBe(0o600);
    const net = await import('node:net');
    for (const line of ['not json\n', '{"type":"apply","target":"*"}\n', '{"type":"keys.delete","ids":["k1"],"extra":1}\n']) {
      const answer = await new Promise<string>((resolve) => {
        const c = net.connect(fleet.sock, () => c.write(line));
        let out = '';
        c.on('data', (b) => (out += b.toString()));
        c.on('close', () => resolve(out));
      });
      expect(answer).toMatch(/"type":"error","message":"bad request/);
      expect(answer).toMatch(/"type":"end","code":1/);
    }
    expect((await fleet.keys()).keys.find((k) => k.id === 'k1')?.state).toBe('accepted');
  });

  it('an agent survives garbage from a master holding the right key, and reconnects', async () => {
    const https = await import('node:https');
    const { WebSocketServer } = await import('ws');
    // the key and port of the master the agent connects to; every master of the fleet stopped
    const { pki, port } = fleet.agentSide;
    await fleet.killMasters('SIGTERM');
    const srv = https.createServer({ key: fs.readFileSync(path.join(pki, 'master.key')), cert: fs.readFileSync(path.join(pki, 'master.crt')), requestCert: true, rejectUnauthorized: false });
    const wss = new WebSocketServer({ server: srv });
    let n = 0;
    const garbage: (string | Buffer)[] = ['{nope', Buffer.from([0, 1]), JSON.stringify({ type: 'job', jid: '1', spec: {} }), JSON.stringify({ type: 'shell', cmd: 'id' })];
    wss.on('connection', (ws) => {
      ws.on('error', () => {});
      ws.send(garbage[n++ % garbage.length]!);
    });
    await new Promise<void>((r) => srv.listen(port, '127.0.0.1', () => r()));
    const agent = fleet.agents[0]!;
    const from = agent.out.length;
    try {
      await waitFor('four bad frames seen', () => n >= 4 || undefined, 30_000);
      await agent.waitOutput(/closing the connection: from master: (frame is not JSON|binary frame|bad message)/, 10_000, from);
      expect(agent.running).toBe(true);
    } finally {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => srv.close(() => r()));
    }
    await fleet.startMaster();
    await fleet.waitConnected(['k1'], 30_000);
  });

  it('an agent reconnecting many times keeps its TLS floor (1.3) and presents its certificate each time', async () => {
    const https = await import('node:https');
    const { WebSocketServer } = await import('ws');
    const { peerIdentity } = await import('../../core/identity.js');
    const k1 = (await fleet.keys()).keys.find((k) => k.id === 'k1')!.fingerprint;
    const { pki, port } = fleet.agentSide;
    await fleet.killMasters('SIGTERM');
    const tlsOpts = { key: fs.readFileSync(path.join(pki, 'master.key')), cert: fs.readFileSync(path.join(pki, 'master.crt')), requestCert: true, rejectUnauthorized: false };
    const serve = async (extra: object) => {
      const srv = https.createServer({ ...tlsOpts, ...extra });
      const seen = { refused: 0, peers: [] as (string | null)[] };
      srv.on('tlsClientError', () => seen.refused++);
      const wss = new WebSocketServer({ server: srv });
      wss.on('connection', (ws, req) => {
        ws.on('error', () => {});
        const p = peerIdentity(req.socket as import('node:tls').TLSSocket);
        seen.peers.push(p ? `${p.name} ${p.fingerprint}` : null);
        ws.close(1011, 'again'); // the agent reconnects on its (reused) TLS context
      });
      await new Promise<void>((r) => srv.listen(port, '127.0.0.1', () => r()));
      const close = async () => {
        for (const c of wss.clients) c.terminate();
        srv.closeAllConnections();
        await new Promise<void>((r) => srv.close(() => r()));
      };
      return { seen, close };
    };
    // a master offering TLS 1.2 at most: every attempt is refused in the handshake, none gets a frame
    const old = await serve({ maxVersion: 'TLSv1.2' });
    try {
      await waitFor('two refused TLS 1.2 handshakes', () => old.seen.refused >= 2 || undefined, 30_000);
      expect(old.seen.peers).toEqual([]);
    } finally {
      await old.close();
    }
    const ok = await serve({ minVersion: 'TLSv1.3' });
    try {
      await waitFor('three connections', () => ok.seen.peers.length >= 3 || undefined, 60_000);
      expect(new Set(ok.seen.peers)).toEqual(new Set([`k1 ${k1}`]));
    } finally {
      await ok.close();
    }
    await fleet.startMaster();
    await fleet.waitConnected(['k1'], 30_000);
  });

  it('a connection without a client certificate is closed', async () => {
    const { WebSocket } = await import('ws');
    const ws = new WebSocket(`wss://127.0.0.1:${fleet.port}/`, { rejectUnauthorized: false });
    ws.on('error', () => {});
    const code = await new Promise<number>((r) => ws.on('close', (c) => r(c)));
    expect(code).toBe(4401);
  });
});

