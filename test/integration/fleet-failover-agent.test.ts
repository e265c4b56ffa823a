/**
 * Agent-side failover (Salt's master_type: failover): an agent listing two masters connects to
 * the one it reaches, goes back to the first when it returns (master_failback), moves to the
 * second when the first is killed with SIGKILL mid-job and delivers the job's return there,
 * keeps a pin per master (trust on first use: one line per master; master_finger as a map),
 * and refuses an impostor on the second master's address. Two real masters with separate
 * SQLite stores (the agents' keys accepted on both); the shared store is fleet-failover.test.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Fleet, waitFor } from './fleet-harness.js';
import { spooledJids } from '../../agent/connection/spool.js';

const states = {
  'top.sls': "base:\n  '*':\n    - common\n",
  'common.sls': 'hello:\n  test.succeed_without_changes: []\n',
};

describe('fleet: an agent fails over between the masters it lists', () => {
  let a: Fleet;
  let b: Fleet;
  let fpA = '';
  let tofuCfg = '';
  const ids = ['ha1', 'ha2'];
  const list = () => [`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`];
  const agentLog = (id: string) => a.agents[ids.indexOf(id)]!;

  beforeAll(async () => {
    buildOnce();
    a = new Fleet({ states });
    b = new Fleet({ states });
    // learn the first master's key and port, then stop it: the agents start with only the second up
    await a.startMaster();
    fpA = a.fingerprint;
    await a.master!.kill('SIGTERM');
    await b.startMaster();
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
  });

  it('with the first master down the agents connect to the second; each pins the key it met there', async () => {
    const common = { master: list(), master_type: 'failover', master_failback: true, master_failback_interval: 1 };
    // ha1 learns both keys on first use; ha2 has them configured, one per master
    tofuCfg = a.agentConfig('ha1', { cfg: { ...common, master_finger: undefined, tofu: true } });
    const mapCfg = a.agentConfig('ha2', { cfg: { ...common, master_finger: { [list()[0]!]: fpA, [list()[1]!]: b.fingerprint } } });
    a.startAgents([tofuCfg]);
    a.startAgents([mapCfg]);
    await b.acceptAll(ids);
    await agentLog('ha1').waitOutput(new RegExp(`cannot reach the master at wss://127.0.0.1:${a.port}/`));
    const pins = fs.readFileSync(path.join(path.dirname(tofuCfg), 'pki', 'master.fp'), 'utf8');
    expect(pins).toBe(`${b.fingerprint} 127.0.0.1:${b.port}\n`);
  });

  it('master_failback: when the first master is back the agents return to it, and ha1 pins its key too', async () => {
    await a.startMaster();
    expect(a.fingerprint).toBe(fpA);
    await a.acceptAll(ids);
    for (const id of ids) await agentLog(id).waitOutput(/answers again: failing back to it \(master_failback\)/);
    // accepting a waiting agent asks it to reconnect (close 4410): to the same master, not the next
    for (const id of ids) expect(agentLog(id).out).not.toMatch(new RegExp(`master wss://127.0.0.1:${a.port}/ lost`));
    const pins = fs.readFileSync(path.join(path.dirname(tofuCfg), 'pki', 'master.fp'), 'utf8');
    expect(pins.split('\n').filter(Boolean).sort()).toEqual([`${b.fingerprint} 127.0.0.1:${b.port}`, `${fpA} 127.0.0.1:${a.port}`].sort());
    await waitFor('the second master sees the agents gone', async () => {
      const ag = await b.json<{ id: string; connected: boolean }[]>(['agents']);
      return ids.every((id) => ag.some((x) => x.id === id && !x.connected)) || undefined;
    });
  });

  it('kill -9 of the first master mid-job: the agents are served by the second and deliver the return there', async () => {
    const job = a.cli(['run', '*', 'sleep 3; echo slept', '--timeout', '60']);
    const jid = (await agentLog('ha1').waitOutput(/job (\d{20}): run command/))[1]!;
    await agentLog('ha2').waitOutput(new RegExp(`job ${jid}: run command`));
    const t0 = Date.now();
    await a.master!.kill('SIGKILL');
    await b.waitConnected(ids, 60_000);
    const failoverMs = Date.now() - t0;
    // a figure for the report, not an assertion (speed is measured, never asserted)
    console.log(`failover: agents of the killed master connected to the second after ${failoverMs} ms`);
    for (const id of ids) {
      await agentLog(id).waitOutput(new RegExp(`master wss://127.0.0.1:${a.port}/ lost: failing over to wss://127.0.0.1:${b.port}/`));
      // the second master (its own store here) has never heard of the job: it takes the return,
      // says so and acknowledges it, so the agent's spool empties
      await b.master!.waitOutput(new RegExp(`agent ${id}: return for job ${jid}`), 30_000);
      const cache = path.join(a.dir, 'agents', id, 'cache');
      await waitFor(`${id}'s spool emptied`, () => !spooledJids(cache).includes(jid) || undefined);
    }
    expect((await job).code).not.toBe(0); // the CLI's master died under it
  });

  it('an impostor on the second master\'s address is refused; the first master, back, is served again', async () => {
    await b.master!.kill('SIGTERM');
    const impostor = new Fleet({ states, master: { auto_accept: true } });
    impostor.port = b.port;
    await impostor.startMaster();
    try {
      expect(impostor.fingerprint).not.toBe(b.fingerprint);
      for (const id of ids) {
        await agentLog(id).waitOutput(new RegExp(`master at wss://127.0.0.1:${b.port}/ presented key ${impostor.fingerprint}, expected ${b.fingerprint}: refusing it`), 30_000);
      }
      const marker = path.join(a.dir, 'impostor-was-here');
      const r = await impostor.cli(['run', '*', `touch ${marker}`, '--timeout', '3']);
      expect(r.code).not.toBe(0);
      expect(fs.existsSync(marker)).toBe(false);
      // the TOFU file still holds the real second master's key, not the impostor's
      expect(fs.readFileSync(path.join(path.dirname(tofuCfg), 'pki', 'master.fp'), 'utf8')).toContain(`${b.fingerprint} 127.0.0.1:${b.port}`);
      await a.startMaster();
      await a.waitConnected(ids, 60_000);
      const ok = await a.cli(['run', '*', 'echo back']);
      expect(ok.code).toBe(0);
      expect(ok.stdout).toMatch(/ha1:\n\s+back/);
      expect(ok.stdout).toMatch(/ha2:\n\s+back/);
    } finally {
      await impostor.stop();
    }
  });
});
