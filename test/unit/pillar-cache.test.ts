/**
 * The master's pillar cache (issue 14): a render is shared only between agents whose render
 * inputs are equal (the SLS list top.sls gives them and the value of every grain the render
 * read); anything else is rendered per agent. Pillar isolation is a security property: two
 * agents with different grains (or ids, where templates use them) must get different pillar.
 */
import { describe, expect, it } from 'vitest';
import { MemoryTree, PillarCache, pillarFor, pillarTreeOf } from '../../master/pillar.js';
import { renderPillar } from '../../engine/compile/pillar.js';
import { LocalTree } from '../../engine/tree/local.js';
import { writeTree } from '../helpers/tree.js';

const memTree = (files: Record<string, string>) =>
  new MemoryTree(
    'test pillar',
    Object.entries(files).map(([path, text]) => ({ path, data: Buffer.from(text), executable: false })),
  );

const TREE = {
  'top.sls': "base:\n  '*':\n    - common\n  'db*':\n    - db\n  'role:web':\n    - match: grain\n    - web\n",
  'common.sls': 'ntp:\n  servers: [a, b]\n',
  'db.sls': "mysql:\n  root_password: 's3cret'\n",
  'web.sls': "{% if grains['os'] == 'Debian' %}\nweb:\n  pkg: nginx\n{% else %}\nweb:\n  pkg: nginx-core\n{% endif %}\nweb_net:\n  iface: {{ grains['net']['if'] }}\n",
};

