/**
 * The master's Prometheus endpoint: `GET /metrics` in the text exposition format 0.0.4, plain
 * HTTP, read-only. A small registry (counters, gauges, histograms with label sets) instead of
 * a client library: tsalt needs a handful of series, not a dependency. Metrics carry counts,
 * states and the tree's revision only: never an agent id, a target, pillar or command output.
 *
 * Counters are fed by the JobManager through its `JobEvents` sink; agent counts and the tree
 * revision are read from the store, the agent server and git when Prometheus scrapes.
 */
import http from 'node:http';
import { z } from 'zod';
import type { Logger } from '../core/log.js';
import type { StateResult } from '../protocol/results.js';
import type { AgentDoneStatus, JobEvents } from './jobs.js';
import type { KeyState } from './store.js';

export const MetricsConfigSchema = z.strictObject({
  /** address the endpoint listens on; the default keeps it on the master itself */
  interface: z.string().min(1).default('127.0.0.1'),
  /** 0 picks a free port (tests; the chosen one is logged) */
  port: z.number().int().min(0).max(65535).default(9506),
});
export type MetricsConfig = z.infer<typeof MetricsConfigSchema>;

// ------------------------------------------------------------------ registry and rendering

export type Labels = Readonly<Record<string, string>>;

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
// names starting with __ are reserved for Prometheus itself
const LABEL_NAME = /^(?!__)[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A label value inside double quotes: backslash, double quote and line feed are escaped. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** HELP text: backslash and line feed are escaped (quotes are not, per the format). */
export function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** A sample value as the format spells it (Go float syntax: +Inf, -Inf, NaN). */
export function formatValue(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  return String(n);
}

function labelText(names: readonly string[], values: readonly string[], extra?: [string, string]): string {
  const parts = names.map((n, i) => `${n}="${escapeLabelValue(values[i]!)}"`);
  if (extra) parts.push(`${extra[0]}="${escapeLabelValue(extra[1])}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

interface MetricOptions {
  name: string;
  help: string;
  labelNames?: readonly string[];
}

abstract class Metric<S> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  abstract readonly type: 'counter' | 'gauge' | 'histogram';
  /** series by label values (in labelNames order), in the order they first appeared */
  protected readonly series = new Map<string, { values: string[]; s: S }>();

  constructor(o: MetricOptions) {
    if (!METRIC_NAME.test(o.name)) throw new Error(`invalid metric name '${o.name}'`);
    const names = o.labelNames ?? [];
    for (const l of names) if (!LABEL_NAME.test(l)) throw new Error(`${o.name}: invalid label name '${l}'`);
    if (new Set(names).size !== names.length) throw new Error(`${o.name}: duplicate label names`);
    this.name = o.name;
    this.help = o.help;
    this.labelNames = names;
  }

  protected abstract fresh(): S;

  /** The series of exactly these labels (created at zero on first use). */
  protected at(labels: Labels): S {
    const keys = Object.keys(labels);
    if (keys.length !== this.labelNames.length || !this.labelNames.every((n) => typeof labels[n] === 'string')) {
      throw new Error(`${this.name}: labels must be exactly {${this.labelNames.join(', ')}}, got {${keys.join(', ')}}`);
    }
    const values = this.labelNames.map((n) => labels[n]!);
    const key = JSON.stringify(values);
    let e = this.series.get(key);
    if (!e) this.series.set(key, (e = { values, s: this.fresh() }));
    return e.s;
  }

  protected abstract sampleLines(values: string[], s: S): string[];

  render(): string {
    const out = [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`];
    for (const { values, s } of this.series.values()) out.push(...this.sampleLines(values, s));
    return out.join('\n') + '\n';
  }
}

export class Counter extends Metric<{ v: number }> {
  readonly type = 'counter';
  protected fresh() {
    return { v: 0 };
  }
  /** Makes the series exist at 0 before anything happened (a rate needs the zero). */
  init(labels: Labels = {}): this {
    this.at(labels);
    return this;
  }
  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0) || !Number.isFinite(by)) throw new Error(`${this.name}: a counter only goes up (by ${by})`);
    this.at(labels).v += by;
  }
  get(labels: Labels = {}): number {
    return this.at(labels).v;
  }
  protected sampleLines(values: string[], s: { v: number }): string[] {
    return [`${this.name}${labelText(this.labelNames, values)} ${formatValue(s.v)}`];
  }
}

export class Gauge extends Metric<{ v: number }> {
  readonly type = 'gauge';
  protected fresh() {
    return { v: 0 };
  }
  set(labels: Labels, v: number): void {
    this.at(labels).v = v;
  }
  get(labels: Labels = {}): number {
    return this.at(labels).v;
  }
  /** Drops every series (a gauge whose label values come and go, like a revision). */
  clear(): void {
    this.series.clear();
  }
  protected sampleLines(values: string[], s: { v: number }): string[] {
    return [`${this.name}${labelText(this.labelNames, values)} ${formatValue(s.v)}`];
  }
}

