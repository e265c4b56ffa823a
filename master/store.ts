/**
 * The master's SQLite database (WAL): agents and their keys, jobs, per-agent job status and
 * every state result. Synchronous (better-sqlite3): each call is one short transaction, so a
 * master killed at any point leaves a consistent file behind. The schema is versioned
 * (store-schema.ts): opening an older database migrates it.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { StateResult } from '../protocol/results.js';
import type { AgentJobStatus, ReturnBody } from '../protocol/messages.js';
import { migrate } from './store-schema.js';

export type KeyState = 'pending' | 'accepted' | 'rejected';

export interface AgentRow {
  id: string;
  fingerprint: string;
  key_state: KeyState;
  grains: Record<string, unknown>;
  first_seen: string;
  last_seen: string | null;
  /** the last revision this agent applied without a failure */
  revision_applied: string | null;
  /** the last revision it was given to apply (not a test run), and how that went */
  revision_attempted: string | null;
  attempt_status: AgentJobStatus | null;
  attempt_jid: string | null;
  /** the revision the fleet gives this agent (a rollout's batch, a rollback); null: the desired one */
  revision_assigned: string | null;
}

/** A rollout's or an operator's apply is intended; a schedule's run puts drift back. */
export type JobIntent = 'intentional' | 'corrective';

export interface JobRow {
  jid: string;
  kind: 'apply' | 'run';
  target: string;
  tgt_type: string;
  /** sls list (apply) or command (run), test flag, batch, timeout */
  args: Record<string, unknown>;
  revision: string | null;
  started_by: string;
  intent: JobIntent;
  created: string;
}

/** One agent's part in a job. */
export interface JobAgentRow {
  jid: string;
  agent_id: string;
  /** the revision sent to this agent (apply jobs) */
  revision: string | null;
  status: AgentJobStatus;
  started: string | null;
  finished: string | null;
  error: string | null;
  body: ReturnBody | null;
}

export const TERMINAL: ReadonlySet<AgentJobStatus> = new Set(['done', 'failed', 'timeout', 'lost', 'cancelled']);

const now = () => new Date().toISOString();

export class Store {
  readonly db: Database.Database;

  /** schema versions at open: `from` < `to` when this open migrated the file */
  readonly schema: { from: number; to: number };

  constructor(file: string, log?: (msg: string) => void) {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    this.db = new Database(file);
    fs.chmodSync(file, 0o600); // results hold changes and comments: root only
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    this.schema = migrate(this.db, file, log);
  }

  close(): void {
    this.db.close();
  }

