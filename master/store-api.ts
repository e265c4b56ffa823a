/**
 * The master's store as the rest of the master sees it: one async interface, two
 * implementations (store-sqlite.ts, the embedded default; store-pg.ts, a PostgreSQL shared by
 * several masters), chosen by openStore (store.ts) from master.yaml's `store:`. Callers import
 * the row types from here, never from an implementation.
 *
 * State changes of an agent's run are transitions: they report whether they changed a row, so
 * a return that arrives twice (re-sent spool, two masters) is stored once.
 */
import type { StateResult } from '../protocol/results.js';
import type { ReturnBody } from '../protocol/messages.js';
import type { AgentJobStatus } from '../protocol/cli-messages.js';

export type KeyState = 'pending' | 'accepted' | 'rejected';

/** An agent's key and its state (no grains). */
export type AgentKey = Pick<AgentRow, 'id' | 'fingerprint' | 'key_state'>;

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

/** `tsalt jobs kill`: who killed a job, when. */
export interface Killed {
  by: string;
  at: string;
}

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
  /** set by `tsalt jobs kill` */
  killed: Killed | null;
}

export type NewJob = Omit<JobRow, 'created' | 'intent' | 'killed'> & { intent?: JobIntent };
export interface NewJobAgent {
  id: string;
  status: AgentJobStatus;
  error?: string;
  revision?: string | null;
}

export type StatusCounts = Record<AgentJobStatus, number>;
export type JobWithCounts = JobRow & { counts: StatusCounts };

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

/** A job as one agent saw it (an agent's history). */
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

/** How far a job is: agents per status, and the last agent's end so far. */
export interface JobProgress {
  counts: StatusCounts;
  finished: string | null;
}

export const TERMINAL: ReadonlySet<AgentJobStatus> = new Set(['done', 'failed', 'timeout', 'lost', 'cancelled']);

