/**
 * The haproxy and nginx roles applied for real on this (Debian, SysV-init) machine, the way
 * an agent applies them: test run, real run, second run. Two nginx web servers run in
 * network namespaces of their own (veth pairs, 10.231.x.0/30) with the config the nginx role
 * wrote; HAProxy, configured by the haproxy role, must balance requests between them.
 *
 * The firewall SLS is applied with them: it must skip itself on a machine where firewalld does
 * not run (this one has no firewall-cmd), changing nothing. Where firewalld does run, the test
 * leaves it out rather than open ports on the test machine.
 *
 * Touches the machine: /etc/haproxy/haproxy.cfg, /etc/nginx/nginx.conf and /var/www/stack
 * (restored/removed afterwards), starts and stops haproxy and nginx through /etc/init.d.
 * Listens only on loopback and on the addresses it creates.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import http from 'node:http';
import { apply } from '../../engine/engine.js';
import { LocalTree } from '../../engine/tree/local.js';
import { exec } from '../../engine/run/exec.js';
import type { RunReport } from '../../protocol/results.js';
import type { Data } from '../../engine/render/salt-functions.js';
import { pillarOfHosts, STATES_DIR } from './stack-helpers.js';
import { freePort } from '../helpers/net.js';

const tag = `t${process.pid % 100000}`;
const WEBS = [
  { name: `${tag}a`, hostIp: '10.231.1.1', ip: '10.231.1.2' },
  { name: `${tag}b`, hostIp: '10.231.2.1', ip: '10.231.2.2' },
];
const MANAGED = ['/etc/haproxy/haproxy.cfg', '/etc/nginx/nginx.conf'];
const saved = new Map<string, Buffer>();
const grains: Data = { id: 'lbweb', os_family: 'Debian', os: 'Debian', osmajorrelease: 12, init: 'sysvinit', kernel: 'Linux', roles: ['haproxy', 'nginx'] };
let pillar: Data;
let ports: { front: number; stats: number; monitor: number; web: number };
/** firewalld runs here: then the firewall SLS is not applied (it would open ports for real) */
let firewalld = false;


