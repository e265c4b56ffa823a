/**
 * The master's Prometheus endpoint: `GET /metrics` in the text exposition format 0.0.4, plain
 * HTTP, read-only, rendered by prom-client from a registry of the master's own (no default
 * process metrics, nothing global). Metrics carry counts, states and the tree's revision only:
 * never an agent id, a target, pillar or command output.
 *
 * Counters are fed by the JobManager through its `JobEvents` sink; agent counts and the tree
 * revision are read from the store, the agent server and git when Prometheus scrapes.
 */
import http from 'node:http';
import * as z from 'zod';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Logger } from '../core/log.js';
import type { StateResult } from '../protocol/results.js';
import type { AgentDoneStatus, JobEvents } from './jobs.js';
import type { KeyState } from './store-api.js';

export const MetricsConfigSchema = z.strictObject({
  /** address the endpoint listens on; the default keeps it on the master itself */
  interface: z.string().min(1).default('127.0.0.1'),
  /** 0 picks a free port (tests; the chosen one is logged) */
  port: z.number().int().min(0).max(65535).default(9506),
});
export type MetricsConfig = z.infer<typeof MetricsConfigSchema>;

// ------------------------------------------------------------------ the master's metrics

/** The text exposition format 0.0.4, which Prometheus and promtool read. */
export const CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

/** Job durations: a `run` on a few agents takes a second, a highstate on many minutes. */
export const JOB_DURATION_BUCKETS = [0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800];

/** What the endpoint reads when scraped. */
export interface MetricsSource {
  /** every known key: its state, and whether the agent is connected now */
  agents(): { key_state: KeyState; connected: boolean }[] | Promise<{ key_state: KeyState; connected: boolean }[]>;
  /** the state tree's HEAD commit; undefined for a plain directory (no revision to show) */
  revision(): Promise<string | undefined>;
}

const RETURN_STATUSES: readonly AgentDoneStatus[] = ['done', 'failed', 'timeout', 'lost', 'cancelled'];

