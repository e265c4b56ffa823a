/**
 * Shared by the stack tests: the shipped states/ and pillar/ trees, the stack's hosts, and
 * grains/pillar/template rendering through the same code the agent and master use.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalTree } from '../../engine/tree/local.js';
import { renderPillar } from '../../engine/compile/pillar.js';
import { makeRunBase, makeRunContext } from '../../engine/run/context.js';
import { deepMerge, type Data } from '../../engine/render/salt-functions.js';
import { loadSaltYaml } from '../../core/salt-yaml.js';

export const REPO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const STATES_DIR = path.join(REPO_DIR, 'states');
export const PILLAR_DIR = path.join(REPO_DIR, 'pillar');

/** The stack's VMs and their roles, as vagrant/Vagrantfile writes them into /etc/tsalt/grains. */
export const HOSTS: Record<string, string[]> = {
  lb1: ['haproxy', 'keepalived'],
  lb2: ['haproxy', 'keepalived'],
  web1: ['nginx'],
  web2: ['nginx'],
  app1: ['app'],
  app2: ['app'],
  db1: ['mysql'],
  db2: ['mysql'],
  mon1: ['prometheus', 'grafana'],
};

export type Family = 'RedHat' | 'Debian';

/** Each VM's address on the private network, from vagrant/hosts.yaml (checked equal to the pillar's). */
export const VAGRANT_IPS: Record<string, string> = Object.fromEntries(
  Object.entries((loadSaltYaml(fs.readFileSync(path.join(REPO_DIR, 'vagrant/hosts.yaml'), 'utf8')) as { hosts: Record<string, { ip: string }> }).hosts).map(
    ([n, h]) => [n, h.ip],
  ),
);

/**
 * A VM's grains; `ip_interfaces` as on a Vagrant box (NAT on eth0, the private network on eth1)
 * unless `interfaces` says otherwise.
 */
export function grainsFor(id: string, family: Family = 'RedHat', interfaces?: Record<string, string[]>): Data {
  const roles = HOSTS[id];
  if (!roles) throw new Error(`unknown stack host ${id}`);
  const os = family === 'RedHat' ? { os_family: 'RedHat', os: 'Rocky', osmajorrelease: 9 } : { os_family: 'Debian', os: 'Debian', osmajorrelease: 12 };
  const ip_interfaces = interfaces ?? { lo: ['127.0.0.1'], eth0: ['10.0.2.15'], eth1: [VAGRANT_IPS[id]!] };
  return { id, ...os, init: 'systemd', kernel: 'Linux', roles, ip_interfaces };
}

/** The pillar the master would send this host, plus test overrides (e.g. `lookup` paths). */
export async function pillarFor(id: string, grains: Data, overrides: Data = {}, pillarDir = PILLAR_DIR): Promise<Data> {
  const pillar = await renderPillar(new LocalTree(pillarDir), id, grains);
  return deepMerge(pillar, structuredClone(overrides));
}

/**
 * A copy of the shipped pillar tree (in `dest`) whose inventory (pillar/stack.jinja, the only
 * file that holds addresses) sits on another network: every `from` prefix of an address
 * becomes `to`, and the network's cidr becomes `cidr`. Returns `dest`.
 */
export function pillarOnNetwork(dest: string, cidr: string, from: string, to: string): string {
  fs.cpSync(PILLAR_DIR, dest, { recursive: true });
  const inv = path.join(dest, 'stack.jinja');
  const text = fs.readFileSync(inv, 'utf8').replace(/'cidr': '[^']*'/, `'cidr': '${cidr}'`);
  fs.writeFileSync(inv, text.split(`'${from}`).join(`'${to}`));
  return dest;
}

/**
 * Pillar for a made-up host that carries the roles of several inventory hosts: pillar is
 * matched by id, so it is the merge of what each of those hosts receives.
 */
export async function pillarOfHosts(ids: string[], grains: Data, overrides: Data = {}): Promise<Data> {
  const merged: Data = {};
  for (const id of ids) deepMerge(merged, await renderPillar(new LocalTree(PILLAR_DIR), id, { ...grains, id }));
  return deepMerge(merged, structuredClone(overrides));
}

/** Renders a tree template the way file.managed with `template: jinja` does on that host. */
export function renderTreeTemplate(rel: string, grains: Data, pillar: Data): string {
  const tree = new LocalTree(STATES_DIR);
  const base = makeRunBase({ test: true, tree, grains, pillar });
  const ctx = makeRunContext(base, rel, rel);
  return ctx.renderTemplate(fs.readFileSync(path.join(STATES_DIR, rel), 'utf8'), {}, rel);
}
