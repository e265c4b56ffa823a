/**
 * master.db made by the release before schema versioning (test/fixtures/store/schema-v0.sql is
 * the CREATE statements of that release's master/store.ts, verbatim) opens in today's Store:
 * migrated step by step, every row kept, the renamed table still cascading.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { SqliteStore as Store } from '../../master/store-sqlite.js';
import { MIGRATIONS, SCHEMA_VERSION } from '../../master/store-schema.js';
import { tempDir } from '../helpers/harness.js';
import { databaseAt } from '../helpers/schema-at.js';

const V0 = fs.readFileSync(path.join(import.meta.dirname, '../fixtures/store/schema-v0.sql'), 'utf8');

/** A database as the previous release left it: its schema, user_version 0, and some history. */
function previousReleaseDb(file: string): void {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('foreign_keys = ON');
  db.exec(V0);
  const ins = (sql: string, ...a: unknown[]) => db.prepare(sql).run(...a);
  ins("INSERT INTO meta VALUES ('rollout.revision', 'c0ffee')");
  ins("INSERT INTO agents VALUES ('web1', 'ab', 'accepted', '{\"roles\":[\"web\"]}', '2026-01-01T00:00:00Z', '2026-01-02T00:00:00Z', 'r1')");
  ins("INSERT INTO agents VALUES ('web2', 'cd', 'pending', '{}', '2026-01-01T00:00:00Z', NULL, NULL)");
  ins("INSERT INTO jobs VALUES ('20260101000000000001', 'apply', '*', 'glob', '{\"sls\":[]}', 'r1', 'root@cli', '2026-01-01T00:00:00Z')");
  ins("INSERT INTO jobs VALUES ('20260101000000000002', 'apply', '*', 'glob', '{\"sls\":[]}', 'r2', 'schedule:highstate', '2026-01-01T01:00:00Z')");
  ins("INSERT INTO job_minions VALUES ('20260101000000000001', 'web1', 'done', 't1', 't2', NULL, '{\"kind\":\"apply\"}')");
  ins("INSERT INTO job_minions VALUES ('20260101000000000002', 'web1', 'failed', 't3', 't4', NULL, NULL)");
  ins("INSERT INTO job_minions VALUES ('20260101000000000002', 'web2', 'running', 't3', NULL, NULL, NULL)");
  ins(
    "INSERT INTO state_results VALUES ('20260101000000000001', 'web1', 0, 'nginx', 'web', 'pkg.installed', 'nginx', 1, '{}', 'ok', 't1', 1.5, NULL)",
  );
  expect(db.pragma('user_version', { simple: true })).toBe(0);
  db.close();
}

