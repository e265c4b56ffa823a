/**
 * The shipped 3-tier tree compiles for every VM of the stack, on EL9 (what Vagrant brings up)
 * and on Debian (what this machine is), with the shipped pillar: the right states, their
 * requisites, and every salt:// source present in the tree.
 */
import { describe, expect, it } from 'vitest';
import { compile } from '../../engine/engine.js';
import { LocalTree } from '../../engine/tree/local.js';
import { grainsFor, pillarFor, HOSTS, STATES_DIR, PILLAR_DIR, type Family } from './stack-helpers.js';
import { renderPillar } from '../../engine/compile/pillar.js';
import type { Data } from '../../engine/render/salt-functions.js';

const COMMON = ['common-packages', '/etc/motd', 'node-exporter-pkg', 'node-exporter-service'];
const ROLE_STATES: Record<string, string[]> = {
  haproxy: ['haproxy-pkg', 'haproxy-config', 'haproxy-service'],
  keepalived: ['keepalived-pkg', 'keepalived-check-script', 'keepalived-config', 'keepalived-service'],
  nginx: ['nginx-pkg', 'nginx-docroot', 'nginx-config', 'nginx-service'],
  app: ['app-user', 'app-dir', 'app-deps', 'app-src', 'app-env', 'app-unit', 'app-service'],
  mysql: ['mariadb-pkgs', 'mariadb-check-cnf', 'mariadb-config', 'mariadb-service', 'mariadb-sql-dir'],
  prometheus: ['prometheus-pkg', 'prometheus-rules', 'prometheus-config', 'prometheus-service'],
  grafana: ['grafana-repo', 'grafana-pkg', 'grafana-config', 'grafana-datasources', 'grafana-dashboard-provider', 'grafana-dashboard-tsalt', 'grafana-service'],
};
// EL only: SELinux switches and the prometheus-rpm repository
const REDHAT_ONLY: Record<string, string[]> = {
  '*': ['prometheus-rpm-repo'],
  haproxy: ['haproxy-selinux'],
  keepalived: ['keepalived-check-script-label'],
  nginx: ['nginx-selinux'],
};

async function compileHost(id: string, family: Family) {
  const grains = grainsFor(id, family);
  const pillar = await pillarFor(id, grains);
  const tree = new LocalTree(STATES_DIR);
  const low = await compile({ tree, id, grains, pillar, test: true });
  return { low, pillar, tree };
}

function idsOf(low: { id: string }[]) {
  return new Set(low.map((s) => s.id));
}

/** `pillar['a']['b']...`, failing the test with the path when a key is missing. */
function dig(data: Data, ...keys: string[]): unknown {
  let cur: unknown = data;
  for (const k of keys) {
    if (!cur || typeof cur !== 'object' || !(k in cur)) throw new Error(`pillar has no ${keys.join(':')}`);
    cur = (cur as Data)[k];
  }
  return cur;
}

/** The port of a pillar listen value (`'*:80'`, `'127.0.0.1:8406'`, `3306`); null for loopback. */
function exposedPort(listen: unknown): string | null {
  const s = String(listen);
  if (/^(127\.|localhost:|\[::1\]:)/.test(s)) return null;
  return s.split(':').pop()!;
}

/**
 * What firewalld must let in on a host, from the pillar: the ports its roles' daemons listen
 * on (its own pillar), plus the two the states leave at the daemon's default, taken from the
 * pillar of whoever connects to them: node_exporter (every host; Prometheus' node job) and
 * Prometheus (Grafana's data source URL).
 */
async function firewallWanted(id: string, family: Family): Promise<{ tcp: string[]; protocols: string[] }> {
  const roles = HOSTS[id]!;
  const pillar = await pillarFor(id, grainsFor(id, family));
  const mon = await pillarFor('mon1', grainsFor('mon1', family));
  const listens: unknown[] = [dig(mon, 'prometheus', 'jobs', 'node', 'port')];
  if (roles.includes('haproxy') || roles.includes('keepalived')) {
    for (const f of ['frontend', 'stats', 'monitor']) listens.push(dig(pillar, 'haproxy', f, 'listen'));
  }
  if (roles.includes('nginx')) listens.push(dig(pillar, 'nginx', 'listen'));
  if (roles.includes('app')) listens.push(dig(pillar, 'app', 'port'));
  if (roles.includes('mysql')) listens.push(dig(pillar, 'mysql', 'port'));
  if (roles.includes('grafana')) listens.push(dig(pillar, 'grafana', 'http_port'));
  if (roles.includes('prometheus')) {
    const ds = (dig(mon, 'grafana', 'datasources') as Data[]).find((d) => d.type === 'prometheus')!;
    listens.push(new URL(String(ds.url)).port);
  }
  const tcp = [...new Set(listens.map(exposedPort).filter((p): p is string => p !== null))].sort();
  return { tcp, protocols: roles.includes('keepalived') ? ['vrrp'] : [] };
}

