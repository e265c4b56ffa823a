/**
 * Secrets follow the agent's proven id, not the roles it claims: pillar/top.sls matches role
 * pillar by id lists from the inventory. And the inventory (pillar/stack.jinja) is the one
 * place that holds addresses: moved to another network, no pillar value keeps an old one.
 */
import { afterAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/harness.js';
import { grainsFor, pillarFor, pillarOnNetwork, HOSTS } from './stack-helpers.js';

describe('stack pillar targeting', () => {
  it('each inventory host gets its roles pillar', async () => {
    expect(Object.keys(await pillarFor('db1', grainsFor('db1'))).sort()).toEqual(expect.arrayContaining(['mysql']));
    expect(Object.keys(await pillarFor('app2', grainsFor('app2'))).sort()).toEqual(expect.arrayContaining(['app']));
    expect(Object.keys(await pillarFor('lb2', grainsFor('lb2')))).toEqual(expect.arrayContaining(['haproxy', 'keepalived']));
  });

  it('a host claiming roles it does not have receives none of their secrets', async () => {
    const liar = { ...grainsFor('web1'), roles: ['mysql', 'app', 'grafana', 'keepalived'] };
    const p = await pillarFor('web1', liar);
    expect(Object.keys(p)).not.toEqual(expect.arrayContaining(['mysql']));
    expect(JSON.stringify(p)).not.toMatch(/CHANGEME/);
    const stranger = await pillarFor('intruder', { ...liar, id: 'intruder' });
    expect(Object.keys(stranger)).toEqual(['stack']); // the shared inventory only
    expect(JSON.stringify(stranger)).not.toMatch(/CHANGEME|password/);
  });
});

describe('the inventory is single-sourced', () => {
  const work = tempDir('tsalt-stack-pillar-');
  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

  it.each([
    ['10.77.0.0/16', '10.77.3.', '10.77.0.0/255.255.0.0'],
    ['172.20.5.0/24', '172.20.5.', '172.20.5.0/255.255.255.0'],
    ['10.1.2.64/26', '10.1.2.', '10.1.2.64/255.255.255.192'],
  ])('on %s every host\'s pillar follows it (MySQL accounts: %s...)', async (cidr, prefix, sqlHost) => {
    const dir = pillarOnNetwork(path.join(work, cidr.replace(/\W/g, '_')), cidr, '192.168.56.', prefix);
    for (const id of Object.keys(HOSTS)) {
      const p = await pillarFor(id, grainsFor(id), {}, dir);
      expect(JSON.stringify(p), `${id}'s pillar`).not.toContain('192.168.56');
      const net = (p.stack as { network: Record<string, unknown> }).network;
      expect(net).toMatchObject({ cidr, prefix: Number(cidr.split('/')[1]), sql_host: sqlHost });
      if (HOSTS[id]!.includes('mysql')) {
        const users = (p.mysql as { users: Record<string, { host: string }> }).users;
        expect(Object.values(users).map((u) => u.host)).toEqual([sqlHost, sqlHost]);
      }
    }
  });
});
