/**
 * The daemon's side of the job worker (agent/worker.ts): a child process started at the first
 * state run or engine call, kept while jobs come (`job_worker_idle_s` after the last one ends)
 * and let go after, so an idle agent holds the connection and not the engine. Like Salt's
 * minion with `multiprocessing: True`, a job that kills its process (or is killed by the OOM
 * killer) fails alone: the daemon stays connected and the next job gets a new worker.
 */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../core/log.js';
import { DETECT_KEY, IDENTITY_KEY, FromWorkerSchema, type FromWorker, type ToWorker } from './worker-protocol.js';

type Final = Extract<FromWorker, { type: 'apply_done' | 'call_done' | 'grains_detected' | 'identity_made' }>;

interface Pending {
  onEvent(m: Extract<FromWorker, { type: 'state_result' }>): void;
  resolve(m: Final): void;
  reject(e: Error): void;
}

/**
 * bin/tsalt.js: this module sits two levels below the repository (dist/agent/job-worker.js, or
 * the bundle dist/bundle/tsalt.cjs); otherwise the launcher this process was started with.
 */
export function launcherPath(): string {
  const near = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/tsalt.js');
  return fs.existsSync(near) ? near : process.argv[1]!;
}

/** One worker process and what is in flight in it, by jid (state runs) or call id. */
interface Proc {
  child: ChildProcess;
  pending: Map<string, Pending>;
}

export class JobWorker {
  /** the worker new jobs go to */
  private proc: Proc | undefined;
  /** every worker still running (one let go may be finishing) */
  private readonly procs = new Set<Proc>();
  private idleTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly o: { idleS: number; log: Logger; launcher?: string }) {}

  /** The worker's pid while it runs (benchmarks add its memory to the daemon's). */
  get pid(): number | undefined {
    return this.proc?.child.pid;
  }

  /** Send a state run or call; state results stream through onEvent; resolves with its end. */
  request(key: string, m: Extract<ToWorker, { type: 'apply' | 'call' | 'detect_grains' | 'make_identity' }>, onEvent: Pending['onEvent'] = () => {}): Promise<Final> {
    if (this.stopped) return Promise.reject(new Error('the agent is stopping'));
    clearTimeout(this.idleTimer);
    const proc = this.spawn();
    return new Promise<Final>((resolve, reject) => {
      proc.pending.set(key, { onEvent, resolve, reject });
      proc.child.send(m, (err) => {
        if (err && proc.pending.delete(key)) {
          reject(new Error(`could not hand the job to the job worker: ${err.message}`));
          this.idleSoon();
        }
      });
    });
  }

  /** Stop a state run in the worker (its kill switch, as `tsalt jobs kill` does in-process). */
  kill(jid: string): void {
    for (const p of this.procs) if (p.child.connected && p.pending.has(jid)) p.child.send({ type: 'kill', jid } satisfies ToWorker);
  }

  /**
   * Let the workers go: an idle one at once, a busy one when its job ends (as a job run inline
   * keeps the stopping agent until it ends: its return is spooled, the unit's stop timeout
   * bounds it).
   */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.idleTimer);
    for (const p of this.procs) if (p.child.connected && !p.pending.size) p.child.disconnect();
  }

  private spawn(): Proc {
    if (this.proc?.child.connected) return this.proc;
    // V8 flags of the daemon (a small young generation for idling) are not the worker's: it runs
    // jobs, with Node's defaults and the code cache the CLI uses (same flags, same cache)
    const child = fork(this.o.launcher ?? launcherPath(), ['agent', '--job-worker'], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' });
    const proc: Proc = { child, pending: new Map() };
    this.proc = proc;
    this.procs.add(proc);
    this.o.log.debug(`job worker started (pid ${child.pid})`);
    child.on('message', (raw) => {
      const r = FromWorkerSchema.safeParse(raw);
      if (!r.success) {
        this.o.log.error(`job worker sent a bad message: ${r.error.issues[0]?.message ?? 'invalid'}`);
        return;
      }
      const m = r.data;
      const key = m.type === 'call_done' ? m.id : m.type === 'grains_detected' ? DETECT_KEY : m.type === 'identity_made' ? IDENTITY_KEY : m.jid;
      const p = proc.pending.get(key);
      if (!p) return;
      if (m.type === 'state_result') return p.onEvent(m);
      proc.pending.delete(key);
      p.resolve(m);
      if (this.stopped && !proc.pending.size && child.connected) child.disconnect();
      this.idleSoon();
    });
    const gone = (why: string) => {
      this.procs.delete(proc);
      if (this.proc === proc) this.proc = undefined;
      const lost = [...proc.pending.values()];
      proc.pending.clear();
      if (lost.length) this.o.log.error(`job worker (pid ${child.pid ?? '-'}) ${why} with ${lost.length} job(s) or call(s) in it`);
      else this.o.log.debug(`job worker (pid ${child.pid ?? '-'}) ${why}`);
      for (const p of lost) p.reject(new Error(`the job worker process ${why} before the job ended`));
    };
    child.on('error', (e) => {
      this.o.log.error(`job worker: ${e.message}`);
      if (child.pid === undefined) gone(`could not be started (${e.message})`); // no 'exit' follows
    });
    child.on('exit', (code, signal) => gone(`exited (${signal ?? `code ${code}`})`));
    return proc;
  }

  /** Nothing in flight: let the worker go after idleS (its engine's memory with it). */
  private idleSoon(): void {
    if (this.stopped || [...this.procs].some((p) => p.pending.size)) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      const p = this.proc;
      if (p?.child.connected && !p.pending.size) p.child.disconnect(); // the worker's cue to exit
    }, this.o.idleS * 1000);
    this.idleTimer.unref();
  }
}