/** The firewall states of a compiled host, checked for their form; returns ports and protocols. */
function firewallOf(low: Awaited<ReturnType<typeof compileHost>>['low'], id: string) {
  const tcp: string[] = [];
  const protocols: string[] = [];
  for (const s of low.filter((x) => x.sls === 'firewall')) {
    expect(`${s.state}.${s.fun}`, s.id).toBe('cmd.run');
    // only where firewalld runs: elsewhere (Debian, firewalld stopped) the state is skipped
    expect(s.guards.onlyif, `${id}: ${s.id}`).toBe('firewall-cmd --state');
    const port = /^firewall-tcp-(\d+)$/.exec(s.id)?.[1];
    const proto = /^firewall-protocol-([a-z0-9-]+)$/.exec(s.id)?.[1];
    const item = port ? `port=${port}/tcp` : proto ? `protocol=${proto}` : undefined;
    expect(item, `${id}: unexpected firewall state ${s.id}`).toBeDefined();
    // runtime and permanent both, and idempotent: skipped once both already have it
    expect(s.name, `${id}: ${s.id}`).toBe(`firewall-cmd --add-${item} && firewall-cmd --permanent --add-${item}`);
    expect(s.guards.unless, `${id}: ${s.id}`).toBe(`firewall-cmd --query-${item} && firewall-cmd --permanent --query-${item}`);
    // no source restriction, default zone, nothing else
    expect(s.name).not.toMatch(/--zone|source|rich-rule/);
    expect(Object.keys(s.args).sort(), `${id}: ${s.id}`).toEqual(['name']);
    if (port) tcp.push(port);
    else protocols.push(proto!);
  }
  return { tcp: tcp.sort(), protocols: protocols.sort() };
}

describe.each(['RedHat', 'Debian'] as const)('highstate on %s', (family) => {
  it.each(Object.keys(HOSTS))('%s compiles with the states of its roles and nothing else', async (id) => {
    const { low, tree } = await compileHost(id, family);
    const ids = idsOf(low);
    const roles = HOSTS[id]!;
    const want = [...COMMON, ...roles.flatMap((r) => ROLE_STATES[r]!)];
    if (family === 'RedHat') want.push(...REDHAT_ONLY['*']!, ...roles.flatMap((r) => REDHAT_ONLY[r] ?? []));
    for (const s of want) expect(ids, `${id}: missing state ${s}`).toContain(s);
    // states of roles this host does not have stay out
    for (const [role, states] of Object.entries(ROLE_STATES)) {
      if (roles.includes(role) || (role === 'haproxy' && roles.includes('keepalived'))) continue;
      for (const s of states) expect(ids, `${id}: ${s} belongs to role ${role}`).not.toContain(s);
    }
    if (family === 'Debian') for (const s of Object.values(REDHAT_ONLY).flat()) expect(ids).not.toContain(s);
    // firewalld: exactly the ports of this host's roles, from the pillar
    expect(firewallOf(low, id), `${id}: firewall`).toEqual(await firewallWanted(id, family));
    // opened before any service starts
    const lastFirewall = Math.max(...low.map((s, i) => (s.sls === 'firewall' ? i : -1)));
    const firstService = low.findIndex((s) => s.state === 'service');
    expect(lastFirewall, `${id}: firewall states`).toBeGreaterThanOrEqual(0);
    expect(lastFirewall, `${id}: firewall before services`).toBeLessThan(firstService);
    // every salt:// source a state names is in the tree
    for (const s of low) {
      const src = s.args.source;
      if (typeof src === 'string' && src.startsWith('salt://')) {
        const rel = src.slice('salt://'.length);
        const ok = s.fun === 'recurse' ? (await tree.list(rel)).length > 0 : tree.existsSync(rel);
        expect(ok, `${id}: ${s.id} source ${src}`).toBe(true);
      }
    }
  });
});