export class MasterMetrics implements JobEvents {
  readonly registry = new Registry();
  private readonly agents = new Gauge({
    name: 'tsalt_agents',
    help: 'Known agent keys: accepted ones connected or offline, pending, rejected.',
    labelNames: ['state'] as const,
    registers: [this.registry],
  });
  private readonly jobsStarted = new Counter({ name: 'tsalt_jobs_started_total', help: 'Jobs started since the master started.', labelNames: ['kind'] as const, registers: [this.registry] });
  private readonly returns = new Counter({
    name: 'tsalt_agent_returns_total',
    help: "Agents' runs of a job that ended, by how they ended (once per agent and job).",
    labelNames: ['status'] as const,
    registers: [this.registry],
  });
  private readonly stateResults = new Counter({
    name: 'tsalt_state_results_total',
    help: 'State results reported by agents (streamed, or in their return): true, false, or none (test mode, changes pending).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  private readonly stateChanges = new Counter({ name: 'tsalt_state_changes_total', help: 'State results that changed something (test-mode predictions excluded).', registers: [this.registry] });
  private readonly duration = new Histogram({
    name: 'tsalt_job_duration_seconds',
    help: 'Time from a job starting to its last agent ending.',
    buckets: JOB_DURATION_BUCKETS,
    registers: [this.registry],
  });
  private readonly running = new Gauge({ name: 'tsalt_jobs_running', help: 'Jobs started and not complete.', registers: [this.registry] });
  private readonly treeInfo = new Gauge({
    name: 'tsalt_state_tree_info',
    help: 'The git revision of the state tree new jobs are given (HEAD).',
    labelNames: ['revision'] as const,
    registers: [this.registry],
  });
  private readonly startTime = new Gauge({ name: 'tsalt_master_start_time_seconds', help: 'When the master started, in seconds since the Unix epoch.', registers: [this.registry] });
  private readonly unhandledRejections = new Counter({
    name: 'tsalt_unhandled_rejections_total',
    help: 'Promise rejections nobody handled, logged by the last-resort net (core/last-resort.ts) instead of ending the master: each is a bug.',
    registers: [this.registry],
  });

  /** jid -> when it started (monotonic ms) */
  private readonly startedAt = new Map<string, number>();

  constructor(startedMs = Date.now()) {
    // every series exists at 0 before anything happened: a rate needs the zero
    for (const kind of ['apply', 'run']) this.jobsStarted.inc({ kind }, 0);
    for (const status of RETURN_STATUSES) this.returns.inc({ status }, 0);
    for (const result of ['true', 'false', 'none']) this.stateResults.inc({ result }, 0);
    this.running.set(0);
    this.startTime.set(startedMs / 1000);
    this.unhandledRejections.inc(0);
  }

  /** The last-resort net caught a rejection nobody handled (cli/commands/master.ts). */
  unhandledRejection(): void {
    this.unhandledRejections.inc();
  }

  // JobEvents: called by the JobManager

  jobStarted(jid: string, kind: 'apply' | 'run'): void {
    this.jobsStarted.inc({ kind });
    this.startedAt.set(jid, performance.now());
    this.running.set(this.startedAt.size);
  }

  agentDone(_jid: string, status: AgentDoneStatus): void {
    this.returns.inc({ status });
  }

  stateResult(_jid: string, r: Pick<StateResult, 'result' | 'changes'>): void {
    this.stateResults.inc({ result: r.result === null ? 'none' : String(r.result) });
    // result null is a test run: its changes are a prediction, nothing changed
    if (r.result !== null && Object.keys(r.changes).length > 0) this.stateChanges.inc();
  }

  jobCompleted(jid: string): void {
    const t = this.startedAt.get(jid);
    if (t === undefined) return;
    this.startedAt.delete(jid);
    this.duration.observe((performance.now() - t) / 1000);
    this.running.set(this.startedAt.size);
  }

  /** The exposition text, with the gauges read from `src` now. */
  async render(src: MetricsSource): Promise<string> {
    const n: Record<'connected' | 'offline' | 'pending' | 'rejected', number> = { connected: 0, offline: 0, pending: 0, rejected: 0 };
    for (const a of await src.agents()) {
      if (a.key_state === 'accepted') n[a.connected ? 'connected' : 'offline']++;
      else n[a.key_state]++;
    }
    for (const [state, v] of Object.entries(n)) this.agents.set({ state }, v);
    let revision: string | undefined;
    try {
      revision = await src.revision();
    } catch {
      revision = undefined; // no tree (yet): the series is left out, the rest still scrapes
    }
    this.treeInfo.reset();
    if (revision) this.treeInfo.set({ revision }, 1);
    return this.registry.metrics();
  }
}

// ------------------------------------------------------------------ the HTTP endpoint

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

/**
 * Serve `GET /metrics` (HEAD too); every other path or method is 404. The server does not
 * keep the process alive on its own (unref): a master whose agent port cannot be bound still
 * exits.
 */
export function serveMetrics(cfg: MetricsConfig, metrics: MasterMetrics, src: MetricsSource, log: Logger): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    let pathname: string;
    try {
      pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    } catch {
      pathname = '';
    }
    if (pathname !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('not found: the metrics are at GET /metrics\n');
      return;
    }
    metrics.render(src).then(
      (text) => {
        res.writeHead(200, { 'Content-Type': CONTENT_TYPE, 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (e: Error) => {
        log.warn(`scrape failed: ${e.message}`);
        res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end('metrics could not be collected; see the master log\n');
      },
    );
  });
  server.on('clientError', (_e, sock) => sock.destroy());
  return new Promise((resolve, reject) => {
    server.once('error', (e) => reject(new Error(`metrics endpoint ${cfg.interface}:${cfg.port}: ${e.message}`)));
    server.listen(cfg.port, cfg.interface, () => {
      server.removeAllListeners('error');
      server.on('error', (e) => log.error(`metrics endpoint: ${e.message}`));
      server.unref();
      const a = server.address();
      const port = typeof a === 'object' && a ? a.port : cfg.port;
      log.info(`metrics on http://${cfg.interface.includes(':') ? `[${cfg.interface}]` : cfg.interface}:${port}/metrics`);
      resolve({
        port,
        close: () =>
          new Promise<void>((r) => {
            server.close(() => r());
            server.closeAllConnections(); // Prometheus keeps its connection open between scrapes
          }),
      });
    });
  });
}
