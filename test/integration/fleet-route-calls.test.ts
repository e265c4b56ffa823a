/**
 * Two masters, one PostgreSQL store: `tsalt ping/call/show` on one master reach agents connected
 * to the other (master/calls-route.ts). The request and each answer go through the store's
 * `calls` table, the bus only names the call; the answer is stored once and deleted once read.
 *
 * m2 serves m1's trees from the same store; web1 and web2 connect to m2, here1 to m1, and the
 * operator works on m1's CLI socket (and once on m2's, the other way round).
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Fleet, newPgDatabase, TEST_STORE, waitFor, type Proc } from './fleet-harness.js';

const SECRET = 'pillar-S3CRET-colour';
// an SLS whose show_sls answer is far over a NOTIFY payload (8,000 bytes)
const BIG = 'x'.repeat(40_000);
const states = {
  'top.sls': "base:\n  '*':\n    - site\n",
  'site.sls': "site_file:\n  file.managed:\n    - name: /etc/site\n    - contents: \"{{ grains['id'] }} {{ pillar.get('colour', 'none') }}\"\n",
  'big.sls': `big_file:\n  file.managed:\n    - name: /etc/big\n    - contents: "{{ pillar.get('colour') }} ${BIG}"\n`,
};
const pillar = { 'top.sls': "base:\n  '*':\n    - common\n", 'common.sls': `colour: ${SECRET}\n` };

interface CallJson {
  fun: string;
  returns: Record<string, { status: string; return?: unknown; error?: string; rtt_ms?: number }>;
}

// on PostgreSQL in every project: the fleet-pg rerun would run the same test again
describe.skipIf(TEST_STORE === 'postgres')('fleet: calls between two masters on one PostgreSQL', () => {
  let m1: Fleet;
  let m2: Fleet;
  let gone1: Proc;

  const agentsOn = async (f: Fleet) => f.json<{ id: string; connected: boolean }[]>(['agents']);
  const callRows = async () => Number((await m1.storeQuery('SELECT count(*) AS n FROM calls'))[0]!.n);

  beforeAll(async () => {
    buildOnce();
    const store = await newPgDatabase();
    const shared = { store, master_heartbeat_s: 1 };
    m1 = new Fleet({ states, pillar, master: { ...shared, master_id: 'm1' } });
    await m1.startMaster();
    m2 = new Fleet({ states: {}, master: { ...shared, master_id: 'm2', state_tree: path.join(m1.dir, 'states'), pillar_tree: path.join(m1.dir, 'pillar') } });
    await m2.startMaster();
    m2.startAgents([m2.agentConfig('web1', { grains: { roles: ['web'] } }), m2.agentConfig('web2', { grains: { roles: ['web'] } })]);
    gone1 = m2.startAgent('gone1');
    m1.startAgent('here1');
    const ids = ['web1', 'web2', 'gone1', 'here1'];
    await waitFor('four pending keys on m1', async () => ((await m1.keys()).keys.length === 4 ? true : undefined), 60_000);
    const r = await m1.cli(['keys', 'accept', ...ids]);
    expect(r.code, r.stderr).toBe(0);
    await m1.waitConnected(ids);
    // each master lists the fleet's agents as connected, wherever they are
    const on2 = (await agentsOn(m2)).filter((a) => a.connected).map((a) => a.id);
    expect(on2.sort()).toEqual(['gone1', 'here1', 'web1', 'web2']);
  }, 180_000);

  afterAll(async () => {
    await m2?.stop();
    await m1?.stop();
  });

  it('tsalt ping on m1: agents on m2 answer True with a round-trip time, as one on m1 does', async () => {
    const r = await m1.json<CallJson>(['ping', 'web1,web2,here1', '-L']);
    for (const id of ['web1', 'web2', 'here1']) {
      expect(r.returns[id], id).toMatchObject({ status: 'ok', return: true });
      expect(r.returns[id]!.rtt_ms).toBeGreaterThan(0);
    }
    // routed through m2: m1 asked, m2 sent the calls
    expect(m1.master!.out).toMatch(/call [0-9a-f]{32}: test\.ping to 2 agent\(s\) through master m2/);
    expect(m2.master!.out).toMatch(/call [0-9a-f]{32}: test\.ping for master m1 to 2 agent\(s\)/);
    const text = await m1.cli(['ping', 'web1']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^web1\s+True\s+\d+\.\d ms$/m);
  });

  it('tsalt call on m1: pillar rendered by m2 for its agent; grains; the other way round from m2', async () => {
    const p = await m1.json<CallJson>(['call', 'web1', 'pillar.get', 'colour']);
    expect(p.returns.web1).toMatchObject({ status: 'ok', return: SECRET });
    const g = await m1.json<CallJson>(['call', 'web1,here1', '-L', 'grains.get', 'id']);
    expect(g.returns.web1).toMatchObject({ status: 'ok', return: 'web1' });
    expect(g.returns.here1).toMatchObject({ status: 'ok', return: 'here1' });
    const back = await m2.json<CallJson>(['call', 'here1', 'cmd.run', 'echo from-m1']);
    expect(back.returns.here1).toMatchObject({ status: 'ok', return: 'from-m1' });
    // the pillar value went through the store as an answer, and is gone from it once read;
    // neither master logged it (both log at debug level)
    expect(await m1.storeContains(SECRET)).toBe(false);
    for (const m of [m1.master!, m2.master!]) expect(m.out).not.toContain(SECRET);
    expect(await callRows()).toBe(0);
  });

  it('tsalt show on m1: an answer far over a NOTIFY payload arrives whole, stored once and deleted once read', async () => {
    const r = await m1.json<CallJson>(['show', 'web1,web2', '-L', 'big']);
    for (const id of ['web1', 'web2']) {
      expect(r.returns[id]!.status, r.returns[id]!.error).toBe('ok');
      const ret = r.returns[id]!.return as Record<string, { file: [string, ...Record<string, unknown>[]] }>;
      expect(ret.big_file!.file).toContainEqual({ contents: `${SECRET} ${BIG}` });
    }
    expect(JSON.stringify(r).length).toBeGreaterThan(80_000);
    expect(await callRows()).toBe(0);
  });

  it('an agent connected nowhere did not return; a call past its timeout is answered timeout and left nowhere', async () => {
    await gone1.kill('SIGKILL');
    await waitFor('gone1 connected nowhere', async () => ((await agentsOn(m1)).some((x) => x.id === 'gone1' && !x.connected) ? true : undefined));
    const r = await m1.cli(['ping', '*']);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^gone1\s+-\s+Minion did not return\. \[Not connected\]$/m);
    expect(r.stdout).toMatch(/^web2\s+True\s+\d+\.\d ms$/m);
    const slow = await m1.json<CallJson>(['call', 'web1', 'cmd.run', 'sleep 4', '--timeout', '1']);
    expect(slow.returns.web1).toMatchObject({ status: 'timeout', error: 'Minion did not return. [No response within 1s]' });
    await waitFor('no call rows left', async () => ((await callRows()) === 0 ? true : undefined));
  });
});
