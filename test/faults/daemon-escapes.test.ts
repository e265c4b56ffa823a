/**
 * Faults that threw inside a call nobody awaited, a rejected promise nobody handled, which on
 * Node 20 ends the process: each is handled where it happens now, and the daemon goes on. The
 * processes are the built master and agent, the inputs real ones (a frame over TLS, a spool on
 * disk, a grains file); a master that must send what no master sends is scripted, over real
 * mutual TLS, with the agent pinned to its key. Neither log may hold a line of the last-resort
 * net (core/last-resort.ts): a fault that only the net caught would pass a test of "still alive"
 * while it is still a bug.
 */
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { loadOrCreateIdentity } from '../../core/identity.js';
import { buildOnce, Fleet, freePort, RawAgent, waitFor } from '../integration/fleet-harness.js';

interface RunJson {
  code: number;
  agents: Record<string, { status: string; body?: { stdout?: string } }>;
}

describe('faults: a bad frame or a damaged spool does not end the daemon', () => {
  let fleet: Fleet;
  beforeAll(async () => {
    buildOnce();
    fleet = new Fleet({ states: { 'top.sls': "base:\n  '*':\n    - ok\n", 'ok.sls': 'ok:\n  test.succeed_without_changes: []\n' } });
    await fleet.startMaster();
  }, 120_000);
  afterAll(async () => {
    await fleet?.stop();
  });

  it('master: a frame whose type is multibyte text closes that connection alone (its close reason over 123 bytes used to throw out of the handler)', async () => {
    const raw = await RawAgent.connect(fleet, 'mb1');
    await raw.waitMsg('key_status');
    const from = fleet.master!.out.length;
    // the master quotes the type (40 characters of it) in the close reason: 120 bytes of 3-byte
    // characters are past the 123 a close frame holds
    raw.send({ type: '€'.repeat(60) });
    const closed = await Promise.race([raw.closed, fleet.master!.exited.then((c) => ({ code: -1, reason: `the master exited (${c})` })), new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the connection was not closed within 20 s')), 20_000).unref())]);
    expect(closed.code).toBe(4400);
    expect(Buffer.byteLength(closed.reason)).toBeLessThanOrEqual(123);
    expect(closed.reason).toMatch(/^bad message \(type "€+/);
    await fleet.master!.waitOutput(/agent mb1: bad message \(type "€+/, 20_000, from);
    // still serving: the CLI, and another agent's connection
    expect(fleet.master!.running).toBe(true);
    const other = await RawAgent.connect(fleet, 'mb2');
    await other.waitMsg('key_status');
    other.ws.close();
    expect((await fleet.keys()).keys.map((k) => k.id)).toContain('mb2');
    expect(fleet.master!.out).not.toMatch(/unhandled promise rejection|a message could not be handled/);
  });

  it('agent: a frame from its master whose type is multibyte text closes that connection with a reason a close frame holds; the agent stays up and reconnects', async () => {
    // a scripted master over real mutual TLS, its own key, the agent pinned to it: connection 1
    // accepts the agent and sends the bad frame, the next ones accept it and say nothing more
    const key = await loadOrCreateIdentity(path.join(fleet.dir, 'scripted-master'), 'master', 'tsalt-master');
    const port = await freePort();
    const server = https.createServer({ key: key.keyPem, cert: key.certPem, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.3' });
    const wss = new WebSocketServer({ server });
    const hellos: number[] = [];
    const errors: string[] = [];
    const closes: { n: number; code: number; reason: Buffer }[] = [];
    let connections = 0;
    wss.on('connection', (ws: WebSocket) => {
      const n = ++connections;
      // ws checks a received close frame (its length, its reason's UTF-8) and says so here
      ws.on('error', (e) => errors.push(`connection ${n}: ${e.message}`));
      ws.on('close', (code, reason) => closes.push({ n, code, reason }));
      ws.on('message', (data) => {
        const m = JSON.parse(String(data)) as { type: string };
        if (m.type !== 'hello') return;
        hellos.push(n);
        ws.send(JSON.stringify({ type: 'key_status', state: 'accepted' }));
        // the agent quotes the type (40 characters of it) in its close reason: 120 bytes of
        // 3-byte characters, past the 123 a close frame holds with what goes before them
        if (n === 1) ws.send(JSON.stringify({ type: '€'.repeat(60) }));
      });
    });
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    const agent = fleet.startAgent('mb3', { cfg: { master: '127.0.0.1', master_port: port, master_finger: key.fingerprint } });
    // its log's last lines (a bundle's minified source line quoted in a stack trace left out)
    const died = agent.exited.then((c): never => {
      throw new Error(`the agent exited (${c}):\n${agent.out.split('\n').filter((l) => l.length < 400).slice(-20).join('\n')}`);
    });
    try {
      const first = await Promise.race([
        waitFor('the close of connection 1', () => closes.find((c) => c.n === 1)),
        died,
      ]);
      expect(errors).toEqual([]);
      expect(first.code).toBe(4400);
      expect(first.reason.length).toBeGreaterThan(0);
      expect(first.reason.length).toBeLessThanOrEqual(123);
      const reason = new TextDecoder('utf-8', { fatal: true }).decode(first.reason); // throws on a cut character
      expect(reason).toMatch(/^from master: bad message \(type "€+$/);
      await agent.waitOutput(/closing the connection: from master: bad message \(type "€{40}"\)/);
      // reconnects, says hello again, and is still up
      await Promise.race([
        waitFor('a hello on a second connection', () => hellos.find((n) => n > 1)),
        died,
      ]);
      expect(agent.running).toBe(true);
      expect(errors).toEqual([]);
      expect(agent.out).not.toMatch(/unhandled promise rejection/);
    } finally {
      await agent.kill('SIGKILL');
      for (const c of wss.clients) c.terminate();
      wss.close();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('agent: a damaged return spooled by an earlier version that cannot be moved aside is skipped; the agent stays up and serves jobs', async () => {
    const jid = '20260101000000000001';
    const spool = path.join(fleet.dir, 'agents', 's1', 'cache', 'spool');
    fs.mkdirSync(spool, { recursive: true });
    fs.writeFileSync(path.join(spool, `${jid}.json`), '{"type":"job_return", cut short');
    // where it would be moved aside is taken by a directory: the rename fails (EISDIR), as it
    // does on a disk gone read-only (EROFS)
    fs.mkdirSync(path.join(spool, `${jid}.json.bad`, 'x'), { recursive: true });
    const agent = fleet.startAgent('s1');
    await fleet.acceptAll(['s1']);
    // the spool is delivered once the key is accepted: the damaged return is read then
    await agent.waitOutput(new RegExp(`spool \\S+${jid}\\.json is unreadable \\(.*\\) and could not be moved aside \\(EISDIR`));
    const r = await fleet.json<RunJson>(['run', 's1', 'echo still here']);
    expect(r.agents.s1).toMatchObject({ status: 'done', body: { stdout: 'still here\n' } });
    expect(agent.running).toBe(true);
    // left in place, and not read again by this process (the next acceptance flushes again)
    expect(fs.existsSync(path.join(spool, `${jid}.json`))).toBe(true);
    expect(agent.out).not.toMatch(/unhandled promise rejection/);
  });

  it('agent: a grains file edited into a cycle (a YAML anchor inside itself) is refused, the previous grains kept; the agent stays up and runs states', async () => {
    const agent = fleet.startAgent('s2');
    await fleet.acceptAll(['s2']);
    const from = agent.out.length;
    // parses (js-yaml builds the cycle), but JSON cannot hold it: sending the grains threw in the
    // file watch's timer; the grains file's reader now refuses it (engine/grains/core.ts)
    fs.writeFileSync(path.join(fleet.dir, 'agents', 's2', 'grains'), 'site: &s\n  self: *s\n');
    await agent.waitOutput(/grains file \S+grains: \S+grains: grains file refers to itself \(an alias inside its own anchor\); keeping the previous grains/, 20_000, from);
    // a state run re-reads the file first: refused again, and the run goes on with the grains it had
    const r = await fleet.json<RunJson>(['apply', 's2']);
    expect(r.agents.s2!.status, JSON.stringify(r.agents.s2).slice(0, 600)).toBe('done');
    expect(agent.running).toBe(true);
    expect(agent.out).not.toMatch(/unhandled promise rejection|re-reading it failed/);
  });

  it('agent: a grains file that is already a cycle when the agent starts is refused naming the file; the agent connects with its detected grains and takes the file once fixed', async () => {
    const file = path.join(fleet.dir, 'agents', 's3', 'grains');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    // a list holding itself, and a grain beside it: the whole file is refused, not just the cycle
    fs.writeFileSync(file, 'site: lab\nloop: &x [*x]\n');
    const agent = fleet.startAgent('s3', { grains: { team: 'ops' } });
    // without the refusal the cycle was taken at the start: the hello (which carries the grains)
    // could not be sent (on connect: circular structure); the key still showed up and was
    // accepted over TLS, but the master knew no grain of the agent but its id
    const esc = file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    await agent.waitOutput(new RegExp(`grains file ${esc}: ${esc}: grains file refers to itself \\(an alias inside its own anchor\\); starting without its grains`));
    await fleet.acceptAll(['s3']);
    const before = (await fleet.json<Record<string, Record<string, unknown>>>(['grains', 's3'])).s3!;
    // detected grains and the config's, none of the file's
    expect(before).toMatchObject({ id: 's3', team: 'ops', kernel: 'Linux' });
    expect(before.os).toEqual(expect.any(String));
    expect(before).not.toHaveProperty('site');
    expect(before).not.toHaveProperty('loop');
    // fixed: the file watch re-reads it and the master is told
    const from = agent.out.length;
    fs.writeFileSync(file, 'site: lab\nloop: [1, 2]\n');
    await agent.waitOutput(/grains changed \(\S+grains\); sent to the master/, 20_000, from);
    const after = await waitFor('the master to see the grains file of s3', async () => {
      const g = (await fleet.json<Record<string, Record<string, unknown>>>(['grains', 's3'])).s3;
      return g?.site === 'lab' ? g : undefined;
    });
    expect(after).toMatchObject({ id: 's3', team: 'ops', kernel: 'Linux', os: before.os, site: 'lab', loop: [1, 2] });
    expect(agent.running).toBe(true);
    expect(agent.out).not.toMatch(/unhandled promise rejection|re-reading it failed|on connect:/);
  });
});
