/**
 * What the console reads from the master's store, read-only, through the store's interface
 * (a job's duration and progress, an agent's jobs): the console never needs a write path into
 * the store, and reads any store implementation alike.
 */
import type { StateResult } from '../../protocol/results.js';
import type { AgentJobRow, JobAgentRow, JobRow, StatusCounts, Store } from '../store-api.js';
import type { AgentJobStatus } from '../../protocol/cli-messages.js';

export type { AgentJobRow, StatusCounts };

export interface JobSummary extends JobRow {
  counts: StatusCounts;
  /** last agent's end, when no agent is queued or running */
  finished: string | null;
  running: boolean;
}

const OPEN: readonly AgentJobStatus[] = ['queued', 'running'];

export class ConsoleQueries {
  constructor(private readonly store: Store) {}

  /** Newest first; `before` pages back (a jid). */
  async jobs(limit: number, before?: string): Promise<JobSummary[]> {
    return Promise.all((await this.store.listJobs(limit, before)).map((j) => this.summarize(j)));
  }

  async jobSummary(jid: string): Promise<JobSummary | undefined> {
    const job = await this.store.getJob(jid);
    return job ? this.summarize(job) : undefined;
  }

  private async summarize(job: JobRow): Promise<JobSummary> {
    const { counts, finished } = await this.store.jobProgress(job.jid);
    const running = OPEN.some((s) => counts[s] > 0);
    const { counts: _c, ...row } = job as JobRow & { counts?: StatusCounts };
    return { ...row, counts, finished: running ? null : finished, running };
  }

  jobAgents(jid: string): Promise<JobAgentRow[]> {
    return this.store.jobAgents(jid);
  }

  agentResults(jid: string, agentId: string): Promise<StateResult[]> {
    return this.store.stateResults(jid, agentId);
  }

  /** Per agent of a job: status and how many state results arrived (what a live page watches). */
  async signatures(jid: string): Promise<Map<string, string>> {
    return new Map((await this.store.jobResultCounts(jid)).map((r) => [r.agent_id, `${r.status}:${r.results}`]));
  }

  /** Test runs (`--test`) of a revision, newest first: a rollback's predicted changes. */
  async testRunsOf(revision: string, limit: number): Promise<JobSummary[]> {
    return this.summaries(await this.store.testRunJids(revision, limit));
  }

  /** Jobs a rollout's automatic rollback started (`rollback:<user>`, the previous revision, after the rollout began). */
  async rollbackJobs(revision: string, since: string): Promise<JobSummary[]> {
    return this.summaries(await this.store.rollbackJids(revision, since));
  }

  agentJobs(agentId: string, limit: number): Promise<AgentJobRow[]> {
    return this.store.agentJobs(agentId, limit);
  }

  private async summaries(jids: string[]): Promise<JobSummary[]> {
    return (await Promise.all(jids.map((jid) => this.jobSummary(jid)))).filter((j): j is JobSummary => j !== undefined);
  }
}