export function emptyCounts(): StatusCounts {
  return { queued: 0, running: 0, done: 0, failed: 0, timeout: 0, lost: 0, cancelled: 0 };
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

export type NewRevision = Omit<RevisionRow, 'seen' | 'outcome' | 'detail'> & { outcome?: RevisionOutcome; detail?: string | null };

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

export type RolloutUpdate = Partial<Pick<RolloutRow, 'status' | 'batch' | 'batches' | 'agents' | 'jids' | 'message'>>;

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

/** An agent the fleet keeps on `sha` (its revision_assigned) while the desired revision moves. */
export interface DesiredPin {
  id: string;
  sha: string;
}

/** Which parts of a ReleaseSnapshot to read beyond the desired revision and the agents. */
export interface ReleaseSnapshotRequest {
  /** which agent rows: every one (absent), none (false: a view that shows no agent), or one id's */
  agents?: false | string;
  /** the newest revisions to list (none when absent) */
  revisions?: number;
  /** the newest rollouts to list (none when absent); `running`: the id of the rollout this master runs */
  rollouts?: { limit: number; running?: number };
}

export interface ReleaseSnapshot {
  desired: string | undefined;
  /** the agent rows asked for (every one by default, all key states), by id */
  agents: AgentRow[];
  /** newest seen first */
  revisions: RevisionRow[];
  /** newest first */
  rollouts: RolloutRow[];
  /** the rollout running now: the one `running` names, else the newest when it runs (masters sharing a store: another master's) */
  running: RolloutRow | undefined;
  /** the batches of the rollout shown: the running one, else the newest */
  batches: RolloutBatchRow[];
}

/** The running rollout of a snapshot: the one this master runs (read by id), else the newest while it runs. */
export function runningRollout(newest: RolloutRow | undefined, runningId: number | undefined, byId: (id: number) => RolloutRow | undefined): RolloutRow | undefined {
  if (runningId === undefined) return newest?.status === 'running' ? newest : undefined;
  return newest?.id === runningId ? newest : byId(runningId);
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

export interface PlannedBatch {
  group_num: number;
  group_name: string;
  agents: readonly string[];
}

/** A master sharing the store (schema version 6). */
export interface MasterRow {
  id: string;
  /** where its agents connect (host:port) */
  url: string;
  started: string;
  /** its last heartbeat */
  seen: string;
}

/** The master holding an agent's connection. */
export interface LeaseRow {
  name: string;
  holder: string;
  expires: string;
}

export interface SessionRow {
  agent_id: string;
  master_id: string;
  since: string;
}

/**
 * One agent's part of a call routed to the master holding its connection (schema version 8).
 * `request` and an answer are JSON the reader parses (another master wrote them).
 */
export interface CallRow {
  /** the call's id: one per CLI request and holding master */
  id: string;
  agent_id: string;
  /** the master whose CLI waits for the answer */
  asked_by: string;
  /** the master holding the agent's connection, asked to send it the call */
  sent_by: string;
  /** the call without pillar or bundle (the holding master renders those for its agent) */
  request: Record<string, unknown>;
  /** when the asking master stops waiting (ISO-8601 UTC) */
  expires: string;
}

/** One return for finishJobAgents. */
export interface JobReturnRow {
  jid: string;
  agentId: string;
  status: 'done' | 'failed';
  body: ReturnBody;
}

export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  /** where it is, for messages (a file, or a URL without its password) */
  readonly label: string;
  /** schema versions at open: `from` < `to` when this open migrated the store */
  readonly schema: { from: number; to: number };
  close(): Promise<void>;

  // ---------------------------------------------------------------- meta
  /** Small master state that must survive restarts (schedules' last runs). */
  getMeta(key: string): Promise<string | undefined>;
  setMeta(key: string, value: string): Promise<void>;

  // ---------------------------------------------------------------- agents / keys
  getAgent(id: string): Promise<AgentRow | undefined>;
  /** every agent, by id */
  listAgents(): Promise<AgentRow[]>;
  /**
   * Every agent's key, by id: listAgents without the grains and revisions. What `keys list`, the
   * pending-key cap and "is the fleet back" need; reading every agent's grains for them made a
   * poll of a 5,000-agent fleet cost the master ~50 ms.
   */
  listKeys(): Promise<AgentKey[]>;
  /** First contact of a key: recorded as pending (or accepted with auto_accept). An id already there is left as it is (a race with another master): the stored row is returned. */
  addAgent(id: string, fingerprint: string, state: KeyState): Promise<AgentRow>;
  setKeyState(id: string, state: KeyState): Promise<boolean>;
  deleteAgent(id: string): Promise<boolean>;
  /** last seen now; with grains, the grains too */
  touchAgent(id: string, grains?: Record<string, unknown>): Promise<void>;
  /** Last seen now for every one of these agents, in one statement (a stopping master's whole fleet). */
  touchAgents(ids: string[]): Promise<void>;
  /** The revision an agent was last given (a real run) and how it ended. */
  recordAttempt(agentId: string, jid: string, revision: string, status: AgentJobStatus): Promise<void>;

  // ---------------------------------------------------------------- jobs
  /** The job and each targeted agent's row, in one transaction. */
  createJob(job: NewJob, agents: readonly NewJobAgent[]): Promise<void>;
  getJob(jid: string): Promise<JobRow | undefined>;
  /** Jobs newest first, `limit` of them; with `before`, only jobs older than that jid (paging). */
  listJobs(limit: number, before?: string): Promise<JobWithCounts[]>;
  /** `tsalt jobs kill`: remembered on the job (the first kill counts). */
  markKilled(jid: string, by: string): Promise<void>;
  getJobAgent(jid: string, agentId: string): Promise<JobAgentRow | undefined>;
  /** a job's agents, by id */
  jobAgents(jid: string): Promise<JobAgentRow[]>;
  /**
   * These agents' rows of job `jid` (the ones it has; any order): one read for a tick's agents
   * where a master routing a job between masters would otherwise read each row on its own.
   */
  jobAgentsOf(jid: string, agentIds: readonly string[]): Promise<JobAgentRow[]>;
  /** Job/agent pairs not finished (queued, running): what a restarted master must account for. */
  openJobAgents(agentId?: string): Promise<JobAgentRow[]>;
  /**
   * An agent's run moves on: `running` (started set once) or an end without a return (timeout,
   * lost, cancelled, failed). Only a run not ended yet moves; false when nothing changed.
   */
  setJobAgentStatus(jid: string, agentId: string, status: AgentJobStatus, error?: string): Promise<boolean>;
  /** Several runs move to `running` (as setJobAgentStatus does one), in one transaction; all or nothing (rejects: none moved). */
  setJobAgentsRunning(runs: readonly { jid: string; agentId: string }[]): Promise<boolean[]>;
  /**
   * Store one streamed state result. A run's result is written once, by its key (jid, agent,
   * run_num): the first copy stored stands and a later one (the return's, or the stream's
   * arriving after it) writes nothing. Both copies are the same result: the engine records a
   * state's result once (engine/run/runner.ts record), only the fitting under max_return_bytes
   * may shorten one differently.
   */
  putStateResult(jid: string, agentId: string, r: StateResult): Promise<void>;
  /** Several streamed results in one transaction; all or nothing (rejects: none stored). */
  putStateResults(rows: readonly { jid: string; agentId: string; result: StateResult }[]): Promise<void>;
  /**
   * The agent's return: every result, the status, the agent's attempt, in one transaction.
   * Stored once: false (nothing written) when the run already has a return (done or failed);
   * a return after a timeout/lost/cancelled end is stored (a late return). Results already
   * stored from the stream (by this master or another) are not written again (putStateResult).
   */
  finishJobAgent(jid: string, agentId: string, status: 'done' | 'failed', body: ReturnBody): Promise<boolean>;
  /**
   * Several returns in one transaction (the master batches the returns of a tick): each as
   * finishJobAgent, in order, with its result. All or nothing: when the store fails, none is
   * stored and the promise rejects (the caller stores them one by one then).
   */
  finishJobAgents(returns: readonly JobReturnRow[]): Promise<boolean[]>;
  stateResults(jid: string, agentId: string): Promise<StateResult[]>;
  /** stateResults of several agents of job `jid` in one read: agent id -> its results (agents without any are absent). */
  stateResultsOf(jid: string, agentIds: readonly string[]): Promise<Map<string, StateResult[]>>;
  /** Agents per status and the last end so far. */
  jobProgress(jid: string): Promise<JobProgress>;
  /** Per agent of a job: its status and how many state results arrived (what a live page watches). */
  jobResultCounts(jid: string): Promise<{ agent_id: string; status: AgentJobStatus; results: number }[]>;
  /** State results of a job that changed something. */
  changedResults(jid: string): Promise<number>;
  /** Test runs (`--test`) of a revision, newest first (jids). */
  testRunJids(revision: string, limit: number): Promise<string[]>;
  /** Jobs of a revision started by a rollback (`rollback:<user>`) created at or after `since`, oldest first (jids). */
  rollbackJids(revision: string, since: string): Promise<string[]>;
  /** An agent's jobs, newest first. */
  agentJobs(agentId: string, limit: number): Promise<AgentJobRow[]>;

  // ---------------------------------------------------------------- releases
  desired(): Promise<string | undefined>;
  setDesired(sha: string): Promise<void>;
  /**
   * Makes `to` the desired revision, and assigns `pins` (agents held on the revision they run),
   * only if the desired revision is still `from` (undefined: none yet), in one transaction:
   * false, and nothing written, when it moved meanwhile (an operator's rollout or rollback, a
   * push acted on, on this master or another). A push, a rollout and a rollback each read the
   * desired revision, wait on git and the agents, then move it: without the check, the later
   * write undid the other silently (a rollback that did not hold).
   */
  moveDesired(from: string | undefined, to: string, pins?: readonly DesiredPin[]): Promise<boolean>;
  /** The fleet gives these agents `sha` (null: the desired revision) from now on. */
  assign(ids: readonly string[], sha: string | null): Promise<void>;
  getRevision(sha: string): Promise<RevisionRow | undefined>;
  /** A commit seen on the branch (or named by an operator), first time only. */
  addRevision(r: NewRevision): Promise<void>;
  setRevisionOutcome(sha: string, outcome: RevisionOutcome, detail?: string): Promise<void>;
  /** newest seen first */
  listRevisions(limit: number): Promise<RevisionRow[]>;
  /**
   * What the release views show, read at one moment (SQLite: one read transaction; PostgreSQL:
   * one REPEATABLE READ snapshot): a push acted on meanwhile (made desired, its outcome set, its
   * rollout's batches and the agents' returns written) is seen whole or not at all, so whether a
   * revision is desired, its outcome, each agent's sync against it and the rollout's batches agree
   * (`tsalt revisions`, `tsalt status`, the console, the agents-behind gauge).
   */
  releaseSnapshot(o?: ReleaseSnapshotRequest): Promise<ReleaseSnapshot>;
  createRollout(r: { revision: string; previous: string | null; reason: string; started_by: string }): Promise<number>;
  updateRollout(id: number, u: RolloutUpdate): Promise<void>;
  getRollout(id: number): Promise<RolloutRow | undefined>;
  /** newest first */
  listRollouts(limit: number): Promise<RolloutRow[]>;
  /** Rollouts a master stopped in the middle of (killed, restarted). */
  closeRunningRollouts(message: string): Promise<void>;
  /** A rollout's batches as planned, before the first one runs (all pending). */
  addRolloutBatches(rolloutId: number, batches: readonly PlannedBatch[]): Promise<void>;
  /** A batch moves on (1-based `batch`); started/finished are set on the first move out of pending / into an end. */
  updateRolloutBatch(rolloutId: number, batch: number, u: { status: RolloutBatchStatus; jid?: string; offline?: readonly string[] }): Promise<void>;
  /** Batches of a rollout that had not started when it stopped. */
  skipPendingBatches(rolloutId: number): Promise<void>;
  /** One verify check after a batch, as it stands (written when it starts and after each try). */
  putVerifyResult(rolloutId: number, batch: number, r: Omit<VerifyResultRow, 'finished'> & { finished?: string | null }): Promise<void>;
  /** A rollout's batches in order, each with its verify checks in order. */
  rolloutBatches(rolloutId: number): Promise<RolloutBatchRow[]>;

  // ---------------------------------------------------------------- calls routed between masters
  // `tsalt ping/call/show` on one master for agents connected to another (master/calls-route.ts):
  // the bus names a call, the store holds its request and each answer, once.
  /** The asking master records a call's rows (one per agent), before it names the call on the bus. */
  askCalls(rows: readonly CallRow[]): Promise<void>;
  /** The rows of call `id` addressed to `master` that nobody took yet, now taken by it: each row is taken once. */
  takeCalls(id: string, master: string): Promise<CallRow[]>;
  /** Ids of calls addressed to `master`, not taken, not expired (what a master whose bus had a gap may have missed). */
  untakenCalls(master: string): Promise<string[]>;
  /** An agent's answer to call `id`, stored once: false when it has one already or the call is gone. */
  answerCall(id: string, agentId: string, answer: unknown): Promise<boolean>;
  /** The answers of call `id` stored so far, read and deleted in one statement (each is read once). */
  collectAnswers(id: string): Promise<{ agent_id: string; answer: unknown }[]>;
  /** The asking master stopped waiting for call `id`: its rows go, answered or not. */
  dropCall(id: string): Promise<void>;
  /** Rows whose asking master stopped waiting more than `grace_s` ago (it died waiting); how many went. */
  pruneCalls(grace_s: number): Promise<number>;

  // ---------------------------------------------------------------- masters, sessions, leases
  // Several masters on one store (master/presence.ts, master/bus-route.ts). Times are the
  // masters' clocks, ISO-8601 UTC.
  /** Records that master `id` is alive now (inserted on its first beat). */
  heartbeatMaster(id: string, url: string): Promise<void>;
  /** Masters whose last heartbeat is at most `within_s` old, by id. */
  liveMasters(within_s: number): Promise<MasterRow[]>;
  /** A master that stops in order: its row and its sessions go. */
  forgetMaster(id: string): Promise<void>;
  /** The agent's connection is on `master` now (taken over from any other master). */
  claimSession(agentId: string, master: string): Promise<void>;
  /** The agent's connection on `master` ended; false when another master holds it by now. */
  releaseSession(agentId: string, master: string): Promise<boolean>;
  /** Drops every session `master` held (its previous run's, at its start); how many. */
  voidSessions(master: string): Promise<number>;
  /** Sessions held by masters whose heartbeat is at most `within_s` old (a dead master's do not count), by agent. */
  liveSessions(within_s: number): Promise<SessionRow[]>;
  /** The agent's session, if its master's heartbeat is at most `within_s` old. */
  sessionOf(agentId: string, within_s: number): Promise<SessionRow | undefined>;
  /**
   * Takes lease `name` for `holder` for `ttl_s` seconds, in one atomic statement: granted when
   * nobody holds it, when `holder` holds it already (renewed), or when its holder let it expire.
   */
  acquireLease(name: string, holder: string, ttl_s: number): Promise<boolean>;
  /** Gives lease `name` up if `holder` holds it; false otherwise. */
  releaseLease(name: string, holder: string): Promise<boolean>;
  /** Who holds lease `name` and until when, if anyone holds it unexpired (to name the holder in an error). */
  leaseOf(name: string): Promise<LeaseRow | undefined>;
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