async function must(argv: string[]) {
  const r = await exec(argv, { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`${argv.join(' ')} exited ${r.code}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

function run(test: boolean): Promise<RunReport> {
  const sls = firewalld ? ['haproxy', 'nginx'] : ['haproxy', 'nginx', 'firewall'];
  return apply({ tree: new LocalTree(STATES_DIR), id: 'lbweb', grains, pillar, sls, test });
}

function get(port: number, path = '/'): Promise<{ status: number; servedBy: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, servedBy: String(res.headers['x-served-by'] ?? '') }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

beforeAll(async () => {
  for (const f of MANAGED) if (fs.existsSync(f)) saved.set(f, fs.readFileSync(f));
  firewalld = (await exec(['sh', '-c', 'firewall-cmd --state'])).code === 0;
  ports = { front: await freePort(), stats: await freePort(), monitor: await freePort(), web: await freePort() };
  for (const w of WEBS) {
    const host = `veth${w.name}`;
    await must(['ip', 'netns', 'add', w.name]);
    await must(['ip', 'link', 'add', host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', w.name]);
    await must(['ip', 'addr', 'add', `${w.hostIp}/30`, 'dev', host]);
    await must(['ip', 'link', 'set', host, 'up']);
    await must(['ip', '-n', w.name, 'addr', 'add', `${w.ip}/30`, 'dev', 'eth0']);
    await must(['ip', '-n', w.name, 'link', 'set', 'eth0', 'up']);
    await must(['ip', '-n', w.name, 'link', 'set', 'lo', 'up']);
  }
  // the shipped pillar of a load balancer and a web server (pillar is matched by id), moved
  // onto loopback and the namespaces
  pillar = await pillarOfHosts(['lb1', 'web1'], grains, {
    haproxy: {
      frontend: { listen: `127.0.0.1:${ports.front}` },
      stats: { listen: `127.0.0.1:${ports.stats}` },
      monitor: { listen: `127.0.0.1:${ports.monitor}` },
      backends: WEBS.map((w) => ({ hostname: w.name, ip: w.ip, port: ports.web })),
    },
    nginx: { listen: ports.web, api_upstream: [{ hostname: 'none', ip: '127.0.0.1', port: 9 }] },
  });
}, 60_000);

afterAll(async () => {
  for (const w of WEBS) {
    const pid = `/run/nginx-${w.name}.pid`;
    if (fs.existsSync(pid)) await exec(['kill', fs.readFileSync(pid, 'utf8').trim()]);
    await exec(['ip', 'link', 'delete', `veth${w.name}`]);
    await exec(['ip', 'netns', 'delete', w.name]);
    fs.rmSync(`/run/nginx-${w.name}.conf`, { force: true });
  }
  await exec(['/etc/init.d/haproxy', 'stop']);
  await exec(['/etc/init.d/nginx', 'stop']);
  for (const [f, content] of saved) fs.writeFileSync(f, content);
  fs.rmSync('/var/www/stack', { recursive: true, force: true });
}, 60_000);

describe('haproxy + nginx roles applied on this machine', () => {
  let predicted: RunReport;
  let real: RunReport;

  it('a test run predicts, the real run converges with exactly those changes', async () => {
    predicted = await run(true);
    expect(predicted.counts.failed, JSON.stringify(predicted.results, null, 1)).toBe(0);
    real = await run(false);
    const failed = real.results.filter((r) => r.result === false);
    expect(failed, JSON.stringify(failed, null, 1)).toEqual([]);
    const keys = (rep: RunReport) => Object.fromEntries(rep.results.map((r) => [r.id, Object.keys(r.changes).sort()]));
    expect(keys(real)).toEqual(keys(predicted));
    for (const r of predicted.results) if (Object.keys(r.changes).length) expect(r.result, r.id).toBeNull();
    const changed = real.results.filter((r) => Object.keys(r.changes).length).map((r) => r.id);
    expect(changed).toEqual(expect.arrayContaining(['haproxy-config', 'nginx-config', 'nginx-docroot']));
  }, 120_000);

  it('without firewalld the firewall states skip themselves (onlyif), in the test and the real run', async (t) => {
    if (firewalld) t.skip();
    // the nginx port (haproxy's are on loopback here) and node_exporter's (what Prometheus scrapes)
    const mon = await pillarOfHosts(['mon1'], grains);
    const node = (mon.prometheus as { jobs: { node: { port: number } } }).jobs.node.port;
    for (const rep of [predicted, real]) {
      const fw = rep.results.filter((r) => r.id.startsWith('firewall-'));
      expect(fw.map((r) => r.id).sort()).toEqual([`firewall-tcp-${ports.web}`, `firewall-tcp-${node}`].sort());
      for (const r of fw) {
        expect(r.result, r.id).toBe(true);
        expect(r.changes, r.id).toEqual({});
        expect(r.comment, r.id).toContain('onlyif condition is false');
      }
    }
  });

  it('the second run changes nothing', async () => {
    const again = await run(false);
    expect(again.counts.failed).toBe(0);
    expect(again.results.filter((r) => Object.keys(r.changes).length), 'changes on the second run').toEqual([]);
  }, 120_000);

  it('HAProxy balances between the two nginx servers', async () => {
    // each namespace runs nginx with the config the nginx role wrote (own pid file only)
    const conf = fs.readFileSync('/etc/nginx/nginx.conf', 'utf8');
    for (const w of WEBS) {
      const file = `/run/nginx-${w.name}.conf`;
      fs.writeFileSync(file, conf.replace(/^pid .*;$/m, `pid /run/nginx-${w.name}.pid;`));
      await must(['ip', 'netns', 'exec', w.name, 'nginx', '-c', file]);
    }
    const seen = new Set<string>();
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && seen.size < 2) {
      try {
        const r = await get(ports.front);
        if (r.status === 200) seen.add(r.servedBy);
      } catch {
        // haproxy still starting or marking servers up
      }
      if (seen.size < 2) await new Promise((r) => setTimeout(r, 200));
    }
    expect([...seen].sort()).toEqual(WEBS.map((w) => w.ip));
    // the page came from the tree, rendered for this host
    expect(fs.readFileSync('/var/www/stack/index.html', 'utf8')).toContain('Served by <strong>lbweb</strong>');
    // keepalived's health check target answers
    expect((await get(ports.monitor, '/healthz')).status).toBe(200);
  }, 60_000);
});
