/**
 * What the console reads from the master's SQLite store, read-only. The few questions the
 * store's own API does not answer (a job's duration, an agent's last attempted revision) are
 * asked here in SQL, so the console never needs a write path into the store.
 */
import type Database from 'better-sqlite3';
import type { AgentJobStatus } from '../../protocol/messages.js';
import type { StateResult } from '../../protocol/results.js';
import type { JobAgentRow, JobRow, Store } from '../store.js';

export type StatusCounts = Record<AgentJobStatus, number>;

export interface JobSummary extends JobRow {
  counts: StatusCounts;
  /** last agent's end, when no agent is queued or running */
  finished: string | null;
  running: boolean;
}

export interface AgentJobRow {
  jid: string;
  kind: string;
  target: string;
  tgt_type: string;
  args: Record<string, unknown>;
  started_by: string;
  created: string;
  status: AgentJobStatus;
  finished: string | null;
}

const OPEN: ReadonlySet<AgentJobStatus> = new Set(['queued', 'running']);

export function emptyCounts(): StatusCounts {
  return { queued: 0, running: 0, done: 0, failed: 0, timeout: 0, lost: 0, cancelled: 0 };
}

export class ConsoleQueries {
  private readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();

  constructor(private readonly store: Store) {
    this.db = store.db;
  }

  private q(sql: string): Database.Statement {
    let st = this.statements.get(sql);
    if (!st) this.statements.set(sql, (st = this.db.prepare(sql)));
    return st;
  }

  /** Newest first; `before` pages back (a jid). */
  jobs(limit: number, before?: string): JobSummary[] {
    const rows = before
      ? (this.q('SELECT jid FROM jobs WHERE jid < ? ORDER BY jid DESC LIMIT ?').all(before, limit) as { jid: string }[])
      : (this.q('SELECT jid FROM jobs ORDER BY jid DESC LIMIT ?').all(limit) as { jid: string }[]);
    return rows.map((r) => this.jobSummary(r.jid)!);
  }

  jobSummary(jid: string): JobSummary | undefined {
    const job = this.store.getJob(jid);
    if (!job) return undefined;
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
    const running = rows.some((c) => OPEN.has(c.status));
    return { ...job, counts, finished: running ? null : finished, running };
  }

  jobAgents(jid: string): JobAgentRow[] {
    return this.store.jobAgents(jid);
  }

  agentResults(jid: string, agentId: string): StateResult[] {
    return this.store.stateResults(jid, agentId);
  }

  /** Per agent of a job: status and how many state results arrived (what a live page watches). */
  signatures(jid: string): Map<string, string> {
    const rows = this.q(
      `SELECT m.agent_id AS id, m.status AS status,
              (SELECT count(*) FROM state_results s WHERE s.jid = m.jid AND s.agent_id = m.agent_id) AS n
       FROM job_agents m WHERE m.jid = ?`,
    ).all(jid) as { id: string; status: string; n: number }[];
    return new Map(rows.map((r) => [r.id, `${r.status}:${r.n}`]));
  }

  /** Test runs (`--test`) of a revision, newest first: a rollback's predicted changes. */
  testRunsOf(revision: string, limit: number): JobSummary[] {
    const rows = this.q(
      `SELECT jid FROM jobs WHERE revision = ? AND kind = 'apply' AND coalesce(json_extract(args, '$.test'), 0) = 1 ORDER BY jid DESC LIMIT ?`,
    ).all(revision, limit) as { jid: string }[];
    return rows.map((r) => this.jobSummary(r.jid)!);
  }

  /** Jobs a rollout's automatic rollback started (`rollback:<user>`, the previous revision, after the rollout began). */
  rollbackJobs(revision: string, since: string): JobSummary[] {
    const rows = this.q(`SELECT jid FROM jobs WHERE revision = ? AND started_by LIKE 'rollback:%' AND created >= ? ORDER BY jid`).all(revision, since) as { jid: string }[];
    return rows.map((r) => this.jobSummary(r.jid)!);
  }

  agentJobs(agentId: string, limit: number): AgentJobRow[] {
    const rows = this.q(
      `SELECT j.jid, j.kind, j.target, j.tgt_type, j.args, j.started_by, j.created, m.status, m.finished
       FROM job_agents m JOIN jobs j ON j.jid = m.jid WHERE m.agent_id = ? ORDER BY m.jid DESC LIMIT ?`,
    ).all(agentId, limit) as (Omit<AgentJobRow, 'args'> & { args: string })[];
    return rows.map((r) => ({ ...r, args: JSON.parse(r.args) as Record<string, unknown> }));
  }
}
