/**
 * Secrets follow the agent's proven id, not the roles it claims: pillar/top.sls matches role
 * pillar by id lists from the inventory.
 */
import { describe, expect, it } from 'vitest';
import { grainsFor, pillarFor } from './stack-helpers.js';

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