interface HistSeries {
  /** per bucket (not cumulative); rendering adds them up */
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram extends Metric<HistSeries> {
  readonly type = 'histogram';
  readonly buckets: readonly number[];

  constructor(o: MetricOptions & { buckets: readonly number[] }) {
    super(o);
    if (this.labelNames.includes('le')) throw new Error(`${o.name}: 'le' is the bucket label of a histogram`);
    const b = [...o.buckets];
    if (!b.length || b.some((x, i) => !Number.isFinite(x) || (i > 0 && x <= b[i - 1]!))) {
      throw new Error(`${o.name}: buckets must be finite and strictly increasing (+Inf is implied)`);
    }
    this.buckets = b;
  }

  protected fresh(): HistSeries {
    return { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
  }

  observe(v: number, labels: Labels = {}): void {
    const s = this.at(labels);
    // upper bounds are inclusive (le: less than or equal)
    const i = this.buckets.findIndex((b) => v <= b);
    if (i >= 0) s.counts[i]!++;
    s.sum += v;
    s.count++;
  }

  init(labels: Labels = {}): this {
    this.at(labels);
    return this;
  }

  protected sampleLines(values: string[], s: HistSeries): string[] {
    const out: string[] = [];
    let acc = 0;
    this.buckets.forEach((b, i) => {
      acc += s.counts[i]!;
      out.push(`${this.name}_bucket${labelText(this.labelNames, values, ['le', formatValue(b)])} ${acc}`);
    });
    out.push(`${this.name}_bucket${labelText(this.labelNames, values, ['le', '+Inf'])} ${s.count}`);
    out.push(`${this.name}_sum${labelText(this.labelNames, values)} ${formatValue(s.sum)}`);
    out.push(`${this.name}_count${labelText(this.labelNames, values)} ${s.count}`);
    return out;
  }
}

export class Registry {
  private readonly metrics = new Map<string, { name: string; render(): string }>();

  private add<M extends { name: string; render(): string }>(m: M): M {
    if (this.metrics.has(m.name)) throw new Error(`metric ${m.name} registered twice`);
    this.metrics.set(m.name, m);
    return m;
  }
  counter(o: MetricOptions): Counter {
    return this.add(new Counter(o));
  }
  gauge(o: MetricOptions): Gauge {
    return this.add(new Gauge(o));
  }
  histogram(o: MetricOptions & { buckets: readonly number[] }): Histogram {
    return this.add(new Histogram(o));
  }
  /** The exposition text: every metric with its HELP and TYPE, one sample per line. */
  render(): string {
    return [...this.metrics.values()].map((m) => m.render()).join('');
  }
}

// ------------------------------------------------------------------ the master's metrics

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Job durations: a `run` on a few agents takes a second, a highstate on many minutes. */
export const JOB_DURATION_BUCKETS = [0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800];

/** What the endpoint reads when scraped. */
export interface MetricsSource {
  /** every known key: its state, and whether the agent is connected now */
  agents(): { key_state: KeyState; connected: boolean }[];
  /** the state tree's HEAD commit; undefined for a plain directory (no revision to show) */
  revision(): Promise<string | undefined>;
}

const RETURN_STATUSES: readonly AgentDoneStatus[] = ['done', 'failed', 'timeout', 'lost', 'cancelled'];

export class MasterMetrics implements JobEvents {
  readonly registry = new Registry();
  private readonly agents = this.registry.gauge({
    name: 'tsalt_agents',
    help: 'Known agent keys: accepted ones connected or offline, pending, rejected.',
    labelNames: ['state'],
  });
  private readonly jobsStarted = this.registry.counter({ name: 'tsalt_jobs_started_total', help: 'Jobs started since the master started.', labelNames: ['kind'] });
  private readonly returns = this.registry.counter({
    name: 'tsalt_agent_returns_total',
    help: "Agents' runs of a job that ended, by how they ended (once per agent and job).",
    labelNames: ['status'],
  });
  private readonly stateResults = this.registry.counter({
    name: 'tsalt_state_results_total',
    help: 'State results streamed by agents: true, false, or none (test mode, changes pending).',
    labelNames: ['result'],
  });
  private readonly stateChanges = this.registry.counter({ name: 'tsalt_state_changes_total', help: 'State results that changed something (test-mode predictions excluded).' });
  private readonly duration = this.registry.histogram({
    name: 'tsalt_job_duration_seconds',
    help: 'Time from a job starting to its last agent ending.',
    buckets: JOB_DURATION_BUCKETS,
  });
  private readonly running = this.registry.gauge({ name: 'tsalt_jobs_running', help: 'Jobs started and not complete.' });
  private readonly treeInfo = this.registry.gauge({ name: 'tsalt_state_tree_info', help: 'The git revision of the state tree new jobs are given (HEAD).', labelNames: ['revision'] });
  private readonly startTime = this.registry.gauge({ name: 'tsalt_master_start_time_seconds', help: 'When the master started, in seconds since the Unix epoch.' });

  /** jid -> when it started (monotonic ms) */
  private readonly startedAt = new Map<string, number>();

  constructor(startedMs = Date.now()) {
    for (const kind of ['apply', 'run']) this.jobsStarted.init({ kind });
    for (const status of RETURN_STATUSES) this.returns.init({ status });
    for (const result of ['true', 'false', 'none']) this.stateResults.init({ result });
    this.stateChanges.init();
    this.duration.init();
    this.running.set({}, 0);
    this.startTime.set({}, startedMs / 1000);
  }

  // JobEvents: called by the JobManager

  jobStarted(jid: string, kind: 'apply' | 'run'): void {
    this.jobsStarted.inc({ kind });
    this.startedAt.set(jid, performance.now());
    this.running.set({}, this.startedAt.size);
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
    this.running.set({}, this.startedAt.size);
  }

  /** The exposition text, with the gauges read from `src` now. */
  async render(src: MetricsSource): Promise<string> {
    const n: Record<'connected' | 'offline' | 'pending' | 'rejected', number> = { connected: 0, offline: 0, pending: 0, rejected: 0 };
    for (const a of src.agents()) {
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
    this.treeInfo.clear();
    if (revision) this.treeInfo.set({ revision }, 1);
    return this.registry.render();
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
