/**
 * The shipped 3-tier tree compiles for every VM of the stack, on EL9 (what Vagrant brings up)
 * and on Debian (what this machine is), with the shipped pillar: the right states, their
 * requisites, and every salt:// source present in the tree.
 */
import { describe, expect, it } from 'vitest';
import { compile } from '../../agent/engine.js';
import { LocalTree } from '../../agent/tree/local.js';
import { grainsFor, pillarFor, HOSTS, STATES_DIR, PILLAR_DIR, type Family } from './stack-helpers.js';
import { renderPillar } from '../../agent/compile/pillar.js';

const COMMON = ['common-packages', '/etc/motd', 'node-exporter-pkg', 'node-exporter-service'];
const ROLE_STATES: Record<string, string[]> = {
  haproxy: ['haproxy-pkg', 'haproxy-config', 'haproxy-service'],
  keepalived: ['keepalived-pkg', 'keepalived-check-script', 'keepalived-config', 'keepalived-service'],
  nginx: ['nginx-pkg', 'nginx-docroot', 'nginx-config', 'nginx-service'],
  app: ['app-user', 'app-dir', 'app-deps', 'app-src', 'app-env', 'app-unit', 'app-service'],
  mysql: ['mariadb-pkgs', 'mariadb-check-cnf', 'mariadb-config', 'mariadb-service', 'mariadb-sql-dir'],
  prometheus: ['prometheus-pkg', 'prometheus-rules', 'prometheus-config', 'prometheus-service'],
  grafana: ['grafana-repo', 'grafana-pkg', 'grafana-config', 'grafana-datasources', 'grafana-service'],
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