describe('stack wiring', () => {
  it('config changes restart/reload their service, packages come first', async () => {
    const { low } = await compileHost('lb1', 'RedHat');
    const pos = (id: string) => low.findIndex((s) => s.id === id);
    for (const [pkg, cfg, svc] of [
      ['haproxy-pkg', 'haproxy-config', 'haproxy-service'],
      ['keepalived-pkg', 'keepalived-config', 'keepalived-service'],
    ]) {
      expect(pos(pkg!)).toBeLessThan(pos(cfg!));
      expect(pos(cfg!)).toBeLessThan(pos(svc!));
      const service = low.find((s) => s.id === svc)!;
      expect(service.requisites.watch?.map((r) => r.ref)).toContain(cfg);
    }
    // keepalived starts only after haproxy runs: its check would fail and drop the VIP
    expect(pos('haproxy-service')).toBeLessThan(pos('keepalived-service'));
    // the SELinux switch is flipped before haproxy (re)starts
    expect(pos('haproxy-selinux')).toBeLessThan(pos('haproxy-service'));
    const cfg = low.find((s) => s.id === 'haproxy-config')!;
    expect(cfg.args.check_cmd).toBe('/usr/sbin/haproxy -c -f');
  });

  it('db1 is the primary (databases, users), db2 the replica', async () => {
    const ACCOUNTS = ['mysql-database-appdb', 'mysql-user-app', 'mysql-grants-app-appdb', 'mysql-user-repl', 'mysql-grants-repl-*'];
    const { low } = await compileHost('db1', 'RedHat');
    const primary = idsOf(low);
    const replica = idsOf((await compileHost('db2', 'RedHat')).low);
    for (const id of ACCOUNTS) expect(primary).toContain(id);
    expect(primary).not.toContain('mariadb-replica-apply');
    expect(replica).toContain('mariadb-replica-apply');
    for (const id of ACCOUNTS) expect(replica).not.toContain(id);
    // extend + require_in: every state of mysql.accounts waits for the server, and only those
    const service = low.find((s) => s.id === 'mariadb-service')!;
    for (const s of low) {
      const waits = s.deps.some((d) => d.kind === 'require' && d.target === service.key);
      expect(waits, s.id).toBe(s.sls === 'mysql.accounts');
    }
    // the default connection (root over the server's own socket): no socket unless pillar names one
    for (const s of low) if (s.sls === 'mysql.accounts') expect(s.args).not.toHaveProperty('connection_unix_socket');
    const grant = low.find((s) => s.id === 'mysql-grants-repl-*')!;
    expect(grant.args).toMatchObject({ grant: 'REPLICATION SLAVE', database: '*.*', user: 'repl', host: '192.168.56.%' });
  });

  it('firewalld lets every connection between the hosts through', async () => {
    const fw: Record<string, { tcp: string[]; protocols: string[] }> = {};
    const pillar: Record<string, Data> = {};
    for (const id of Object.keys(HOSTS)) {
      fw[id] = firewallOf((await compileHost(id, 'RedHat')).low, id);
      pillar[id] = await pillarFor(id, grainsFor(id));
    }
    const byIp = new Map(Object.entries(dig(pillar.lb1!, 'stack', 'hosts') as Record<string, { ip: string }>).map(([h, v]) => [v.ip, h]));
    const opens = (ip: string, port: unknown, who: string) => {
      const host = byIp.get(ip);
      expect(host, `${who}: ${ip} is not in the inventory`).toBeDefined();
      expect(fw[host!]!.tcp, `${who} -> ${host}:${port}`).toContain(String(port));
    };
    // clients -> HAProxy on both load balancers (the VIP moves between them)
    for (const [h, r] of Object.entries(HOSTS)) if (r.includes('haproxy')) opens(dig(pillar.lb1!, 'stack', 'hosts', h, 'ip') as string, exposedPort(dig(pillar[h]!, 'haproxy', 'frontend', 'listen')), 'clients');
    // HAProxy -> nginx, nginx -> app, app -> MariaDB (writes and reads), replica -> primary
    for (const b of dig(pillar.lb1!, 'haproxy', 'backends') as Data[]) opens(String(b.ip), b.port, 'haproxy backend');
    for (const b of dig(pillar.web1!, 'nginx', 'api_upstream') as Data[]) opens(String(b.ip), b.port, 'nginx api_upstream');
    const db = dig(pillar.app1!, 'app', 'db') as Data;
    for (const ip of [db.write_host, db.read_host]) opens(String(ip), db.port, 'app');
    const repl = dig(pillar.db2!, 'mysql', 'replication') as Data;
    opens(String(repl.primary_host), repl.primary_port ?? dig(pillar.db2!, 'mysql', 'port'), 'replica');
    // Prometheus -> every exporter
    for (const job of Object.values(dig(pillar.mon1!, 'prometheus', 'jobs') as Record<string, Data>)) {
      for (const t of job.targets as Data[]) opens(String(t.ip), job.port, `prometheus ${t.hostname}`);
    }
    // keepalived peers exchange VRRP
    for (const peer of Object.keys(dig(pillar.lb1!, 'keepalived', 'vrrp_instances', 'VI_WEB', 'peers') as Data)) {
      expect(fw[peer]!.protocols, `VRRP on ${peer}`).toContain('vrrp');
    }
  });

  it('grain-matched pillar: each host receives only its roles\' secrets', async () => {
    const lb = await renderPillar(new LocalTree(PILLAR_DIR), 'lb1', grainsFor('lb1'));
    expect(Object.keys(lb).sort()).toEqual(['haproxy', 'keepalived', 'stack']);
    const db = await renderPillar(new LocalTree(PILLAR_DIR), 'db2', grainsFor('db2'));
    expect(Object.keys(db).sort()).toEqual(['mysql', 'stack']);
    const app = await renderPillar(new LocalTree(PILLAR_DIR), 'app1', grainsFor('app1'));
    expect(app.app).toMatchObject({ db: { write_host: '192.168.56.41', read_host: '192.168.56.42' } });
    expect((lb.haproxy as { backends: unknown }).backends).toEqual([
      { hostname: 'web1', ip: '192.168.56.21', port: 80 },
      { hostname: 'web2', ip: '192.168.56.22', port: 80 },
    ]);
  });
});
