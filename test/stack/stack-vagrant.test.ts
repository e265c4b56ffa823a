/**
 * The Vagrant side agrees with the trees: the VMs vagrant/hosts.yaml brings up are the hosts,
 * addresses and roles the pillar inventory (pillar/stack.jinja) knows, and the bootstrap is
 * valid bash that writes the grains file top.sls matches on.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/harness.js';
import fs from 'node:fs';
import path from 'node:path';
import { loadSaltYaml } from '../../core/salt-yaml.js';
import { exec } from '../../engine/run/exec.js';
import { grainsFor, pillarFor, HOSTS, REPO_DIR } from './stack-helpers.js';

const vagrantDir = path.join(REPO_DIR, 'vagrant');
interface Inventory {
  master: { name: string; ip: string };
  hosts: Record<string, { ip: string; roles: string[] }>;
}
const inv = loadSaltYaml(fs.readFileSync(path.join(vagrantDir, 'hosts.yaml'), 'utf8')) as Inventory;

describe('vagrant inventory', () => {
  it('matches the pillar inventory host for host', async () => {
    const pillar = await pillarFor('lb1', grainsFor('lb1'));
    const stack = pillar.stack as { hosts: Record<string, { ip: string; roles: string[] }>; network: { vip: string } };
    expect(Object.fromEntries(Object.entries(inv.hosts).map(([n, h]) => [n, { ip: h.ip, roles: h.roles }]))).toEqual(stack.hosts);
    // and the tests' own host list
    expect(Object.fromEntries(Object.entries(inv.hosts).map(([n, h]) => [n, h.roles]))).toEqual(HOSTS);
    // the master as the pillar knows it (Prometheus scrapes its /metrics) is the VM Vagrant makes
    const mon = await pillarFor('mon1', grainsFor('mon1'));
    const tsaltMaster = (mon.prometheus as { tsalt_master: { hostname: string; ip: string } }).tsalt_master;
    expect({ name: tsaltMaster.hostname, ip: tsaltMaster.ip }).toEqual({ name: inv.master.name, ip: inv.master.ip });
    const ips = [inv.master.ip, stack.network.vip, ...Object.values(inv.hosts).map((h) => h.ip)];
    expect(new Set(ips).size, 'addresses (master, VIP, hosts) are unique').toBe(ips.length);
  });

  it('bootstrap.sh is valid bash and writes the roles grain as a YAML list', async () => {
    const script = path.join(vagrantDir, 'bootstrap.sh');
    const syntax = await exec(['bash', '-n', script]);
    expect(syntax.code, syntax.stderr).toBe(0);
    // run just the grains-writing block the way the script does
    const text = fs.readFileSync(script, 'utf8');
    const block = /^  \{\n([\s\S]*?)\n  \} > \/etc\/tsalt\/grains$/m.exec(text);
    expect(block, 'grains block').not.toBeNull();
    const r = await exec(['bash', '-c', `set -euo pipefail\n${block![1]}`], { env: { ...process.env, TSALT_ROLES: 'haproxy,keepalived' } });
    expect(r.code, r.stderr).toBe(0);
    expect(loadSaltYaml(r.stdout)).toEqual({ roles: ['haproxy', 'keepalived'] });
  });
});

describe('vagrant validate', () => {
  const work = tempDir('tsalt-vagrant-');
  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));
  // vagrant's state and home in scratch directories; no version check against HashiCorp's servers
  const env = { ...process.env, VAGRANT_HOME: path.join(work, 'home'), VAGRANT_DOTFILE_PATH: path.join(work, 'dot'), VAGRANT_CHECKPOINT_DISABLE: '1' };
  // no VirtualBox or libvirt here: the provider blocks are skipped, everything else is checked
  const validate = (dir: string, extra: Record<string, string> = {}) => exec(['vagrant', 'validate', '--ignore-provider'], { cwd: dir, env: { ...env, ...extra }, timeoutMs: 120_000 });

  it('accepts vagrant/Vagrantfile (the master and the nine hosts)', async () => {
    const r = await validate(vagrantDir);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('Vagrantfile validated successfully');
    for (const name of ['salt', ...Object.keys(inv.hosts)]) expect(r.stdout).toContain(`==> ${name}:`);
    expect(fs.existsSync(path.join(vagrantDir, '.vagrant'))).toBe(false);
  });

  it('fails on a broken Vagrantfile (so passing means something)', async () => {
    const dir = path.join(work, 'broken');
    fs.cpSync(vagrantDir, dir, { recursive: true });
    const file = path.join(dir, 'Vagrantfile');
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace("config.vm.box = box", 'config.vm.boxx = box'));
    const r = await validate(dir);
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/boxx/);
  });

  it('the box is Rocky Linux 9 unless TSALT_BOX names another', () => {
    const text = fs.readFileSync(path.join(vagrantDir, 'Vagrantfile'), 'utf8');
    expect(text).toMatch(/ENV\.fetch\('TSALT_BOX', 'bento\/rockylinux-9'\)/);
  });

  it('rsync carries the built packages to the VMs and nothing else of dist/', async () => {
    const text = fs.readFileSync(path.join(vagrantDir, 'Vagrantfile'), 'utf8');
    const list = /rsync__args: \[([\s\S]*?)\]/.exec(text);
    expect(list).not.toBeNull();
    const args = [...list![1]!.matchAll(/'([^']*)'/g)].map((m) => m[1]!).filter((a) => a.startsWith('--include') || a.startsWith('--exclude'));
    const src = path.join(work, 'repo');
    for (const f of ['dist/packages/tsalt_0.1.0-1_amd64.deb', 'dist/bundle/tsalt.cjs', 'dist/cli/main.js', 'states/top.sls']) {
      fs.mkdirSync(path.dirname(path.join(src, f)), { recursive: true });
      fs.writeFileSync(path.join(src, f), '');
    }
    const r = await exec(['rsync', '-a', '--dry-run', '--out-format=%n', ...args, `${src}/`, path.join(work, 'dest')]);
    expect(r.code, r.stderr).toBe(0);
    const files = r.stdout.split('\n').filter((l) => l && !l.endsWith('/'));
    expect(files.sort()).toEqual(['dist/packages/tsalt_0.1.0-1_amd64.deb', 'states/top.sls']);
  });
});
