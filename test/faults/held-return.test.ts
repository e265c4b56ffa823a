/**
 * A return the master's store refused (its disk full) is held by the master and tried again
 * every held_return_retry_s, unacknowledged, so the agent keeps it spooled. These cases: the
 * agent going away while its return is held, the master's lost timer (lost_after_s) running out
 * meanwhile; and more held than held_returns_max_bytes. As in Salt, a result that arrived is
 * the job's outcome: never "lost", never lost and then done, stored once.
 *
 * Real master and agent processes, a real small tmpfs under the master's SQLite database.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Fleet, waitFor } from '../integration/fleet-harness.js';
import { spooledJids } from '../../agent/connection/spool.js';

const states = { 'top.sls': "base:\n  '*':\n    - common\n", 'common.sls': 'hello:\n  test.succeed_without_changes: []\n' };
// ~300 KB of output: a return far larger than what is left on the database's disk
const BIG = `sleep 1; head -c 300000 /dev/zero | tr '\\0' y; echo`;

interface JobDetail {
  agents: { agent_id: string; status: string; body: { kind: string; stdout?: string } | null }[];
}
interface RunJson {
  jid: string;
  agents: Record<string, { status: string; body?: { stdout?: string } }>;
}

/** A fleet whose master.db lives on an 8 MiB tmpfs the test can fill. */
async function fleetOnSmallDisk(id: string, master: Record<string, unknown>): Promise<{ fleet: Fleet; mnt: string; agentCfg: string }> {
  buildOnce();
  const fleet = new Fleet({ states, master: { db: 'dbfs/master.db', ...master } });
  const mnt = path.join(fleet.dir, 'dbfs');
  fs.mkdirSync(mnt);
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mnt], { encoding: 'utf8' });
  if (m.status !== 0) throw new Error(`mount tmpfs: ${m.stderr}`);
  await fleet.startMaster();
  const agentCfg = fleet.agentConfig(id, { cfg: { heartbeat_s: 1 } });
  fleet.startAgents([agentCfg]);
  await fleet.acceptAll([id]);
  return { fleet, mnt, agentCfg };
}

/** Fill the disk, then give back `room` bytes: small writes fit, a 300 KB return does not. */
function fillLeaving(mnt: string, room: number): void {
  const filler = path.join(mnt, 'filler');
  spawnSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=64k'], { stdio: 'ignore' });
  fs.truncateSync(filler, Math.max(0, fs.statSync(filler).size - room));
}

const count = (text: string, re: RegExp): number => text.match(new RegExp(re.source, 'g'))?.length ?? 0;

describe('faults: the lost timer runs out while the return is held for the store', () => {
  let fleet: Fleet;
  let mnt: string;
  let agentCfg: string;
  beforeAll(async () => {
    ({ fleet, mnt, agentCfg } = await fleetOnSmallDisk('h1', { heartbeat_s: 1, lost_after_s: 2, held_return_retry_s: 0.5 }));
  });
  afterAll(async () => {
    await fleet?.stop().catch(() => {});
    spawnSync('umount', ['-l', mnt]);
  });

  it('the return is stored and is the job outcome: not lost, not lost then done', async () => {
    const agent = fleet.agents[0]!;
    const master = fleet.master!;
    const from = agent.out.length;
    const mfrom = master.out.length;
    const run = fleet.cli(['run', 'h1', BIG, '--json']);
    const jid = (await agent.waitOutput(/job (\d{20})/, 20_000, from))[1]!;
    fillLeaving(mnt, 256 * 1024);
    try {
      // held, on the configured retry interval
      await master.waitOutput(new RegExp(`job ${jid}: the return of h1 could not be stored \\(database or disk is full\\); kept and tried again every 0\\.5s`), 30_000, mfrom);
      // the agent goes away: the return is now in its spool and in the master's memory only;
      // the disconnect arms the 2 s lost timer, which runs out while the disk is still full
      await agent.kill('SIGKILL');
      expect(spooledJids(path.join(path.dirname(agentCfg), 'cache'))).toContain(jid);
      const verdict = await master.waitOutput(new RegExp(`job ${jid}: h1 (is not lost: its return is held|lost)`), 30_000, mfrom);
      expect(verdict[1]).toMatch(/^is not lost/);
    } finally {
      fs.rmSync(path.join(mnt, 'filler'), { force: true });
    }
    // room again: the held copy is stored, and the CLI that followed the job sees the real outcome
    await master.waitOutput(new RegExp(`job ${jid}: the held return of h1 is stored now`), 30_000, mfrom);
    const r = await run;
    const out = JSON.parse(r.stdout) as RunJson;
    expect(out.agents.h1!.status).toBe('done');
    expect(out.agents.h1!.body!.stdout!.length).toBeGreaterThan(100_000);
    const d = await fleet.json<JobDetail>(['jobs', jid]);
    expect(d.agents[0]!.status).toBe('done');
    expect(d.agents[0]!.body!.stdout!.length).toBeGreaterThan(100_000);

    // the agent comes back with the same return still spooled: acknowledged as the duplicate
    // it is (the spool empties), not stored a second time, not marked lost on its hello
    const back = fleet.startAgents([agentCfg]);
    await fleet.waitConnected(['h1']);
    const cache = path.join(path.dirname(agentCfg), 'cache');
    await waitFor('the spooled copy acknowledged', () => !spooledJids(cache).includes(jid) || undefined, 30_000);
    expect(back.running).toBe(true);
    const log = master.out.slice(mfrom);
    expect(count(log, new RegExp(`job ${jid}: h1 returned`))).toBe(1);
    expect(log).not.toMatch(new RegExp(`job ${jid}: h1 lost`));
    expect(log).not.toMatch(/came back without the job/);
    expect((await fleet.json<JobDetail>(['jobs', jid])).agents[0]!.status).toBe('done');
  });
});

describe('faults: more held than held_returns_max_bytes', () => {
  let fleet: Fleet;
  let mnt: string;
  beforeAll(async () => {
    ({ fleet, mnt } = await fleetOnSmallDisk('h2', { held_returns_max_bytes: 100_000, held_return_retry_s: 0.5 }));
  });
  afterAll(async () => {
    await fleet?.stop().catch(() => {});
    spawnSync('umount', ['-l', mnt]);
  });

  it('is not held by the master: the agent keeps it, sends it again on reconnect, and it is stored', async () => {
    const agent = fleet.agents[0]!;
    const master = fleet.master!;
    const from = agent.out.length;
    const mfrom = master.out.length;
    const run = fleet.cli(['run', 'h2', BIG, '--json']);
    const jid = (await agent.waitOutput(/job (\d{20})/, 20_000, from))[1]!;
    fillLeaving(mnt, 0);
    try {
      await master.waitOutput(new RegExp(`job ${jid}: the return of h2 could not be stored \\(database or disk is full\\); too many returns waiting for the store`), 30_000, mfrom);
      await agent.waitOutput(/disconnected from master/, 20_000, from);
    } finally {
      fs.rmSync(path.join(mnt, 'filler'), { force: true });
    }
    expect(master.out.slice(mfrom)).not.toMatch(new RegExp(`job ${jid}: the return of h2 could not be stored [^\\n]*; kept`));
    const r = await run;
    expect((JSON.parse(r.stdout) as RunJson).agents.h2!.status).toBe('done');
    const d = await fleet.json<JobDetail>(['jobs', jid]);
    expect(d.agents[0]!.status).toBe('done');
    expect(d.agents[0]!.body!.stdout!.length).toBeGreaterThan(100_000);
  });
});
