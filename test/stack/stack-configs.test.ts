/**
 * Every config template of the stack, rendered with the shipped pillar for the host that gets
 * it, is accepted by the real program that will read it (installed from Debian's archive:
 * see scripts/test-packages.txt). Each check is also shown to fail on a broken render, so a
 * passing check means something.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { loadSaltYaml } from '../../core/salt-yaml.js';
import { exec } from '../../engine/run/exec.js';
import { tempDir } from '../helpers/harness.js';
import { grainsFor, pillarFor, renderTreeTemplate, STATES_DIR, type Family } from './stack-helpers.js';
import type { Data } from '../../engine/render/salt-functions.js';
import { compile } from '../../engine/engine.js';
import { LocalTree } from '../../engine/tree/local.js';

const work = tempDir('tsalt-stack-cfg-');
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

let seq = 0;
function writeTmp(name: string, text: string, mode = 0o644): string {
  const dir = path.join(work, String(seq++));
  fs.mkdirSync(dir);
  const p = path.join(dir, name);
  fs.writeFileSync(p, text, { mode });
  return p;
}

async function render(rel: string, id: string, family: Family, overrides: Data = {}, interfaces?: Record<string, string[]>) {
  const grains = grainsFor(id, family, interfaces);
  return renderTreeTemplate(rel, grains, await pillarFor(id, grains, overrides));
}

/** Runs a validator the way file.managed's check_cmd does: the file to check goes last. */
async function check(argv: string[], file: string) {
  const r = await exec([...argv, file], { timeoutMs: 60_000 });
  return { ok: r.code === 0, out: `${r.stdout}\n${r.stderr}` };
}

describe('haproxy.cfg (haproxy -c -f)', () => {
  it.each([
    ['lb1', 'RedHat'],
    ['lb2', 'Debian'],
  ] as const)('%s on %s is valid and balances over both nginx hosts', async (id, family) => {
    const text = await render('haproxy/files/haproxy.cfg.jinja', id, family);
    expect(text).toMatch(/server web1 192\.168\.56\.21:80 check/);
    expect(text).toMatch(/server web2 192\.168\.56\.22:80 check/);
    expect(text).toContain('http-request use-service prometheus-exporter');
    const r = await check(['haproxy', '-c', '-f'], writeTmp('haproxy.cfg', text));
    expect(r.ok, r.out).toBe(true);
  });

  it('a bad backend address fails the check', async () => {
    const text = await render('haproxy/files/haproxy.cfg.jinja', 'lb1', 'RedHat', {
      haproxy: { backends: [{ hostname: 'web1', ip: 'no such host!', port: 80 }] },
    });
    const r = await check(['haproxy', '-c', '-f'], writeTmp('haproxy.cfg', text));
    expect(r.ok).toBe(false);
    expect(r.out).toMatch(/web1/);
  });
});