describe('pillar cache', () => {
  it('renders once for agents whose inputs are equal, and gives each what an uncached render gives', async () => {
    const cache = new PillarCache(memTree(TREE));
    const a = await cache.render('app1', { role: 'app', os: 'Debian' });
    const b = await cache.render('app2', { role: 'app', os: 'RedHat' });
    const c = await cache.render('app3', { role: 'app' });
    expect(a).toEqual({ ntp: { servers: ['a', 'b'] } });
    expect(b).toEqual(a);
    expect(c).toEqual(a);
    // common.sls reads no grains: top.sls gave all three the same SLS list, one render
    expect(cache.stats).toEqual({ rendered: 1, shared: 2 });
  });

  it('two agents with different grains read by the pillar get different pillar', async () => {
    const cache = new PillarCache(memTree(TREE));
    const deb = await cache.render('web1', { role: 'web', os: 'Debian', net: { if: 'eth0' } });
    const rh = await cache.render('web2', { role: 'web', os: 'RedHat', net: { if: 'eth0' } });
    const deb2 = await cache.render('web3', { role: 'web', os: 'Debian', net: { if: 'eth1' } });
    const deb3 = await cache.render('web4', { role: 'web', os: 'Debian', net: { if: 'eth0' }, unread: 1 });
    expect(deb).toMatchObject({ web: { pkg: 'nginx' }, web_net: { iface: 'eth0' } });
    expect(rh).toMatchObject({ web: { pkg: 'nginx-core' }, web_net: { iface: 'eth0' } });
    // a nested value differs: its top-level grain is compared whole
    expect(deb2).toMatchObject({ web: { pkg: 'nginx' }, web_net: { iface: 'eth1' } });
    // a grain no template read does not matter
    expect(deb3).toEqual(deb);
    expect(cache.stats).toEqual({ rendered: 3, shared: 1 });
    for (const [id, grains, got] of [
      ['web1', { role: 'web', os: 'Debian', net: { if: 'eth0' } }, deb],
      ['web2', { role: 'web', os: 'RedHat', net: { if: 'eth0' } }, rh],
      ['web3', { role: 'web', os: 'Debian', net: { if: 'eth1' } }, deb2],
    ] as const) {
      expect(got).toEqual(await renderPillar(memTree(TREE), id, grains));
    }
  });

  it('an agent top.sls gives other SLS (by id) never gets a render meant for another list', async () => {
    const cache = new PillarCache(memTree(TREE));
    const db = await cache.render('db1', { role: 'app' });
    const app = await cache.render('app1', { role: 'app' });
    expect(db).toMatchObject({ mysql: { root_password: 's3cret' } });
    expect(JSON.stringify(app)).not.toContain('s3cret');
    expect(cache.stats.shared).toBe(0);
  });

  it('a render that reads the id, enumerates grains or calls an impure function is never shared', async () => {
    for (const body of [
      "name: {{ grains['id'] }}\n",
      'name: {{ grains.get("id") }}\n',
      "name: {{ salt['grains.get']('id') }}\n",
      'n: {{ grains | length }}\n',
      "host: {{ salt['network.get_hostname']() }}\n",
      "pick: {{ ['a', 'b'] | random }}\n",
    ]) {
      const cache = new PillarCache(memTree({ 'top.sls': "base:\n  '*':\n    - x\n", 'x.sls': body }));
      const one = await cache.render('h1', { os: 'Debian' });
      const two = await cache.render('h2', { os: 'Debian' });
      expect(cache.stats, body).toEqual({ rendered: 2, shared: 0 });
      if (body.includes('id')) {
        expect(one).toEqual({ name: 'h1' });
        expect(two).toEqual({ name: 'h2' });
      }
    }
  });

  it('a templated top.sls is rendered once per value of the grains it reads, per agent when it reads the id', async () => {
    const files = (idToo: boolean) => ({
      'top.sls':
        "base:\n  '*':\n    - common\n{% if grains['os'] == 'Debian' %}\n  'web*':\n    - deb\n{% endif %}\n" +
        (idToo ? "{% if grains['id'].endswith('9') %}\n  'w*':\n    - nine\n{% endif %}\n" : ''),
      'common.sls': 'c: 1\n',
      'deb.sls': 'deb: true\n',
      'nine.sls': 'nine: true\n',
    });
    const os = (id: string) => (id === 'web2' ? 'RedHat' : 'Debian');
    for (const idToo of [false, true]) {
      const cache = new PillarCache(memTree(files(idToo)));
      const got: Record<string, unknown> = {};
      for (const id of ['web1', 'web2', 'web3', 'db1', 'web9']) got[id] = await cache.render(id, { os: os(id) });
      const deb = { c: 1, deb: true };
      expect(got).toEqual({ web1: deb, web2: { c: 1 }, web3: deb, db1: { c: 1 }, web9: idToo ? { ...deb, nine: true } : deb });
      for (const [id, p] of Object.entries(got)) expect(p, id).toEqual(await renderPillar(memTree(files(idToo)), id, { os: os(id) }));
      // reading only os: one render per os; reading the id: one per agent
      expect(cache.topStats.rendered).toBe(idToo ? 5 : 2);
    }
  });

  it("a job's agents asking at once share renders as if they had asked one after the other", async () => {
    const cache = new PillarCache(memTree(TREE));
    const ids = Array.from({ length: 50 }, (_, i) => `app${i}`);
    const got = await Promise.all(ids.map((id, i) => cache.render(id, { role: 'app', os: i % 2 ? 'Debian' : 'RedHat' })));
    for (const p of got) expect(p).toEqual({ ntp: { servers: ['a', 'b'] } });
    expect(cache.stats).toEqual({ rendered: 1, shared: 49 });
    // the grains a render reads still split the agents, asked at once as well
    const web = await Promise.all(['web1', 'web2', 'web3'].map((id, i) => cache.render(id, { role: 'web', os: i === 1 ? 'RedHat' : 'Debian', net: { if: 'eth0' } })));
    expect(web.map((p) => (p.web as { pkg: string }).pkg)).toEqual(['nginx', 'nginx-core', 'nginx']);
    expect(cache.stats).toEqual({ rendered: 3, shared: 50 });
  });

  it('a shared pillar cannot be changed by one of its holders', async () => {
    const cache = new PillarCache(memTree(TREE));
    const a = await cache.render('app1', { role: 'app' });
    expect(() => {
      (a.ntp as { servers: string[] }).servers.push('evil');
    }).toThrow(TypeError);
    expect(await cache.render('app2', { role: 'app' })).toEqual({ ntp: { servers: ['a', 'b'] } });
  });

  it('a broken pillar gives every agent the same error, cached or not', async () => {
    const cache = new PillarCache(memTree({ 'top.sls': "base:\n  '*':\n    - x\n", 'x.sls': 'a: [1,\n' }));
    await expect(cache.render('h1', {})).rejects.toThrow(/x.sls:\d+/);
    await expect(cache.render('h2', {})).rejects.toThrow(/x.sls:\d+/);
  });

  it("a job reads a plain pillar directory once: its agents share renders; the next job sees the directory's changes", async () => {
    const dir = writeTree({ 'top.sls': "base:\n  '*':\n    - x\n", 'x.sls': 'v: 1\n' });
    const job1 = { pillar: () => new LocalTree(dir) };
    const t1 = await pillarTreeOf(job1);
    expect(t1).toBeInstanceOf(MemoryTree);
    expect(await pillarTreeOf(job1)).toBe(t1);
    expect(await pillarFor(t1, 'h1', {})).toEqual({ v: 1 });
    writeTree({ 'x.sls': 'v: 2\n' }, dir);
    expect(await pillarFor(t1, 'h2', {})).toEqual({ v: 1 }); // the job's view, fixed at its start
    expect(await pillarFor(await pillarTreeOf({ pillar: () => new LocalTree(dir) }), 'h1', {})).toEqual({ v: 2 });
  });
});
