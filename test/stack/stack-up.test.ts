/**
 * `npm run test:stack`: the whole 3-tier stack (states/, pillar/) on nine booted Debian 12
 * containers (lb1 lb2 web1 web2 app1 app2 db1 db2 mon1) and one tsalt master, in a network
 * namespace this test creates (see stack-fleet.ts), proven as an operator would: highstate from
 * fresh, nothing left to change, traffic through the VIP, reads from the replica, VIP failover,
 * Prometheus targets, a broken config stopped by check_cmd, a rebuilt host, a full reboot.
 *
 * The inventory is moved to the test subnet by editing pillar/stack.jinja alone (a copy).
 * Grafana is not in Debian: on these hosts its states are compiled and its provisioning
 * rendered and parsed, not installed; it is installed for real on the Vagrant path only.
 * Figures (first and second apply, failover, whole test) are printed at the end.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { loadSaltYaml } from '../../core/salt-yaml.js';
import { exec, execOk } from '../../engine/run/exec.js';
import { compile } from '../../engine/engine.js';
import { LocalTree } from '../../engine/tree/local.js';
import { tempDir } from '../helpers/harness.js';
import type { RunReport } from '../../protocol/results.js';
import type { StatusData } from '../../master/release-handlers.js';
import type { RolloutRow } from '../../master/store-api.js';
import { grainsFor, pillarFor, pillarOnNetwork, renderTreeTemplate, HOSTS, REPO_DIR, STATES_DIR } from './stack-helpers.js';
import { buildPackages, nodejsStandIn } from './stack-packages.js';
import { Host, Master, Netns, SUBNET, VIP, type HostSpec } from './stack-fleet.js';

/** The unit of each role's daemon on Debian (states/<role>/map.jinja). */
const ROLE_SERVICE: Record<string, string> = {
  haproxy: 'haproxy',
  keepalived: 'keepalived',
  nginx: 'nginx',
  app: 'app',
  mysql: 'mariadb',
  prometheus: 'prometheus',
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const started = Date.now();
const figures: Record<string, string> = {};
const work = tempDir('tsalt-stack-up-');
fs.chmodSync(work, 0o755);
const ns = new Netns();
const hosts = new Map<string, Host>();
let master: Master;
let treeStates: string;
let treePillar: string;
/** the config repository: the bare one the master serves, and the operator's clone */
const bare = path.join(work, 'config.git');
const clone = path.join(work, 'config');
let firstRevision: string;

/** Commits everything in the clone and pushes it to the master's repository; returns the commit. */
async function push(subject: string): Promise<string> {
  const git = (...args: string[]) => execOk(['git', '-C', clone, '-c', 'user.name=Stack Test', '-c', 'user.email=stack@tsalt.test', ...args]);
  await git('add', '-A');
  await git('commit', '--quiet', '-m', subject);
  await git('push', '--quiet', 'origin', 'HEAD:main');
  return (await git('rev-parse', 'HEAD')).stdout.trim();
}

/** The roles each test host gets: the inventory's, without grafana (not in Debian). */
function testRoles(id: string): string[] {
  return HOSTS[id]!.filter((r) => r !== 'grafana');
}
/**
 * The rollout config the stack's master gets for test 6 (as docs/stack.md shows it): the load
 * balancers first, one at a time (lb1 and lb2 never together), then each tier; after every
 * batch the site must answer through the VIP and on each load balancer's own address; a batch
 * that fails rolls back every agent the rollout touched.
 */
const ROLLOUT = (ip: (n: string) => string) =>
  [
    'rollout:',
    "  target: '*'",
    "  groups: ['G@roles:haproxy', 'G@roles:nginx', 'G@roles:app', 'G@roles:mysql', 'G@roles:prometheus']",
    '  batch: 1',
    '  stop_on_failure: true',
    '  on_failure: rollback',
    '  verify:',
    ...[VIP, ip('lb1'), ip('lb2')].flatMap((a) => [`    - http: http://${a}/`, '      status: 200', '      timeout_s: 2', '      retries: 2', '      delay_s: 1']),
    '  timeout_s: 600',
  ].join('\n');
const SPECS: HostSpec[] = Object.keys(HOSTS).map((name) => ({ name, ip: '', roles: testRoles(name) }));

/** Every package the highstates install on Debian: the local repository's contents. */
async function stackPackages(): Promise<string[]> {
  const names = new Set<string>();
  for (const spec of SPECS) {
    const grains = { ...grainsFor(spec.name, 'Debian'), roles: spec.roles };
    const low = await compile({ tree: new LocalTree(STATES_DIR), id: spec.name, grains, pillar: await pillarFor(spec.name, grains), test: true });
    for (const s of low) {
      if (s.state !== 'pkg' || s.fun !== 'installed') continue;
      const pkgs = s.args.pkgs as (string | Record<string, unknown>)[] | undefined;
      if (pkgs) for (const p of pkgs) names.add(typeof p === 'string' ? p : Object.keys(p)[0]!);
      else names.add(String(s.args.name));
    }
  }
  return [...names].sort();
}

interface AgentOutcome {
  status: string;
  error?: string;
  body?: { kind: string; report?: RunReport; error?: string };
}
interface ApplyJson {
  code: number;
  agents: Record<string, AgentOutcome>;
}

async function apply(target: string, extra: string[] = []): Promise<{ json: ApplyJson; ms: number }> {
  const t = Date.now();
  const r = await master.cli(['apply', target, '--json', ...extra]);
  const ms = Date.now() - t;
  let json: ApplyJson;
  try {
    json = JSON.parse(r.stdout) as ApplyJson;
  } catch {
    throw new Error(`tsalt apply ${target} printed no JSON (exit ${r.code}): ${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);
  }
  return { json, ms };
}

/** Per agent: the failed states (with comments), for assertion messages. */
function failures(json: ApplyJson): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [id, o] of Object.entries(json.agents)) {
    const rep = o.body?.report;
    const bad = rep ? rep.results.filter((r) => r.result === false).map((r) => `${r.id}: ${r.comment.slice(0, 400)}`) : [`${o.status}: ${o.error ?? o.body?.error ?? 'no report'}`];
    if (bad.length) out[id] = bad;
  }
  return out;
}

/** Per agent: the ids of states that changed (or would change, in test mode). */
function changed(json: ApplyJson): Record<string, string[]> {
  return Object.fromEntries(Object.entries(json.agents).map(([id, o]) => [id, (o.body?.report?.results ?? []).filter((r) => Object.keys(r.changes).length > 0).map((r) => r.id).sort()]));
}

// ---- HTTP from inside the namespace ---------------------------------------------------------

const PROBE = `
const [mode, ...a] = process.argv.slice(2);
async function once(method, url, body) {
  const r = await fetch(url, { method, body, signal: AbortSignal.timeout(5000), headers: body ? { 'content-type': 'application/json' } : {} });
  const text = await r.text();
  return { status: r.status, served: r.headers.get('x-served-by'), body: text };
}
if (mode === 'once') {
  console.log(JSON.stringify(await once(a[0], a[1], a[2])));
} else if (mode === 'many') {
  const out = [];
  for (let i = 0; i < Number(a[2]); i++) out.push(await once(a[0], a[1]).catch((e) => ({ status: 0, error: String(e) })));
  console.log(JSON.stringify(out));
} else {
  // loop URL DURATION_MS INTERVAL_MS: one GET every interval on the clock (t0 + k x interval,
  // whether or not the previous one has answered), each with a 1 s timeout: a request that
  // hangs does not hide the ones that would have been sent meanwhile
  const [url, dur, every] = [a[0], Number(a[1]), Number(a[2])];
  const t0 = Date.now();
  const pending = [];
  for (let k = 0; k * every < dur; k++) {
    const wait = t0 + k * every - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const t = Date.now() - t0;
    pending.push(fetch(url, { signal: AbortSignal.timeout(1000) }).then(async (r) => { await r.arrayBuffer(); return r.status === 200; }, () => false).then((ok) => [t, ok ? 1 : 0]));
  }
  console.log(JSON.stringify(await Promise.all(pending)));
}
`;
const probeFile = path.join(work, 'probe.mjs');
fs.writeFileSync(probeFile, PROBE);

interface Reply {
  status: number;
  served: string | null;
  body: string;
}
async function http(method: string, url: string, body?: unknown): Promise<Reply> {
  const r = await ns.run([process.execPath, probeFile, 'once', method, url, ...(body === undefined ? [] : [JSON.stringify(body)])]);
  if (r.code !== 0) return { status: 0, served: null, body: r.stderr };
  return JSON.parse(r.stdout) as Reply;
}
async function many(url: string, n: number): Promise<Reply[]> {
  const r = await ns.run([process.execPath, probeFile, 'many', 'GET', url, String(n)], { timeoutMs: 120_000 });
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Reply[];
}
function startProbe(url: string, durationMs: number, everyMs = 100): Promise<[number, number][]> {
  return ns.run([process.execPath, probeFile, 'loop', url, String(durationMs), String(everyMs)], { timeoutMs: durationMs + 30_000 }).then((r) => {
    if (r.code !== 0) throw new Error(`probe: ${r.stderr}`);
    return JSON.parse(r.stdout) as [number, number][];
  });
}

async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined | false>): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(500);
  }
}

const h = (name: string) => hosts.get(name)!;

/** `tsalt status --json`. */
async function status(): Promise<StatusData> {
  const r = await master.cli(['status', '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as StatusData;
}

/** Waits for the rollout of a pushed revision to start and finish; returns its record. */
async function rolloutOf(sha: string): Promise<RolloutRow> {
  return until(`the rollout of ${sha.slice(0, 12)} to finish`, 300_000, async () => {
    const r = (await status()).last_rollout;
    return r && r.revision === sha && r.status !== 'running' && r.finished ? r : undefined;
  }).catch((e) => {
    throw new Error(`${(e as Error).message}\n${master.log(6000)}`);
  });
}

/** Each load balancer's haproxy.cfg and HAProxy process. */
async function lbState(): Promise<Record<'lb1' | 'lb2', { pid: string; workers: string; sum: string }>> {
  // a reload keeps the master process (-Ws) and starts new workers
  const one = async (n: string) => ({
    pid: await h(n).sh('systemctl show -p MainPID --value haproxy'),
    workers: await h(n).sh('pgrep -P "$(systemctl show -p MainPID --value haproxy)" | sort | tr "\\n" " "'),
    sum: await h(n).sh('sha256sum /etc/haproxy/haproxy.cfg'),
  });
  return { lb1: await one('lb1'), lb2: await one('lb2') };
}
const ipOf = (name: string) => SPECS.find((s) => s.name === name)!.ip;

async function bringUp(spec: HostSpec, files: ConstructorParameters<typeof Host>[2]): Promise<Host> {
  const host = new Host(spec, ns, files, work);
  hosts.set(spec.name, host);
  await host.create();
  await host.boot();
  await host.bootstrap(spec.roles);
  return host;
}

async function acceptKeys(ids: string[]): Promise<void> {
  await until(`keys of ${ids.join(' ')}`, 120_000, async () => {
    const r = await master.cli(['keys', 'list']);
    return ids.every((id) => r.stdout.includes(id)) || undefined;
  });
  for (const id of ids) {
    const r = await master.cli(['keys', 'accept', id]);
    expect(r.code, r.stderr).toBe(0);
  }
  await until(`agents ${ids.join(' ')} connected`, 120_000, async () => {
    const r = await master.cli(['agents', '--json']);
    const rows = r.code === 0 ? (JSON.parse(r.stdout) as { id: string; connected: boolean }[]) : [];
    return ids.every((id) => rows.some((row) => row.id === id && row.connected)) || undefined;
  });
}

let files: ConstructorParameters<typeof Host>[2];

beforeAll(async () => {
  const t0 = Date.now();
  // this run's packages: the tsalt .deb of this tree and the stand-in for the bind-mounted Node.js
  const tsaltRepo = path.join(work, 'tsalt-repo');
  fs.mkdirSync(tsaltRepo);
  await buildPackages(tsaltRepo, 1, 'deb');
  await nodejsStandIn(tsaltRepo);
  await execOk(['sh', '-c', 'dpkg-scanpackages -m . > Packages 2>/dev/null'], { cwd: tsaltRepo });
  const archiveRepo = (await execOk(['bash', path.join(REPO_DIR, 'scripts/stack-apt-repo.sh'), '/var/cache/tsalt-test/stack-apt', ...(await stackPackages())], { timeoutMs: 900_000 })).stdout.trim();
  const npmCache = process.env.TSALT_NPM_CACHE ?? '/var/cache/tsalt-test/npm';
  await execOk(['bash', path.join(REPO_DIR, 'scripts/test-setup.d/30-stack-npm-cache.sh')], { timeoutMs: 300_000 });
  files = { archiveRepo, tsaltRepo, npmCache };

  // the config repository the master serves (git:), as operators run it: a bare repository the
  // test pushes to from a clone holding states/ (the shipped ones) and pillar/ (the shipped
  // pillar with the inventory on the test subnet, plus what only hosts without a registry need:
  // the npm cache)
  fs.mkdirSync(clone);
  treeStates = path.join(clone, 'states');
  fs.cpSync(STATES_DIR, treeStates, { recursive: true });
  treePillar = pillarOnNetwork(path.join(clone, 'pillar'), SUBNET.cidr, '192.168.56.', SUBNET.prefix);
  fs.writeFileSync(path.join(treePillar, 'stack_test.sls'), "app:\n  npm_env:\n    npm_config_cache: /var/cache/tsalt-npm\n    npm_config_offline: 'true'\n");
  const top = fs.readFileSync(path.join(treePillar, 'top.sls'), 'utf8');
  fs.writeFileSync(path.join(treePillar, 'top.sls'), top.replace("  '*':\n    - common\n", "  '*':\n    - common\n    - stack_test\n"));
  const inv = (await pillarFor('lb1', grainsFor('lb1'), {}, treePillar)).stack as { hosts: Record<string, { ip: string }> };
  for (const s of SPECS) s.ip = inv.hosts[s.name]!.ip;
  await execOk(['git', 'init', '--quiet', '--bare', '--initial-branch=main', bare]);
  await execOk(['git', 'init', '--quiet', '--initial-branch=main', clone]);
  await execOk(['git', '-C', clone, 'remote', 'add', 'origin', bare]);
  firstRevision = await push('stack: first release');

  await ns.create();
  master = new Master(ns, work, bare);
  await master.start();
  figures['setup (packages, repositories)'] = `${((Date.now() - t0) / 1000).toFixed(1)} s`;

  const t1 = Date.now();
  await Promise.all(SPECS.map((s) => bringUp(s, files)));
  await acceptKeys(SPECS.map((s) => s.name));
  figures['nine hosts booted and bootstrapped'] = `${((Date.now() - t1) / 1000).toFixed(1)} s`;
}, 1_200_000);

afterAll(async () => {
  if (process.env.TSALT_STACK_KEEP === '1') {
    // debugging: leave everything up (clean up by hand: nspawn PIDs, overlays, netns)
    console.log(`TSALT_STACK_KEEP: kept ${work}, netns ${ns.name}, leaders ${[...hosts.values()].map((x) => `${x.name}=${x.leader}`).join(' ')}`);
    return;
  }
  await Promise.all([...hosts.values()].map((x) => x.destroy().catch((e) => console.error(`${x.name}: ${(e as Error).message}`))));
  await master?.stop();
  await ns.remove();
  figures['whole test'] = `${((Date.now() - started) / 1000).toFixed(1)} s`;
  const du = await exec(['du', '-sh', '/var/cache/tsalt-test/stack-apt', '/var/cache/tsalt-test/bookworm-rootfs']);
  figures['caches'] = du.stdout.trim().replace(/\n/g, '; ').replace(/\t/g, ' ');
  fs.rmSync(work, { recursive: true, force: true });
  console.log(`\nstack figures:\n${Object.entries(figures).map(([k, v]) => `  ${k}: ${v}`).join('\n')}\n`);
}, 300_000);

describe('the stack on nine containers', { timeout: 900_000 }, () => {
  it('1. the first highstate from the master converges every host from fresh', async () => {
    // served from the config repository: the first push is the desired revision
    expect((await status()).desired).toBe(firstRevision);
    const { json, ms } = await apply('*');
    figures['first apply (9 hosts)'] = `${(ms / 1000).toFixed(1)} s`;
    expect(failures(json), master.log()).toEqual({});
    expect(Object.keys(json.agents).sort()).toEqual(Object.keys(HOSTS).sort());
    expect(json.code).toBe(0);
    for (const [id, o] of Object.entries(json.agents)) expect(o.body?.report?.counts.changed, id).toBeGreaterThan(0);
  });

  it('2a. the second highstate changes nothing on any host', async () => {
    const { json, ms } = await apply('*');
    figures['second apply (no changes)'] = `${(ms / 1000).toFixed(1)} s`;
    expect(failures(json)).toEqual({});
    expect(changed(json)).toEqual(Object.fromEntries(Object.keys(HOSTS).map((id) => [id, []])));
  });

  it('3a. HTTP to the VIP reaches both web servers and both app servers', async () => {
    await until('the VIP on lb1 (VRRP master by priority)', 60_000, async () => (await h('lb1').addresses()).includes(VIP));
    // the app became ready by itself (it retries the databases; replication brings the users and
    // the table to db2 within MASTER_CONNECT_RETRY)
    const t = Date.now();
    // both app servers, each asked on its own address (through the VIP one ready app would do,
    // and the other may still be waiting for the users to reach the replica)
    const bothReady = async () => (await Promise.all(['app1', 'app2'].map(async (a) => (await http('GET', `http://${ipOf(a)}:3000/api/health`)).status))).every((c) => c === 200);
    await until('both app servers ready', 120_000, async () => (await bothReady()) || undefined).catch(async (e) => {
      throw new Error(`${(e as Error).message}\n${(await http('GET', `http://${VIP}/api/health`)).body}\ndb2: ${(await h('db2').exec(['mysql', '-e', 'SHOW SLAVE STATUS\\G'])).stdout}`);
    });
    figures['app ready after the second apply'] = `${((Date.now() - t) / 1000).toFixed(1)} s`;
    const pages = await many(`http://${VIP}/`, 8);
    for (const p of pages) expect(p.status, p.body).toBe(200);
    expect(new Set(pages.map((p) => p.served))).toEqual(new Set([ipOf('web1'), ipOf('web2')]));
    const api = await many(`http://${VIP}/api/items`, 8);
    for (const p of api) expect(p.status, p.body).toBe(200);
    expect(new Set(api.map((p) => (JSON.parse(p.body) as { host: string }).host))).toEqual(new Set(['app1', 'app2']));
    // the app is ready and reports the replica's replication
    const health = JSON.parse((await http('GET', `http://${VIP}/api/health`)).body) as { ready: boolean; replica: { replicating: boolean } };
    expect(health).toMatchObject({ ready: true, replica: { replicating: true } });
  });

  it('3b. a row written through the app is read back from the replica; with replication stopped on db2 new rows are not seen', async () => {
    const items = async () => ((JSON.parse((await http('GET', `http://${VIP}/api/items`)).body) as { items: { text: string }[] }).items ?? []).map((i) => i.text);
    const w = await http('POST', `http://${VIP}/api/items`, { text: 'written through the VIP' });
    expect(w.status, w.body).toBe(201);
    await until('the row on the replica', 30_000, async () => (await items()).includes('written through the VIP'));
    await h('db2').sh("mysql -e 'STOP SLAVE'");
    try {
      const w2 = await http('POST', `http://${VIP}/api/items`, { text: 'while replication is stopped' });
      expect(w2.status, w2.body).toBe(201);
      await sleep(2000);
      for (let i = 0; i < 4; i++) expect(await items()).not.toContain('while replication is stopped');
      // the row is on the primary all the same
      expect(await h('db1').sh("mysql -N appdb -e \"SELECT count(*) FROM items WHERE text = 'while replication is stopped'\"")).toBe('1');
    } finally {
      await h('db2').sh("mysql -e 'START SLAVE'");
    }
    await until('the replica catching up', 30_000, async () => (await items()).includes('while replication is stopped'));
  });

  it('5. Prometheus on mon1 reports every node_exporter, both HAProxy exporters and the tsalt master up', async () => {
    // every node_exporter, both HAProxy exporters, the tsalt master and Prometheus itself
    const want = Object.keys(HOSTS).length + 2 + 1 + 1;
    const up = await until(`${want} targets up`, 120_000, async () => {
      const r = await http('GET', `http://${ipOf('mon1')}:9090/api/v1/targets?state=active`);
      if (r.status !== 200) return undefined;
      const t = (JSON.parse(r.body) as { data: { activeTargets: { labels: Record<string, string>; health: string }[] } }).data.activeTargets;
      return t.length === want && t.every((x) => x.health === 'up') ? t : undefined;
    });
    const jobs = up.map((t) => t.labels.job);
    expect(jobs.filter((j) => j === 'node')).toHaveLength(9);
    expect(jobs.filter((j) => j === 'haproxy')).toHaveLength(2);
    expect(jobs.filter((j) => j === 'tsalt')).toHaveLength(1);
    expect(jobs.filter((j) => j === 'prometheus')).toHaveLength(1);
    figures['Prometheus targets up'] = `${up.length}/${want}`;
  });

  it('5b. Grafana (not in Debian): its states compile for mon1 and its provisioning renders to valid YAML; installed on the Vagrant path only', async () => {
    const grains = grainsFor('mon1', 'Debian');
    const pillar = await pillarFor('mon1', grains, {}, treePillar);
    const low = await compile({ tree: new LocalTree(treeStates), id: 'mon1', grains, pillar, test: true });
    expect(low.map((s) => s.id)).toEqual(expect.arrayContaining(['grafana-repo', 'grafana-pkg', 'grafana-config', 'grafana-datasources', 'grafana-service']));
    const ds = loadSaltYaml(renderTreeTemplate('grafana/files/datasources.yaml.jinja', grains, pillar)) as { datasources: { type: string; url: string }[] };
    expect(ds.datasources.find((d) => d.type === 'prometheus')?.url).toBe('http://127.0.0.1:9090');
    console.log('Grafana: compiled and rendered here, not installed (no Debian package); `vagrant up` installs it from its repository');
  });

  it('4. haproxy stopped on the VRRP master: the VIP moves to lb2 (probe every 100 ms)', async () => {
    expect(await h('lb1').addresses()).toContain(VIP);
    const probe = startProbe(`http://${VIP}/`, 12_000);
    await sleep(2000);
    const t = Date.now();
    await h('lb1').sh('systemctl stop haproxy');
    let moved = 0;
    try {
      await until('the VIP on lb2', 30_000, async () => (await h('lb2').addresses()).includes(VIP));
      moved = Date.now() - t;
    } finally {
      const samples = await probe;
      const failed = samples.filter(([, ok]) => !ok).length;
      figures['failover: VIP moved to lb2 after'] = `${(moved / 1000).toFixed(1)} s (goal <= 3 s)`;
      figures['failover: probes failed'] = `${failed}/${samples.length} (${((100 * failed) / samples.length).toFixed(1)}%, goal <= 2%)`;
      await h('lb1').sh('systemctl start haproxy');
    }
    expect(await h('lb1').addresses()).not.toContain(VIP);
    // served by lb2 now, and back on lb1 (higher priority) once its haproxy is healthy again
    expect((await http('GET', `http://${VIP}/`)).status).toBe(200);
    await until('the VIP back on lb1', 30_000, async () => (await h('lb1').addresses()).includes(VIP));
    expect((await http('GET', `http://${VIP}/`)).status).toBe(200);
  });

  it('2b. a host rebuilt from nothing converges alone, and its --test run predicted the real run', async () => {
    const old = h('web2');
    await old.destroy();
    hosts.delete('web2');
    expect((await master.cli(['keys', 'delete', 'web2'])).code).toBe(0);
    const spec = SPECS.find((s) => s.name === 'web2')!;
    await bringUp(spec, files);
    await acceptKeys(['web2']);
    const predicted = await apply('web2', ['--test']);
    expect(failures(predicted.json)).toEqual({});
    const real = await apply('web2');
    figures['rebuilt web2 converged'] = `${(real.ms / 1000).toFixed(1)} s`;
    expect(failures(real.json)).toEqual({});
    expect(Object.keys(real.json.agents)).toEqual(['web2']);
    expect(changed(real.json).web2!.length).toBeGreaterThan(0);
    // every change of the real run was predicted; what was predicted and did not happen is
    // only a service whose package this run installs (Salt's "if created in this state run, it
    // would have been started": Debian's postinst had started it already)
    const want = changed(real.json).web2!;
    const got = changed(predicted.json).web2!;
    expect(want.filter((id) => !got.includes(id)), 'changes the test run did not predict').toEqual([]);
    for (const id of got.filter((x) => !want.includes(x))) {
      const r = predicted.json.agents.web2!.body!.report!.results.find((x) => x.id === id)!;
      expect(`${id}: ${r.fun}: ${r.comment}`).toMatch(/: service\.running: Service \S+ not present; if created in this state run, it would have been started$/);
    }
    // and serves again, once HAProxy's health checks have seen it come back
    await until('web2 behind the VIP again', 60_000, async () => new Set((await many(`http://${VIP}/`, 4)).map((p) => p.served)).size === 2 || undefined);
  });

  it('7. a full reboot of every host brings the stack back with no apply; the next apply changes nothing', async () => {
    const t = Date.now();
    await Promise.all([...hosts.values()].map((x) => x.reboot()));
    await until('the app through the VIP', 180_000, async () => {
      const r = await http('GET', `http://${VIP}/api/items`);
      return r.status === 200 || undefined;
    });
    figures['full reboot until the app answers through the VIP'] = `${((Date.now() - t) / 1000).toFixed(1)} s`;
    // every service of the stack is back (asserted active below, systemd-networkd included), and
    // no unit failed on any host, except systemd's own boot-time units (tmpfiles, remount-fs,
    // sysusers, update-utmp-runlevel were seen), one of which fails now and then on the second
    // boot of an nspawn container (the container manager owns the root mount, /dev, parts of /run
    // and the runlevel): a test artifact, recorded in the figures with the unit's journal lines
    const artifact = (u: string) => /^systemd-[\w@.-]+\.service /.test(u) && !u.startsWith('systemd-networkd.');
    const artifacts: string[] = [];
    for (const x of hosts.values()) {
      const services = ['tsalt-agent', 'systemd-networkd', 'prometheus-node-exporter', ...x.spec.roles.map((r) => ROLE_SERVICE[r]!)];
      const active = await x.exec(['systemctl', 'is-active', ...services]);
      const states = active.stdout.trim().split('\n');
      // a service that is not back says why (its journal of this boot, and the boot-time units
      // it may depend on: haproxy's /run/haproxy comes from systemd-tmpfiles-setup)
      let why = '';
      for (const [i, svc] of services.entries()) {
        if (states[i] === 'active') continue;
        const j = await x.exec(['journalctl', '-b', '-u', svc, '-u', 'systemd-tmpfiles-setup.service', '--no-pager', '-q', '-o', 'short-monotonic', '-n', '30']);
        why += `\n--- ${svc} (${states[i]}):\n${j.stdout.trim()}`;
      }
      expect(states, `${x.name}: ${services.join(' ')}${why}`).toEqual(services.map(() => 'active'));
      const failed = await x.exec(['systemctl', '--failed', '--no-legend', '--plain']);
      const lines = failed.stdout.trim().split('\n').filter(Boolean);
      for (const l of lines.filter(artifact)) {
        const unit = l.split(' ')[0]!;
        const why = (await x.exec(['journalctl', '-b', '-u', unit, '--no-pager', '-q', '-o', 'cat'])).stdout.trim().split('\n').slice(-3).join(' / ');
        artifacts.push(`${x.name} ${unit}: ${why}`);
      }
      expect(lines.filter((u) => !artifact(u)), `${x.name}: failed units`).toEqual([]);
    }
    if (artifacts.length) figures['after reboot, container artifacts'] = artifacts.join('; ');
    const health = await until('the app ready with replication running', 120_000, async () => {
      const r = await http('GET', `http://${VIP}/api/health`);
      const b = r.status === 200 ? (JSON.parse(r.body) as { ready: boolean; replica: { replicating: boolean } }) : undefined;
      return b?.ready && b.replica.replicating ? b : undefined;
    });
    expect(health.ready).toBe(true);
    await until('all agents back', 120_000, async () => {
      const r = await master.cli(['agents', '--json']);
      const rows = r.code === 0 ? (JSON.parse(r.stdout) as { id: string; connected: boolean }[]) : [];
      return rows.filter((row) => row.connected).length === SPECS.length || undefined;
    });
    const { json } = await apply('*');
    expect(failures(json)).toEqual({});
    expect(changed(json)).toEqual(Object.fromEntries(Object.keys(HOSTS).map((id) => [id, []])));
  });

  // ---- releases: pushes rolled out load balancer by load balancer, verified through the VIP --

  it('6. the master rolls pushes out group by group, one load balancer at a time, verified through the VIP', async () => {
    // what an operator turns on once the stack runs: the rollout config (docs/fleet.md)
    await master.stop();
    await master.start(ROLLOUT(ipOf));
    await until('all agents back after the master restart', 120_000, async () => {
      const r = await master.cli(['agents', '--json']);
      const rows = r.code === 0 ? (JSON.parse(r.stdout) as { id: string; connected: boolean }[]) : [];
      return rows.filter((row) => row.connected).length === SPECS.length || undefined;
    });
    const st = await status();
    expect(st.desired).toBe(firstRevision);
    expect(st.head).toBe(firstRevision);
    // every agent runs the desired revision: nothing to converge
    expect(st.agents.map((a) => `${a.id} ${a.sync}`).sort()).toEqual(Object.keys(HOSTS).sort().map((id) => `${id} in_sync`));
    await until('the VIP on lb1', 60_000, async () => (await h('lb1').addresses()).includes(VIP));
  });

  it('6a. a push of an invalid haproxy.cfg is stopped by check_cmd on lb1: nothing reloads, lb2 is never touched, no request fails', async () => {
    const cfg = path.join(treeStates, 'haproxy/files/haproxy.cfg.jinja');
    const good = fs.readFileSync(cfg, 'utf8');
    const before = await lbState();
    const probe = startProbe(`http://${VIP}/`, 25_000);
    let rollout: RolloutRow;
    let bad: string;
    try {
      fs.writeFileSync(cfg, good.replace(/^(\s*balance .*)$/m, '$1\n    this-is-not-a-keyword 1'));
      bad = await push('haproxy: an invalid keyword');
      rollout = await rolloutOf(bad);
    } finally {
      fs.writeFileSync(cfg, good);
    }
    const samples = await probe;
    const failed = samples.filter(([, ok]) => !ok).length;
    figures['invalid haproxy.cfg pushed: probes failed'] = `${failed}/${samples.length}`;
    expect(rollout.status, rollout.message ?? '').toBe('rolled_back');
    expect(rollout.agents).toEqual(['lb1']);
    expect(rollout.message).toMatch(/^batch 1\/\d+: lb1 failed/);
    // the state that stopped it: check_cmd refused the new haproxy.cfg on lb1
    const job = await master.cli(['jobs', rollout.jids[0]!, '--json']);
    expect(job.stdout).toMatch(/haproxy-config/);
    expect(job.stdout).toMatch(/check_cmd|this-is-not-a-keyword/);
    expect(failed).toBe(0);
    expect(await lbState()).toEqual(before);
    const st = await status();
    expect(st.desired).toBe(firstRevision);
    expect(st.head).toBe(bad);
  });

  it('6b. a push of a haproxy.cfg that validates but breaks the backends is stopped by verify after lb1, lb2 is never touched, the automatic rollback restores service', async () => {
    const cfg = path.join(treeStates, 'haproxy/files/haproxy.cfg.jinja');
    const good = fs.readFileSync(cfg, 'utf8');
    const broken = good.replace("{{ b.get('port', 80) }}", '8081');
    expect(broken).not.toBe(good);
    expect(await h('lb1').addresses()).toContain(VIP);
    const before = await lbState();
    const t = Date.now();
    const probe = startProbe(`http://${VIP}/`, 40_000);
    let rollout: RolloutRow;
    let wrong: string;
    try {
      // backends on a port nothing listens on: `haproxy -c` accepts it, every request gets a 503
      fs.writeFileSync(cfg, broken);
      wrong = await push('haproxy: backends on 8081 (wrong)');
      rollout = await rolloutOf(wrong);
    } finally {
      fs.writeFileSync(cfg, good);
    }
    const rolledBackAt = Date.now() - t;
    const samples = await probe;
    const failed = samples.filter(([, ok]) => !ok);
    const outage = failed.length ? `${((failed.at(-1)![0] - failed[0]![0]) / 1000).toFixed(1)} s from the first failed probe to the last` : 'none';
    figures['verify-failing push: probes failed'] = `${failed.length}/${samples.length} (${outage}; rollout rolled back ${(rolledBackAt / 1000).toFixed(1)} s after the push)`;
    console.log(`6b rollout: ${JSON.stringify(rollout)}`);
    expect(rollout.status, rollout.message ?? '').toBe('rolled_back');
    // stopped after the first batch, by verify, having touched lb1 alone
    expect(rollout.agents).toEqual(['lb1']);
    expect(rollout.batch).toBe(1);
    expect(rollout.message).toMatch(/^batch 1\/\d+: verify GET http:\/\/[\d.]+\/ failed: status 503/);
    // lb1 really served the broken config (clients saw it) before the rollback
    expect(failed.length).toBeGreaterThan(0);
    // lb2: never touched (same file, same process)
    const after = await lbState();
    expect(after.lb2).toEqual(before.lb2);
    // lb1: its haproxy.cfg back to what it was; service restored through the VIP
    expect(after.lb1.sum).toBe(before.lb1.sum);
    const restored = samples.filter(([at]) => at > rolledBackAt + 2000);
    expect(restored.length).toBeGreaterThan(0);
    expect(restored.filter(([, ok]) => !ok)).toEqual([]);
    const pages = await many(`http://${VIP}/`, 4);
    for (const p of pages) expect(p.status, p.body).toBe(200);
    expect(new Set(pages.map((p) => p.served))).toEqual(new Set([ipOf('web1'), ipOf('web2')]));
    // the desired revision went back; the wrong commit is the branch head, recorded as rolled back
    const st = await status();
    expect(st.desired).toBe(firstRevision);
    expect(st.head).toBe(wrong);
    expect(st.agents.find((a) => a.id === 'lb1')).toMatchObject({ revision_applied: firstRevision, sync: 'in_sync' });
    expect(st.agents.find((a) => a.id === 'lb2')).toMatchObject({ revision_applied: firstRevision, revision_attempted: firstRevision });
    const revs = JSON.parse((await master.cli(['revisions', '--json'])).stdout) as { sha: string; outcome: string }[];
    expect(revs.find((r) => r.sha === wrong)?.outcome).toBe('rolled_back');
  });
});
