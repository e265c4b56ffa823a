/**
 * The Store on SQLite (WAL), the embedded default: one master, one file. better-sqlite3 is
 * synchronous, so each method is one short transaction that completes before its promise
 * settles, and a master killed at any point leaves a consistent file behind. The schema is
 * versioned (store-schema.ts): opening an older file migrates it.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { StateResult } from '../protocol/results.js';
import type { ReturnBody } from '../protocol/messages.js';
import type { AgentJobStatus } from '../protocol/cli-messages.js';
import { migrate } from './store-schema.js';
import {
  TERMINAL,
  emptyCounts,
  type AgentJobRow,
  type AgentRow,
  type CallRow,
  type JobAgentRow,
  type JobReturnRow,
  type JobProgress,
  type JobRow,
  type JobWithCounts,
  type AgentKey,
  type KeyState,
  type MasterRow,
  type NewJob,
  type NewJobAgent,
  type NewRevision,
  type PlannedBatch,
  type RevisionOutcome,
  type RevisionRow,
  type DesiredPin,
  type ReleaseSnapshot,
  type ReleaseSnapshotRequest,
  runningRollout,
  type RolloutBatchRow,
  type RolloutBatchStatus,
  type RolloutRow,
  type RolloutStatus,
  type RolloutUpdate,
  type SessionRow,
  type LeaseRow,
  type Store,
  type VerifyOutcome,
  type VerifyResultRow,
} from './store-api.js';
import { agentRow, callRow, jobAgentRow, jobRow, rolloutRow, stateResultRow } from './store-rows.js';
import { sqlitePresence } from './store-presence-sqlite.js';

const now = () => new Date().toISOString();

export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly label: string;
  /** the SQLite database itself: for this class and the SQLite store's own tests only */
  readonly db: Database.Database;
  readonly schema: { from: number; to: number };

  constructor(file: string, log?: (msg: string) => void) {
    this.label = file;
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    this.db = new Database(file);
    fs.chmodSync(file, 0o600); // results hold changes and comments: root only
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    // SQLite's page cache is memory the master keeps for good: 4 MB (better-sqlite3 builds with
    // 16 MB, which a one-hour soak saw as RSS growing with the database); reads past it come
    // from the OS page cache
    this.db.pragma('cache_size = -4000');
    this.schema = migrate(this.db, file, log);
  }

  async close(): Promise<void> {
    this.db.close();
  }

  /** Statements are prepared once per master: preparing is most of a small query's cost. */
  private readonly statements = new Map<string, Database.Statement>();
  private q(sql: string): Database.Statement {
    let st = this.statements.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.statements.set(sql, st);
    }
    return st;
  }

  // ------------------------------------------------------------ meta

  async getMeta(key: string): Promise<string | undefined> {
    return this.metaNow(key);
  }

  async setMeta(key: string, value: string): Promise<void> {
    this.q('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  private metaNow(key: string): string | undefined {
    return (this.q('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value;
  }

  // ------------------------------------------------------------ agents / keys

  async getAgent(id: string): Promise<AgentRow | undefined> {
    return this.agentNow(id);
  }

  private agentNow(id: string): AgentRow | undefined {
    const r = this.q('SELECT * FROM agents WHERE id = ?').get(id) as Record<string, unknown> | undefined;
    return r ? agentRow(r) : undefined;
  }

  async listAgents(): Promise<AgentRow[]> {
    return this.agentsNow();
  }

  private agentsNow(): AgentRow[] {
    return (this.q('SELECT * FROM agents ORDER BY id').all() as Record<string, unknown>[]).map(agentRow);
  }

  async listKeys(): Promise<AgentKey[]> {
    return this.q('SELECT id, fingerprint, key_state FROM agents ORDER BY id').all() as AgentKey[];
  }

  async addAgent(id: string, fingerprint: string, state: KeyState): Promise<AgentRow> {
    this.q('INSERT INTO agents (id, fingerprint, key_state, first_seen, last_seen) VALUES (?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING')
      .run(id, fingerprint, state, now(), now());
    return this.agentNow(id)!;
  }

  async setKeyState(id: string, state: KeyState): Promise<boolean> {
    return this.q('UPDATE agents SET key_state = ? WHERE id = ?').run(state, id).changes > 0;
  }

  async deleteAgent(id: string): Promise<boolean> {
    return this.q('DELETE FROM agents WHERE id = ?').run(id).changes > 0;
  }

  async touchAgent(id: string, grains?: Record<string, unknown>): Promise<void> {
    if (grains) this.q('UPDATE agents SET last_seen = ?, grains = ? WHERE id = ?').run(now(), JSON.stringify(grains), id);
    else this.q('UPDATE agents SET last_seen = ? WHERE id = ?').run(now(), id);
  }

  async touchAgents(ids: string[]): Promise<void> {
    if (ids.length) this.q('UPDATE agents SET last_seen = ? WHERE id IN (SELECT value FROM json_each(?))').run(now(), JSON.stringify(ids));
  }

  async recordAttempt(agentId: string, jid: string, revision: string, status: AgentJobStatus): Promise<void> {
    this.attemptNow(agentId, jid, revision, status);
  }

  private attemptNow(agentId: string, jid: string, revision: string, status: AgentJobStatus): void {
    this.q('UPDATE agents SET revision_attempted = ?, attempt_status = ?, attempt_jid = ? WHERE id = ?').run(revision, status, jid, agentId);
  }

  // ------------------------------------------------------------ jobs

  async createJob(job: NewJob, agents: readonly NewJobAgent[]): Promise<void> {
    const tx = this.db.transaction(() => {
      this.q('INSERT INTO jobs (jid, kind, target, tgt_type, args, revision, started_by, intent, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
        .run(job.jid, job.kind, job.target, job.tgt_type, JSON.stringify(job.args), job.revision, job.started_by, job.intent ?? 'intentional', now());
      const ins = this.q('INSERT INTO job_agents (jid, agent_id, status, error, finished, revision) VALUES (?, ?, ?, ?, ?, ?)');
      for (const m of agents) ins.run(job.jid, m.id, m.status, m.error ?? null, TERMINAL.has(m.status) ? now() : null, m.revision ?? job.revision);
    });
    tx();
  }

  async getJob(jid: string): Promise<JobRow | undefined> {
    const r = this.q('SELECT * FROM jobs WHERE jid = ?').get(jid) as Record<string, unknown> | undefined;
    return r ? jobRow(r) : undefined;
  }

  async listJobs(limit: number, before?: string): Promise<JobWithCounts[]> {
    const rows = (this.q('SELECT * FROM jobs WHERE (? IS NULL OR jid < ?) ORDER BY jid DESC LIMIT ?').all(before ?? null, before ?? null, limit) as Record<string, unknown>[]).map(jobRow);
    const cnt = this.q('SELECT status, count(*) AS n FROM job_agents WHERE jid = ? GROUP BY status');
    return rows.map((j) => {
      const counts = emptyCounts();
      for (const c of cnt.all(j.jid) as { status: AgentJobStatus; n: number }[]) counts[c.status] = c.n;
      return { ...j, counts };
    });
  }

  async markKilled(jid: string, by: string): Promise<void> {
    this.q('UPDATE jobs SET killed_by = ?, killed_at = ? WHERE jid = ? AND killed_by IS NULL').run(by, now(), jid);
  }

  async getJobAgent(jid: string, agentId: string): Promise<JobAgentRow | undefined> {
    const r = this.q('SELECT * FROM job_agents WHERE jid = ? AND agent_id = ?').get(jid, agentId) as Record<string, unknown> | undefined;
    return r ? jobAgentRow(r) : undefined;
  }

  async jobAgents(jid: string): Promise<JobAgentRow[]> {
    return (this.q('SELECT * FROM job_agents WHERE jid = ? ORDER BY agent_id').all(jid) as Record<string, unknown>[]).map(jobAgentRow);
  }

  async jobAgentsOf(jid: string, agentIds: readonly string[]): Promise<JobAgentRow[]> {
    // in-process: a prepared read per agent costs what one IN list would
    const out: JobAgentRow[] = [];
    for (const id of new Set(agentIds)) {
      const r = await this.getJobAgent(jid, id);
      if (r) out.push(r);
    }
    return out;
  }

  async openJobAgents(agentId?: string): Promise<JobAgentRow[]> {
    const sql = `SELECT * FROM job_agents WHERE status IN ('queued','running')${agentId ? ' AND agent_id = ?' : ''} ORDER BY jid`;
    const st = this.q(sql);
    return ((agentId ? st.all(agentId) : st.all()) as Record<string, unknown>[]).map(jobAgentRow);
  }

  async setJobAgentStatus(jid: string, agentId: string, status: AgentJobStatus, error?: string): Promise<boolean> {
    if (status === 'running') {
      return this.q("UPDATE job_agents SET status = 'running', started = coalesce(started, ?) WHERE jid = ? AND agent_id = ? AND status IN ('queued','running')").run(now(), jid, agentId).changes > 0;
    }
    return (
      // not ended: queued or running (an IN list of two, not NOT IN the five ends: SQLite builds a
      // temporary b-tree for a list of more than two at every execution)
      this.q("UPDATE job_agents SET status = ?, error = ?, finished = ? WHERE jid = ? AND agent_id = ? AND status IN ('queued','running')")
        .run(status, error ?? null, TERMINAL.has(status) ? now() : null, jid, agentId).changes > 0
    );
  }

  async setJobAgentsRunning(runs: readonly { jid: string; agentId: string }[]): Promise<boolean[]> {
    const st = this.q("UPDATE job_agents SET status = 'running', started = coalesce(started, ?) WHERE jid = ? AND agent_id = ? AND status IN ('queued','running')");
    const at = now();
    return this.db.transaction(() => runs.map((r) => st.run(at, r.jid, r.agentId).changes > 0))();
  }

  async putStateResult(jid: string, agentId: string, r: StateResult): Promise<void> {
    this.resultNow(jid, agentId, r);
  }

  async putStateResults(rows: readonly { jid: string; agentId: string; result: StateResult }[]): Promise<void> {
    this.db.transaction(() => rows.forEach((r) => this.resultNow(r.jid, r.agentId, r.result)))();
  }

  private resultNow(jid: string, agentId: string, r: StateResult): void {
    this.q(
      // written once (store-api.ts putStateResult): a return's copy of a streamed result, or a
      // streamed one arriving after its return, writes nothing (no row rewritten, no page
      // dirtied), as PostgreSQL's store does
      `INSERT INTO state_results (jid, agent_id, run_num, state_id, sls, fun, name, result, changes, comment, start, duration_ms, warnings)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (jid, agent_id, run_num) DO NOTHING`,
    ).run(
      jid,
      agentId,
      r.run_num,
      r.id,
      r.sls,
      r.fun,
      r.name,
      r.result === null ? null : r.result ? 1 : 0,
      JSON.stringify(r.changes),
      r.comment,
      r.start,
      r.duration_ms,
      r.warnings ? JSON.stringify(r.warnings) : null,
    );
  }

  async finishJobAgent(jid: string, agentId: string, status: 'done' | 'failed', body: ReturnBody): Promise<boolean> {
    return this.finishNow(jid, agentId, status, body);
  }

  async finishJobAgents(returns: readonly JobReturnRow[]): Promise<boolean[]> {
    // one transaction for all: one commit, not N (a return that throws rolls back the tick, which
    // the caller then stores one by one)
    return this.db.transaction(() => returns.map((r) => this.finishIn(r.jid, r.agentId, r.status, r.body)))();
  }

  private finishNow(jid: string, agentId: string, status: 'done' | 'failed', body: ReturnBody): boolean {
    return this.db.transaction(() => this.finishIn(jid, agentId, status, body))();
  }

  /** One return's writes, inside the caller's transaction (a throw rolls back all of it). */
  private finishIn(jid: string, agentId: string, status: 'done' | 'failed', body: ReturnBody): boolean {
    const error = body.kind === 'error' ? body.error : null;
    // the transition first: a second return (re-sent spool, another master) changes nothing
    // no RETURNING: SQLite runs one through a temporary table and a statement journal, a
    // 64–88 KiB allocation each, which the master's malloc setting (MALLOC_MMAP_THRESHOLD_,
    // packaging/tsalt-master.service) maps and unmaps per return; a read of the row it just
    // wrote costs a few microseconds
    const moved = this.q("UPDATE job_agents SET status = ?, body = ?, error = ?, finished = ? WHERE jid = ? AND agent_id = ? AND status NOT IN ('done','failed')")
      .run(status, JSON.stringify(body), error, now(), jid, agentId).changes > 0;
    if (!moved) return false;
    const revision = (this.q('SELECT revision FROM job_agents WHERE jid = ? AND agent_id = ?').get(jid, agentId) as { revision: string | null }).revision;
    if (body.kind === 'apply') for (const r of body.report.results) this.resultNow(jid, agentId, r);
    if (body.kind === 'apply' && revision && !body.report.test) {
      // the attempt, and (a failed run is an attempt, not the agent's revision) the revision applied
      this.q("UPDATE agents SET revision_attempted = ?, attempt_status = ?, attempt_jid = ?, revision_applied = CASE WHEN ? = 'done' THEN ? ELSE revision_applied END WHERE id = ?")
        .run(revision, status, jid, status, revision, agentId);
    }
    return true;
  }

  async stateResults(jid: string, agentId: string): Promise<StateResult[]> {
    const rows = this.q('SELECT * FROM state_results WHERE jid = ? AND agent_id = ? ORDER BY run_num').all(jid, agentId) as Record<string, unknown>[];
    return rows.map(stateResultRow);
  }

  async stateResultsOf(jid: string, agentIds: readonly string[]): Promise<Map<string, StateResult[]>> {
    const out = new Map<string, StateResult[]>();
    for (const id of new Set(agentIds)) {
      const rs = await this.stateResults(jid, id);
      if (rs.length) out.set(id, rs);
    }
    return out;
  }

  async jobProgress(jid: string): Promise<JobProgress> {
    const counts = emptyCounts();
    let finished: string | null = null;
    const rows = this.q('SELECT status, count(*) AS n, max(finished) AS fin FROM job_agents WHERE jid = ? GROUP BY status').all(jid) as {
      status: AgentJobStatus;
      n: number;
      fin: string | null;
    }[];
    for (const c of rows) {
      counts[c.status] = c.n;
      if (c.fin && (!finished || c.fin > finished)) finished = c.fin;
    }
    return { counts, finished };
  }

  async jobResultCounts(jid: string): Promise<{ agent_id: string; status: AgentJobStatus; results: number }[]> {
    return this.q(
      `SELECT m.agent_id AS agent_id, m.status AS status,
              (SELECT count(*) FROM state_results s WHERE s.jid = m.jid AND s.agent_id = m.agent_id) AS results
       FROM job_agents m WHERE m.jid = ? ORDER BY m.agent_id`,
    ).all(jid) as { agent_id: string; status: AgentJobStatus; results: number }[];
  }

  async changedResults(jid: string): Promise<number> {
    return (this.q("SELECT count(*) AS n FROM state_results WHERE jid = ? AND result = 1 AND changes != '{}'").get(jid) as { n: number }).n;
  }

  async testRunJids(revision: string, limit: number): Promise<string[]> {
    const rows = this.q(
      `SELECT jid FROM jobs WHERE revision = ? AND kind = 'apply' AND coalesce(json_extract(args, '$.test'), 0) = 1 ORDER BY jid DESC LIMIT ?`,
    ).all(revision, limit) as { jid: string }[];
    return rows.map((r) => r.jid);
  }

  async rollbackJids(revision: string, since: string): Promise<string[]> {
    const rows = this.q(`SELECT jid FROM jobs WHERE revision = ? AND started_by LIKE 'rollback:%' AND created >= ? ORDER BY jid`).all(revision, since) as { jid: string }[];
    return rows.map((r) => r.jid);
  }

  async agentJobs(agentId: string, limit: number): Promise<AgentJobRow[]> {
    const rows = this.q(
      `SELECT j.jid, j.kind, j.target, j.tgt_type, j.args, j.started_by, j.created, m.status, m.finished
       FROM job_agents m JOIN jobs j ON j.jid = m.jid WHERE m.agent_id = ? ORDER BY m.jid DESC LIMIT ?`,
    ).all(agentId, limit) as (Omit<AgentJobRow, 'args'> & { args: string })[];
    return rows.map((r) => ({ ...r, args: JSON.parse(r.args) as Record<string, unknown> }));
  }

  // ------------------------------------------------------------ releases

  async desired(): Promise<string | undefined> {
    return this.metaNow('desired.revision');
  }

  async setDesired(sha: string): Promise<void> {
    await this.setMeta('desired.revision', sha);
  }

  async moveDesired(from: string | undefined, to: string, pins: readonly DesiredPin[] = []): Promise<boolean> {
    return this.db.transaction(() => {
      if (this.metaNow('desired.revision') !== from) return false;
      const pin = this.q('UPDATE agents SET revision_assigned = ? WHERE id = ?');
      for (const p of pins) pin.run(p.sha, p.id);
      this.q('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run('desired.revision', to);
      return true;
    }).immediate();
  }

  async assign(ids: readonly string[], sha: string | null): Promise<void> {
    const st = this.q('UPDATE agents SET revision_assigned = ? WHERE id = ?');
    this.db.transaction(() => {
      for (const id of ids) st.run(sha, id);
    })();
  }

  async getRevision(sha: string): Promise<RevisionRow | undefined> {
    return this.q('SELECT * FROM revisions WHERE sha = ?').get(sha) as RevisionRow | undefined;
  }

  async addRevision(r: NewRevision): Promise<void> {
    this.q('INSERT OR IGNORE INTO revisions (sha, seen, date, author, subject, outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(r.sha, now(), r.date, r.author, r.subject, r.outcome ?? 'seen', r.detail ?? null);
  }

  async setRevisionOutcome(sha: string, outcome: RevisionOutcome, detail?: string): Promise<void> {
    this.q('UPDATE revisions SET outcome = ?, detail = ? WHERE sha = ?').run(outcome, detail ?? null, sha);
  }

  async listRevisions(limit: number): Promise<RevisionRow[]> {
    return this.revisionsNow(limit);
  }

  private revisionsNow(limit: number): RevisionRow[] {
    return this.q('SELECT * FROM revisions ORDER BY seen DESC, rowid DESC LIMIT ?').all(limit) as RevisionRow[];
  }

  async releaseSnapshot(o: ReleaseSnapshotRequest = {}): Promise<ReleaseSnapshot> {
    // one read transaction: one snapshot of the database
    return this.db.transaction((): ReleaseSnapshot => {
      const rollouts = o.rollouts ? this.rolloutsNow(o.rollouts.limit) : [];
      const running = o.rollouts ? runningRollout(rollouts[0], o.rollouts.running, (id) => this.rolloutNow(id)) : undefined;
      const shown = running ?? rollouts[0];
      return {
        desired: this.metaNow('desired.revision'),
        agents: o.agents === false ? [] : typeof o.agents === 'string' ? [this.agentNow(o.agents)].filter((a) => a !== undefined) : this.agentsNow(),
        revisions: o.revisions ? this.revisionsNow(o.revisions) : [],
        rollouts,
        running,
        batches: shown ? this.batchesNow(shown.id) : [],
      };
    })();
  }

  async createRollout(r: { revision: string; previous: string | null; reason: string; started_by: string }): Promise<number> {
    return Number(
      this.q("INSERT INTO rollouts (revision, previous, reason, started_by, started, status) VALUES (?, ?, ?, ?, ?, 'running')")
        .run(r.revision, r.previous, r.reason, r.started_by, now()).lastInsertRowid,
    );
  }

  async updateRollout(id: number, u: RolloutUpdate): Promise<void> {
    this.db.transaction(() => {
      const cur = this.rolloutNow(id);
      if (!cur) return;
      const n = { ...cur, ...u };
      const finished = n.status !== 'running' ? (cur.finished ?? now()) : null;
      this.q('UPDATE rollouts SET status = ?, batch = ?, batches = ?, agents = ?, jids = ?, message = ?, finished = ? WHERE id = ?')
        .run(n.status, n.batch, n.batches, JSON.stringify(n.agents), JSON.stringify(n.jids), n.message, finished, id);
    })();
  }

  async getRollout(id: number): Promise<RolloutRow | undefined> {
    return this.rolloutNow(id);
  }

  private rolloutNow(id: number): RolloutRow | undefined {
    const r = this.q('SELECT * FROM rollouts WHERE id = ?').get(id) as Record<string, unknown> | undefined;
    return r ? rolloutRow(r) : undefined;
  }

  async listRollouts(limit: number): Promise<RolloutRow[]> {
    return this.rolloutsNow(limit);
  }

  private rolloutsNow(limit: number): RolloutRow[] {
    return (this.q('SELECT * FROM rollouts ORDER BY id DESC LIMIT ?').all(limit) as Record<string, unknown>[]).map(rolloutRow);
  }

  async closeRunningRollouts(message: string): Promise<void> {
    this.db.transaction(() => {
      this.q("UPDATE rollout_batches SET status = CASE status WHEN 'pending' THEN 'not_run' ELSE 'failed' END WHERE status IN ('pending','applying','verifying') AND rollout_id IN (SELECT id FROM rollouts WHERE status = 'running')").run();
      this.q("UPDATE rollouts SET status = 'failed', message = ?, finished = ? WHERE status = 'running'").run(message, now());
    })();
  }

  async addRolloutBatches(rolloutId: number, batches: readonly PlannedBatch[]): Promise<void> {
    const ins = this.q("INSERT INTO rollout_batches (rollout_id, batch, group_num, group_name, agents, status) VALUES (?, ?, ?, ?, ?, 'pending')");
    this.db.transaction(() => batches.forEach((b, i) => ins.run(rolloutId, i + 1, b.group_num, b.group_name, JSON.stringify(b.agents))))();
  }

  async updateRolloutBatch(rolloutId: number, batch: number, u: { status: RolloutBatchStatus; jid?: string; offline?: readonly string[] }): Promise<void> {
    const end = u.status === 'done' || u.status === 'failed' || u.status === 'skipped' || u.status === 'not_run';
    const t = now();
    this.q(
      `UPDATE rollout_batches SET status = ?, jid = COALESCE(?, jid), offline = COALESCE(?, offline),
         started = CASE WHEN ? IN ('applying','verifying') THEN COALESCE(started, ?) ELSE started END,
         finished = CASE WHEN ? THEN COALESCE(finished, ?) ELSE finished END
       WHERE rollout_id = ? AND batch = ?`,
    ).run(u.status, u.jid ?? null, u.offline ? JSON.stringify(u.offline) : null, u.status, t, end ? 1 : 0, t, rolloutId, batch);
  }

  async skipPendingBatches(rolloutId: number): Promise<void> {
    this.q("UPDATE rollout_batches SET status = 'not_run' WHERE rollout_id = ? AND status = 'pending'").run(rolloutId);
  }

  async putVerifyResult(rolloutId: number, batch: number, r: Omit<VerifyResultRow, 'finished'> & { finished?: string | null }): Promise<void> {
    this.q(
      `INSERT INTO rollout_verify (rollout_id, batch, seq, name, outcome, attempts, message, started, finished) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (rollout_id, batch, seq) DO UPDATE SET outcome = excluded.outcome, attempts = excluded.attempts, message = excluded.message, finished = excluded.finished`,
    ).run(rolloutId, batch, r.seq, r.name, r.outcome, r.attempts, r.message, r.started, r.finished ?? null);
  }

  // ------------------------------------------------------------ masters, sessions, leases

  private presenceSql: ReturnType<typeof sqlitePresence> | undefined;
  private get presence(): ReturnType<typeof sqlitePresence> {
    return (this.presenceSql ??= sqlitePresence(this.db));
  }
  async heartbeatMaster(id: string, url: string): Promise<void> {
    this.presence.heartbeatMaster(id, url);
  }
  async liveMasters(within_s: number): Promise<MasterRow[]> {
    return this.presence.liveMasters(within_s);
  }
  async forgetMaster(id: string): Promise<void> {
    this.presence.forgetMaster(id);
  }
  async claimSession(agentId: string, master: string): Promise<void> {
    this.presence.claimSession(agentId, master);
  }
  async releaseSession(agentId: string, master: string): Promise<boolean> {
    return this.presence.releaseSession(agentId, master);
  }
  async voidSessions(master: string): Promise<number> {
    return this.presence.voidSessions(master);
  }
  async liveSessions(within_s: number): Promise<SessionRow[]> {
    return this.presence.liveSessions(within_s);
  }
  async sessionOf(agentId: string, within_s: number): Promise<SessionRow | undefined> {
    return this.presence.sessionOf(agentId, within_s);
  }
  async acquireLease(name: string, holder: string, ttl_s: number): Promise<boolean> {
    return this.presence.acquireLease(name, holder, ttl_s);
  }
  async releaseLease(name: string, holder: string): Promise<boolean> {
    return this.presence.releaseLease(name, holder);
  }
  async leaseOf(name: string): Promise<LeaseRow | undefined> {
    return this.presence.leaseOf(name);
  }

  async rolloutBatches(rolloutId: number): Promise<RolloutBatchRow[]> {
    return this.batchesNow(rolloutId);
  }

  private batchesNow(rolloutId: number): RolloutBatchRow[] {
    const checks = this.q('SELECT * FROM rollout_verify WHERE rollout_id = ? ORDER BY batch, seq').all(rolloutId) as Record<string, unknown>[];
    return (this.q('SELECT * FROM rollout_batches WHERE rollout_id = ? ORDER BY batch').all(rolloutId) as Record<string, unknown>[]).map((b) => ({
      batch: Number(b.batch),
      group_num: Number(b.group_num),
      group_name: String(b.group_name),
      agents: JSON.parse(String(b.agents)) as string[],
      offline: JSON.parse(String(b.offline)) as string[],
      jid: (b.jid as string | null) ?? null,
      status: b.status as RolloutBatchStatus,
      started: (b.started as string | null) ?? null,
      finished: (b.finished as string | null) ?? null,
      verify: checks
        .filter((c) => Number(c.batch) === Number(b.batch))
        .map((c) => ({
          seq: Number(c.seq),
          name: String(c.name),
          outcome: c.outcome as VerifyOutcome,
          attempts: Number(c.attempts),
          message: (c.message as string | null) ?? null,
          started: String(c.started),
          finished: (c.finished as string | null) ?? null,
        })),
    }));
  }

  // ------------------------------------------------------------ calls routed between masters

  async askCalls(rows: readonly CallRow[]): Promise<void> {
    const t = now();
    const ins = this.q('INSERT INTO calls (id, agent_id, asked_by, sent_by, request, created, expires) VALUES (?, ?, ?, ?, ?, ?, ?)');
    this.db.transaction(() => {
      for (const r of rows) ins.run(r.id, r.agent_id, r.asked_by, r.sent_by, JSON.stringify(r.request), t, r.expires);
    })();
  }

  async takeCalls(id: string, master: string): Promise<CallRow[]> {
    const rows = this.q('UPDATE calls SET taken = ? WHERE id = ? AND sent_by = ? AND taken IS NULL RETURNING id, agent_id, asked_by, sent_by, request, expires').all(now(), id, master) as Record<string, unknown>[];
    return rows.map(callRow);
  }

  async untakenCalls(master: string): Promise<string[]> {
    return (this.q('SELECT DISTINCT id FROM calls WHERE sent_by = ? AND taken IS NULL AND expires > ? ORDER BY id').all(master, now()) as { id: string }[]).map((r) => r.id);
  }

  async answerCall(id: string, agentId: string, answer: unknown): Promise<boolean> {
    return this.q('UPDATE calls SET answer = ?, answered = ? WHERE id = ? AND agent_id = ? AND answer IS NULL').run(JSON.stringify(answer ?? null), now(), id, agentId).changes > 0;
  }

  async collectAnswers(id: string): Promise<{ agent_id: string; answer: unknown }[]> {
    const rows = this.q('DELETE FROM calls WHERE id = ? AND answer IS NOT NULL RETURNING agent_id, answer').all(id) as { agent_id: string; answer: string }[];
    return rows.map((r) => ({ agent_id: r.agent_id, answer: JSON.parse(r.answer) as unknown }));
  }

  async dropCall(id: string): Promise<void> {
    this.q('DELETE FROM calls WHERE id = ?').run(id);
  }

  async pruneCalls(grace_s: number): Promise<number> {
    return this.q('DELETE FROM calls WHERE expires < ?').run(new Date(Date.now() - grace_s * 1000).toISOString()).changes;
  }
}
