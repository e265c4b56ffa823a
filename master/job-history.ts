/**
 * `tsalt jobs` on the master: the job history filtered (target, who, failed, test runs, since)
 * with what an operator scans for (SLS, test run, states changed, killed), through the store's
 * interface (a kill is on the job's row).
 */
import type { Store, JobRow } from './store-api.js';
import type { AgentJobStatus } from '../protocol/cli-messages.js';

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

export type JobSummary = JobRow & {
  counts: Record<AgentJobStatus, number>;
  test: boolean;
  sls: string[] | null;
  /** state results that changed something (test runs: 0) */
  changed: number;
};

const FAILED: readonly AgentJobStatus[] = ['failed', 'timeout', 'lost', 'cancelled'];

function byMatches(startedBy: string, by: string): boolean {
  if (startedBy === by) return true;
  const user = startedBy.split('@')[0]!;
  return user === by || user.split(' (sudo ')[0] === by;
}

export async function jobHistory(store: Store, f: JobFilter): Promise<JobSummary[]> {
  const out: JobSummary[] = [];
  // newest first, a page at a time, until `limit` match: the whole history (with each job's
  // counts) is never read for a short answer
  const page = Math.max(100, f.limit * 2);
  let before: string | undefined;
  for (;;) {
    const jobs = await store.listJobs(page, before);
    for (const j of jobs) {
      if (out.length >= f.limit) return out;
      if (f.since !== undefined && j.created < f.since) return out; // jids grow with time
      const test = j.args.test === true;
      if (f.test !== undefined && test !== f.test) continue;
      if (f.by !== undefined && !byMatches(j.started_by, f.by)) continue;
      if (f.target !== undefined && j.target !== f.target && !(await store.getJobAgent(j.jid, f.target))) continue;
      if (f.failed && !FAILED.some((s) => j.counts[s] > 0)) continue;
      out.push({
        ...j,
        test,
        sls: j.kind === 'apply' && Array.isArray(j.args.sls) ? (j.args.sls as string[]) : null,
        changed: test ? 0 : await store.changedResults(j.jid),
      });
    }
    if (jobs.length < page) return out;
    before = jobs[jobs.length - 1]!.jid;
  }
}
