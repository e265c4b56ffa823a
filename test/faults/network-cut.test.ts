/**
 * The network between agent and master cut for longer than the master waits, then restored.
 * The cut is a proxy on loopback that stops carrying bytes both ways without closing anything,
 * as a pulled cable does: the master marks the job lost when the agent stays away past
 * lost_after_s; the agent finishes, spools its return, reconnects once the path is back and
 * delivers it; the job then holds the real result, stored once.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Fleet, freePort, waitFor } from '../integration/fleet-harness.js';

class CutProxy {
  cut = false;
  private readonly server: net.Server;
  private readonly socks = new Set<net.Socket>();
  constructor(target: number) {
    this.server = net.createServer((client) => {
      const up = net.connect(target, '127.0.0.1');
      for (const s of [client, up]) {
        this.socks.add(s);
        s.on('error', () => {});
        s.on('close', () => this.socks.delete(s));
      }
      // bytes sent while cut are gone, as on a dead link; nothing is closed by the proxy
      client.on('data', (d) => void (this.cut || up.write(d)));
      up.on('data', (d) => void (this.cut || client.write(d)));
      client.on('close', () => up.destroy());
      up.on('close', () => client.destroy());
    });
  }
  listen(port: number): Promise<void> {
    return new Promise((r) => this.server.listen(port, '127.0.0.1', () => r()));
  }
  close(): void {
    for (const s of this.socks) s.destroy();
    this.server.close();
  }
}

interface JobDetail {
  agents: { agent_id: string; status: string; body: { kind: string; stdout?: string } | null }[];
}

describe('faults: a network cut longer than the timeout, then restored', () => {
  let fleet: Fleet;
  let proxy: CutProxy;
  beforeAll(async () => {
    buildOnce();
    fleet = new Fleet({ states: { 'top.sls': "base:\n  '*':\n    - common\n", 'common.sls': 'hello:\n  test.succeed_without_changes: []\n' } });
    await fleet.startMaster();
    const port = await freePort();
    proxy = new CutProxy(fleet.port);
    await proxy.listen(port);
    fleet.startAgent('n1', { cfg: { master_port: port } });
    await fleet.acceptAll(['n1']);
  });
  afterAll(async () => {
    proxy?.close();
    await fleet?.stop();
  });

  it('the job is marked lost during the cut; the spooled return arrives after it and is stored once', async () => {
    const agent = fleet.agents[0]!;
    const from = agent.out.length;
    const run = fleet.json<{ code: number; jid: string; agents: Record<string, { status: string }> }>(['run', 'n1', 'sleep 2; echo done-offline', '--timeout', '120']);
    const jid = (await agent.waitOutput(/job (\d{20})/, 20_000, from))[1]!;
    proxy.cut = true;
    // the master gives up on the agent (heartbeats, then lost_after_s) while the link is down
    const r = await run;
    expect(r.agents.n1!.status).toBe('lost');
    // the agent finished meanwhile; its return went into the dead link and stays in its spool
    await agent.waitOutput(new RegExp(`job ${jid}: finished`), 30_000, from);
    await agent.waitOutput(/disconnected from master/, 30_000, from);
    expect((await fleet.json<JobDetail>(['jobs', jid])).agents[0]!.status).toBe('lost');
    proxy.cut = false;
    const d = await waitFor('the spooled return stored', async () => {
      const j = await fleet.json<JobDetail>(['jobs', jid]);
      return j.agents[0]!.status === 'done' ? j : undefined;
    }, 60_000);
    expect(d.agents).toHaveLength(1);
    expect(d.agents[0]!.body!.stdout).toBe('done-offline\n');
    await fleet.waitConnected(['n1']);
    const after = await fleet.cli(['run', 'n1', 'echo back']);
    expect(after.stdout).toMatch(/back/);
  });
});
