/**
 * The Vagrant side agrees with the trees: the VMs vagrant/hosts.yaml brings up are the hosts,
 * addresses and roles the pillar inventory (pillar/stack.jinja) knows, and the bootstrap is
 * valid bash that writes the grains file top.sls matches on.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { exec } from '../../engine/run/exec.js';
import { grainsFor, pillarFor, HOSTS, REPO_DIR } from './stack-helpers.js';

const vagrantDir = path.join(REPO_DIR, 'vagrant');
interface Inventory {
  master: { name: string; ip: string };
  hosts: Record<string, { ip: string; roles: string[] }>;
}
const inv = parseYaml(fs.readFileSync(path.join(vagrantDir, 'hosts.yaml'), 'utf8')) as Inventory;

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
    expect(parseYaml(r.stdout)).toEqual({ roles: ['haproxy', 'keepalived'] });
  });
});
