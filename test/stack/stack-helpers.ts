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

export function grainsFor(id: string, family: Family = 'RedHat'): Data {
  const roles = HOSTS[id];
  if (!roles) throw new Error(`unknown stack host ${id}`);
  const os = family === 'RedHat' ? { os_family: 'RedHat', os: 'Rocky', osmajorrelease: 9 } : { os_family: 'Debian', os: 'Debian', osmajorrelease: 12 };
  return { id, ...os, init: 'systemd', kernel: 'Linux', roles };
}

/** The pillar the master would send this host, plus test overrides (e.g. `lookup` paths). */
export async function pillarFor(id: string, grains: Data, overrides: Data = {}): Promise<Data> {
  const pillar = await renderPillar(new LocalTree(PILLAR_DIR), id, grains);
  return deepMerge(pillar, structuredClone(overrides));
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
