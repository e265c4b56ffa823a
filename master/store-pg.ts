/**
 * The Store on PostgreSQL: one database shared by several masters (master.yaml
 * `store: postgres://user:password@host/database`). Same tables, columns and versions as the
 * SQLite store (store-schema-pg.ts); loaded only when a master names a postgres:// store.
 *
 * Every method is one statement or one transaction on one pooled client. Transitions that must
 * happen once for the fleet (an agent's return stored, a run ended) are a single
 * `UPDATE … WHERE status NOT IN (…)`: when two masters race, PostgreSQL's row lock makes the
 * second re-check the condition after the first commits, and it changes nothing.
 */
import pg from 'pg';
import type { StateResult } from '../protocol/results.js';
import type { ReturnBody } from '../protocol/messages.js';
import type { AgentJobStatus } from '../protocol/cli-messages.js';
import { migratePg } from './store-schema-pg.js';
import { redact } from './store.js';
import {
  TERMINAL,
  emptyCounts,
  type AgentJobRow,
  type AgentRow,
  type CallRow,
  type JobAgentRow,
  type JobProgress,
  type JobReturnRow,
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

const now = () => new Date().toISOString();
const TERMINAL_LIST = [...TERMINAL];

type Row = Record<string, unknown>;
type Queryable = Pick<pg.ClientBase, 'query'>;

/** Opening failed: one line naming the store (its URL without the password) and why. */
export class PgStoreError extends Error {}

/** What went wrong reaching the server, in words an operator acts on. */
function openFailure(label: string, e: unknown): Error {
  const err = e as Error & { code?: string };
  const msg = (err.message || String(e)).split('\n')[0] ?? '';
  switch (err.code) {
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'ETIMEDOUT':
    case 'ENOENT': // a unix socket directory without a server
      return new PgStoreError(`${label}: cannot reach the PostgreSQL server (${msg})`);
    case '28P01': // invalid_password
    case '28000': // invalid_authorization_specification (pg_hba.conf)
      return new PgStoreError(`${label}: PostgreSQL refused the login (${msg})`);
    case '3D000': // invalid_catalog_name
      return new PgStoreError(`${label}: ${msg} (create it: createdb -O <user> <database>)`);
    case '42501': // insufficient_privilege
      return new PgStoreError(`${label}: the user may not create the tsalt tables (${msg}); make it the database's owner`);
  }
  if (/timeout/i.test(msg)) return new PgStoreError(`${label}: cannot reach the PostgreSQL server (${msg})`);
  if (err instanceof PgStoreError) return err;
  // SchemaError (a newer database) already names the store
  if (msg.startsWith(label)) return err;
  return new PgStoreError(`${label}: ${msg}`);
}

/** Connects, migrates, and returns the store; a failure is a PgStoreError of one line. */
export async function openPgStore(url: string, log?: (msg: string) => void): Promise<PgStore> {
  const label = redact(url);
  const pool = new pg.Pool({
    connectionString: url,
    application_name: 'tsalt-master',
    // an unreachable host must fail the start, not hang it
    connectionTimeoutMillis: 15_000,
    max: 10,
  });
  // a pooled idle connection that dies (server restart) is replaced on the next query; without
  // a listener the pool's 'error' event would end the master
  pool.on('error', (e) => log?.(`${label}: idle connection lost: ${e.message}`));
  let schema: { from: number; to: number };
  try {
    const c = await pool.connect();
    try {
      schema = await migratePg(c, label, log);
    } finally {
      c.release();
    }
  } catch (e) {
    await pool.end().catch(() => undefined);
    throw openFailure(label, e);
  }
  return new PgStore(url, label, pool, schema);
}

export class PgStore implements Store {
  readonly kind = 'postgres' as const;

  constructor(
    /** the full URL (with its password): for the bus's own LISTEN connection */
    readonly url: string,
    readonly label: string,
    /** the pool the store's queries use (other master modules may run their own statements on it) */
    readonly pool: pg.Pool,
    readonly schema: { from: number; to: number },
  ) {}

  async close(): Promise<void> {
    await this.pool.end();
  }

  /** A connection of its own, outside the pool (LISTEN needs one that stays open); the caller ends it. */
  async dedicatedClient(): Promise<pg.Client> {
    const c = new pg.Client({ connectionString: this.url, application_name: 'tsalt-master', connectionTimeoutMillis: 15_000 });
    await c.connect();
    return c;
  }

  /** `fn` in one transaction on one client: committed when it resolves, rolled back when it throws. */
  async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect().catch((e: unknown) => Promise.reject(this.named(e)));
    try {
      await c.query('BEGIN');
      const r = await fn(c);
      await c.query('COMMIT');
      return r;
    } catch (e) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw this.named(e);
    } finally {
      c.release();
    }
  }

  /** One statement; its failure names the store (an operator reading "connect ECONNREFUSED" must know it is the database). */
  private async run(sql: string, params: unknown[] = [], on: Queryable = this.pool): Promise<pg.QueryResult> {
    try {
      return await on.query(sql, params.map(withoutNul));
    } catch (e) {
      throw this.named(e);
    }
  }

  private named(e: unknown): Error {
    const err = e as Error & { code?: string };
    if (!(err instanceof Error) || err.message.startsWith(`${this.label}: `)) return err;
    const named = new Error(`${this.label}: ${err.message}`, { cause: err }) as Error & { code?: string };
    named.code = err.code;
    return named;
  }

  private async rows<T = Row>(sql: string, params: unknown[] = [], on: Queryable = this.pool): Promise<T[]> {
    return (await this.run(sql, params, on)).rows as T[];
  }

  private async count(sql: string, params: unknown[] = [], on: Queryable = this.pool): Promise<number> {
    return (await this.run(sql, params, on)).rowCount ?? 0;
  }

  // ------------------------------------------------------------ meta

  async getMeta(key: string): Promise<string | undefined> {
    return (await this.rows<{ value: string }>('SELECT value FROM meta WHERE key = $1', [key]))[0]?.value;
  }

  async setMeta(key: string, value: string): Promise<void> {
    await this.run('INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [key, value]);
  }

  // ------------------------------------------------------------ agents / keys

  async getAgent(id: string): Promise<AgentRow | undefined> {
    const r = (await this.rows('SELECT * FROM agents WHERE id = $1', [id]))[0];
    return r ? agentRow(r) : undefined;
  }

  async listAgents(on: Queryable = this.pool): Promise<AgentRow[]> {
    // COLLATE "C": byte order, as SQLite sorts
    return (await this.rows('SELECT * FROM agents ORDER BY id COLLATE "C"', [], on)).map(agentRow);
  }

  async listKeys(): Promise<AgentKey[]> {
    return (await this.rows('SELECT id, fingerprint, key_state FROM agents ORDER BY id COLLATE "C"')).map((r) => ({ id: String(r.id), fingerprint: String(r.fingerprint), key_state: r.key_state as KeyState }));
  }

  async addAgent(id: string, fingerprint: string, state: KeyState): Promise<AgentRow> {
    const t = now();
    await this.run('INSERT INTO agents (id, fingerprint, key_state, first_seen, last_seen) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING', [id, fingerprint, state, t, t]);
    return (await this.getAgent(id))!;
  }

  async setKeyState(id: string, state: KeyState): Promise<boolean> {
    return (await this.count('UPDATE agents SET key_state = $1 WHERE id = $2', [state, id])) > 0;
  }

  async deleteAgent(id: string): Promise<boolean> {
    return (await this.count('DELETE FROM agents WHERE id = $1', [id])) > 0;
  }

  async touchAgent(id: string, grains?: Record<string, unknown>): Promise<void> {
    if (grains) await this.run('UPDATE agents SET last_seen = $1, grains = $2 WHERE id = $3', [now(), JSON.stringify(grains), id]);
    else await this.run('UPDATE agents SET last_seen = $1 WHERE id = $2', [now(), id]);
  }

  async touchAgents(ids: string[]): Promise<void> {
    if (ids.length) await this.run('UPDATE agents SET last_seen = $1 WHERE id = ANY($2::text[])', [now(), ids]);
  }

  async recordAttempt(agentId: string, jid: string, revision: string, status: AgentJobStatus, on: Queryable = this.pool): Promise<void> {
    await this.run('UPDATE agents SET revision_attempted = $1, attempt_status = $2, attempt_jid = $3 WHERE id = $4', [revision, status, jid, agentId], on);
  }

  // ------------------------------------------------------------ jobs

  async createJob(job: NewJob, agents: readonly NewJobAgent[]): Promise<void> {
    const t = now();
    await this.tx(async (c) => {
      // through run(): a target is the operator's text (no NUL reaches PostgreSQL)
      await this.run('INSERT INTO jobs (jid, kind, target, tgt_type, args, revision, started_by, intent, created) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)', [
        job.jid,
        job.kind,
        job.target,
        job.tgt_type,
        JSON.stringify(job.args),
        job.revision,
        job.started_by,
        job.intent ?? 'intentional',
        t,
      ], c);
      if (!agents.length) return;
      // one statement for all the agents (10,000 rows are one round trip, not 10,000)
      await c.query(
        `INSERT INTO job_agents (jid, agent_id, status, error, finished, revision)
         SELECT $1, a.id, a.status, a.error, a.finished, a.revision FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) AS a(id, status, error, finished, revision)`,
        [
          job.jid,
          agents.map((a) => a.id),
          agents.map((a) => a.status),
          agents.map((a) => a.error ?? null),
          agents.map((a) => (TERMINAL.has(a.status) ? t : null)),
          agents.map((a) => a.revision ?? job.revision),
        ],
      );
    });
  }

  async getJob(jid: string): Promise<JobRow | undefined> {
    const r = (await this.rows('SELECT * FROM jobs WHERE jid = $1', [jid]))[0];
    return r ? jobRow(r) : undefined;
  }

  async listJobs(limit: number, before?: string): Promise<JobWithCounts[]> {
    const jobs = (await this.rows('SELECT * FROM jobs WHERE ($1::text IS NULL OR jid < $1) ORDER BY jid DESC LIMIT $2', [before ?? null, limit])).map(jobRow);
    if (!jobs.length) return [];
    const counts = await this.rows<{ jid: string; status: AgentJobStatus; n: number }>(
      'SELECT jid, status, count(*)::int AS n FROM job_agents WHERE jid = ANY($1::text[]) GROUP BY jid, status',
      [jobs.map((j) => j.jid)],
    );
    return jobs.map((j) => {
      const c = emptyCounts();
      for (const r of counts) if (r.jid === j.jid) c[r.status] = r.n;
      return { ...j, counts: c };
    });
  }

  async markKilled(jid: string, by: string): Promise<void> {
    await this.run('UPDATE jobs SET killed_by = $1, killed_at = $2 WHERE jid = $3 AND killed_by IS NULL', [by, now(), jid]);
  }

  async getJobAgent(jid: string, agentId: string): Promise<JobAgentRow | undefined> {
    const r = (await this.rows('SELECT * FROM job_agents WHERE jid = $1 AND agent_id = $2', [jid, agentId]))[0];
    return r ? jobAgentRow(r) : undefined;
  }

  async jobAgents(jid: string): Promise<JobAgentRow[]> {
    return (await this.rows('SELECT * FROM job_agents WHERE jid = $1 ORDER BY agent_id COLLATE "C"', [jid])).map(jobAgentRow);
  }

  async jobAgentsOf(jid: string, agentIds: readonly string[]): Promise<JobAgentRow[]> {
    if (!agentIds.length) return [];
    return (await this.rows('SELECT * FROM job_agents WHERE jid = $1 AND agent_id = ANY($2::text[])', [jid, agentIds])).map(jobAgentRow);
  }

  async openJobAgents(agentId?: string): Promise<JobAgentRow[]> {
    const rows = agentId
      ? await this.rows("SELECT * FROM job_agents WHERE status IN ('queued','running') AND agent_id = $1 ORDER BY jid", [agentId])
      : await this.rows("SELECT * FROM job_agents WHERE status IN ('queued','running') ORDER BY jid, agent_id COLLATE \"C\"");
    return rows.map(jobAgentRow);
  }

  async setJobAgentStatus(jid: string, agentId: string, status: AgentJobStatus, error?: string): Promise<boolean> {
    if (status === 'running') {
      return (
        (await this.count("UPDATE job_agents SET status = 'running', started = coalesce(started, $1) WHERE jid = $2 AND agent_id = $3 AND status IN ('queued','running')", [now(), jid, agentId])) > 0
      );
    }
    return (
      (await this.count('UPDATE job_agents SET status = $1, error = $2, finished = $3 WHERE jid = $4 AND agent_id = $5 AND status <> ALL($6::text[])', [
        status,
        error ?? null,
        TERMINAL.has(status) ? now() : null,
        jid,
        agentId,
        TERMINAL_LIST,
      ])) > 0
    );
  }

  async setJobAgentsRunning(runs: readonly { jid: string; agentId: string }[]): Promise<boolean[]> {
    if (!runs.length) return [];
    // one statement for the tick's runs; which moved comes back by (jid, agent)
    const moved = await this.rows<{ jid: string; agent_id: string }>(
      `UPDATE job_agents j SET status = 'running', started = coalesce(j.started, $1)
         FROM unnest($2::text[], $3::text[]) AS u(jid, agent_id)
        WHERE j.jid = u.jid AND j.agent_id = u.agent_id AND j.status IN ('queued','running')
        RETURNING j.jid, j.agent_id`,
      [now(), runs.map((r) => r.jid), runs.map((r) => r.agentId)],
    );
    const ok = new Set(moved.map((m) => `${m.jid}\0${m.agent_id}`));
    return runs.map((r) => ok.has(`${r.jid}\0${r.agentId}`));
  }

  async putStateResult(jid: string, agentId: string, r: StateResult): Promise<void> {
    await this.putResults(jid, agentId, [r], this.pool);
  }

  /**
   * Stores results in one statement; a run_num stored already (streamed, here or by another
   * master) is not written again: no new row version, no WAL (store-api.ts putStateResult).
   */
  private async putResults(jid: string, agentId: string, results: readonly StateResult[], on: Queryable): Promise<void> {
    if (!results.length) return;
    await this.run(
      `INSERT INTO state_results (jid, agent_id, run_num, state_id, sls, fun, name, result, changes, comment, start, duration_ms, warnings)
       SELECT $1, $2, r.* FROM unnest($3::int[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int[], $9::text[], $10::text[], $11::text[], $12::float8[], $13::text[])
         AS r(run_num, state_id, sls, fun, name, result, changes, comment, start, duration_ms, warnings)
       ON CONFLICT (jid, agent_id, run_num) DO NOTHING`,
      [
        jid,
        agentId,
        results.map((r) => r.run_num),
        results.map((r) => r.id),
        results.map((r) => r.sls),
        results.map((r) => r.fun),
        results.map((r) => r.name),
        results.map((r) => (r.result === null ? null : r.result ? 1 : 0)),
        results.map((r) => JSON.stringify(r.changes)),
        results.map((r) => r.comment),
        results.map((r) => r.start),
        results.map((r) => r.duration_ms),
        results.map((r) => (r.warnings ? JSON.stringify(r.warnings) : null)),
      ],
      on,
    );
  }

  async finishJobAgent(jid: string, agentId: string, status: 'done' | 'failed', body: ReturnBody): Promise<boolean> {
    return this.tx((c) => this.finishOn(c, jid, agentId, status, body));
  }

  async finishJobAgents(returns: readonly JobReturnRow[]): Promise<boolean[]> {
    // one transaction, one commit and a few statements for the tick's returns (each return's
    // statements one after the other were most of a master's time on PostgreSQL); an error
    // rolls all back and the caller (master/tick-batcher.ts) stores each on its own
    if (!returns.length) return [];
    // a run's first return in the tick is the one stored: a second copy is a duplicate, as it
    // would be stored one after the other
    const key = (r: { jid: string; agentId: string }) => `${r.jid}\0${r.agentId}`;
    const first = new Map<string, JobReturnRow>();
    for (const r of returns) if (!first.has(key(r))) first.set(key(r), r);
    const rs = [...first.values()];
    return this.tx(async (c) => {
      // the returns as one JSON parameter (bodies are the big part: one native stringify, not the
      // pg client's element-by-element escaping of a text array)
      const moved = await this.rows<{ jid: string; agent_id: string; revision: string | null }>(
        `UPDATE job_agents j SET status = u.status, body = u.body, error = u.error, finished = $1
           FROM json_to_recordset($2::json) AS u(jid text, agent_id text, status text, body text, error text)
          WHERE j.jid = u.jid AND j.agent_id = u.agent_id AND j.status NOT IN ('done','failed')
          RETURNING j.jid, j.agent_id, j.revision`,
        [now(), jsonParam(rs.map((r) => ({ jid: r.jid, agent_id: r.agentId, status: r.status, body: JSON.stringify(r.body), error: r.body.kind === 'error' ? r.body.error : null })))],
        c,
      );
      const revisionOf = new Map(moved.map((m) => [`${m.jid}\0${m.agent_id}`, m.revision]));
      const stored = rs.filter((r) => revisionOf.has(key(r)));
      await this.putResultsOf(stored.flatMap((r) => (r.body.kind === 'apply' ? r.body.report.results.map((result) => ({ jid: r.jid, agentId: r.agentId, result })) : [])), c);
      // each agent's attempt (and the revision it applied): the tick's last return of an agent wins, as one after the other
      const attempts = new Map<string, { agentId: string; jid: string; revision: string; status: string; applied: string | null }>();
      for (const r of stored) {
        const revision = revisionOf.get(key(r));
        if (r.body.kind !== 'apply' || !revision || r.body.report.test) continue;
        // a failed run is an attempt, not the agent's revision
        const applied = r.status === 'done' ? revision : (attempts.get(r.agentId)?.applied ?? null);
        attempts.set(r.agentId, { agentId: r.agentId, jid: r.jid, revision, status: r.status, applied });
      }
      if (attempts.size) {
        const a = [...attempts.values()];
        await this.run(
          `UPDATE agents SET revision_attempted = u.revision, attempt_status = u.status, attempt_jid = u.jid, revision_applied = coalesce(u.applied, agents.revision_applied)
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS u(id, jid, revision, status, applied) WHERE agents.id = u.id`,
          [a.map((x) => x.agentId), a.map((x) => x.jid), a.map((x) => x.revision), a.map((x) => x.status), a.map((x) => x.applied)],
          c,
        );
      }
      return returns.map((r) => first.get(key(r)) === r && revisionOf.has(key(r)));
    });
  }

  async putStateResults(rows: readonly { jid: string; agentId: string; result: StateResult }[]): Promise<void> {
    // one statement, all or nothing by itself: no BEGIN/COMMIT round trips around it
    await this.putResultsOf(rows, this.pool);
  }

  /**
   * Stores several runs' results in one statement; a run_num stored already is not written
   * again, and a run_num twice in `rows` keeps the first (as one after the other would).
   */
  private async putResultsOf(rows: readonly { jid: string; agentId: string; result: StateResult }[], on: Queryable): Promise<void> {
    const first = new Map<string, { jid: string; agentId: string; result: StateResult }>();
    for (const r of rows) {
      const k = `${r.jid}\0${r.agentId}\0${r.result.run_num}`;
      if (!first.has(k)) first.set(k, r);
    }
    const rs = [...first.values()];
    if (!rs.length) return;
    // the rows as one JSON parameter: one native JSON.stringify, where 13 array parameters were
    // each escaped element by element in JavaScript by the pg client (a tick's thousands of rows)
    await this.run(
      `INSERT INTO state_results (jid, agent_id, run_num, state_id, sls, fun, name, result, changes, comment, start, duration_ms, warnings)
       SELECT r.jid, r.agent_id, r.run_num, r.state_id, r.sls, r.fun, r.name, r.result, r.changes, r.comment, r.start, r.duration_ms, r.warnings
         FROM json_to_recordset($1::json) AS r(jid text, agent_id text, run_num int, state_id text, sls text, fun text, name text, result int, changes text, comment text, start text, duration_ms float8, warnings text)
       ON CONFLICT (jid, agent_id, run_num) DO NOTHING`,
      [
        jsonParam(
          rs.map(({ jid, agentId, result: r }) => ({
            jid,
            agent_id: agentId,
            run_num: r.run_num,
            state_id: r.id,
            sls: r.sls,
            fun: r.fun,
            name: r.name,
            result: r.result === null ? null : r.result ? 1 : 0,
            changes: JSON.stringify(r.changes),
            comment: r.comment,
            start: r.start,
            duration_ms: r.duration_ms,
            warnings: r.warnings ? JSON.stringify(r.warnings) : null,
          })),
        ),
      ],
      on,
    );
  }

  private async finishOn(c: pg.PoolClient, jid: string, agentId: string, status: 'done' | 'failed', body: ReturnBody): Promise<boolean> {
    {
      const error = body.kind === 'error' ? body.error : null;
      // the transition first: a second return (re-sent spool, another master) changes nothing
      const moved = await this.rows<{ revision: string | null }>(
        "UPDATE job_agents SET status = $1, body = $2, error = $3, finished = $4 WHERE jid = $5 AND agent_id = $6 AND status NOT IN ('done','failed') RETURNING revision",
        [status, JSON.stringify(body), error, now(), jid, agentId],
        c,
      );
      if (!moved.length) return false;
      const revision = moved[0]!.revision;
      if (body.kind === 'apply') await this.putResults(jid, agentId, body.report.results, c);
      if (body.kind === 'apply' && revision && !body.report.test) {
        await this.recordAttempt(agentId, jid, revision, status, c);
        // a failed run is an attempt, not the agent's revision
        if (status === 'done') await c.query('UPDATE agents SET revision_applied = $1 WHERE id = $2', [revision, agentId]);
      }
      return true;
    }
  }

  async stateResults(jid: string, agentId: string): Promise<StateResult[]> {
    return (await this.rows('SELECT * FROM state_results WHERE jid = $1 AND agent_id = $2 ORDER BY run_num', [jid, agentId])).map(stateResultRow);
  }

  async stateResultsOf(jid: string, agentIds: readonly string[]): Promise<Map<string, StateResult[]>> {
    const out = new Map<string, StateResult[]>();
    if (!agentIds.length) return out;
    for (const r of await this.rows('SELECT * FROM state_results WHERE jid = $1 AND agent_id = ANY($2::text[]) ORDER BY agent_id, run_num', [jid, agentIds])) {
      const id = String(r.agent_id);
      let list = out.get(id);
      if (!list) out.set(id, (list = []));
      list.push(stateResultRow(r));
    }
    return out;
  }

  async jobProgress(jid: string): Promise<JobProgress> {
    const counts = emptyCounts();
    let finished: string | null = null;
    const rows = await this.rows<{ status: AgentJobStatus; n: number; fin: string | null }>(
      'SELECT status, count(*)::int AS n, max(finished) AS fin FROM job_agents WHERE jid = $1 GROUP BY status',
      [jid],
    );
    for (const c of rows) {
      counts[c.status] = c.n;
      if (c.fin && (!finished || c.fin > finished)) finished = c.fin;
    }
    return { counts, finished };
  }

  async jobResultCounts(jid: string): Promise<{ agent_id: string; status: AgentJobStatus; results: number }[]> {
    return this.rows(
      `SELECT m.agent_id AS agent_id, m.status AS status,
              (SELECT count(*)::int FROM state_results s WHERE s.jid = m.jid AND s.agent_id = m.agent_id) AS results
       FROM job_agents m WHERE m.jid = $1 ORDER BY m.agent_id COLLATE "C"`,
      [jid],
    );
  }

  async changedResults(jid: string): Promise<number> {
    return (await this.rows<{ n: number }>("SELECT count(*)::int AS n FROM state_results WHERE jid = $1 AND result = 1 AND changes <> '{}'", [jid]))[0]!.n;
  }

  async testRunJids(revision: string, limit: number): Promise<string[]> {
    // SQLite's json_extract gives 1 for true: either spelling counts
    const rows = await this.rows<{ jid: string }>(
      `SELECT jid FROM jobs WHERE revision = $1 AND kind = 'apply' AND (args::jsonb -> 'test') IN ('true'::jsonb, '1'::jsonb) ORDER BY jid DESC LIMIT $2`,
      [revision, limit],
    );
    return rows.map((r) => r.jid);
  }

  async rollbackJids(revision: string, since: string): Promise<string[]> {
    const rows = await this.rows<{ jid: string }>(`SELECT jid FROM jobs WHERE revision = $1 AND started_by LIKE 'rollback:%' AND created >= $2 ORDER BY jid`, [revision, since]);
    return rows.map((r) => r.jid);
  }

  async agentJobs(agentId: string, limit: number): Promise<AgentJobRow[]> {
    const rows = await this.rows<Omit<AgentJobRow, 'args'> & { args: string }>(
      `SELECT j.jid, j.kind, j.target, j.tgt_type, j.args, j.started_by, j.created, m.status, m.finished
       FROM job_agents m JOIN jobs j ON j.jid = m.jid WHERE m.agent_id = $1 ORDER BY m.jid DESC LIMIT $2`,
      [agentId, limit],
    );
    return rows.map((r) => ({ ...r, args: JSON.parse(r.args) as Record<string, unknown> }));
  }

  // ------------------------------------------------------------ releases

  async desired(): Promise<string | undefined> {
    return this.getMeta('desired.revision');
  }

  async setDesired(sha: string): Promise<void> {
    await this.setMeta('desired.revision', sha);
  }

  async moveDesired(from: string | undefined, to: string, pins: readonly DesiredPin[] = []): Promise<boolean> {
    return this.tx(async (c) => {
      // the compare and the set in one statement: under READ COMMITTED an UPDATE waiting on
      // another's row lock checks its WHERE again against the row that one committed, and of
      // two first inserts one conflicts
      const moved =
        from === undefined
          ? await this.run("INSERT INTO meta (key, value) VALUES ('desired.revision', $1) ON CONFLICT (key) DO NOTHING", [to], c)
          : await this.run("UPDATE meta SET value = $1 WHERE key = 'desired.revision' AND value = $2", [to, from], c);
      if (moved.rowCount !== 1) return false;
      for (const p of pins) await this.run('UPDATE agents SET revision_assigned = $1 WHERE id = $2', [p.sha, p.id], c);
      return true;
    });
  }

  async assign(ids: readonly string[], sha: string | null): Promise<void> {
    await this.run('UPDATE agents SET revision_assigned = $1 WHERE id = ANY($2::text[])', [sha, [...ids]]);
  }

  async getRevision(sha: string): Promise<RevisionRow | undefined> {
    return (await this.rows<RevisionRow>('SELECT * FROM revisions WHERE sha = $1', [sha]))[0];
  }

  async addRevision(r: NewRevision): Promise<void> {
    // `seen` orders the list; SQLite breaks a tie by rowid, PostgreSQL has none: a revision seen
    // in the same millisecond as the newest one is seen a millisecond after it
    await this.run(
      `INSERT INTO revisions (sha, seen, date, author, subject, outcome, detail)
       SELECT $1, CASE WHEN m.seen IS NOT NULL AND m.seen >= $2
                       THEN to_char((m.seen::timestamptz + interval '1 millisecond') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
                       ELSE $2 END,
              $3, $4, $5, $6, $7
       FROM (SELECT max(seen) AS seen FROM revisions) m
       ON CONFLICT (sha) DO NOTHING`,
      [r.sha, now(), r.date, r.author, r.subject, r.outcome ?? 'seen', r.detail ?? null],
    );
  }

  async setRevisionOutcome(sha: string, outcome: RevisionOutcome, detail?: string): Promise<void> {
    await this.run('UPDATE revisions SET outcome = $1, detail = $2 WHERE sha = $3', [outcome, detail ?? null, sha]);
  }

  async listRevisions(limit: number, on: Queryable = this.pool): Promise<RevisionRow[]> {
    return this.rows<RevisionRow>('SELECT * FROM revisions ORDER BY seen DESC, sha LIMIT $1', [limit], on);
  }

  async releaseSnapshot(o: ReleaseSnapshotRequest = {}): Promise<ReleaseSnapshot> {
    // every read in one snapshot (REPEATABLE READ takes it at the first query); READ COMMITTED
    // would let a push acted on between them show half done
    return this.tx(async (c) => {
      await this.run('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY', [], c);
      const [desired] = await this.rows<{ value: string }>('SELECT value FROM meta WHERE key = $1', ['desired.revision'], c);
      const agents =
        o.agents === false ? [] : typeof o.agents === 'string' ? (await this.rows('SELECT * FROM agents WHERE id = $1', [o.agents], c)).map(agentRow) : await this.listAgents(c);
      const revisions = o.revisions ? await this.listRevisions(o.revisions, c) : [];
      const rollouts = o.rollouts ? await this.listRollouts(o.rollouts.limit, c) : [];
      let running: RolloutRow | undefined;
      if (o.rollouts) {
        const byId = o.rollouts.running !== undefined && rollouts[0]?.id !== o.rollouts.running ? await this.getRollout(o.rollouts.running, c) : undefined;
        running = runningRollout(rollouts[0], o.rollouts.running, () => byId);
      }
      const shown = running ?? rollouts[0];
      return { desired: desired?.value, agents, revisions, rollouts, running, batches: shown ? await this.batchesOn(shown.id, c) : [] };
    });
  }

  async createRollout(r: { revision: string; previous: string | null; reason: string; started_by: string }): Promise<number> {
    const rows = await this.rows<{ id: number }>(
      "INSERT INTO rollouts (revision, previous, reason, started_by, started, status) VALUES ($1, $2, $3, $4, $5, 'running') RETURNING id",
      [r.revision, r.previous, r.reason, r.started_by, now()],
    );
    return Number(rows[0]!.id);
  }

  async updateRollout(id: number, u: RolloutUpdate): Promise<void> {
    await this.tx(async (c) => {
      const r = (await this.rows('SELECT * FROM rollouts WHERE id = $1 FOR UPDATE', [id], c))[0];
      if (!r) return;
      const cur = rolloutRow(r);
      const n = { ...cur, ...u };
      const finished = n.status !== 'running' ? (cur.finished ?? now()) : null;
      // through run(): a message can quote a verify command's output (no NUL reaches PostgreSQL)
      await this.run('UPDATE rollouts SET status = $1, batch = $2, batches = $3, agents = $4, jids = $5, message = $6, finished = $7 WHERE id = $8', [
        n.status,
        n.batch,
        n.batches,
        JSON.stringify(n.agents),
        JSON.stringify(n.jids),
        n.message,
        finished,
        id,
      ], c);
    });
  }

  async getRollout(id: number, on: Queryable = this.pool): Promise<RolloutRow | undefined> {
    const r = (await this.rows('SELECT * FROM rollouts WHERE id = $1', [id], on))[0];
    return r ? rolloutRow(r) : undefined;
  }

  async listRollouts(limit: number, on: Queryable = this.pool): Promise<RolloutRow[]> {
    return (await this.rows('SELECT * FROM rollouts ORDER BY id DESC LIMIT $1', [limit], on)).map(rolloutRow);
  }

  async closeRunningRollouts(message: string): Promise<void> {
    await this.tx(async (c) => {
      await c.query(
        "UPDATE rollout_batches SET status = CASE status WHEN 'pending' THEN 'not_run' ELSE 'failed' END WHERE status IN ('pending','applying','verifying') AND rollout_id IN (SELECT id FROM rollouts WHERE status = 'running')",
      );
      await this.run("UPDATE rollouts SET status = 'failed', message = $1, finished = $2 WHERE status = 'running'", [message, now()], c);
    });
  }

  async addRolloutBatches(rolloutId: number, batches: readonly PlannedBatch[]): Promise<void> {
    if (!batches.length) return;
    await this.run(
      `INSERT INTO rollout_batches (rollout_id, batch, group_num, group_name, agents, status)
       SELECT $1, b.batch, b.group_num, b.group_name, b.agents, 'pending' FROM unnest($2::int[], $3::int[], $4::text[], $5::text[]) AS b(batch, group_num, group_name, agents)`,
      [rolloutId, batches.map((_, i) => i + 1), batches.map((b) => b.group_num), batches.map((b) => b.group_name), batches.map((b) => JSON.stringify(b.agents))],
    );
  }

  async updateRolloutBatch(rolloutId: number, batch: number, u: { status: RolloutBatchStatus; jid?: string; offline?: readonly string[] }): Promise<void> {
    const end = u.status === 'done' || u.status === 'failed' || u.status === 'skipped' || u.status === 'not_run';
    const t = now();
    await this.run(
      `UPDATE rollout_batches SET status = $1, jid = COALESCE($2, jid), offline = COALESCE($3, offline),
         started = CASE WHEN $1 IN ('applying','verifying') THEN COALESCE(started, $4) ELSE started END,
         finished = CASE WHEN $5::boolean THEN COALESCE(finished, $4) ELSE finished END
       WHERE rollout_id = $6 AND batch = $7`,
      [u.status, u.jid ?? null, u.offline ? JSON.stringify(u.offline) : null, t, end, rolloutId, batch],
    );
  }

  async skipPendingBatches(rolloutId: number): Promise<void> {
    await this.run("UPDATE rollout_batches SET status = 'not_run' WHERE rollout_id = $1 AND status = 'pending'", [rolloutId]);
  }

  async putVerifyResult(rolloutId: number, batch: number, r: Omit<VerifyResultRow, 'finished'> & { finished?: string | null }): Promise<void> {
    await this.run(
      `INSERT INTO rollout_verify (rollout_id, batch, seq, name, outcome, attempts, message, started, finished) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
       ON CONFLICT (rollout_id, batch, seq) DO UPDATE SET outcome = excluded.outcome, attempts = excluded.attempts, message = excluded.message, finished = excluded.finished`,
      [rolloutId, batch, r.seq, r.name, r.outcome, r.attempts, r.message, r.started, r.finished ?? null],
    );
  }

  // ------------------------------------------------------------ masters, sessions, leases
  // (the masters' clocks, ISO-8601 UTC text, as in SQLite: the same rows and rules on both)

  async heartbeatMaster(id: string, url: string): Promise<void> {
    const t = now();
    await this.pool.query('INSERT INTO masters (id, url, started, seen) VALUES ($1, $2, $3, $3) ON CONFLICT (id) DO UPDATE SET url = excluded.url, seen = excluded.seen', [id, url, t]);
  }

  async liveMasters(within_s: number): Promise<MasterRow[]> {
    return this.rows<MasterRow>('SELECT id, url, started, seen FROM masters WHERE seen >= $1 ORDER BY id', [ago(within_s)]);
  }

  async forgetMaster(id: string): Promise<void> {
    await this.tx(async (c) => {
      await c.query('DELETE FROM sessions WHERE master_id = $1', [id]);
      await c.query('DELETE FROM masters WHERE id = $1', [id]);
    });
  }

  async claimSession(agentId: string, master: string): Promise<void> {
    await this.pool.query('INSERT INTO sessions (agent_id, master_id, since) VALUES ($1, $2, $3) ON CONFLICT (agent_id) DO UPDATE SET master_id = excluded.master_id, since = excluded.since', [agentId, master, now()]);
  }

  async releaseSession(agentId: string, master: string): Promise<boolean> {
    return (await this.count('DELETE FROM sessions WHERE agent_id = $1 AND master_id = $2', [agentId, master])) > 0;
  }

  async voidSessions(master: string): Promise<number> {
    return this.count('DELETE FROM sessions WHERE master_id = $1', [master]);
  }

  async liveSessions(within_s: number): Promise<SessionRow[]> {
    return this.rows<SessionRow>('SELECT s.agent_id, s.master_id, s.since FROM sessions s JOIN masters m ON m.id = s.master_id WHERE m.seen >= $1 ORDER BY s.agent_id', [ago(within_s)]);
  }

  async sessionOf(agentId: string, within_s: number): Promise<SessionRow | undefined> {
    return (await this.rows<SessionRow>('SELECT s.agent_id, s.master_id, s.since FROM sessions s JOIN masters m ON m.id = s.master_id WHERE s.agent_id = $1 AND m.seen >= $2', [agentId, ago(within_s)]))[0];
  }

  async acquireLease(name: string, holder: string, ttl_s: number): Promise<boolean> {
    const t = Date.now();
    // one statement: of masters racing for a free or expired lease, one gets it (the others' upserts see its row)
    const n = await this.count(
      'INSERT INTO leases (name, holder, expires) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires = excluded.expires WHERE leases.holder = excluded.holder OR leases.expires < $4',
      [name, holder, new Date(t + ttl_s * 1000).toISOString(), new Date(t).toISOString()],
    );
    return n > 0;
  }

  async releaseLease(name: string, holder: string): Promise<boolean> {
    return (await this.count('DELETE FROM leases WHERE name = $1 AND holder = $2', [name, holder])) > 0;
  }

  async leaseOf(name: string): Promise<LeaseRow | undefined> {
    return (await this.rows<LeaseRow>('SELECT name, holder, expires FROM leases WHERE name = $1 AND expires >= $2', [name, new Date().toISOString()]))[0];
  }

  async rolloutBatches(rolloutId: number): Promise<RolloutBatchRow[]> {
    // the batches and their checks from one snapshot: read apart, a batch recorded between the
    // two reads showed without the checks already run for it
    return this.tx(async (c) => {
      await this.run('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY', [], c);
      return this.batchesOn(rolloutId, c);
    });
  }

  private async batchesOn(rolloutId: number, on: Queryable): Promise<RolloutBatchRow[]> {
    const checks = await this.rows('SELECT * FROM rollout_verify WHERE rollout_id = $1 ORDER BY batch, seq', [rolloutId], on);
    const batches = await this.rows('SELECT * FROM rollout_batches WHERE rollout_id = $1 ORDER BY batch', [rolloutId], on);
    return batches.map((b) => ({
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
  // (taking and answering are single UPDATEs: of two masters racing, the second finds the row changed)

  async askCalls(rows: readonly CallRow[]): Promise<void> {
    if (!rows.length) return;
    const t = now();
    // one statement for the call's rows, however many agents: unnest the columns
    await this.run(
      'INSERT INTO calls (id, agent_id, asked_by, sent_by, request, created, expires) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])',
      [rows.map((r) => r.id), rows.map((r) => r.agent_id), rows.map((r) => r.asked_by), rows.map((r) => r.sent_by), rows.map((r) => JSON.stringify(r.request)), rows.map(() => t), rows.map((r) => r.expires)],
    );
  }

  async takeCalls(id: string, master: string): Promise<CallRow[]> {
    const rows = await this.rows('UPDATE calls SET taken = $1 WHERE id = $2 AND sent_by = $3 AND taken IS NULL RETURNING id, agent_id, asked_by, sent_by, request, expires', [now(), id, master]);
    return rows.map(callRow);
  }

  async untakenCalls(master: string): Promise<string[]> {
    return (await this.rows<{ id: string }>('SELECT DISTINCT id FROM calls WHERE sent_by = $1 AND taken IS NULL AND expires > $2 ORDER BY id', [master, now()])).map((r) => r.id);
  }

  async answerCall(id: string, agentId: string, answer: unknown): Promise<boolean> {
    return (await this.count('UPDATE calls SET answer = $1, answered = $2 WHERE id = $3 AND agent_id = $4 AND answer IS NULL', [JSON.stringify(answer ?? null), now(), id, agentId])) > 0;
  }

  async collectAnswers(id: string): Promise<{ agent_id: string; answer: unknown }[]> {
    const rows = await this.rows<{ agent_id: string; answer: string }>('DELETE FROM calls WHERE id = $1 AND answer IS NOT NULL RETURNING agent_id, answer', [id]);
    return rows.map((r) => ({ agent_id: r.agent_id, answer: JSON.parse(r.answer) as unknown }));
  }

  async dropCall(id: string): Promise<void> {
    await this.run('DELETE FROM calls WHERE id = $1', [id]);
  }

  async pruneCalls(grace_s: number): Promise<number> {
    return this.count('DELETE FROM calls WHERE expires < $1', [ago(grace_s)]);
  }
}

/** The time `s` seconds ago, as stored. */
function ago(s: number): string {
  return new Date(Date.now() - s * 1000).toISOString();
}


const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * Rows as one JSON parameter for json_to_recordset. PostgreSQL's JSON refuses a lone surrogate
 * escape (\ud800) that a text parameter took as U+FFFD, and \u0000 (text holds no NUL): such
 * characters become U+FFFD here. JSON.stringify writes both as \uXXXX escapes, so the slow path
 * runs only when one (or a backslash followed by such text) is in the output.
 */
function jsonParam(rows: readonly Record<string, unknown>[]): string {
  const text = JSON.stringify(rows);
  if (!/\\u(?:0000|d[89a-f])/i.test(text)) return text;
  return JSON.stringify(rows, (_k, v: unknown) => (typeof v === 'string' ? v.replace(LONE_SURROGATE, '\ufffd').replaceAll('\0', '\ufffd') : v));
}

/**
 * A query parameter as PostgreSQL's text can hold it: no NUL (a command's output may have one;
 * refused, the store write failed for good and its return was retried forever). U+FFFD instead,
 * as for the rows of jsonParam; SQLite keeps the NUL.
 */
function withoutNul(p: unknown): unknown {
  if (typeof p === 'string') return p.includes('\0') ? p.replaceAll('\0', '\ufffd') : p;
  if (Array.isArray(p) && p.some((x) => typeof x === 'string' && x.includes('\0'))) return p.map(withoutNul);
  return p;
}
