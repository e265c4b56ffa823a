/**
 * What the console reads from the master's SQLite store, read-only. The few questions the
 * store's own API does not answer (a job's duration, an agent's last attempted revision) are
 * asked here in SQL, so the console never needs a write path into the store.
 */
import type Database from 'better-sqlite3';
import type { MinionStatus } from '../../protocol/messages.js';
import type { StateResult } from '../../protocol/results.js';
import type { JobMinionRow, JobRow, Store } from '../store.js';

export type StatusCounts = Record<MinionStatus, number>;

export interface JobSummary extends JobRow {
  counts: StatusCounts;
  /** last agent's end, when no agent is queued or running */
  finished: string | null;
  running: boolean;
}

export interface AttemptRow {
  agent_id: string;
  jid: string;
  revision: string | null;
  status: MinionStatus;
}

export interface AgentJobRow {
  jid: string;
  kind: string;
  target: string;
  tgt_type: string;
  args: Record<string, unknown>;
  started_by: string;
  created: string;
  status: MinionStatus;
  finished: string | null;
}

const OPEN: ReadonlySet<MinionStatus> = new Set(['queued', 'running']);

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
    const rows = this.q('SELECT status, count(*) AS n, max(finished) AS fin FROM job_minions WHERE jid = ? GROUP BY status').all(jid) as {
      status: MinionStatus;
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

  minions(jid: string): JobMinionRow[] {
    return this.store.jobMinions(jid);
  }

  minionResults(jid: string, agentId: string): StateResult[] {
    return this.store.stateResults(jid, agentId);
  }

  /** Per agent of a job: status and how many state results arrived (what a live page watches). */
  signatures(jid: string): Map<string, string> {
    const rows = this.q(
      `SELECT m.agent_id AS id, m.status AS status,
              (SELECT count(*) FROM state_results s WHERE s.jid = m.jid AND s.agent_id = m.agent_id) AS n
       FROM job_minions m WHERE m.jid = ?`,
    ).all(jid) as { id: string; status: string; n: number }[];
    return new Map(rows.map((r) => [r.id, `${r.status}:${r.n}`]));
  }

  /** Each agent's latest real (not test) apply: the revision it last attempted and how it went. */
  lastAttempts(): Map<string, AttemptRow> {
    const rows = this.q(
      `SELECT m.agent_id AS agent_id, max(m.jid) AS jid, j.revision AS revision, m.status AS status
       FROM job_minions m JOIN jobs j ON j.jid = m.jid
       WHERE j.kind = 'apply' AND coalesce(json_extract(j.args, '$.test'), 0) = 0 AND m.status NOT IN ('queued', 'cancelled')
       GROUP BY m.agent_id`,
    ).all() as AttemptRow[];
    return new Map(rows.map((r) => [r.agent_id, r]));
  }

  /** The revision an agent had applied before this job (its previous real apply that returned). */
  previousRevision(agentId: string, jid: string): string | null | undefined {
    const r = this.q(
      `SELECT j.revision AS revision FROM job_minions m JOIN jobs j ON j.jid = m.jid
       WHERE m.agent_id = ? AND m.jid < ? AND j.kind = 'apply' AND coalesce(json_extract(j.args, '$.test'), 0) = 0
         AND m.status IN ('done', 'failed') AND m.body IS NOT NULL
       ORDER BY m.jid DESC LIMIT 1`,
    ).get(agentId, jid) as { revision: string | null } | undefined;
    return r ? r.revision : undefined;
  }

  agentJobs(agentId: string, limit: number): AgentJobRow[] {
    const rows = this.q(
      `SELECT j.jid, j.kind, j.target, j.tgt_type, j.args, j.started_by, j.created, m.status, m.finished
       FROM job_minions m JOIN jobs j ON j.jid = m.jid WHERE m.agent_id = ? ORDER BY m.jid DESC LIMIT ?`,
    ).all(agentId, limit) as (Omit<AgentJobRow, 'args'> & { args: string })[];
    return rows.map((r) => ({ ...r, args: JSON.parse(r.args) as Record<string, unknown> }));
  }
}
