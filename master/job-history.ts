/**
 * `tsalt jobs` on the master: the job history filtered (target, who, failed, test runs, since)
 * with what an operator scans for (SLS, test run, states changed, killed). Read from the store's
 * tables; a kill is remembered in the meta table (`job_killed:<jid>`), which the job rows lack.
 */
import type { Store, JobRow } from './store.js';
import type { AgentJobStatus } from '../protocol/messages.js';

export interface JobFilter {
  limit: number;
  /** the job's target expression, or an agent the job ran on */
  target?: string;
  /** who started it: the whole `started_by`, or its user part (before '@' or ' (sudo') */
  by?: string;
  /** only jobs where an agent failed, timed out, was lost or cancelled */
  failed?: boolean;
  /** only test runs (true) */
  test?: boolean;
  /** ISO time: jobs created at or after it */
  since?: string;
}

export interface Killed {
  by: string;
  at: string;
}

export type JobSummary = JobRow & {
  counts: Record<AgentJobStatus, number>;
  test: boolean;
  sls: string[] | null;
  /** state results that changed something (test runs: 0) */
  changed: number;
  killed: Killed | null;
};

const FAILED: readonly AgentJobStatus[] = ['failed', 'timeout', 'lost', 'cancelled'];

export function markKilled(store: Store, jid: string, by: string): void {
  store.setMeta(`job_killed:${jid}`, JSON.stringify({ by, at: new Date().toISOString() } satisfies Killed));
}

export function killedOf(store: Store, jid: string): Killed | null {
  const v = store.getMeta(`job_killed:${jid}`);
  return v ? (JSON.parse(v) as Killed) : null;
}

function byMatches(startedBy: string, by: string): boolean {
  if (startedBy === by) return true;
  const user = startedBy.split('@')[0]!;
  return user === by || user.split(' (sudo ')[0] === by;
}

export function jobHistory(store: Store, f: JobFilter): JobSummary[] {
  const db = store.db;
  const ranOn = db.prepare('SELECT 1 FROM job_agents WHERE jid = ? AND agent_id = ?');
  const changedQ = db.prepare("SELECT count(*) AS n FROM state_results WHERE jid = ? AND result = 1 AND changes != '{}'");
  const out: JobSummary[] = [];
  // newest first, a page at a time, until `limit` match: the whole history (with each job's
  // counts) is never read for a short answer
  const page = Math.max(100, f.limit * 2);
  let before: string | undefined;
  for (;;) {
    const jobs = store.listJobs(page, before);
    for (const j of jobs) {
      if (out.length >= f.limit) return out;
      if (f.since !== undefined && j.created < f.since) return out; // jids grow with time
      const test = j.args.test === true;
      if (f.test !== undefined && test !== f.test) continue;
      if (f.by !== undefined && !byMatches(j.started_by, f.by)) continue;
      if (f.target !== undefined && j.target !== f.target && !ranOn.get(j.jid, f.target)) continue;
      if (f.failed && !FAILED.some((s) => j.counts[s] > 0)) continue;
      out.push({
        ...j,
        test,
        sls: j.kind === 'apply' && Array.isArray(j.args.sls) ? (j.args.sls as string[]) : null,
        changed: test ? 0 : (changedQ.get(j.jid) as { n: number }).n,
        killed: killedOf(store, j.jid),
      });
    }
    if (jobs.length < page) return out;
    before = jobs[jobs.length - 1]!.jid;
  }
}