  /** Small master state that must survive restarts (the last revision rolled out). */
  getMeta(key: string): string | undefined {
    return (this.q('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value;
  }

  setMeta(key: string, value: string): void {
    this.q('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
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

  // ------------------------------------------------------------ agents / keys

  getAgent(id: string): AgentRow | undefined {
    const r = this.q('SELECT * FROM agents WHERE id = ?').get(id) as Record<string, unknown> | undefined;
    return r ? agentRow(r) : undefined;
  }

  listAgents(): AgentRow[] {
    return (this.q('SELECT * FROM agents ORDER BY id').all() as Record<string, unknown>[]).map(agentRow);
  }

  /** First contact of a key: recorded as pending (or accepted with auto_accept). */
  addAgent(id: string, fingerprint: string, state: KeyState): AgentRow {
    this.q('INSERT INTO agents (id, fingerprint, key_state, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)')
      .run(id, fingerprint, state, now(), now());
    return this.getAgent(id)!;
  }

  setKeyState(id: string, state: KeyState): boolean {
    return this.q('UPDATE agents SET key_state = ? WHERE id = ?').run(state, id).changes > 0;
  }

  deleteAgent(id: string): boolean {
    return this.q('DELETE FROM agents WHERE id = ?').run(id).changes > 0;
  }

  touchAgent(id: string, grains?: Record<string, unknown>): void {
    if (grains) this.q('UPDATE agents SET last_seen = ?, grains = ? WHERE id = ?').run(now(), JSON.stringify(grains), id);
    else this.q('UPDATE agents SET last_seen = ? WHERE id = ?').run(now(), id);
  }

  // ------------------------------------------------------------ jobs

  createJob(job: Omit<JobRow, 'created' | 'intent'> & { intent?: JobIntent }, agents: { id: string; status: AgentJobStatus; error?: string; revision?: string | null }[]): void {
    const tx = this.db.transaction(() => {
      this.q('INSERT INTO jobs (jid, kind, target, tgt_type, args, revision, started_by, intent, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
        .run(job.jid, job.kind, job.target, job.tgt_type, JSON.stringify(job.args), job.revision, job.started_by, job.intent ?? 'intentional', now());
      const ins = this.q('INSERT INTO job_agents (jid, agent_id, status, error, finished, revision) VALUES (?, ?, ?, ?, ?, ?)');
      for (const m of agents) ins.run(job.jid, m.id, m.status, m.error ?? null, TERMINAL.has(m.status) ? now() : null, m.revision ?? job.revision);
    });
    tx();
  }

  getJob(jid: string): JobRow | undefined {
    const r = this.q('SELECT * FROM jobs WHERE jid = ?').get(jid) as Record<string, unknown> | undefined;
    return r ? jobRow(r) : undefined;
  }

  /** Jobs newest first, `limit` of them; with `before`, only jobs older than that jid (paging). */
  listJobs(limit: number, before?: string): (JobRow & { counts: Record<AgentJobStatus, number> })[] {
    const rows = (this.q('SELECT * FROM jobs WHERE (? IS NULL OR jid < ?) ORDER BY jid DESC LIMIT ?').all(before ?? null, before ?? null, limit) as Record<string, unknown>[]).map(jobRow);
    const cnt = this.q('SELECT status, count(*) AS n FROM job_agents WHERE jid = ? GROUP BY status');
    return rows.map((j) => {
      const counts: Record<AgentJobStatus, number> = { queued: 0, running: 0, done: 0, failed: 0, timeout: 0, lost: 0, cancelled: 0 };
      for (const c of cnt.all(j.jid) as { status: AgentJobStatus; n: number }[]) counts[c.status] = c.n;
      return { ...j, counts };
    });
  }

  getJobAgent(jid: string, agentId: string): JobAgentRow | undefined {
    const r = this.q('SELECT * FROM job_agents WHERE jid = ? AND agent_id = ?').get(jid, agentId) as
      | Record<string, unknown>
      | undefined;
    return r ? jobAgentRow(r) : undefined;
  }

  jobAgents(jid: string): JobAgentRow[] {
    return (this.q('SELECT * FROM job_agents WHERE jid = ? ORDER BY agent_id').all(jid) as Record<string, unknown>[]).map(jobAgentRow);
  }

  /** Job/agent pairs not finished: what a restarted master must account for. */
  openJobAgents(agentId?: string): JobAgentRow[] {
    const sql = `SELECT * FROM job_agents WHERE status IN ('queued','running')${agentId ? ' AND agent_id = ?' : ''} ORDER BY jid`;
    const st = this.q(sql);
    return ((agentId ? st.all(agentId) : st.all()) as Record<string, unknown>[]).map(jobAgentRow);
  }

  setJobAgentStatus(jid: string, agentId: string, status: AgentJobStatus, error?: string): void {
    if (status === 'running') {
      this.q("UPDATE job_agents SET status = ?, started = coalesce(started, ?) WHERE jid = ? AND agent_id = ?").run(status, now(), jid, agentId);
    } else {
      this.q('UPDATE job_agents SET status = ?, error = ?, finished = ? WHERE jid = ? AND agent_id = ?')
        .run(status, error ?? null, TERMINAL.has(status) ? now() : null, jid, agentId);
    }
  }

  /** Upsert one streamed state result (a later full report overwrites the same run_num). */
  putStateResult(jid: string, agentId: string, r: StateResult): void {
    this.q(
        `INSERT OR REPLACE INTO state_results (jid, agent_id, run_num, state_id, sls, fun, name, result, changes, comment, start, duration_ms, warnings)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
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

  /** The agent's final return: every result, the status, in one transaction. */
  finishJobAgent(jid: string, agentId: string, status: 'done' | 'failed', body: ReturnBody): void {
    const tx = this.db.transaction(() => {
      const revision = (this.q('SELECT revision FROM job_agents WHERE jid = ? AND agent_id = ?').get(jid, agentId) as { revision: string | null } | undefined)?.revision;
      if (body.kind === 'apply') for (const r of body.report.results) this.putStateResult(jid, agentId, r);
      const error = body.kind === 'error' ? body.error : null;
      this.q('UPDATE job_agents SET status = ?, body = ?, error = ?, finished = ? WHERE jid = ? AND agent_id = ?')
        .run(status, JSON.stringify(body), error, now(), jid, agentId);
      if (body.kind === 'apply' && revision && !body.report.test) {
        this.recordAttempt(agentId, jid, revision, status);
        // a failed run is an attempt, not the agent's revision
        if (status === 'done') this.q('UPDATE agents SET revision_applied = ? WHERE id = ?').run(revision, agentId);
      }
    });
    tx();
  }

  /** The revision an agent was last given (a real run) and how it ended. */
  recordAttempt(agentId: string, jid: string, revision: string, status: AgentJobStatus): void {
    this.q('UPDATE agents SET revision_attempted = ?, attempt_status = ?, attempt_jid = ? WHERE id = ?').run(revision, status, jid, agentId);
  }

  // ------------------------------------------------------------ releases

  desired(): string | undefined {
    return this.getMeta('desired.revision');
  }

  setDesired(sha: string): void {
    this.setMeta('desired.revision', sha);
  }

  /** The fleet gives these agents `sha` (null: the desired revision) from now on. */
  assign(ids: readonly string[], sha: string | null): void {
    const st = this.q('UPDATE agents SET revision_assigned = ? WHERE id = ?');
    this.db.transaction(() => {
      for (const id of ids) st.run(sha, id);
    })();
  }

  getRevision(sha: string): RevisionRow | undefined {
    return this.q('SELECT * FROM revisions WHERE sha = ?').get(sha) as RevisionRow | undefined;
  }

  /** A commit seen on the branch (or named by an operator), first time only. */
  addRevision(r: Omit<RevisionRow, 'seen' | 'outcome' | 'detail'> & { outcome?: RevisionOutcome; detail?: string | null }): void {
    this.q('INSERT OR IGNORE INTO revisions (sha, seen, date, author, subject, outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(r.sha, now(), r.date, r.author, r.subject, r.outcome ?? 'seen', r.detail ?? null);
  }

  setRevisionOutcome(sha: string, outcome: RevisionOutcome, detail?: string): void {
    this.q('UPDATE revisions SET outcome = ?, detail = ? WHERE sha = ?').run(outcome, detail ?? null, sha);
  }

  listRevisions(limit: number): RevisionRow[] {
    return this.q('SELECT * FROM revisions ORDER BY seen DESC, rowid DESC LIMIT ?').all(limit) as RevisionRow[];
  }

  createRollout(r: { revision: string; previous: string | null; reason: string; started_by: string }): number {
    return Number(
      this.q("INSERT INTO rollouts (revision, previous, reason, started_by, started, status) VALUES (?, ?, ?, ?, ?, 'running')")
        .run(r.revision, r.previous, r.reason, r.started_by, now()).lastInsertRowid,
    );
  }

  updateRollout(id: number, u: Partial<Pick<RolloutRow, 'status' | 'batch' | 'batches' | 'agents' | 'jids' | 'message'>>): void {
    const cur = this.getRollout(id);
    if (!cur) return;
    const n = { ...cur, ...u };
    const finished = n.status !== 'running' ? (cur.finished ?? now()) : null;
    this.q('UPDATE rollouts SET status = ?, batch = ?, batches = ?, agents = ?, jids = ?, message = ?, finished = ? WHERE id = ?')
      .run(n.status, n.batch, n.batches, JSON.stringify(n.agents), JSON.stringify(n.jids), n.message, finished, id);
  }

  getRollout(id: number): RolloutRow | undefined {
    const r = this.q('SELECT * FROM rollouts WHERE id = ?').get(id) as Record<string, unknown> | undefined;
    return r ? rolloutRow(r) : undefined;
  }

  listRollouts(limit: number): RolloutRow[] {
    return (this.q('SELECT * FROM rollouts ORDER BY id DESC LIMIT ?').all(limit) as Record<string, unknown>[]).map(rolloutRow);
  }

  /** Rollouts a master stopped in the middle of (killed, restarted). */
  closeRunningRollouts(message: string): void {
    this.q("UPDATE rollout_batches SET status = CASE status WHEN 'pending' THEN 'not_run' ELSE 'failed' END WHERE status IN ('pending','applying','verifying') AND rollout_id IN (SELECT id FROM rollouts WHERE status = 'running')").run();
    this.q("UPDATE rollouts SET status = 'failed', message = ?, finished = ? WHERE status = 'running'").run(message, now());
  }

  /** A rollout's batches as planned, before the first one runs (all pending). */
  addRolloutBatches(rolloutId: number, batches: readonly { group_num: number; group_name: string; agents: readonly string[] }[]): void {
    const ins = this.q("INSERT INTO rollout_batches (rollout_id, batch, group_num, group_name, agents, status) VALUES (?, ?, ?, ?, ?, 'pending')");
    this.db.transaction(() => batches.forEach((b, i) => ins.run(rolloutId, i + 1, b.group_num, b.group_name, JSON.stringify(b.agents))))();
  }

  /** A batch moves on (1-based `batch`); started/finished are set on the first move out of pending / into an end. */
  updateRolloutBatch(rolloutId: number, batch: number, u: { status: RolloutBatchStatus; jid?: string; offline?: readonly string[] }): void {
    const end = u.status === 'done' || u.status === 'failed' || u.status === 'skipped' || u.status === 'not_run';
    const t = now();
    this.q(
      `UPDATE rollout_batches SET status = ?, jid = COALESCE(?, jid), offline = COALESCE(?, offline),
         started = CASE WHEN ? IN ('applying','verifying') THEN COALESCE(started, ?) ELSE started END,
         finished = CASE WHEN ? THEN COALESCE(finished, ?) ELSE finished END
       WHERE rollout_id = ? AND batch = ?`,
    ).run(u.status, u.jid ?? null, u.offline ? JSON.stringify(u.offline) : null, u.status, t, end ? 1 : 0, t, rolloutId, batch);
  }

  /** Batches of a rollout that had not started when it stopped. */
  skipPendingBatches(rolloutId: number): void {
    this.q("UPDATE rollout_batches SET status = 'not_run' WHERE rollout_id = ? AND status = 'pending'").run(rolloutId);
  }

  /** One verify check after a batch, as it stands (written when it starts and after each try). */
  putVerifyResult(rolloutId: number, batch: number, r: Omit<VerifyResultRow, 'finished'> & { finished?: string | null }): void {
    this.q(
      `INSERT INTO rollout_verify (rollout_id, batch, seq, name, outcome, attempts, message, started, finished) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (rollout_id, batch, seq) DO UPDATE SET outcome = excluded.outcome, attempts = excluded.attempts, message = excluded.message, finished = excluded.finished`,
    ).run(rolloutId, batch, r.seq, r.name, r.outcome, r.attempts, r.message, r.started, r.finished ?? null);
  }

  /** A rollout's batches in order, each with its verify checks in order. */
  rolloutBatches(rolloutId: number): RolloutBatchRow[] {
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

  stateResults(jid: string, agentId: string): StateResult[] {
    const rows = this.q('SELECT * FROM state_results WHERE jid = ? AND agent_id = ? ORDER BY run_num')
      .all(jid, agentId) as Record<string, unknown>[];
    return rows.map((r) => ({
      id: String(r.state_id),
      sls: String(r.sls),
      fun: String(r.fun),
      name: String(r.name),
      result: r.result === null ? null : r.result === 1,
      changes: JSON.parse(String(r.changes)) as Record<string, unknown>,
      comment: String(r.comment),
      start: String(r.start),
      duration_ms: Number(r.duration_ms),
      run_num: Number(r.run_num),
      ...(r.warnings ? { warnings: JSON.parse(String(r.warnings)) as string[] } : {}),
    }));
  }
}

function agentRow(r: Record<string, unknown>): AgentRow {
  return {
    id: String(r.id),
    fingerprint: String(r.fingerprint),
    key_state: r.key_state as KeyState,
    grains: JSON.parse(String(r.grains ?? '{}')) as Record<string, unknown>,
    first_seen: String(r.first_seen),
    last_seen: (r.last_seen as string | null) ?? null,
    revision_applied: (r.revision_applied as string | null) ?? null,
    revision_attempted: (r.revision_attempted as string | null) ?? null,
    attempt_status: (r.attempt_status as AgentJobStatus | null) ?? null,
    attempt_jid: (r.attempt_jid as string | null) ?? null,
    revision_assigned: (r.revision_assigned as string | null) ?? null,
  };
}

export type RevisionOutcome = 'seen' | 'rolling_out' | 'rolled_out' | 'failed' | 'rolled_back' | 'refused';

export interface RevisionRow {
  sha: string;
  /** when this master first saw it */
  seen: string;
  date: string | null;
  author: string | null;
  subject: string | null;
  outcome: RevisionOutcome;
  detail: string | null;
}

export type RolloutStatus = 'running' | 'succeeded' | 'halted' | 'rolled_back' | 'failed';

export interface RolloutRow {
  id: number;
  revision: string;
  previous: string | null;
  /** push, rollout (tsalt rollout), rollback, converge (agents that were behind) */
  reason: string;
  started_by: string;
  started: string;
  finished: string | null;
  status: RolloutStatus;
  /** the batch running (1-based) of `batches` */
  batch: number;
  batches: number;
  /** agents the rollout sent the revision to so far */
  agents: string[];
  jids: string[];
  message: string | null;
}

/** pending (not reached yet), applying (its job runs), verifying, done, failed, skipped (all offline), not_run (the rollout stopped first) */
export type RolloutBatchStatus = 'pending' | 'applying' | 'verifying' | 'done' | 'failed' | 'skipped' | 'not_run';
export type VerifyOutcome = 'running' | 'passed' | 'failed';

export interface VerifyResultRow {
  /** the check's place in rollout.verify (0-based) */
  seq: number;
  name: string;
  outcome: VerifyOutcome;
  /** tries so far (1 + retries at most) */
  attempts: number;
  /** why the last try failed (null when it passed) */
  message: string | null;
  started: string;
  finished: string | null;
}

export interface RolloutBatchRow {
  /** 1-based, over the whole rollout */
  batch: number;
  /** 1-based group (rollout.groups, serial_by), and what it is */
  group_num: number;
  group_name: string;
  /** the agents planned in it */
  agents: string[];
  /** those of them that were offline when it ran */
  offline: string[];
  jid: string | null;
  status: RolloutBatchStatus;
  started: string | null;
  finished: string | null;
  verify: VerifyResultRow[];
}

function rolloutRow(r: Record<string, unknown>): RolloutRow {
  return {
    id: Number(r.id),
    revision: String(r.revision),
    previous: (r.previous as string | null) ?? null,
    reason: String(r.reason),
    started_by: String(r.started_by),
    started: String(r.started),
    finished: (r.finished as string | null) ?? null,
    status: r.status as RolloutStatus,
    batch: Number(r.batch),
    batches: Number(r.batches),
    agents: JSON.parse(String(r.agents)) as string[],
    jids: JSON.parse(String(r.jids)) as string[],
    message: (r.message as string | null) ?? null,
  };
}

function jobRow(r: Record<string, unknown>): JobRow {
  return {
    jid: String(r.jid),
    kind: r.kind as JobRow['kind'],
    target: String(r.target),
    tgt_type: String(r.tgt_type),
    args: JSON.parse(String(r.args)) as Record<string, unknown>,
    revision: (r.revision as string | null) ?? null,
    started_by: String(r.started_by),
    intent: r.intent === 'corrective' ? 'corrective' : 'intentional',
    created: String(r.created),
  };
}

function jobAgentRow(r: Record<string, unknown>): JobAgentRow {
  return {
    jid: String(r.jid),
    agent_id: String(r.agent_id),
    revision: (r.revision as string | null) ?? null,
    status: r.status as AgentJobStatus,
    started: (r.started as string | null) ?? null,
    finished: (r.finished as string | null) ?? null,
    error: (r.error as string | null) ?? null,
    body: r.body ? (JSON.parse(String(r.body)) as ReturnBody) : null,
  };
}

let lastJid = '';
/** Salt's jid format (UTC, microseconds), strictly increasing within this process. */
export function newJid(d = new Date()): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const us = d.getUTCMilliseconds() * 1000 + Math.floor(Math.random() * 1000);
  let jid = `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}${p(us, 6)}`;
  if (jid <= lastJid) jid = (BigInt(lastJid) + 1n).toString();
  lastJid = jid;
  return jid;
}
