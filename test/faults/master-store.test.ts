/**
 * The master's SQLite store in trouble: locked by another process, or its disk full. The
 * operator gets a clear error, and no agent's result is lost: once the store recovers, every
 * return is stored. Real master and agent processes, a real second SQLite connection, a real
 * small tmpfs for the disk-full case.
 *
 * A return the store refuses is not acknowledged (the agent keeps it spooled); the master holds
 * it and tries again until it is stored (master/jobs.ts holdUnstored). The agent stays connected
 * meanwhile: no close, no reconnect loop re-sending its spool, no "lost" on its next hello.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Fleet, waitFor } from '../integration/fleet-harness.js';

const states = { 'top.sls': "base:\n  '*':\n    - common\n", 'common.sls': 'hello:\n  test.succeed_without_changes: []\n' };

interface JobDetail {
  agents: { agent_id: string; status: string; body: { kind: string; stdout?: string } | null }[];
}

async function storedDone(fleet: Fleet, jid: string): Promise<JobDetail> {
  return waitFor(
    'the return stored',
    async () => {
      const j = await fleet.json<JobDetail>(['jobs', jid]);
      return j.agents[0]!.status === 'done' ? j : undefined;
    },
    30_000,
  );
}

describe('faults: the master store locked', () => {
  let fleet: Fleet;
  beforeAll(async () => {
    buildOnce();
    // long heartbeats on both sides: the master blocked in SQLite's busy wait is not taken for
    // gone, so what happens to the return depends on the master's code alone, not on a race
    fleet = new Fleet({ states, master: { heartbeat_s: 30, lost_after_s: 60 } });
    await fleet.startMaster();
    fleet.startAgent('f1', { cfg: { heartbeat_s: 30 } });
    await fleet.acceptAll(['f1']);
  });
  afterAll(async () => {
    await fleet?.stop();
  });

  it('a job started while the store is locked is refused with a clear error; nothing half-made', async () => {
    const other = new Database(path.join(fleet.dir, 'master.db'));
    other.exec('BEGIN EXCLUSIVE');
    try {
      const r = await fleet.cli(['run', 'f1', 'echo never']);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/database is locked/);
    } finally {
      other.exec('COMMIT');
      other.close();
    }
    expect(fleet.master!.running).toBe(true);
    const ok = await fleet.cli(['run', 'f1', 'echo after']);
    expect(ok.stdout).toMatch(/after/);
  });

  it('a return arriving while another process holds the write lock is stored once the lock goes', async () => {
    const agent = fleet.agents[0]!;
    const from = agent.out.length;
    const run = fleet.cli(['run', 'f1', 'sleep 1; echo survived', '--json']);
    const jid = (await agent.waitOutput(/job (\d{20})/, 20_000, from))[1]!;
    const other = new Database(path.join(fleet.dir, 'master.db'));
    other.exec('BEGIN EXCLUSIVE');
    try {
      // held until the return has met the lock past the master's busy timeout (5 s): a fixed 7 s
      // was too short on a loaded host, where the job_ack's own write waited out the timeout first
      // and the return's wait then ran past the release
      await agent.waitOutput(new RegExp(`job ${jid}: finished`), 20_000, from);
      await fleet.master!.waitOutput(new RegExp(`job ${jid}: the return of f1 could not be stored \\(database is locked\\); kept`), 30_000);
    } finally {
      other.exec('COMMIT');
      other.close();
    }
    await run;
    const d = await storedDone(fleet, jid);
    expect(d.agents[0]!.body!.stdout).toBe('survived\n');
    // the agent was not cut off for the store's trouble
    expect(agent.out.slice(from)).not.toMatch(/disconnected from master/);
    expect(fleet.master!.out).toMatch(new RegExp(`job ${jid}: the held return of f1 is stored now`));
    expect(fleet.master!.out).not.toMatch(/came back without the job/);
  });
  it('a job whose timeout fires while the store is locked: the master stays up, the return is stored', async () => {
    const agent = fleet.agents[0]!;
    const from = agent.out.length;
    const run = fleet.cli(['run', 'f1', 'sleep 4; echo late', '--timeout', '2', '--json']);
    const jid = (await agent.waitOutput(/job (\d{20})/, 20_000, from))[1]!;
    const other = new Database(path.join(fleet.dir, 'master.db'));
    other.exec('BEGIN EXCLUSIVE');
    try {
      // held until the 2 s timeout has met the lock (past busy_timeout), as the master's log
      // says, and the agent has finished: a fixed wait ran short on a loaded host
      await agent.waitOutput(new RegExp(`job ${jid}: finished`), 20_000, from);
      await fleet.master!.waitOutput(new RegExp(`job ${jid}: f1 timing out: database is locked`), 30_000);
    } finally {
      other.exec('COMMIT');
      other.close();
    }
    await run;
    expect(fleet.master!.running).toBe(true);
    // the agent ends the command at the job's timeout too: its return (killed, 143) is stored
    const d = await waitFor(
      'the late return stored',
      async () => {
        const j = await fleet.json<JobDetail>(['jobs', jid]);
        return j.agents[0]!.body ? j : undefined;
      },
      30_000,
    );
    expect(d.agents[0]!.body!.kind).toBe('run');
    expect(fleet.master!.out).toMatch(new RegExp(`job ${jid}: f1 timing out: database is locked`));
    expect(agent.out.slice(from)).not.toMatch(/disconnected from master/);
  });
});

describe('faults: the master store disk full', () => {
  let fleet: Fleet;
  let mnt: string;
  const fill = () => {
    // fill what is left; SQLite then fails with SQLITE_FULL
    spawnSync('dd', ['if=/dev/zero', `of=${path.join(mnt, 'filler')}`, 'bs=64k'], { stdio: 'ignore' });
  };
  beforeAll(async () => {
    buildOnce();
    fleet = new Fleet({ states, master: { db: 'dbfs/master.db' } });
    mnt = path.join(fleet.dir, 'dbfs');
    fs.mkdirSync(mnt);
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mnt], { encoding: 'utf8' });
    if (m.status !== 0) throw new Error(`mount tmpfs: ${m.stderr}`);
    await fleet.startMaster();
    fleet.startAgent('f2');
    await fleet.acceptAll(['f2']);
  });
  afterAll(async () => {
    await fleet?.stop().catch(() => {});
    spawnSync('umount', ['-l', mnt]);
  });

  it('a job started on a full disk is refused with a clear error; the master carries on once there is room', async () => {
    fill();
    try {
      const r = await fleet.cli(['run', 'f2', `echo ${'x'.repeat(100)}`]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/database or disk is full|disk I\/O error|SQLITE_FULL/);
      expect(fleet.master!.running).toBe(true);
    } finally {
      fs.rmSync(path.join(mnt, 'filler'), { force: true });
    }
    const ok = await fleet.cli(['run', 'f2', 'echo roomy']);
    expect(ok.stdout).toMatch(/roomy/);
  });

  let fullJid = '';
  it('a return arriving on a full disk: the master stays up and keeps serving', async () => {
    const agent = fleet.agents[0]!;
    const from = agent.out.length;
    const run = fleet.cli(['run', 'f2', `sleep 1; head -c 300000 /dev/zero | tr '\\0' y; echo`, '--json']);
    fullJid = (await agent.waitOutput(/job (\d{20})/, 20_000, from))[1]!;
    fill();
    try {
      // full until the return has met it, as the master's log says (not a fixed wait)
      await agent.waitOutput(new RegExp(`job ${fullJid}: finished`), 20_000, from);
      await fleet.master!.waitOutput(new RegExp(`job ${fullJid}: the return of f2 could not be stored \\(database or disk is full\\); kept`), 30_000);
    } finally {
      fs.rmSync(path.join(mnt, 'filler'), { force: true });
    }
    await run;
    expect(fleet.master!.running).toBe(true);
    expect((await fleet.cli(['keys', 'list'])).code).toBe(0);
    await fleet.waitConnected(['f2']);
    // held by the master, not bounced: no reconnect loop re-sending a 300 KB spool
    expect(agent.out.slice(from)).not.toMatch(/disconnected from master/);
  });

  it('... and that return is stored once there is room', async () => {
    const d = await storedDone(fleet, fullJid);
    expect(d.agents[0]!.body!.stdout!.length).toBeGreaterThan(100_000);
  });
});
