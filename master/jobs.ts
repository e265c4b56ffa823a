/**
 * Jobs: created in SQLite before anything is sent, dispatched (in batches) to the targeted
 * agents, followed until every agent returned, timed out or was lost. Returns are accepted
 * only from the agent the job was sent to, and late returns (after a timeout, or after a
 * master restart) are still stored. The CLI that started a job only listens: the job goes on
 * if it disconnects.
 */
import type { Job, ReturnBody, AgentMessage, MasterMessage } from '../protocol/messages.js';
import type { CliEvent, CliRequest, JobRequest, AgentJobStatus, TargetType } from '../protocol/cli-messages.js';
import { toWire } from '../engine/tree/bundle.js';
import type { Logger } from '../core/log.js';
import { newJid, TERMINAL, type AgentRow, type JobIntent, type JobReturnRow, type Store } from './store-api.js';
import type { AgentConn, DispatchTable } from './server.js';
import { CloseCode } from '../protocol/messages.js';
import type { ConfigSource, BuiltBundle, Snapshot } from './tree.js';
import { pillarFor, pillarTreeOf } from './pillar.js';
import { TickBatcher } from './tick-batcher.js';
import { resolveTarget, TargetError } from './target.js';
import { deepMerge } from '../engine/render/salt-functions.js';
import type { MasterConfig } from './config.js';
import type { StateResult } from '../protocol/results.js';
import type { JobAgentRow, JobRow } from './store-api.js';

/**
 * A store write of returns, streamed results or runs started waits this long after the last one
 * (master/tick-batcher.ts): one commit per window, not per turn of the event loop, under load.
 * 50 ms (10 before): a 2,000-agent no-op job's commits cost the master ≈ 40 % less CPU (fewer
 * WAL page writes: a window's returns share their pages), for at most 50 ms more on a busy job.
 */
const WRITE_WINDOW_MS = 50;

export type Sink = (ev: CliEvent) => void;
export type AgentDoneStatus = Extract<CliEvent, { type: 'agent_done' }>['status'];

/** What happens to jobs, for observers (the metrics endpoint). Must not throw. */
export interface JobEvents {
  jobStarted(jid: string, kind: 'apply' | 'run', intent: JobIntent): void;
  /** once per targeted agent and job: its run ended (offline at the start counts as lost) */
  agentDone(jid: string, status: AgentDoneStatus): void;
  /**
   * once per state result an agent reported to this master: when streamed (a run that lasts,
   * agent/result-hold.ts), else when its return is stored
   */
  stateResult(jid: string, result: StateResult): void;
  jobCompleted(jid: string): void;
}
type Msg<T extends AgentMessage['type']> = Extract<AgentMessage, { type: T }>;

/** The agents' connections as jobs see them (the agent server): who can be sent a job now. */
export interface AgentLinks {
  ready(id: string): AgentConn | undefined;
}

/**
 * Masters sharing the store (master/bus-route.ts): agents connected to another master are
 * targeted like this master's own and sent their part of a job through the bus. Absent: one
 * master, nothing routed.
 */
export interface RemoteAgents {
  /** agents held by other live masters: agent id -> master id */
  elsewhere(): Promise<Map<string, string>>;
  /** the live master holding this agent's connection, when it is not this one */
  holderOf(id: string): Promise<string | undefined>;
  /** master `to` sends job `jid` to these agents of its own (`pillar`: the inline pillar; `waitIdle`: a busy agent is sent it again when free) */
  dispatch(jid: string, to: string, agents: string[], pillar?: Record<string, unknown>, waitIdle?: boolean): void;
  /** these agents' runs of another master's job ended here (stored): tell its owner */
  returned(jid: string, agents: string[]): void;
  /** the job was killed: masters that sent it tell their agents */
  kill(jid: string, by: string): void;
  /** these agents' new state results of another master's job are in the store: its owner streams them */
  progress?(jid: string, agents: string[]): void;
}

/** Everything a JobManager works with, given when it is made. */
export interface JobManagerDeps {
  store: Store;
  /** states and pillar by revision */
  source: ConfigSource;
  agents: AgentLinks;
  /** the revisions jobs without --revision apply; absent: the head */
  revisions?: FleetRevisions;
  cfg: Pick<MasterConfig, 'nodegroups' | 'lost_after_s' | 'timeout_s' | 'held_return_retry_s' | 'held_returns_max_bytes'>;
  log: Logger;
  events?: JobEvents;
  remote?: RemoteAgents;
}

/** A bus event this master sends at the end of the tick (dispatches and returns of one job, gathered). */
interface OutgoingEvent {
  jid: string;
  to: string | undefined;
  agents: string[];
  pillar?: Record<string, unknown>;
  wait_idle?: true;
}

/** Another master's job, whose part for agents connected here this master sends. */
interface HeldJob {
  row: JobRow;
  /** the owner's inline pillar (not stored) */
  pillar: Record<string, unknown> | undefined;
  /** agents sent the job already: a repeated dispatch (after a re-sync) sends nothing again */
  sent: Set<string>;
  snapshots: Map<string, Promise<Snapshot>>;
  /** the bundle offered to each agent sent the job from here, until its run ends */
  bundles: Map<string, BuiltBundle>;
  /** the owner waits for busy agents (a rollout's, a schedule's job): a refusal for a run in progress is retried here */
  waitIdle: boolean;
  /** agents sent the job again after such a refusal */
  retried: Map<string, number>;
  /** the job message as sent, by bundle hash and pillar object (applyText) */
  wire: Map<string, WeakMap<object, Buffer>>;
}

interface ActiveJob {
  jid: string;
  kind: 'apply' | 'run';
  req: JobRequest;
  /** apply: each agent's bundle (the job's revision, or the one the fleet gives that agent) */
  bundles: Map<string, BuiltBundle>;
  /** wait for an agent's other state run to end instead of having it refused */
  waitIdle: boolean;
  /** agents sent the job again after a refusal because they were busy */
  retried: Map<string, number>;
  /** each agent's pillar at the job's revision (rendered once per agent and job) */
  pillarOf: (a: AgentRow) => Promise<Record<string, unknown>>;
  /** pillarOf's renders by agent id: an agent's is dropped when its run ends */
  pillars: Map<string, Promise<Record<string, unknown>>>;
  /** the targets' rows as the job started, without their grains (the connection's are used): no store read per agent at dispatch */
  rows: Map<string, AgentRow>;
  /** agents whose end is being written (finish() began): their run may be closed in the store already */
  closing: Set<string>;
  /** apply: the job message as sent, by bundle hash and pillar object (applyText) */
  wire: Map<string, WeakMap<object, Buffer>>;
  /** run: the job message, the same for every agent */
  runText?: Buffer;
  /** targeted agents connected to another master: agent id -> that master */
  elsewhere: Map<string, string>;
  /** waiting for a batch slot */
  queue: string[];
  /** dispatched, not finished */
  inflight: Set<string>;
  timers: Map<string, NodeJS.Timeout>;
  sinks: Set<Sink>;
  batch: number;
  failed: boolean;
  missing: boolean;
  done: Promise<number>;
  resolve: (code: number) => void;
  /** agents on other masters: how many of their stored state results were streamed to the sinks */
  streamed?: Map<string, number>;
  /** those reads of the store, one after another (two events must not stream a result twice) */
  streaming?: Promise<void>;
}