describe('store schema versions', () => {
  it('a new database is created at the latest version', async () => {
    const s = new Store(path.join(tempDir(), 'm.db'));
    expect(s.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(s.schema).toEqual({ from: 0, to: SCHEMA_VERSION });
    await s.close();
  });

  it('migrates the previous release\'s database with its data', async () => {
    const file = path.join(tempDir(), 'm.db');
    previousReleaseDb(file);
    const steps: string[] = [];
    let s = new Store(file, (m) => steps.push(m));
    expect(s.schema).toEqual({ from: 0, to: SCHEMA_VERSION });
    expect(steps).toHaveLength(MIGRATIONS.length);
    expect(s.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    // the old table is gone under its old name, its rows are there under the new one
    const tables = (s.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((t) => t.name);
    expect(tables).not.toContain('job_minions');
    expect(tables).toContain('job_agents');
    // the last revision the old rollout recorded becomes the desired revision
    expect(await s.desired()).toBe('c0ffee');
    expect(await s.getMeta('rollout.revision')).toBeUndefined();
    expect((await s.jobAgents('20260101000000000002')).map((m) => [m.agent_id, m.revision])).toEqual([['web1', 'r2'], ['web2', 'r2']]);
    expect(await s.listRevisions(10)).toEqual([]);
    expect((await s.getAgent('web1'))!.revision_assigned).toBeNull();
    expect(await s.getAgent('web1')).toMatchObject({ key_state: 'accepted', grains: { roles: ['web'] }, revision_applied: 'r1' });
    // the last attempt is derived from the history: web1 failed r2 (still running jobs do not count)
    expect(await s.getAgent('web1')).toMatchObject({ revision_attempted: 'r2', attempt_status: 'failed', attempt_jid: '20260101000000000002' });
    expect(await s.getAgent('web2')).toMatchObject({ key_state: 'pending', revision_attempted: null });
    expect((await s.listJobs(10)).map((j) => [j.jid, j.started_by, j.intent, j.counts.done, j.counts.failed, j.counts.running])).toEqual([
      ['20260101000000000002', 'schedule:highstate', 'corrective', 0, 1, 1],
      ['20260101000000000001', 'root@cli', 'intentional', 1, 0, 0],
    ]);
    expect((await s.openJobAgents()).map((m) => [m.jid, m.agent_id])).toEqual([['20260101000000000002', 'web2']]);
    expect((await s.stateResults('20260101000000000001', 'web1')).map((r) => [r.id, r.result])).toEqual([['nginx', true]]);
    // state_results' foreign key follows the rename: deleting a job still cascades
    s.db.prepare("DELETE FROM jobs WHERE jid = '20260101000000000001'").run();
    expect(await s.stateResults('20260101000000000001', 'web1')).toEqual([]);
    expect(await s.jobAgents('20260101000000000001')).toEqual([]);
    await s.close();
    // opening again does nothing more
    s = new Store(file);
    expect(s.schema).toEqual({ from: SCHEMA_VERSION, to: SCHEMA_VERSION });
    await s.close();
  });

  it('a database from a newer tsalt is refused with a clear error, untouched', async () => {
    const file = path.join(tempDir(), 'm.db');
    const db = new Database(file);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    expect(() => new Store(file)).toThrow(new RegExp(`schema version ${SCHEMA_VERSION + 1} is newer than this tsalt knows \\(${SCHEMA_VERSION}\\)`));
    const again = new Database(file);
    expect(again.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION + 1);
    again.close();
  });

  it('a migration that fails leaves the database at the last complete version', async () => {
    const file = path.join(tempDir(), 'm.db');
    previousReleaseDb(file);
    // a stray object with the name migration 2 creates makes that step fail half-way
    const db = new Database(file);
    db.exec('CREATE TABLE job_agents (x)');
    db.close();
    expect(() => new Store(file)).toThrow();
    const after = new Database(file);
    expect(after.pragma('user_version', { simple: true })).toBe(1);
    expect((after.prepare('SELECT count(*) AS n FROM job_minions').get() as { n: number }).n).toBe(3);
    after.close();
  });

  it('version 4: a version-3 database keeps its rollouts and gains the batch and verify record', async () => {
    const { file, db } = databaseAt(3);
    db.prepare("INSERT INTO rollouts (revision, previous, reason, started_by, started, status, batch, batches) VALUES ('r2', 'r1', 'push', 'push', 't0', 'halted', 1, 2)").run();
    db.close();
    const steps: string[] = [];
    const s = new Store(file, (m) => steps.push(m));
    expect(s.schema).toEqual({ from: 3, to: SCHEMA_VERSION });
    expect(steps[0]).toMatch(/schema 3 -> 4 \(rollout_batches, rollout_verify\)/);
    const old = (await s.listRollouts(1))[0]!;
    expect(old).toMatchObject({ revision: 'r2', status: 'halted' });
    expect(await s.rolloutBatches(old.id)).toEqual([]); // the past is not invented

    // a rollout as the Releaser writes it: planned, the first batch applied and verified (a check
    // failing after two tries), the rest never run
    const id = await s.createRollout({ revision: 'r3', previous: 'r2', reason: 'push', started_by: 'push' });
    await s.addRolloutBatches(id, [
      { group_num: 1, group_name: 'G@roles:haproxy', agents: ['lb1'] },
      { group_num: 1, group_name: 'G@roles:haproxy', agents: ['lb2'] },
      { group_num: 2, group_name: 'G@roles:nginx', agents: ['web1', 'web2'] },
    ]);
    await s.updateRolloutBatch(id, 1, { status: 'applying', offline: [] });
    await s.updateRolloutBatch(id, 1, { status: 'verifying', jid: '20260101000000000009' });
    await s.putVerifyResult(id, 1, { seq: 0, name: 'GET http://vip/healthz', outcome: 'running', attempts: 0, message: null, started: 't1', finished: null });
    await s.putVerifyResult(id, 1, { seq: 0, name: 'GET http://vip/healthz', outcome: 'failed', attempts: 2, message: 'status 503, expected 200', started: 't1', finished: 't2' });
    await s.updateRolloutBatch(id, 1, { status: 'failed' });
    await s.skipPendingBatches(id);
    const b = await s.rolloutBatches(id);
    expect(b.map((x) => [x.batch, x.group_num, x.group_name, x.agents, x.jid, x.status])).toEqual([
      [1, 1, 'G@roles:haproxy', ['lb1'], '20260101000000000009', 'failed'],
      [2, 1, 'G@roles:haproxy', ['lb2'], null, 'not_run'],
      [3, 2, 'G@roles:nginx', ['web1', 'web2'], null, 'not_run'],
    ]);
    expect(b[0]!.started).not.toBeNull();
    expect(b[0]!.finished).not.toBeNull();
    expect(b[0]!.verify).toEqual([{ seq: 0, name: 'GET http://vip/healthz', outcome: 'failed', attempts: 2, message: 'status 503, expected 200', started: 't1', finished: 't2' }]);
    expect(b[1]!.verify).toEqual([]);

    // a master stopped mid-rollout: its open batches are closed with it
    const id2 = await s.createRollout({ revision: 'r4', previous: 'r3', reason: 'push', started_by: 'push' });
    await s.addRolloutBatches(id2, [{ group_num: 1, group_name: '*', agents: ['a'] }, { group_num: 1, group_name: '*', agents: ['b'] }]);
    await s.updateRolloutBatch(id2, 1, { status: 'applying' });
    await s.closeRunningRollouts('master stopped');
    expect((await s.rolloutBatches(id2)).map((x) => x.status)).toEqual(['failed', 'not_run']);
    // deleting a rollout takes its record with it
    s.db.prepare('DELETE FROM rollouts WHERE id = ?').run(id);
    expect(await s.rolloutBatches(id)).toEqual([]);
    expect((s.db.prepare('SELECT count(*) AS n FROM rollout_verify WHERE rollout_id = ?').get(id) as { n: number }).n).toBe(0);
    await s.close();
  });

  it('version 5: a kill remembered in the meta table moves onto its job', async () => {
    const { file, db } = databaseAt(4);
    for (const jid of ['20260101000000000001', '20260101000000000002']) {
      db.prepare("INSERT INTO jobs (jid, kind, target, tgt_type, args, revision, started_by, created) VALUES (?, 'run', '*', 'glob', '{}', NULL, 'root@cli', 't0')").run(jid);
    }
    db.prepare("INSERT INTO meta VALUES ('job_killed:20260101000000000001', ?)").run(JSON.stringify({ by: 'alice@cli', at: '2026-01-01T00:00:05Z' }));
    db.prepare("INSERT INTO meta VALUES ('jobXkilled:keep', 'other')").run();
    db.close();
    const s = new Store(file);
    expect(s.schema).toEqual({ from: 4, to: SCHEMA_VERSION });
    expect((await s.getJob('20260101000000000001'))!.killed).toEqual({ by: 'alice@cli', at: '2026-01-01T00:00:05Z' });
    expect((await s.getJob('20260101000000000002'))!.killed).toBeNull();
    expect(await s.getMeta('job_killed:20260101000000000001')).toBeUndefined();
    expect(await s.getMeta('jobXkilled:keep')).toBe('other'); // LIKE's _ is escaped: only job_killed: rows go
    // a kill from now on is on the job; the first one counts
    await s.markKilled('20260101000000000002', 'bob@cli');
    await s.markKilled('20260101000000000002', 'carol@cli');
    expect((await s.getJob('20260101000000000002'))!.killed).toMatchObject({ by: 'bob@cli' });
    expect((await s.listJobs(1))[0]!.killed).toMatchObject({ by: 'bob@cli' });
    await s.close();
  });

  it("version 7: an agent's open runs are read through an index on the agent, not by scanning every open row", async () => {
    const s = new Store(path.join(tempDir(), 'm.db'));
    // the query openJobAgents(agent) runs on every hello and disconnect
    const plan = s.db
      .prepare("EXPLAIN QUERY PLAN SELECT * FROM job_agents WHERE status IN ('queued','running') AND agent_id = ? ORDER BY jid")
      .all('a1') as { detail: string }[];
    expect(plan.map((p) => p.detail).join('\n')).toContain('USING INDEX job_agents_open_agent');
    await s.close();
  });

  it('version 9: a version-8 database keeps every row of agents and job_agents, and their foreign keys still cascade', async () => {
    const { file, db } = databaseAt(8);
    db.exec(`
      INSERT INTO agents (id, fingerprint, key_state, grains, first_seen, last_seen, revision_applied, revision_attempted, attempt_status, attempt_jid, revision_assigned)
        VALUES ('web1', 'ab', 'accepted', '{"roles":["web"]}', 't0', 't1', 'r1', 'r2', 'failed', '20260101000000000002', 'r1'),
               ('web2', 'cd', 'pending', '{}', 't0', NULL, NULL, NULL, NULL, NULL, NULL);
      INSERT INTO masters (id, url, started, seen) VALUES ('m1', 'wss://m1', 't0', 't1');
      INSERT INTO sessions (agent_id, master_id, since) VALUES ('web1', 'm1', 't1');
      INSERT INTO jobs (jid, kind, target, tgt_type, args, revision, started_by, created) VALUES ('20260101000000000002', 'apply', '*', 'glob', '{}', 'r2', 'root', 't0');
      INSERT INTO job_agents (jid, agent_id, status, started, finished, error, body, revision) VALUES ('20260101000000000002', 'web1', 'failed', 't1', 't2', 'boom', '{"kind":"error"}', 'r2'),
               ('20260101000000000002', 'web2', 'running', 't1', NULL, NULL, NULL, 'r2');
      INSERT INTO state_results VALUES ('20260101000000000002', 'web1', 0, 'nginx', 'web', 'pkg.installed', 'nginx', 0, '{}', 'no', 't1', 1.5, NULL);`);
    const before = (sql: string) => db.prepare(sql).all();
    const agents = before('SELECT * FROM agents ORDER BY id');
    const runs = before('SELECT * FROM job_agents ORDER BY agent_id');
    db.close();
    const steps: string[] = [];
    const s = new Store(file, (m) => steps.push(m));
    expect(s.schema).toEqual({ from: 8, to: SCHEMA_VERSION });
    expect(steps[0]).toMatch(/schema 8 -> 9 \(job_agents, agents: status and key_state CHECKs without an IN list\)/);
    expect(s.db.prepare('SELECT * FROM agents ORDER BY id').all()).toEqual(agents);
    expect(s.db.prepare('SELECT * FROM job_agents ORDER BY agent_id').all()).toEqual(runs);
    expect((await s.openJobAgents('web2')).map((r) => r.status)).toEqual(['running']); // the partial indexes are back
    expect(s.db.pragma('foreign_keys', { simple: true })).toBe(1);
    // deleting an agent still drops its session; deleting a job, its runs and their results
    s.db.prepare("DELETE FROM agents WHERE id = 'web1'").run();
    expect(s.db.prepare('SELECT count(*) AS n FROM sessions').get()).toEqual({ n: 0 });
    s.db.prepare("DELETE FROM jobs WHERE jid = '20260101000000000002'").run();
    expect(s.db.prepare('SELECT (SELECT count(*) FROM job_agents) + (SELECT count(*) FROM state_results) AS n').get()).toEqual({ n: 0 });
    await s.close();
  });
});