describe('keepalived.conf (keepalived --config-test -f)', () => {
  // keepalived refuses interfaces that do not exist: check inside a network namespace that has
  // the VMs' eth1 (one end of a veth pair: this kernel has no dummy links), not on this
  // machine's own interfaces
  const ns = `tsalt-ka-${process.pid}`;
  beforeAll(async () => {
    for (const argv of [
      ['ip', 'netns', 'add', ns],
      ['ip', '-n', ns, 'link', 'add', 'eth1', 'type', 'veth', 'peer', 'name', 'eth1p'],
      ['ip', '-n', ns, 'link', 'set', 'eth1', 'up'],
    ]) {
      const r = await exec(argv);
      if (r.code !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
    }
  });
  afterAll(async () => {
    await exec(['ip', 'netns', 'delete', ns]);
  });
  const kaCheck = () => ['ip', 'netns', 'exec', ns, 'keepalived', '--config-test', '-f'];
  // keepalived disables (and the config test fails on) a track script that is missing or in a
  // directory a non-root user could write (enable_script_security): /tmp will not do
  const scriptDir = `/run/tsalt-stack-${process.pid}`;
  afterAll(() => fs.rmSync(scriptDir, { recursive: true, force: true }));
  async function renderKa(id: string) {
    const script = path.join(scriptDir, 'check_haproxy.sh');
    fs.mkdirSync(scriptDir, { recursive: true, mode: 0o755 });
    fs.writeFileSync(script, await render('keepalived/files/check_haproxy.sh.jinja', id, 'RedHat'), { mode: 0o755 });
    return render('keepalived/files/keepalived.conf.jinja', id, 'RedHat', { keepalived: { check_script: { path: script } } });
  }

  it.each([
    ['lb1', 'MASTER', 250, '192.168.56.12'],
    ['lb2', 'BACKUP', 240, '192.168.56.11'],
  ] as const)('%s starts as %s with priority %i, unicast to its peer', async (id, state, prio, peer) => {
    const shipped = await render('keepalived/files/keepalived.conf.jinja', id, 'RedHat');
    expect(shipped).toContain('script "/usr/libexec/keepalived/check_haproxy.sh"');
    const text = await renderKa(id);
    expect(text).toContain(`state ${state}`);
    expect(text).toContain(`priority ${prio}`);
    expect(text).toMatch(new RegExp(`unicast_peer \\{\\s+${peer.replace(/\./g, '\\.')}\\s+\\}`));
    expect(text).toContain('192.168.56.10/24 dev eth1');
    // a failed check is a FAULT (weight 0): the peer takes over on the priority-0 advert
    expect(text).toMatch(/vrrp_script chk_haproxy \{[^}]*interval 1\s+fall 1\s+rise 2\s+weight 0\s+\}/);
    // and at once when haproxy's unit stops: the file its drop-in writes, tracked with weight 0
    expect(text).toMatch(/track_file haproxy_stopped \{\s+file "\/run\/keepalived-haproxy-stopped"\s+weight 0\s+init_file 0\s+\}/);
    expect(text).toMatch(/track_file \{\s+haproxy_stopped\s+\}/);
    const r = await check(kaCheck(), writeTmp('keepalived.conf', text));
    expect(r.ok, r.out).toBe(true);
  });

  it('VRRP runs on whichever interface holds the host\'s inventory address (grain ip_interfaces), with no pillar edit', async () => {
    const grains = { lo: ['127.0.0.1'], ens3: ['10.0.2.15'], host0: ['192.168.56.12', '192.168.56.10'] };
    const text = await render('keepalived/files/keepalived.conf.jinja', 'lb2', 'Debian', {}, grains);
    expect(text).toMatch(/^\s+interface host0$/m);
    expect(text).toContain('192.168.56.10/24 dev host0');
    // a pillar `interface:` still wins
    const pinned = await render('keepalived/files/keepalived.conf.jinja', 'lb2', 'Debian', { keepalived: { vrrp_instances: { VI_WEB: { interface: 'bond0' } } } }, grains);
    expect(pinned).toMatch(/^\s+interface bond0$/m);
  });

  it('no interface holding the address: keepalived.conf is not written, the run fails saying why', async () => {
    const grains = grainsFor('lb1', 'Debian', { lo: ['127.0.0.1'], eth0: ['10.0.2.15'] });
    const low = await compile({ tree: new LocalTree(STATES_DIR), id: 'lb1', grains, pillar: await pillarFor('lb1', grains), test: true });
    const fail = low.find((s) => s.id === 'keepalived-interface');
    expect(`${fail?.state}.${fail?.fun}`).toBe('test.fail_without_changes');
    expect(String(fail?.args.comment)).toMatch(/no network interface holds this host's inventory address '192\.168\.56\.11'/);
    const config = low.find((s) => s.id === 'keepalived-config')!;
    expect(config.deps.some((d) => d.kind === 'require' && d.target === fail!.key)).toBe(true);
    // with the address on an interface there is no such state
    const ok = await compile({ tree: new LocalTree(STATES_DIR), id: 'lb1', grains: grainsFor('lb1', 'Debian'), pillar: await pillarFor('lb1', grainsFor('lb1', 'Debian')), test: true });
    expect(ok.map((s) => s.id), JSON.stringify(ok.find((s) => s.id === 'keepalived-interface')?.args)).not.toContain('keepalived-interface');
  });

  it('an unknown keyword fails the check', async () => {
    const text = (await renderKa('lb1')).replace('advert_int', 'advert_intt');
    const r = await check(kaCheck(), writeTmp('keepalived.conf', text));
    expect(r.ok).toBe(false);
  });

  it('the health check script is valid sh and asks haproxy\'s monitor URI', async () => {
    const text = await render('keepalived/files/check_haproxy.sh.jinja', 'lb1', 'RedHat');
    expect(text).toContain("'http://127.0.0.1:8406/healthz'");
    const r = await check(['sh', '-n'], writeTmp('check_haproxy.sh', text, 0o755));
    expect(r.ok, r.out).toBe(true);
  });
});

describe('nginx.conf (nginx -t -c)', () => {
  it.each([
    // EL's nginx user does not exist on this Debian machine: point the lookup at Debian's
    ['web1', 'RedHat', { nginx: { lookup: { user: 'www-data' } } }],
    ['web2', 'Debian', {}],
  ] as const)('%s on %s is valid and proxies /api/ to both app servers', async (id, family, overrides) => {
    const text = await render('nginx/files/nginx.conf.jinja', id, family, overrides);
    expect(text).toMatch(/server 192\.168\.56\.31:3000 /);
    expect(text).toMatch(/server 192\.168\.56\.32:3000 /);
    expect(text).toContain('location /api/');
    const r = await check(['nginx', '-t', '-c'], writeTmp('nginx.conf', text));
    expect(r.ok, r.out).toBe(true);
  });

  it('EL renders the EL user', async () => {
    expect(await render('nginx/files/nginx.conf.jinja', 'web1', 'RedHat')).toMatch(/^user nginx;$/m);
  });

  it('a broken directive fails the check', async () => {
    const text = (await render('nginx/files/nginx.conf.jinja', 'web2', 'Debian')).replace('keepalive_timeout 65;', 'keepalive_timeout;');
    const r = await check(['nginx', '-t', '-c'], writeTmp('nginx.conf', text));
    expect(r.ok).toBe(false);
  });
});

describe('MariaDB option file (the shipped check script, i.e. mariadbd --help)', () => {
  async function checker(family: Family) {
    // the check script is itself a template; EL's mariadbd lives in /usr/libexec, Debian's here
    const over = family === 'RedHat' ? { mysql: { lookup: { mariadbd: '/usr/sbin/mariadbd' } } } : {};
    return writeTmp('check-mariadb-cnf', await render('mysql/files/check-mariadb-cnf.jinja', 'db1', family, over), 0o755);
  }

  it.each([
    ['db1', 'RedHat', '1', false],
    ['db2', 'RedHat', '2', true],
    ['db2', 'Debian', '2', true],
  ] as const)('%s on %s: server_id %s, read_only %s, valid', async (id, family, serverId, readOnly) => {
    const text = await render('mysql/files/server.cnf.jinja', id, family);
    expect(text).toContain(`server_id = ${serverId}`);
    expect(text).toContain('gtid_strict_mode = ON');
    expect(text.includes('read_only = ON')).toBe(readOnly);
    const r = await check([await checker(family)], writeTmp('server.cnf', text));
    expect(r.ok, r.out).toBe(true);
  });

  it('an unknown variable or bad value fails the check', async () => {
    const script = await checker('Debian');
    const bad1 = (await render('mysql/files/server.cnf.jinja', 'db1', 'Debian')).replace('binlog_format', 'binlog_fromat');
    const r1 = await check([script], writeTmp('server.cnf', bad1));
    expect(r1.ok).toBe(false);
    expect(r1.out).toContain("unknown variable 'binlog_fromat");
    const bad2 = await render('mysql/files/server.cnf.jinja', 'db1', 'Debian', { mysql: { replication: { server_ids: { db1: 'abc' } } } });
    expect((await check([script], writeTmp('server.cnf', bad2))).ok).toBe(false);
  });

  it('a host without a server_id does not render', async () => {
    const grains = { ...grainsFor('db2', 'RedHat'), id: 'db3' };
    const pillar = await pillarFor('db2', grainsFor('db2', 'RedHat'));
    expect(() => renderTreeTemplate('mysql/files/server.cnf.jinja', grains, pillar)).toThrow(/undefined/);
  });
});

describe('prometheus.yml and rules (promtool)', () => {
  async function renderAll(overrides: Data = {}) {
    const rulesDir = path.join(work, `rules-${seq++}`);
    fs.mkdirSync(rulesDir);
    fs.copyFileSync(path.join(STATES_DIR, 'prometheus/files/stack-rules.yml'), path.join(rulesDir, 'stack.yml'));
    const text = await render('prometheus/files/prometheus.yml.jinja', 'mon1', 'RedHat', {
      prometheus: { lookup: { rules_dir: rulesDir } },
      ...overrides,
    });
    return { text, rulesDir };
  }

  it('the config is valid, loads the rules and scrapes node_exporter on every host', async () => {
    const { text, rulesDir } = await renderAll();
    const cfg = loadSaltYaml(text) as { scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[] };
    const node = cfg.scrape_configs.find((j) => j.job_name === 'node')!;
    expect(node.static_configs.flatMap((s) => s.targets)).toHaveLength(9);
    const haproxy = cfg.scrape_configs.find((j) => j.job_name === 'haproxy')!;
    expect(haproxy.static_configs.flatMap((s) => s.targets)).toEqual(['192.168.56.11:8405', '192.168.56.12:8405']);
    // and the tsalt master's own /metrics (docs/fleet.md "Metrics"; bootstrap.sh turns it on)
    const tsalt = cfg.scrape_configs.find((j) => j.job_name === 'tsalt')!;
    expect(tsalt.static_configs.flatMap((s) => s.targets)).toEqual(['192.168.56.5:9506']);
    const r = await check(['promtool', 'check', 'config'], writeTmp('prometheus.yml', text));
    expect(r.ok, r.out).toBe(true);
    expect(r.out).toContain(`${rulesDir}/stack.yml`);
    const rules = await check(['promtool', 'check', 'rules'], path.join(rulesDir, 'stack.yml'));
    expect(rules.ok, rules.out).toBe(true);
    expect(rules.out).toMatch(/SUCCESS: 2 rules found/);
  });

  it('a bad interval fails the check', async () => {
    const { text } = await renderAll({ prometheus: { scrape_interval: 'soon' } });
    expect((await check(['promtool', 'check', 'config'], writeTmp('prometheus.yml', text))).ok).toBe(false);
  });
});

describe('grafana', () => {
  it('provisions Prometheus as the default data source', async () => {
    const ds = loadSaltYaml(await render('grafana/files/datasources.yaml.jinja', 'mon1', 'RedHat'));
    expect(ds).toEqual({
      apiVersion: 1,
      datasources: [{ name: 'Prometheus', type: 'prometheus', access: 'proxy', url: 'http://127.0.0.1:9090', isDefault: true, editable: false }],
    });
  });

  it('grafana.ini sets port and admin password from pillar', async () => {
    const ini = await render('grafana/files/grafana.ini.jinja', 'mon1', 'Debian');
    expect(ini).toMatch(/^\[server\]\nhttp_port = 3000$/m);
    expect(ini).toMatch(/^admin_password = CHANGEME-grafana$/m);
  });
});

describe('app', () => {
  it('app.env: writes to the primary, reads from the replica', async () => {
    const env = await render('app/files/app.env.jinja', 'app1', 'RedHat');
    const vars = Object.fromEntries(env.split('\n').filter((l) => /^[A-Z_]+=/.test(l)).map((l) => l.split(/=(.*)/s).slice(0, 2)));
    expect(vars).toMatchObject({ PORT: '3000', DB_WRITE_HOST: '192.168.56.41', DB_READ_HOST: '192.168.56.42', DB_NAME: 'appdb', DB_USER: 'app' });
  });

  it('app.service passes systemd-analyze verify', async () => {
    const unit = await render('app/files/app.service.jinja', 'app1', 'RedHat');
    expect(unit).toContain('ExecStart=/usr/bin/node /opt/app/src/server.js');
    const r = await check(['systemd-analyze', 'verify', '--man=no'], writeTmp('app.service', unit));
    expect(r.ok, r.out).toBe(true);
  });

  it('server.js is valid JavaScript', async () => {
    const r = await check([process.execPath, '--check'], path.join(STATES_DIR, 'app/files/src/server.js'));
    expect(r.ok, r.out).toBe(true);
  });
});