export interface StartOptions {
  /** a schedule's runs are corrective (drift put back); default: intentional */
  intent?: JobIntent;
  /** rollouts and schedules: an agent busy with another state run gets this one after it, not a refusal */
  waitIdle?: boolean;
}

/** Which revision jobs without --revision apply (the releaser): the fleet's and each agent's. */
export interface FleetRevisions {
  desired(): Promise<string | undefined>;
  /** an agent's revision, from its row and the fleet's desired one */
  forAgent(a: AgentRow, desired: string | undefined): string | undefined;
}

/** What a master knows of one agent's run beyond its row in the store. */
interface RunHere {
  /** how often the job was sent again to the agent when it came back without it (onHello) */
  resent: number;
  /**
   * its job_ack was read here, or a hello here named it running (its row may still say queued:
   * the write is batched). A state run's ack comes only once it has run ACK_AFTER_MS
   * (agent/daemon.ts): a short run's return comes with no ack before it.
   */
  acked: boolean;
  /**
   * run_nums of the run's results streamed to this master (observers were told of them then):
   * its stored return tells them of the others only
   */
  streamed?: Set<number>;
}

export class JobManager {
  private readonly active = new Map<string, ActiveJob>();
  /** jid -> agent -> timer that marks the agent lost unless it comes back with the job */
  private readonly lostTimers = new Map<string, NodeJS.Timeout>();
  /**
   * `${jid}/${agent}` -> what this master knows of a run beyond its row (RunHere). Made when
   * first needed, dropped when the run ends here (finish) or is let go (pruneHeld).
   */
  private readonly runsHere = new Map<string, RunHere>();
  /**
   * `${jid}/${agent}` -> a return the store could not take (locked past busy_timeout, disk
   * full), tried again every held_return_retry_s. Not acknowledged until stored, so the agent
   * keeps it spooled meanwhile: a master restart or a full holding area loses nothing.
   */
  private readonly unstored = new Map<string, { msg: Msg<'job_return'>; bytes: number; timer: NodeJS.Timeout }>();
  private unstoredBytes = 0;
  private readonly store: Store;
  private readonly source: ConfigSource;
  private revisions: FleetRevisions | undefined;
  private readonly agents: AgentLinks;
  private readonly cfg: JobManagerDeps['cfg'];
  private readonly log: Logger;
  private readonly events: JobEvents | undefined;
  private readonly remote: RemoteAgents | undefined;
  /** other masters' jobs sent to agents connected here, by jid */
  private readonly held = new Map<string, HeldJob>();
  /** jid -> the store read making its HeldJob: two dispatches of one job arriving together share one */
  private readonly heldLoading = new Map<string, Promise<HeldJob | undefined>>();
  /** jid -> agents of another master's job with new state results stored, told to its owner once a tick */
  private readonly progressOut = new Map<string, Set<string>>();
  /** bus events gathered in one tick: one dispatch per master and job, one returned per job */
  private readonly outgoing = new Map<string, OutgoingEvent>();
  /** returns and streamed results of a tick, stored in one transaction each (master/tick-batcher.ts) */
  private readonly returns: TickBatcher<JobReturnRow, boolean>;
  private readonly results: TickBatcher<{ jid: string; agentId: string; result: StateResult }, void>;
  /** acknowledged runs moving to running, a tick's in one transaction */
  private readonly running: TickBatcher<{ jid: string; agentId: string }, boolean>;
  /**
   * single job_agents rows asked for in one tick, read in one statement per job: a master sending
   * another master's job asks the store about every state result and return of its agents
   * (a batcher of reads: a failed read of the tick is retried row by row)
   */
  private readonly rowReads: TickBatcher<{ jid: string; agentId: string }, JobAgentRow | undefined>;

  constructor(deps: JobManagerDeps) {
    ({ store: this.store, source: this.source, revisions: this.revisions, agents: this.agents, cfg: this.cfg, log: this.log, events: this.events, remote: this.remote } = deps);
    this.returns = new TickBatcher((rows) => this.store.finishJobAgents(rows), (r) => this.store.finishJobAgent(r.jid, r.agentId, r.status, r.body), 500, WRITE_WINDOW_MS);
    this.results = new TickBatcher(
      async (rows) => (await this.store.putStateResults(rows), rows.map(() => undefined)),
      (r) => this.store.putStateResult(r.jid, r.agentId, r.result),
      500,
      WRITE_WINDOW_MS,
    );
    this.running = new TickBatcher((runs) => this.store.setJobAgentsRunning(runs), (r) => this.store.setJobAgentStatus(r.jid, r.agentId, 'running'), 500, WRITE_WINDOW_MS);
    this.rowReads = new TickBatcher(
      async (keys) => {
        const byJob = new Map<string, string[]>();
        for (const k of keys) byJob.set(k.jid, [...(byJob.get(k.jid) ?? []), k.agentId]);
        const found = new Map<string, JobAgentRow>();
        for (const [jid, ids] of byJob) for (const r of await this.store.jobAgentsOf(jid, ids)) found.set(`${jid}\0${r.agent_id}`, r);
        return keys.map((k) => found.get(`${k.jid}\0${k.agentId}`));
      },
      (k) => this.store.getJobAgent(k.jid, k.agentId),
    );
  }

  /** A job's row for this agent, read together with the tick's other reads. */
  private jobAgent(jid: string, agentId: string): Promise<JobAgentRow | undefined> {
    return this.rowReads.add({ jid, agentId });
  }

  /** Handlers for messages from accepted agents (the server's dispatch table). */
  handlers(): DispatchTable {
    return {
      hello: (c, m) => this.onHello(c, m),
      job_ack: (c, m) => this.onAck(c, m),
      job_refused: (c, m) => this.onRefused(c, m),
      bundle_get: (c, m) => this.onBundleGet(c, m),
      state_result: (c, m) => this.onStateResult(c, m),
      job_return: (c, m) => this.onReturn(c, m),
    };
  }

  /** At start-up: jobs a previous master left open wait lost_after_s for their agents. */
  async recover(): Promise<void> {
    const open = await this.store.openJobAgents();
    if (open.length) this.log.info(`recovering ${open.length} unfinished agent run(s) from before the restart`);
    for (const m of open) this.armLost(m.jid, m.agent_id, 'agent did not come back with the job after the master restarted');
  }

  stop(): void {
    for (const t of this.lostTimers.values()) clearTimeout(t);
    for (const u of this.unstored.values()) clearTimeout(u.timer);
    for (const j of this.active.values()) for (const t of j.timers.values()) clearTimeout(t);
  }

  // ---------------------------------------------------------------- starting jobs

