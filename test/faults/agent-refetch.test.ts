/**
 * A connection lost while the agent fetches a job's state tree does not fail the job: the agent
 * asks for the tree again once the master has accepted it on the next connection, and the job
 * runs (at 10,000 agents under load, a few agents a run were cut off mid-fetch by a missed
 * heartbeat and failed their converging apply). The master here is scripted over real mutual
 * TLS, so the cut falls exactly between the agent's bundle_get and the master's answer; the
 * agent is the real `tsalt agent` process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { loadOrCreateIdentity } from '../../core/identity.js';
import { dumpSaltYaml } from '../../core/salt-yaml.js';
import { tempDir } from '../helpers/harness.js';
import { freePort } from '../helpers/net.js';
import { bundleMessage } from '../helpers/tree.js';
import { buildOnce, REPO } from '../integration/fleet-harness.js';

type Frame = { type: string; [k: string]: unknown };

const procs: ChildProcess[] = [];
const servers: { close(): void }[] = [];
afterAll(() => {
  for (const p of procs) p.kill('SIGKILL');
  for (const s of servers) s.close();
});

describe('agent: the state tree fetch across a lost connection', () => {
  it('asks again on the next connection and the job runs', async () => {
    buildOnce();
    const dir = tempDir();
    const master = await loadOrCreateIdentity(path.join(dir, 'master'), 'master', 'tsalt-master');
    const port = await freePort();
    const tree = bundleMessage({ 'top.sls': "base:\n  '*':\n    - one\n", 'one.sls': 'one:\n  test.succeed_without_changes: []\n' });
    const jid = '20261207012345678901';

    // the scripted master: connection 1 sends the job and is cut when the tree is asked for;
    // connection 2 answers the second ask and takes the return
    const server = https.createServer({ key: master.keyPem, cert: master.certPem, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.3' });
    const wss = new WebSocketServer({ server });
    servers.push(wss, server);
    let connections = 0;
    const asks: number[] = [];
    const returned = new Promise<Frame>((resolve) => {
      wss.on('connection', (ws: WebSocket) => {
        const n = ++connections;
        ws.on('message', (data) => {
          const m = JSON.parse(String(data)) as Frame;
          if (m.type === 'hello') {
            ws.send(JSON.stringify({ type: 'key_status', state: 'accepted' }));
            if (n === 1) ws.send(JSON.stringify({ type: 'job', jid, spec: { kind: 'apply', revision: 'r1', bundle: tree.hash, sls: [], test: false, pillar: {} } }));
          } else if (m.type === 'bundle_get') {
            expect(m).toMatchObject({ jid, hash: tree.hash });
            asks.push(n);
            if (n === 1) ws.terminate();
            else ws.send(JSON.stringify(tree));
          } else if (m.type === 'job_return') {
            resolve(m);
          }
        });
      });
    });
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));

    const home = path.join(dir, 'agent');
    fs.mkdirSync(home, { recursive: true });
    const cfg = path.join(home, 'agent.yaml');
    fs.writeFileSync(
      cfg,
      dumpSaltYaml({
        id: 'refetch1', master: '127.0.0.1', master_port: port, master_finger: master.fingerprint,
        pki_dir: 'pki', cache_dir: 'cache', grains_file: 'grains', root: 'root', log_level: 'info',
        backoff_min_s: 0.1, backoff_max_s: 0.5,
      }),
    );
    let log = '';
    const agent = spawn(process.execPath, [path.join(REPO, 'bin/tsalt.js'), 'agent', '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(agent);
    agent.stdout!.on('data', (b: Buffer) => (log += b.toString()));
    agent.stderr!.on('data', (b: Buffer) => (log += b.toString()));

    const ret = await Promise.race([returned, new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`no return in 60 s; agent log:\n${log}`)), 60_000))]);
    expect(asks).toEqual([1, 2]);
    expect(ret).toMatchObject({ jid, revision: 'r1', body: { kind: 'apply' } });
    const report = (ret.body as { report: { counts: Record<string, number> } }).report;
    expect(report.counts).toMatchObject({ failed: 0 });
    expect(log).toMatch(/asking the master for the state tree again/);
  }, 90_000);
});