  async start(asked: Extract<CliRequest, { type: 'apply' | 'run' }>, sink: Sink, opts: StartOptions = {}): Promise<number> {
    // a request without a timeout gets the master's timeout_s
    const req: JobRequest = { ...asked, timeout_s: asked.timeout_s ?? this.cfg.timeout_s };
    const agents = await this.store.listAgents();
    // snapshots by revision ('' = the head): each pins states and pillar together
    const snapshots = new Map<string, Promise<Snapshot>>();
    const snapshotAt = (rev: string | undefined) => {
      let p = snapshots.get(rev ?? '');
      if (!p) {
        p = this.source.snapshot(rev);
        p.catch(() => {});
        snapshots.set(rev ?? '', p);
      }
      return p;
    };
    // --revision is a one-off for everyone; otherwise each agent gets the revision the fleet
    // gives it (the desired one, or what a halted rollout left it on)
    const oneOff = req.type === 'apply' ? req.revision : undefined;
    const fleetRevision = oneOff ?? (await this.revisions?.desired());
    const revisionOf = (a: AgentRow) => oneOff ?? this.revisions?.forAgent(a, fleetRevision) ?? fleetRevision;
    const pillarCache = new Map<string, Promise<Record<string, unknown>>>();
    const pillarOf = (a: AgentRow) => {
      // targeting (I@) and each agent's job use that agent's revision's pillar
      let p = pillarCache.get(a.id);
      if (!p) {
        p = snapshotAt(req.type === 'apply' ? revisionOf(a) : fleetRevision).then(async (snap) => pillarFor(await pillarTreeOf(snap), a.id, { ...a.grains, id: a.id }));
        pillarCache.set(a.id, p);
      }
      return p;
    };
    let targets: AgentRow[];
    try {
      targets = await resolveTarget(req.target, req.tgt_type, agents, this.cfg.nodegroups, pillarOf);
    } catch (e) {
      if (e instanceof TargetError) {
        sink({ type: 'error', message: e.message });
        return 1;
      }
      sink({ type: 'error', message: `${this.source.label}: ${(e as Error).message}` });
      return 1;
    }
    // every revision the job needs resolves before anything is created or sent
    const bundles = new Map<string, BuiltBundle>();
    let bundle: BuiltBundle | undefined;
    if (req.type === 'apply') {
      try {
        bundle = (await snapshotAt(fleetRevision)).bundle;
        for (const a of targets) bundles.set(a.id, (await snapshotAt(revisionOf(a))).bundle);
      } catch (e) {
        sink({ type: 'error', message: `${this.source.label}: ${(e as Error).message}` });
        return 1;
      }
    }
    // agents connected to another master are online too: that master sends them their part
    const elsewhere = this.remote ? await this.remote.elsewhere() : new Map<string, string>();
    const reachable = (id: string) => this.agents.ready(id) !== undefined || elsewhere.has(id);
    const online = targets.filter((a) => reachable(a.id));
    const offline = targets.filter((a) => !reachable(a.id));
    // pillar targeting rendered every agent's pillar: the job keeps those it sends (until each returns)
    const sentTo = new Set(online.map((a) => a.id));
    for (const id of pillarCache.keys()) if (!sentTo.has(id)) pillarCache.delete(id);
    const jid = newJid();
    await this.store.createJob(
      {
        jid,
        kind: req.type,
        target: req.target,
        tgt_type: req.tgt_type,
        args: req.type === 'apply' ? { sls: req.sls, test: req.test, batch: req.batch ?? null, timeout_s: req.timeout_s, ...(req.pillar ? { pillar_keys: Object.keys(req.pillar) } : {}) } : { command: req.command, timeout_s: req.timeout_s },
        revision: bundle?.revision ?? null,
        started_by: req.user,
        intent: opts.intent ?? 'intentional',
      },
      [
        ...online.map((a) => ({ id: a.id, status: 'queued' as AgentJobStatus, revision: bundles.get(a.id)?.revision ?? null })),
        ...offline.map((a) => ({ id: a.id, status: 'lost' as AgentJobStatus, error: 'agent offline when the job started', revision: bundles.get(a.id)?.revision ?? null })),
      ],
    );
    this.events?.jobStarted(jid, req.type, opts.intent ?? 'intentional');
    for (const _ of offline) this.events?.agentDone(jid, 'lost');
    this.log.info(
      `job ${jid}: ${req.type} ${req.tgt_type} ${JSON.stringify(req.target)} by ${req.user}: ${online.length} agent(s)` +
        (offline.length ? `, ${offline.length} offline` : '') +
        (bundle ? `, revision ${bundle.revision.slice(0, 12)}` : ''),
    );
    sink({
      type: 'job_started',
      jid,
      revision: bundle?.revision ?? null,
      targets: targets.map((a) => a.id),
      offline: offline.map((a) => ({ id: a.id, last_seen: a.last_seen })),
    });
    let resolve!: (c: number) => void;
    const done = new Promise<number>((r) => (resolve = r));
    const batch = batchSize(req.batch, online.length);
    const job: ActiveJob = {
      jid,
      kind: req.type,
      req,
      bundles,
      pillarOf,
      pillars: pillarCache,
      rows: new Map(online.map(({ grains: _, ...row }) => [row.id, { ...row, grains: {} }])),
      closing: new Set(),
      wire: new Map(),
      waitIdle: opts.waitIdle ?? false,
      retried: new Map(),
      elsewhere,
      queue: online.map((a) => a.id),
      inflight: new Set(),
      timers: new Map(),
      sinks: new Set([sink]),
      batch,
      failed: false,
      missing: offline.length > 0,
      done,
      resolve,
    };
    this.active.set(jid, job);
    this.pump(job);
    return done;
  }

  /** The accepted agents a target matches (pillar targets read the desired revision's pillar). */
  async resolveTargets(target: string, tgt_type: TargetType): Promise<AgentRow[]> {
    const rev = await this.revisions?.desired();
    let snap: Promise<Snapshot> | undefined;
    const cache = new Map<string, Promise<Record<string, unknown>>>();
    const pillarOf = (a: AgentRow) => {
      let p = cache.get(a.id);
      if (!p) cache.set(a.id, (p = (snap ??= this.source.snapshot(rev)).then(async (s) => pillarFor(await pillarTreeOf(s), a.id, { ...a.grains, id: a.id }))));
      return p;
    };
    return resolveTarget(target, tgt_type, await this.store.listAgents(), this.cfg.nodegroups, pillarOf);
  }

  /** Fill the batch window. */
  private pump(job: ActiveJob): void {
    while (job.inflight.size < job.batch && job.queue.length) {
      const id = job.queue.shift()!;
      job.inflight.add(id);
      void this.dispatch(job, id).catch((e: Error) => this.finish(job.jid, id, 'failed', undefined, `master: ${e.message}`));
    }
    if (job.inflight.size === 0 && job.queue.length === 0) this.complete(job);
  }

  /** Whether another job is running a state run on this agent (this master's or a previous one's). */
  private async busy(jid: string, id: string): Promise<boolean> {
    for (const j of this.active.values()) if (j.jid !== jid && j.kind === 'apply' && j.inflight.has(id)) return true;
    return (await this.store.openJobAgents(id)).some((r) => r.jid !== jid && r.status === 'running');
  }

  /** Waits (at most the job's timeout) until the agent has no other state run. */
  private async waitIdle(job: ActiveJob, id: string): Promise<void> {
    const end = Date.now() + job.req.timeout_s * 1000;
    let said = false;
    while ((await this.busy(job.jid, id)) && Date.now() < end && this.active.has(job.jid)) {
      if (!said) this.log.info(`job ${job.jid}: ${id} is busy with another state run; waiting for it`);
      said = true;
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** rearm false: the agent's timeout keeps its deadline (a job message sent again, resend()) */
  private async dispatch(job: ActiveJob, id: string, rearm = true): Promise<void> {
    if (job.waitIdle && job.kind === 'apply') await this.waitIdle(job, id);
    // the run may have ended while it waited (cancelled, lost, job timed out): nothing to send
    if (!job.inflight.has(id)) return;
    const conn = this.agents.ready(id);
    const holder = conn ? undefined : job.elsewhere.get(id);
    if (holder) return this.dispatchElsewhere(job, id, holder);
    if (!conn) return this.finish(job.jid, id, 'lost', undefined, 'agent went offline before its turn');
    let text: Buffer;
    if (job.req.type === 'apply') {
      const b = job.bundles.get(id)!;
      let pillar: Record<string, unknown>;
      try {
        const row = job.rows.get(id);
        // grains from this connection's hello (the store holds the same, from that hello)
        pillar = row ? await job.pillarOf({ ...row, grains: { ...conn.grains, id } }) : {};
        if (job.req.pillar) pillar = deepMerge(structuredClone(pillar), structuredClone(job.req.pillar));
      } catch (e) {
        const body: ReturnBody = { kind: 'error', error: `pillar: ${(e as Error).message}` };
        // stored like a return: the agent never got the job
        if (await this.store.finishJobAgent(job.jid, id, 'failed', body)) return this.finish(job.jid, id, 'failed', body);
        return this.finish(job.jid, id, 'failed', undefined, body.error);
      }
      text = applyText(job.wire, job.jid, b, job.req.sls, job.req.test, pillar);
    } else {
      text = (job.runText ??= Buffer.from(jobText(job.jid, { kind: 'run', command: job.req.command, timeout_s: job.req.timeout_s })));
    }
    if (!conn.sendText(text)) return this.finish(job.jid, id, 'lost', undefined, 'agent went offline before its turn');
    this.log.debug(`job ${job.jid}: sent to ${id}`);
    if (rearm || !job.timers.has(id)) this.armTimeout(job, id);
  }

  /** The owner times every agent out, wherever it is connected. */
  private armTimeout(job: ActiveJob, id: string): void {
    const t = setTimeout(() => void this.finish(job.jid, id, 'timeout', undefined, `no return within ${job.req.timeout_s}s`), job.req.timeout_s * 1000);
    job.timers.set(id, t);
  }

  /** An agent connected to master `to`: that master sends it the job (the bus carries jid and ids only). */
  private dispatchElsewhere(job: ActiveJob, id: string, to: string): void {
    this.queueEvent(`d/${job.jid}/${to}`, { jid: job.jid, to, agents: [id], ...(job.req.type === 'apply' && job.req.pillar ? { pillar: job.req.pillar } : {}), ...(job.waitIdle ? { wait_idle: true } : {}) });
    this.log.debug(`job ${job.jid}: ${id} is connected to master ${to}; sent through it`);
    this.armTimeout(job, id);
  }

  /** Gathers bus events of one tick: a pump's thousand agents are one dispatch per master. */
  private queueEvent(key: string, ev: OutgoingEvent): void {
    const cur = this.outgoing.get(key);
    if (cur) {
      cur.agents.push(...ev.agents);
      return;
    }
    this.outgoing.set(key, ev);
    if (this.outgoing.size === 1) queueMicrotask(() => this.sendOutgoing());
  }

  private sendOutgoing(): void {
    const evs = [...this.outgoing.values()];
    this.outgoing.clear();
    for (const ev of evs) {
      if (ev.to === undefined) this.remote?.returned(ev.jid, ev.agents);
      else this.remote?.dispatch(ev.jid, ev.to, ev.agents, ev.pillar, ev.wait_idle);
    }
  }


  /** The record of run `key` (`${jid}/${agent}`), made empty when it has none yet. */
  private runHere(key: string): RunHere {
    let run = this.runsHere.get(key);
    if (!run) this.runsHere.set(key, (run = { resent: 0, acked: false }));
    return run;
  }

  /**
   * An agent's run ended one way or another. The store's transition decides: only the call
   * that moved the row (or a return stored by finishJobAgent, passed as `body`) ends the run;
   * a run this master still counts in flight whose row another path ended (a return stored
   * through another master) is released with the stored end. Never throws: a failing store is
   * logged (the lost timer or the agent's spooled return finish it later).
   */
  private async finish(jid: string, id: string, status: AgentJobStatus, body?: ReturnBody, error?: string): Promise<void> {
    this.disarmLost(jid, id);
    this.runsHere.delete(`${jid}/${id}`);
    // from here the run may be closed in the store: its messages ask the store again (openHere)
    this.active.get(jid)?.closing.add(id);
    let moved = body !== undefined;
    try {
      if (!body) {
        moved = await this.store.setJobAgentStatus(jid, id, status, error);
        if (moved) this.log.info(`job ${jid}: ${id} ${status}${error ? `: ${error}` : ''}`);
        else if (this.active.get(jid)?.inflight.has(id)) {
          const row = await this.store.getJobAgent(jid, id);
          if (row && TERMINAL.has(row.status)) {
            status = row.status;
            body = row.body ?? undefined;
            error = row.error ?? undefined;
          }
        }
      }
      const job = this.active.get(jid);
      // an apply that ended without a report (timeout, lost, pillar error) was still an attempt
      const b = job?.bundles.get(id);
      if (moved && job?.inflight.has(id) && b && job.req.type === 'apply' && !job.req.test && body?.kind !== 'apply' && status !== 'cancelled') {
        await this.store.recordAttempt(id, jid, b.revision, status);
      }
    } catch (e) {
      const what = status === 'timeout' ? `${id} timing out` : status === 'lost' ? `marking ${id} lost` : `${id} finishing (${status})`;
      this.log.error(`job ${jid}: ${what}: ${(e as Error).message}`);
      return;
    }
    // from here on synchronous: exactly one call takes the agent out of the job
    const job = this.active.get(jid);
    // another master's job (or one whose owner is gone): this master ended the run, its owner
    // learns it from the store
    if (!job && moved && this.remote) this.queueEvent(`r/${jid}`, { jid, to: undefined, agents: [id] });
    if (!job) this.pruneHeld(jid, id);
    if (!job || !job.inflight.has(id)) return;
    job.inflight.delete(id);
    job.closing.delete(id);
    clearTimeout(job.timers.get(id));
    job.timers.delete(id);
    // what the job kept for this agent is not needed any more (its bundle is offered to agents
    // in flight only; its pillar, and with it its job message, goes with it): a job of 10,000
    // agents sheds them as the returns come in instead of holding all of them to its end
    job.rows.delete(id);
    job.bundles.delete(id);
    job.pillars.delete(id);
    job.retried.delete(id);
    job.streamed?.delete(id);
    if (status === 'failed') job.failed = true;
    if (status === 'timeout' || status === 'lost') job.missing = true;
    this.emit(job, { type: 'agent_done', agent: id, status: status as 'done', ...(body ? { body } : {}), ...(error ? { error } : {}) });
    if (status !== 'done' && job.req.stop_on_failure) this.cancelQueued(job, id);
    this.pump(job);
  }

  /** Another master's job is forgotten here once every agent sent it from here has ended. */
  private pruneHeld(jid: string, id: string): void {
    this.runsHere.delete(`${jid}/${id}`);
    const held = this.held.get(jid);
    if (!held || !held.sent.has(id)) return;
    held.sent.delete(id);
    held.bundles.delete(id);
    if (!held.sent.size) this.held.delete(jid);
  }

  /**
   * `tsalt jobs kill JID`: agents not started yet are cancelled, agents running it are told to
   * stop (their programs are terminated and their return, with the states not run marked as
   * such, comes back as usual).
   */
  async kill(jid: string, user: string, sink: Sink): Promise<number> {
    const job = this.active.get(jid);
    if (!job) {
      const known = await this.store.getJob(jid);
      sink({ type: 'error', message: known ? `job ${jid} is not running (it has finished)` : `no job ${jid}` });
      return 1;
    }
    const why = `not started: the job was killed by ${user}`;
    const cancelled = job.queue.splice(0);
    // emitted at once (the job may complete before the writes settle), written meanwhile
    const writes = cancelled.map((id) => this.store.setJobAgentStatus(jid, id, 'cancelled', why));
    for (const id of cancelled) this.emit(job, { type: 'agent_done', agent: id, status: 'cancelled', error: why });
    if (cancelled.length) job.failed = true;
    const signalled: string[] = [];
    let elsewhere = false;
    for (const id of job.inflight) {
      if (this.agents.ready(id)?.send({ type: 'job_kill', jid })) signalled.push(id);
      else if (job.elsewhere.has(id)) {
        signalled.push(id); // told by the master it is connected to
        elsewhere = true;
      }
    }
    if (elsewhere) this.remote?.kill(jid, user);
    this.log.warn(`job ${jid}: killed by ${user}: ${signalled.length} running agent(s) told to stop, ${cancelled.length} queued cancelled`);
    sink({ type: 'data', data: { jid, signalled, cancelled } });
    this.pump(job);
    await this.settled(`job ${jid}: recording the cancelled agents`, writes);
    return 0;
  }

  /** Batches that stop on failure: the agents not started yet are not started at all. */
  private cancelQueued(job: ActiveJob, culprit: string): void {
    if (!job.queue.length) return;
    const why = `not started: ${culprit} did not succeed and the job stops on failure`;
    const ids = job.queue.splice(0);
    const writes = ids.map((id) => this.store.setJobAgentStatus(job.jid, id, 'cancelled', why));
    for (const id of ids) this.emit(job, { type: 'agent_done', agent: id, status: 'cancelled', error: why });
    job.failed = true;
    this.log.warn(`job ${job.jid}: stopped after ${culprit}; queued agents cancelled`);
    void this.settled(`job ${job.jid}: recording the cancelled agents`, writes);
  }

  /** Waits for store writes made alongside events; a failure is logged, never thrown. */
  private async settled(what: string, writes: Promise<unknown>[]): Promise<void> {
    for (const r of await Promise.allSettled(writes)) if (r.status === 'rejected') this.log.error(`${what}: ${(r.reason as Error).message}`);
  }

  private complete(job: ActiveJob): void {
    this.active.delete(job.jid);
    // same meaning as `tsalt local apply` (2: a state failed), plus 3: a targeted agent did not return
    const code = job.missing ? 3 : job.failed ? 2 : 0;
    this.log.info(`job ${job.jid}: complete (exit ${code})`);
    this.events?.jobCompleted(job.jid);
    job.resolve(code);
  }

  private emit(job: ActiveJob, ev: CliEvent): void {
    // every agent's end (finished, cancelled) is emitted exactly once, here
    if (ev.type === 'agent_done') this.events?.agentDone(job.jid, ev.status);
    for (const s of job.sinks) {
      try {
        s(ev);
      } catch {
        job.sinks.delete(s); // a CLI that went away does not stop the job
      }
    }
  }

  // ---------------------------------------------------------------- jobs of other masters

  /**
   * Master `from` started job `jid` for these agents, connected here: each is sent the job as
   * the owner would send it, built from the store (the job's sls and test flag, the agent's
   * revision) and this master's tree. An agent sent it already is skipped (a repeated dispatch).
   */
  async runDispatched(jid: string, ids: readonly string[], pillar?: Record<string, unknown>, waitIdle = false): Promise<void> {
    // the owner's pump sends one event per tick: a job's agents can come in several events at
    // once, and each must land in the same HeldJob (whose bundles answer the agents' bundle_get)
    let loading = this.held.has(jid) ? undefined : this.heldLoading.get(jid);
    if (!this.held.has(jid) && !loading) {
      loading = this.store.getJob(jid).then((row) => {
        if (!row) return undefined;
        const h: HeldJob = { row, pillar, sent: new Set(), snapshots: new Map(), bundles: new Map(), waitIdle, retried: new Map(), wire: new Map() };
        this.held.set(jid, h);
        return h;
      });
      this.heldLoading.set(jid, loading);
      void loading.finally(() => this.heldLoading.delete(jid)).catch(() => undefined);
    }
    const held = this.held.get(jid) ?? (await loading);
    if (!held) {
      this.log.warn(`job ${jid}: dispatched here by another master but not in the store; ignored`);
      return;
    }
    // many at once (a pump's tick of agents): their rows in one read, not one each (nor the
    // whole job's rows for each of a big job's events)
    let rows: Map<string, JobAgentRow> | undefined;
    const unsent = ids.filter((id) => !held.sent.has(id));
    if (unsent.length > 1) {
      try {
        rows = new Map((await this.store.jobAgentsOf(jid, unsent)).map((r) => [r.agent_id, r]));
      } catch {
        rows = undefined; // each is read on its own below (and fails there, if it does)
      }
    }
    for (const id of ids) {
      if (held.sent.has(id)) continue;
      held.sent.add(id);
      await this.sendHeld(held, id, rows).catch((e: Error) => this.safely(`job ${jid}: ${id}`, () => this.finish(jid, id, 'failed', undefined, `master: ${e.message}`)));
    }
  }

  private async sendHeld(held: HeldJob, id: string, rows?: Map<string, JobAgentRow>): Promise<void> {
    const { row } = held;
    const ja = rows ? rows.get(id) : await this.jobAgent(row.jid, id);
    // ended meanwhile (timed out, killed): nothing is sent, so nothing ends it here later either
    if (!ja || TERMINAL.has(ja.status)) return this.pruneHeld(row.jid, id);
    const conn = this.agents.ready(id);
    if (!conn) return this.finish(row.jid, id, 'lost', undefined, 'agent went offline before its turn');
    const args = row.args as { sls?: string[]; test?: boolean; command?: string; timeout_s?: number };
    let text: string | Buffer;
    if (row.kind === 'apply') {
      const rev = ja.revision ?? row.revision ?? undefined;
      let snap = held.snapshots.get(rev ?? '');
      if (!snap) held.snapshots.set(rev ?? '', (snap = this.source.snapshot(rev)));
      let b: BuiltBundle;
      let pillar: Record<string, unknown>;
      try {
        const s = await snap;
        b = s.bundle;
        // grains from this connection's hello (the store holds the same, from that hello); the
        // tree read once per snapshot, so equal renders are shared (master/pillar.ts)
        pillar = await pillarFor(await pillarTreeOf(s), id, { ...conn.grains, id });
        if (held.pillar) pillar = deepMerge(structuredClone(pillar), structuredClone(held.pillar));
      } catch (e) {
        const body: ReturnBody = { kind: 'error', error: `pillar: ${(e as Error).message}` };
        // stored like a return: the agent never got the job
        if (await this.store.finishJobAgent(row.jid, id, 'failed', body)) return this.finish(row.jid, id, 'failed', body);
        return this.finish(row.jid, id, 'failed', undefined, body.error);
      }
      held.bundles.set(id, b);
      text = applyText(held.wire, row.jid, b, args.sls ?? [], args.test ?? false, pillar);
    } else {
      text = jobText(row.jid, { kind: 'run', command: args.command ?? '', timeout_s: args.timeout_s ?? this.cfg.timeout_s });
    }
    if (!conn.sendText(text)) return this.finish(row.jid, id, 'lost', undefined, 'agent went offline before its turn');
    this.log.debug(`job ${row.jid}: sent to ${id} for another master`);
  }

  /** Another master stored these agents' ends of job `jid` (this master's): finish them from the store. */
  async remoteReturned(jid: string, ids: readonly string[]): Promise<void> {
    const job = this.active.get(jid);
    if (!job) return;
    const open = ids.filter((id) => job.inflight.has(id));
    if (!open.length) return;
    // a tick of returns: their rows (bodies) in one read
    const rows = new Map((await this.store.jobAgentsOf(jid, open)).map((r) => [r.agent_id, r]));
    for (const id of open) {
      const row = rows.get(id);
      if (!row || !TERMINAL.has(row.status) || !job.inflight.has(id)) continue;
      await this.finish(jid, id, row.status, row.body ?? undefined, row.error ?? undefined);
    }
  }

  /** The owner killed job `jid`: agents it was sent to from here are told to stop. */
  remoteKill(jid: string): void {
    const held = this.held.get(jid);
    if (!held) return;
    let n = 0;
    for (const id of held.sent) if (this.agents.ready(id)?.send({ type: 'job_kill', jid })) n++;
    this.log.warn(`job ${jid}: killed on its master: ${n} agent(s) here told to stop`);
  }

  /**
   * Master `to` may have missed dispatches (its bus connection dropped): the agents this master
   * sent there and that have not acknowledged the job are sent again (`to` skips those it has).
   */
  async redispatchTo(to: string): Promise<void> {
    for (const job of this.active.values()) {
      for (const id of job.inflight) {
        if (job.elsewhere.get(id) !== to || this.agents.ready(id)) continue;
        const row = await this.jobAgent(job.jid, id);
        if (row?.status === 'queued') this.queueEvent(`d/${job.jid}/${to}`, { jid: job.jid, to, agents: [id], ...(job.req.type === 'apply' && job.req.pillar ? { pillar: job.req.pillar } : {}), ...(job.waitIdle ? { wait_idle: true } : {}) });
      }
    }
  }

  /** This master may have missed returns (its bus connection dropped): they are read from the store. */
  async resync(): Promise<void> {
    for (const job of [...this.active.values()]) {
      const ids = [...job.inflight].filter((id) => job.elsewhere.has(id) && !this.agents.ready(id));
      if (ids.length) await this.remoteReturned(job.jid, ids);
    }
  }

  // ---------------------------------------------------------------- agent messages

  private async isOpenFor(jid: string, id: string): Promise<boolean> {
    const row = await this.jobAgent(jid, id);
    return !!row && !TERMINAL.has(row.status);
  }

  /**
   * Whether this master knows, without asking the store, that the agent's run of its own job is
   * open: sent from here, not ending (finish() has not begun) and never routed through another
   * master (only this master writes its end then). Anything else asks the store.
   */
  private openHere(jid: string, id: string): boolean {
    const job = this.active.get(jid);
    return !!job && job.inflight.has(id) && !job.closing.has(id) && !job.elsewhere.has(id);
  }

  private async onHello(conn: AgentConn, m: Msg<'hello'>): Promise<void> {
    const known = new Set([...m.running, ...m.spooled]);
    const running = new Set(m.running);
    for (const row of await this.store.openJobAgents(conn.id)) {
      const job = this.active.get(row.jid);
      if (job?.queue.includes(conn.id)) continue; // not sent yet: its batch turn will come
      // a return held for the store came back too, even if the agent's spool no longer says so
      if (known.has(row.jid) || this.unstored.has(`${row.jid}/${conn.id}`)) {
        this.disarmLost(row.jid, conn.id);
        // a run the agent says it runs is acknowledged by that: a state run acknowledges only
        // after ACK_AFTER_MS (agent/daemon.ts), so a connection lost before that mark carried
        // no job_ack; coming back without it later, the agent restarted mid-run (lost)
        if (running.has(row.jid) && row.status === 'queued') void this.onAck(conn, { type: 'job_ack', jid: row.jid });
        continue;
      }
      // never acknowledged: the job message most likely went down with the last connection
      // (an agent cut off by a missed heartbeat under load), or the agent restarted within
      // ACK_AFTER_MS of taking a state run (agent/daemon.ts), so a state run is sent on this one
      if (row.status === 'queued' && !this.runsHere.get(`${row.jid}/${conn.id}`)?.acked && (await this.resend(row.jid, conn))) continue;
      await this.finish(row.jid, conn.id, 'lost', undefined, 'agent came back without the job (restarted or killed mid-run)');
    }
  }

  /**
   * Sends state run `jid` again to an agent that came back without it and had not acknowledged
   * it: from its owner, from the master that sent it for its owner, or, without a pillar
   * override (which only its owner holds), loaded from the store here. At most MAX_RESENDS
   * times per run (an agent that drops every job message must not loop until the timeout);
   * false when it is not sent from here. Only a state run: an agent killed right after it took
   * a job may not have got its acknowledgement out (a state run's comes only after
   * ACK_AFTER_MS, agent/daemon.ts: one killed within that span gets the run again), and a state
   * run done twice converges to the same end where a command (`tsalt run`, acknowledged at
   * once) done twice need not. An agent that did get it and lives says so in its hello (the run
   * or its spooled return), and ignores a job it has seen.
   */
  private async resend(jid: string, conn: AgentConn): Promise<boolean> {
    const id = conn.id;
    const key = `${jid}/${id}`;
    const n = (this.runsHere.get(key)?.resent ?? 0) + 1;
    if (n > MAX_RESENDS) return false;
    const job = this.active.get(jid);
    const held = job ? undefined : this.held.get(jid);
    if (job) {
      if (job.kind !== 'apply' || !job.inflight.has(id) || job.closing.has(id)) return false;
    } else if (held) {
      if (held.row.kind !== 'apply') return false;
    } else {
      const row = await this.store.getJob(jid);
      if (!row || row.kind !== 'apply' || (row.args as { pillar_keys?: unknown }).pillar_keys) return false;
    }
    this.runHere(key).resent = n;
    this.disarmLost(jid, id);
    this.log.info(`job ${jid}: ${id} came back without the job, which it had not acknowledged; sending it again`);
    if (job) {
      // sent from here now, within the time the job gave the agent at the start
      job.elsewhere.delete(id);
      await this.dispatch(job, id, false).catch((e: Error) => this.finish(jid, id, 'failed', undefined, `master: ${e.message}`));
      return true;
    }
    held?.sent.delete(id);
    await this.runDispatched(jid, [id], held?.pillar, held?.waitIdle ?? false);
    return true;
  }

  private async onAck(conn: AgentConn, m: Msg<'job_ack'>): Promise<void> {
    // kept while the run is open here (finish and pruneHeld drop it)
    if (this.active.get(m.jid)?.inflight.has(conn.id) || this.held.get(m.jid)?.sent.has(conn.id)) this.runHere(`${m.jid}/${conn.id}`).acked = true;
    // only a run not ended moves to running; bookkeeping: a failing store must not cut the
    // agent off mid-job (its return says the rest)
    await this.safely(`job ${m.jid}: recording ${conn.id} running`, () => this.running.add({ jid: m.jid, agentId: conn.id }));
  }

  private async onRefused(conn: AgentConn, m: Msg<'job_refused'>): Promise<void> {
    if (!(await this.isOpenFor(m.jid, conn.id))) return;
    const job = this.active.get(m.jid);
    if (job?.waitIdle && job.inflight.has(conn.id) && /already in progress/.test(m.message) && (job.retried.get(conn.id) ?? 0) < job.req.timeout_s) {
      // a run this master did not start (or a race): this job waits its turn (about one try a second)
      job.retried.set(conn.id, (job.retried.get(conn.id) ?? 0) + 1);
      clearTimeout(job.timers.get(conn.id));
      this.log.info(`job ${m.jid}: ${conn.id} is busy (${m.message}); sent again when it is free`);
      const t = setTimeout(() => void this.dispatch(job, conn.id).catch((e: Error) => this.finish(job.jid, conn.id, 'failed', undefined, `master: ${e.message}`)), 1000);
      job.timers.set(conn.id, t);
      return;
    }
    const held = this.held.get(m.jid);
    const heldTimeout = (held?.row.args as { timeout_s?: number } | undefined)?.timeout_s ?? this.cfg.timeout_s;
    if (held?.waitIdle && held.sent.has(conn.id) && /already in progress/.test(m.message) && (held.retried.get(conn.id) ?? 0) < heldTimeout) {
      // another master's rollout or schedule: sent again from here when the agent is free, as
      // its owner would (the owner's timer still bounds the wait)
      held.retried.set(conn.id, (held.retried.get(conn.id) ?? 0) + 1);
      this.log.info(`job ${m.jid}: ${conn.id} is busy (${m.message}); sent again when it is free`);
      setTimeout(() => void this.sendHeld(held, conn.id).catch((e: Error) => this.safely(`job ${m.jid}: ${conn.id}`, () => this.finish(m.jid, conn.id, 'failed', undefined, `master: ${e.message}`))), 1000).unref();
      return;
    }
    const body: ReturnBody = { kind: 'error', error: m.message };
    if (!(await this.store.finishJobAgent(m.jid, conn.id, 'failed', body))) return;
    this.log.info(`job ${m.jid}: ${conn.id} refused: ${m.message}`);
    await this.finish(m.jid, conn.id, 'failed', body);
  }

  private async onBundleGet(conn: AgentConn, m: Msg<'bundle_get'>): Promise<void> {
    // only the bundle of a job running now (this master's, or another's sent from here), offered
    // to this agent: nothing is kept per agent beyond its jobs (a map of every bundle ever
    // offered kept every revision's tree alive)
    const b = this.active.get(m.jid)?.bundles.get(conn.id) ?? this.held.get(m.jid)?.bundles.get(conn.id);
    if (!b || b.hash !== m.hash || !(await this.isOpenFor(m.jid, conn.id))) {
      this.log.warn(`agent ${conn.id}: asked for bundle ${m.hash.slice(0, 12)} it was not offered; denied`);
      conn.send({ type: 'denied', message: `bundle ${m.hash.slice(0, 12)} was not offered to you` });
      return;
    }
    conn.send({ type: 'bundle', hash: b.hash, revision: b.revision, files: toWire(b.entries) });
  }

  private async onStateResult(conn: AgentConn, m: Msg<'state_result'>): Promise<void> {
    // an apply's return holds every result again: one that cannot be stored now is stored with
    // it (the store writes a result once: the return's copy of one stored here writes nothing)
    const notNow = (e: Error) => this.log.error(`job ${m.jid}: a state result of ${conn.id} not stored now (${e.message}); it is stored with the return`);
    try {
      if (!this.openHere(m.jid, conn.id) && !(await this.isOpenFor(m.jid, conn.id))) return;
    } catch (e) {
      return notNow(e as Error); // nor counted or shown: the return does both
    }
    // counted now (before the write's wait: the return, handled meanwhile, counts the others)
    const run = this.runHere(`${m.jid}/${conn.id}`);
    (run.streamed ??= new Set()).add(m.result.run_num);
    this.events?.stateResult(m.jid, m.result);
    try {
      await this.results.add({ jid: m.jid, agentId: conn.id, result: m.result });
    } catch (e) {
      notNow(e as Error);
    }
    const job = this.active.get(m.jid);
    if (job) this.emit(job, { type: 'state_result', agent: conn.id, result: m.result });
    else if (this.held.has(m.jid) && this.remote?.progress) this.queueProgress(m.jid, conn.id);
  }

  /** Another master's job: its owner is told (once a tick, by jid and agent ids) that results were stored. */
  private queueProgress(jid: string, id: string): void {
    let ids = this.progressOut.get(jid);
    if (!ids) {
      this.progressOut.set(jid, (ids = new Set()));
      if (this.progressOut.size === 1)
        setImmediate(() => {
          const out = [...this.progressOut];
          this.progressOut.clear();
          for (const [j, agents] of out) {
            // a run whose return was stored meanwhile is not announced: its owner reads the
            // return (every result in it) when told it returned
            const held = this.held.get(j);
            const open = [...agents].filter((id) => held?.sent.has(id));
            if (open.length) this.remote?.progress?.(j, open);
          }
        });
    }
    ids.add(id);
  }

  /** State results of this master's job stored by another master: streamed to the job's sinks from the store. */
  remoteProgress(jid: string, ids: readonly string[]): Promise<void> {
    const job = this.active.get(jid);
    if (!job) return Promise.resolve();
    const streamed = (job.streamed ??= new Map());
    const next = (job.streaming ?? Promise.resolve()).then(async () => {
      // an agent whose return is in is left out: the CLI prints the whole run
      const open = ids.filter((id) => job.inflight.has(id));
      if (!open.length) return;
      const stored = await this.store.stateResultsOf(jid, open);
      for (const id of open) {
        if (!job.inflight.has(id)) continue;
        const rows = stored.get(id) ?? [];
        const from = streamed.get(id) ?? 0;
        for (const result of rows.slice(from)) this.emit(job, { type: 'state_result', agent: id, result });
        streamed.set(id, Math.max(from, rows.length));
      }
    });
    job.streaming = next.catch((e: Error) => this.log.debug(`job ${jid}: streaming results stored by another master: ${e.message}`));
    return job.streaming;
  }

  private async onReturn(conn: AgentConn, m: Msg<'job_return'>): Promise<void> {
    const key = `${m.jid}/${conn.id}`;
    if (this.unstored.has(key)) return; // re-sent while the first copy waits for the store
    try {
      await this.storeReturn(conn.id, m);
    } catch (e) {
      this.holdUnstored(conn, m, (e as Error).message);
      return;
    }
    // acknowledged (the agent drops it from its spool) only once stored, or when there is
    // nothing to store (never sent to it, or a duplicate of a stored return)
    conn.send({ type: 'return_ack', jid: m.jid });
  }

  /** Stores a return; false when there was nothing to store. Throws when the store fails. */
  private async storeReturn(id: string, m: Msg<'job_return'>): Promise<boolean> {
    // a run of this master's own job that is open here needs no read first: the write's
    // transition alone decides (below); anything else (a late, duplicate or stray return, or
    // another master's job) is read, to say which it is
    const here = this.openHere(m.jid, id);
    const row = here ? undefined : await this.jobAgent(m.jid, id);
    if (!here && !row) {
      this.log.warn(`agent ${id}: return for job ${m.jid} that was never sent to it; ignored`);
      return false;
    }
    if (row && (row.status === 'done' || row.status === 'failed')) return false; // a duplicate (re-sent spool)
    // its streamed results from here on ask the store (the run is being closed)
    if (here) this.active.get(m.jid)!.closing.add(id);
    const b = m.body;
    const ok = b.kind === 'apply' ? b.report.counts.failed === 0 : b.kind === 'run' ? b.retcode === 0 : false;
    const status = ok ? 'done' : 'failed';
    // the transition decides: a copy stored meanwhile (another connection, another master) wins
    if (!(await this.returns.add({ jid: m.jid, agentId: id, status, body: b }))) return false;
    if (b.kind === 'apply' && this.events) {
      // the results not streamed here: all of a run that ended within the agent's mark (and, as
      // each master counts what it saw, those streamed to another master before a failover)
      const seen = this.runsHere.get(`${m.jid}/${id}`)?.streamed;
      for (const r of b.report.results) if (!seen?.has(r.run_num)) this.events.stateResult(m.jid, r);
    }
    this.log.info(`job ${m.jid}: ${id} returned (${status})${row && TERMINAL.has(row.status) ? ` late, after ${row.status}` : ''}`);
    await this.finish(m.jid, id, status, b);
    return true;
  }

  /**
   * The store refused a return (SQLITE_BUSY past busy_timeout, SQLITE_FULL): kept in memory
   * and tried again until it is stored, then acknowledged. Not acknowledged meanwhile, so the
   * agent still has it: beyond held_returns_max_bytes held, it is not kept here at all and the
   * agent sends it again on its next connection (which this closes).
   */
  private holdUnstored(conn: AgentConn, m: Msg<'job_return'>, why: string): void {
    const key = `${m.jid}/${conn.id}`;
    if (this.unstored.has(key)) return; // another copy failed at the same time: that one is held
    const bytes = Buffer.byteLength(JSON.stringify(m));
    if (this.unstoredBytes + bytes > this.cfg.held_returns_max_bytes) {
      this.log.error(`job ${m.jid}: the return of ${conn.id} could not be stored (${why}); too many returns waiting for the store, the agent keeps it and sends it again on reconnect`);
      conn.close(CloseCode.protocolError, 'master store unavailable: send the return again later');
      return;
    }
    this.log.error(`job ${m.jid}: the return of ${conn.id} could not be stored (${why}); kept and tried again every ${this.cfg.held_return_retry_s}s (the agent keeps it spooled until then)`);
    this.disarmLost(m.jid, conn.id);
    const retry = async (): Promise<void> => {
      const u = this.unstored.get(key);
      if (!u) return;
      try {
        await this.storeReturn(conn.id, m);
      } catch (e) {
        this.log.debug(`job ${m.jid}: the return of ${conn.id} still not stored: ${(e as Error).message}`);
        u.timer = setTimeout(() => void retry(), this.cfg.held_return_retry_s * 1000);
        return;
      }
      this.unstored.delete(key);
      this.unstoredBytes -= u.bytes;
      this.log.info(`job ${m.jid}: the held return of ${conn.id} is stored now`);
      // on the agent's current connection (it may have reconnected meanwhile); if it has none,
      // the spooled copy it sends on reconnect is acknowledged as a duplicate
      (this.agents.ready(conn.id) ?? conn).send({ type: 'return_ack', jid: m.jid });
    };
    this.unstored.set(key, { msg: m, bytes, timer: setTimeout(() => void retry(), this.cfg.held_return_retry_s * 1000) });
    this.unstoredBytes += bytes;
  }

  /** Follow-ups that write to the store: a failing store is logged, never thrown out of a handler or timer. */
  private async safely(what: string, fn: () => unknown): Promise<void> {
    try {
      await fn();
    } catch (e) {
      this.log.error(`${what}: ${(e as Error).message}`);
    }
  }

  /** Called by the server when an agent's connection ends. */
  async onDisconnect(conn: AgentConn): Promise<void> {
    let open: Awaited<ReturnType<Store['openJobAgents']>>;
    try {
      open = await this.store.openJobAgents(conn.id);
    } catch (e) {
      this.log.error(`agent ${conn.id} disconnected: its open jobs could not be read (${(e as Error).message}); they end by their timeouts`);
      return;
    }
    for (const row of open) {
      const job = this.active.get(row.jid);
      if (job?.queue.includes(conn.id)) continue;
      this.armLost(row.jid, conn.id, 'agent disconnected mid-job and did not come back with it');
    }
  }

  private armLost(jid: string, id: string, why: string): void {
    const key = `${jid}/${id}`;
    if (this.lostTimers.has(key)) return;
    const t = setTimeout(() => {
      this.lostTimers.delete(key);
      if (this.unstored.has(key)) {
        // it did come back: its return waits for the store, and is stored as it is
        this.log.debug(`job ${jid}: ${id} is not lost: its return is held until the store takes it`);
        return;
      }
      void this.heldElsewhere(jid, id).then((there) => {
        // connected to another master now: that master's hello saw whether it came back with the
        // job, and its return goes there; another master's job sent from here is done with here
        if (there) return this.pruneHeld(jid, id);
        // the transition only moves a run still open
        return this.finish(jid, id, 'lost', undefined, why);
      });
    }, this.cfg.lost_after_s * 1000);
    t.unref();
    this.lostTimers.set(key, t);
  }

  private async heldElsewhere(jid: string, id: string): Promise<boolean> {
    if (!this.remote || this.agents.ready(id)) return false;
    try {
      return (await this.remote.holderOf(id)) !== undefined;
    } catch (e) {
      this.log.error(`job ${jid}: where ${id} is connected could not be read: ${(e as Error).message}`);
      return false;
    }
  }

  private disarmLost(jid: string, id: string): void {
    const key = `${jid}/${id}`;
    clearTimeout(this.lostTimers.get(key));
    this.lostTimers.delete(key);
  }
}

/** how often one run's job message is sent again to an agent coming back without it (JobManager.resend) */
const MAX_RESENDS = 3;

/** A job message as its agent receives it: serialised once and sent as is to every agent it fits. */
function jobText(jid: string, spec: Job['spec']): string {
  return JSON.stringify({ type: 'job', jid, spec } satisfies MasterMessage);
}

/**
 * An apply's job message for an agent given bundle `b` and `pillar`: agents given the same
 * bundle and the same pillar object (a render shared by agents with equal inputs, frozen) get
 * the same text, serialised once (`wire` is the job's: bundle hash -> pillar object -> text).
 */
function applyText(wire: Map<string, WeakMap<object, Buffer>>, jid: string, b: BuiltBundle, sls: string[], test: boolean, pillar: Record<string, unknown>): Buffer {
  let byPillar = wire.get(b.hash);
  if (!byPillar) wire.set(b.hash, (byPillar = new WeakMap()));
  let text = byPillar.get(pillar);
  // encoded once: agents whose pillar render was shared get the same bytes, not a string each
  // that the socket encodes again (master/server.ts sendText)
  if (text === undefined) byPillar.set(pillar, (text = Buffer.from(jobText(jid, { kind: 'apply', revision: b.revision, bundle: b.hash, sls, test, pillar }))));
  return text;
}

/** `--batch 10` or `--batch 25%` of n targets (at least 1); absent: all at once. */
export function batchSize(batch: string | undefined, n: number): number {
  if (!batch) return Math.max(1, n);
  if (batch.endsWith('%')) return Math.max(1, Math.floor((n * Number(batch.slice(0, -1))) / 100));
  return Math.max(1, Number(batch));
}
