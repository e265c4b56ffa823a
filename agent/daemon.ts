/**
 * The agent process: keeps a connection to the master, runs the jobs it is sent (one state
 * run at a time), fetches the state tree bundle a job names (cached by hash), streams the
 * state results of a run that lasts (agent/result-hold.ts) and returns the report. Returns
 * are spooled on disk until the master acknowledges them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PROTOCOL_VERSION, type AgentMessage, type Job, type JobReturn, type MasterMessage, type ReturnBody } from '../protocol/messages.js';
import type { AgentConfig } from './connection/config.js';
import { loadOrCreateIdentity } from '../core/identity.js';
import { MasterConnection } from './connection/client.js';
import { masterOrder, PinBook } from './connection/masters.js';
import { BundleCache } from '../engine/tree/bundle.js';
import { Spool } from './connection/spool.js';
import type { Logger } from '../core/log.js';
import { collectGrains, grainsWithoutFile } from '../engine/grains/detect.js';
import { grainsFileText } from '../engine/grains/core.js';
import { exec } from '../engine/run/exec.js';
import { withJobSignal } from '../engine/run/abort.js';
import { fitReturn, fitStateResult, fittedJson } from './connection/fit.js';
import type { StateResult } from '../protocol/results.js';
import type { TreeSource } from '../engine/tree/source.js';
import type { Data } from '../engine/render/salt-functions.js';
import { isLightCall, LIGHT_CALLS, type CallHost } from './calls-light.js';
import { JobWorker } from './job-worker.js';
import { holdResults } from './result-hold.js';
import { DETECT_KEY, IDENTITY_KEY, type WorkerHost } from './worker-protocol.js';

/** Grains detected in this process (systeminformation), through the agent's door to the engine. */
const detectHere = async (): Promise<Data> => (await import('./engine-inline.js')).detectGrains();
/** a spool flush sends the next return once the connection holds less than this of the last */
const FLUSH_BUFFERED = 1024 * 1024;
/**
 * A state run is acknowledged (`job_ack`, which moves its row to running) only once it has run
 * this long, and not at all when its return goes first. A no-op run takes milliseconds, and its
 * return says all the ack would and more: the ack was half of the frames the master read per
 * agent of a no-op job, each decoded, parsed and written to the store (issue 14). A run that lasts
 * is acknowledged as before (`tsalt jobs` shows it running). The one difference: an agent
 * process that dies within this span of taking a state run is sent it again after its restart
 * (the master resends a run it never saw acknowledged, master/jobs.ts resend), where an
 * acknowledged one is called lost; a state run done twice converges to the same end. A command
 * (`tsalt run`) is acknowledged at once: run twice it need not end the same.
 */
export const ACK_AFTER_MS = 200;

interface PendingBundle {
  jid: string;
  hash: string;
  resolve(): void;
  reject(e: Error): void;
}

export class AgentDaemon {
  private conn: MasterConnection | undefined;
  private grains: Data = {};
  /** JSON of `grains`, to compare the re-read ones with (once per state run) */
  private grainsJson: string | undefined;
  private spool!: Spool;
  private bundles!: BundleCache;
  /** jids being worked on (state runs and commands), each with its kill switch */
  private readonly running = new Map<string, AbortController>();
  /** the one state run allowed at a time */
  private stateRun: string | undefined;
  private readonly pendingBundles = new Map<string, PendingBundle>();
  private keyState: string | undefined;
  /** spool flushes started (each acceptance starts one; an older one stops) */
  private flushes = 0;
  private readonly idle = new Set<() => void>();
  private grainsWatch: fs.FSWatcher | undefined;
  private grainsTimer: NodeJS.Timeout | undefined;
  /** state runs and engine calls go to this child process (multiprocessing), else run here */
  private readonly worker: JobWorker | undefined;

  constructor(
    readonly cfg: AgentConfig,
    private readonly log: Logger,
    /** multiprocessing when the config does not say (the CLI: off when one process runs several agents) */
    o: { multiprocessingDefault?: boolean } = {},
  ) {
    if (cfg.multiprocessing ?? o.multiprocessingDefault ?? true) this.worker = new JobWorker({ idleS: cfg.job_worker_idle_s, log });
  }

  /** The job worker's pid while it runs (bench/footprint-agent.mjs adds its memory). */
  get workerPid(): number | undefined {
    return this.worker?.pid;
  }

  private detected: Promise<Data> | undefined;
  /**
   * The machine's grains, detected once: by the job worker when there is one (so the daemon
   * never loads systeminformation), else here. A worker that cannot say falls back to here.
   */
  private detect = (): Promise<Data> => {
    const w = this.worker;
    this.detected ??= w
      ? w.request(DETECT_KEY, { type: 'detect_grains' }).then(
          (r) => {
            if (r.type === 'grains_detected' && r.grains) return r.grains;
            throw new Error(r.type === 'grains_detected' ? (r.error ?? 'no grains') : 'answered something else');
          },
        ).catch((e: Error) => {
          this.log.warn(`grains detection in the job worker failed (${e.message}); detecting them in the agent`);
          return detectHere();
        })
      : detectHere();
    return this.detected;
  };

  async start(): Promise<void> {
    const cfg = this.cfg;
    // which code runs this daemon: the daemon bundle, the CLI bundle or tsc's output (tests and bug reports)
    this.log.debug(`running from ${fileURLToPath(import.meta.url)}`);
    const madeByWorker = await this.identityByWorker();
    const identity = await loadOrCreateIdentity(cfg.pki_dir, 'agent', cfg.id);
    if (identity.created || madeByWorker) this.log.info(`created the agent key in ${cfg.pki_dir}${madeByWorker ? ' (by the job worker)' : ''}`);
    this.log.info(`agent ${cfg.id}, key fingerprint ${identity.fingerprint}`);
    fs.mkdirSync(cfg.cache_dir, { recursive: true, mode: 0o700 });
    this.spool = new Spool(cfg.cache_dir, this.log);
    this.bundles = new BundleCache(cfg.cache_dir);
    try {
      this.grains = await collectGrains(cfg, this.detect);
    } catch (e) {
      // as a Salt minion does: run without the file's grains, say why, pick them up once fixed
      this.log.error(`grains file ${cfg.grains_file}: ${(e as Error).message}; starting without its grains`);
      this.grains = await grainsWithoutFile(cfg, this.detect);
    }
    this.watchGrainsFile();
    const entries = typeof cfg.master === 'string' ? [cfg.master] : cfg.master;
    let masters;
    try {
      masters = masterOrder(entries, { port: cfg.master_port, random: cfg.random_master, failback: cfg.master_failback });
    } catch (e) {
      throw new Error(`${cfg.configFile}: ${(e as Error).message}`);
    }
    if (cfg.random_master && entries.length < 2) this.log.warn('random_master is set but only one master is listed; ignored');
    const pins = new PinBook(masters, cfg.master_finger, cfg.tofu ? path.join(cfg.pki_dir, 'master.fp') : undefined, cfg.configFile);
    if (masters.length > 1) this.log.info(`masters, in the order tried: ${masters.map((m) => m.addr).join(', ')}`);
    const heartbeatS = cfg.master_alive_interval ?? cfg.heartbeat_s;
    this.conn = new MasterConnection({
      masters,
      keyPem: identity.keyPem,
      certPem: identity.certPem,
      pins,
      failbackMs: cfg.master_failback && masters.length > 1 ? (cfg.master_failback_interval || heartbeatS) * 1000 : 0,
      backoffMinS: cfg.backoff_min_s,
      backoffMaxS: cfg.backoff_max_s,
      heartbeatS,
      maxFrameBytes: cfg.max_frame_bytes,
      log: this.log,
      onOpen: () => this.onOpen(),
      onMessage: (m) => this.onMessage(m),
      onClose: () => this.onClose(),
    });
    this.conn.start();
  }

  /**
   * At the first start the job worker makes the agent's key and certificate (the x509 library
   * would stay in the daemon's memory for its whole life); the daemon then reads them. A worker
   * that cannot leaves it to the daemon. True when the worker made a new key.
   */
  private async identityByWorker(): Promise<boolean> {
    const dir = this.cfg.pki_dir;
    if (!this.worker || (fs.existsSync(path.join(dir, 'agent.key')) && fs.existsSync(path.join(dir, 'agent.crt')))) return false;
    try {
      const r = await this.worker.request(IDENTITY_KEY, { type: 'make_identity', dir, base: 'agent', name: this.cfg.id });
      if (r.type !== 'identity_made' || r.error) throw new Error(r.type === 'identity_made' ? r.error : 'answered something else');
      return r.created;
    } catch (e) {
      this.log.warn(`making the agent key in the job worker failed (${(e as Error).message}); making it in the agent`);
      return false;
    }
  }

  /** Stop taking jobs; wait (up to graceMs) for the ones running, their returns stay spooled. */
  async stop(graceMs = 0): Promise<void> {
    if (this.running.size && graceMs > 0) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, graceMs);
        this.idle.add(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    this.grainsWatch?.close();
    clearTimeout(this.grainsTimer);
    this.worker?.stop();
    this.conn?.stop();
    this.spool?.close();
  }

  /**
   * Edits of the grains file (roles: ...) reach the master without a restart: an inotify
   * watch on its directory re-reads it, and every state run re-reads it first. A file that no
   * longer parses keeps the grains the agent had, with an error in the log.
   */
  private watchGrainsFile(): void {
    const file = this.cfg.grains_file;
    try {
      this.grainsWatch = fs.watch(path.dirname(file), { persistent: false }, (_event, name) => {
        if (name !== null && name !== path.basename(file)) return;
        clearTimeout(this.grainsTimer);
        // editors write in steps; what refreshGrains does not catch (sending them) is logged, the next edit or state run tries again
        this.grainsTimer = setTimeout(() => void this.refreshGrains().catch((e: Error) => this.log.error(`grains file ${file}: re-reading it failed: ${e.stack ?? e.message}`)), 200);
      });
      this.grainsWatch.on('error', (e) => this.log.debug(`watching ${file} stopped: ${e.message}`));
    } catch (e) {
      this.log.debug(`not watching ${file} (${(e as Error).message}); grains are re-read before each state run`);
    }
  }

  /**
   * The grains file's text the grains were last built from (absent: not since the start): the
   * grains change only with it (detection runs once, the config's grains and id are fixed), so
   * a state run whose file reads the same builds and compares nothing.
   */
  private grainsFrom: { text: string | undefined } | undefined;

  /** Re-read the grains; tell the master when they changed. */
  async refreshGrains(): Promise<void> {
    let text: string | undefined;
    try {
      text = grainsFileText(this.cfg.grains_file);
    } catch {
      text = undefined; // collectGrains meets the same error and says so
      this.grainsFrom = undefined;
    }
    if (this.grainsFrom && this.grainsFrom.text === text) return;
    let next: Data;
    try {
      next = await collectGrains(this.cfg, this.detect);
    } catch (e) {
      this.log.error(`grains file ${this.cfg.grains_file}: ${(e as Error).message}; keeping the previous grains`);
      return;
    }
    this.grainsFrom = { text };
    const json = JSON.stringify(next);
    if (json === (this.grainsJson ??= JSON.stringify(this.grains))) return;
    this.grains = next;
    this.grainsJson = json;
    this.log.info(`grains changed (${this.cfg.grains_file}); sent to the master`);
    this.send({ type: 'grains', grains: next });
  }

  private send(m: Parameters<MasterConnection['send']>[0]): boolean {
    return this.conn?.send(m) ?? false;
  }

  /**
   * One state's result as it finishes, fitted under max_return_bytes. Only a run that lasts
   * streams (agent/result-hold.ts: the job worker holds its results, an inline run holds them
   * in applyJob); a shorter one's return carries them all.
   */
  private sendResult(jid: string, result: StateResult): void {
    const max = this.cfg.max_return_bytes;
    const m: AgentMessage = { type: 'state_result', jid, result };
    this.conn?.sendJson(fittedJson(m, max, () => ({ type: 'state_result', jid, result: fitStateResult(result, max) })).json);
  }

  private onOpen(): void {
    this.send({
      type: 'hello',
      version: PROTOCOL_VERSION,
      grains: this.grains,
      running: [...this.running.keys()],
      spooled: this.spool.jids(),
    });
  }

  /**
   * A fetch of the state tree outlives a lost connection: the job goes on (the master waits
   * lost_after_s for a running agent), so the tree is asked for again once the master has
   * accepted the agent on the next connection (refetchBundles), within the fetch's own time
   * limit. Failing the job instead cost a fleet under load its runs for a blip (agents cut off
   * mid-fetch by a missed heartbeat at 10,000 agents).
   */
  private onClose(): void {
    if (this.pendingBundles.size) this.log.info(`connection lost while fetching ${this.pendingBundles.size} state tree(s); asking again when reconnected`);
  }

  private refetchBundles(): void {
    for (const p of this.pendingBundles.values()) {
      this.log.info(`job ${p.jid}: asking the master for the state tree again`);
      this.send({ type: 'bundle_get', jid: p.jid, hash: p.hash });
    }
  }

  /** The agent's dispatch table: every message type the master may send. */
  private readonly table: { [T in MasterMessage['type']]: (m: Extract<MasterMessage, { type: T }>) => void } = {
    key_status: (m) => {
      if (m.state !== this.keyState) {
        if (m.state === 'pending') this.log.warn(`key pending on the master: run 'tsalt keys accept ${this.cfg.id}' there`);
        else if (m.state === 'rejected') this.log.error('the master rejected this agent\'s key');
        else this.log.info('key accepted by the master');
      }
      this.keyState = m.state;
      if (m.state === 'accepted') {
        // what is not delivered now stays spooled: the next acceptance (reconnect) sends it
        void this.flushSpool().catch((e: Error) => this.log.error(`delivering the spooled returns failed: ${e.stack ?? e.message}; the rest are sent on the next connection`));
        this.refetchBundles();
      }
    },
    // runJob catches what the job, the spool and the send throw; anything else is a bug, logged with its job
    job: (m) => void this.runJob(m).catch((e: Error) => this.log.error(`job ${m.jid}: ${e.stack ?? e.message}`)),
    job_kill: (m) => {
      const k = this.running.get(m.jid);
      if (!k || k.signal.aborted) return;
      this.log.warn(`job ${m.jid}: killed by the master's operator`);
      k.abort();
      this.worker?.kill(m.jid);
    },
    bundle: (m) => {
      const p = this.pendingBundles.get(m.hash);
      if (!p) return;
      this.pendingBundles.delete(m.hash);
      try {
        this.bundles.store(m, p.hash);
        p.resolve();
      } catch (e) {
        p.reject(e as Error);
      }
    },
    return_ack: (m) => this.spool.remove(m.jid),
    call: (m) => void this.onCall(m).catch((e: Error) => this.log.error(`call ${m.fun}: ${e.stack ?? e.message}`)),
    denied: (m) => {
      this.log.warn(`master denied a request: ${m.message}`);
      for (const p of this.pendingBundles.values()) p.reject(new Error(`master: ${m.message}`));
      this.pendingBundles.clear();
    },
  };

  /** What a call run in this process may use of the agent. */
  private callHost(): CallHost {
    return {
      id: this.cfg.id,
      grains: () => this.grains,
      opts: { cachedir: this.cfg.cache_dir, grains_file: this.cfg.grains_file },
      refreshGrains: () => this.refreshGrains(),
      busy: () => this.stateRun,
      tree: (b) => (this.bundles.has(b.hash) ? this.bundles.open(b.hash, b.revision) : this.bundles.store({ type: 'bundle', ...b }, b.hash)),
    };
  }

  /** What the job worker needs of this agent for one job or call. */
  private workerHost(): WorkerHost {
    return { id: this.cfg.id, cache_dir: this.cfg.cache_dir, grains_file: this.cfg.grains_file, ...(this.cfg.root ? { root: this.cfg.root } : {}), grains: this.grains };
  }

  /** A call's return value: answered here when no engine is needed, else by the worker (or the engine loaded here). */
  private async callReturn(m: Extract<MasterMessage, { type: 'call' }>): Promise<unknown> {
    if (isLightCall(m.fun)) return LIGHT_CALLS[m.fun]({ args: m.args, kwargs: m.kwargs }, this.callHost(), m);
    if (this.worker) {
      const done = await this.worker.request(m.id, { type: 'call', call: m, host: this.workerHost(), ...(this.stateRun ? { busy: this.stateRun } : {}) });
      if (done.type !== 'call_done') throw new Error('the job worker answered a call with a job return');
      if (!done.ok) throw new Error(done.error ?? 'failed');
      return done.return;
    }
    const { runCall } = await import('./engine-inline.js');
    return runCall(m, this.callHost());
  }

  private async onCall(m: Extract<MasterMessage, { type: 'call' }>): Promise<void> {
    let answer: Extract<Parameters<MasterConnection['send']>[0], { type: 'call_return' }>;
    try {
      const ret = await this.callReturn(m);
      answer = { type: 'call_return', id: m.id, ok: true, return: ret === undefined ? null : ret };
    } catch (e) {
      answer = { type: 'call_return', id: m.id, ok: false, error: (e as Error).message };
    }
    let size: number;
    try {
      size = Buffer.byteLength(JSON.stringify(answer));
    } catch (e) {
      // a value JSON cannot hold (a BigInt, a cycle) returned by a call run in this process
      size = 0;
      answer = { type: 'call_return', id: m.id, ok: false, error: `${m.fun}: the return cannot be sent as JSON (${(e as Error).message})` };
    }
    if (size > this.cfg.max_return_bytes) {
      answer = { type: 'call_return', id: m.id, ok: false, error: `${m.fun}: the return is ${size} bytes, over max_return_bytes (${this.cfg.max_return_bytes})` };
    }
    // only the function's name is logged: arguments may hold secrets
    this.log.info(`call ${m.fun}: ${answer.ok ? 'done' : 'failed'}`);
    this.send(answer);
  }

  private onMessage(m: MasterMessage): void {
    (this.table[m.type] as (x: MasterMessage) => void)(m);
  }

  /**
   * Sends the spooled returns again, read back from disk one at a time and the next only once the
   * connection has taken the last (the spool holds none in memory: all of them sent at once would
   * be held in the socket's buffer instead). A newer flush (the next acceptance) ends this one.
   */
  private async flushSpool(): Promise<void> {
    const flush = ++this.flushes;
    for (const jid of this.spool.jids()) {
      while ((this.conn?.buffered ?? 0) > FLUSH_BUFFERED && flush === this.flushes) await new Promise((r) => setTimeout(r, 10));
      if (flush !== this.flushes || !this.conn?.connected) return;
      if (this.running.has(jid)) continue;
      const ret = this.spool.read(jid); // undefined: acknowledged meanwhile, or unreadable (set aside)
      if (!ret) continue;
      this.log.info(`delivering spooled return of job ${jid}`);
      this.send(fitReturn(ret, this.cfg.max_return_bytes)); // spooled by an agent with a larger limit
    }
  }

  /** The state tree from the master; waits across reconnects (refetchBundles) until the time limit or the job is killed. */
  private fetchBundle(jid: string, hash: string, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.pendingBundles.delete(hash);
        reject(new Error('timed out fetching the state tree from the master'));
      }, 120_000);
      const killed = () => {
        this.pendingBundles.delete(hash);
        clearTimeout(t);
        reject(new Error('killed while fetching the state tree'));
      };
      signal.addEventListener('abort', killed, { once: true });
      this.pendingBundles.set(hash, {
        jid,
        hash,
        resolve: () => {
          clearTimeout(t);
          signal.removeEventListener('abort', killed);
          resolve();
        },
        reject: (e) => {
          clearTimeout(t);
          signal.removeEventListener('abort', killed);
          reject(e);
        },
      });
      if (!this.send({ type: 'bundle_get', jid, hash })) {
        const p = this.pendingBundles.get(hash)!;
        this.pendingBundles.delete(hash);
        p.reject(new Error('not connected to the master'));
      }
    });
  }

  private async runJob(job: Extract<MasterMessage, { type: 'job' }>): Promise<void> {
    const { jid, spec } = job;
    if (this.running.has(jid) || this.spool.has(jid)) return; // seen it already
    if (spec.kind === 'apply') {
      if (this.stateRun) {
        this.send({ type: 'job_refused', jid, message: `a state run is already in progress on ${this.cfg.id} (job ${this.stateRun}); one at a time` });
        return;
      }
      this.stateRun = jid;
    }
    const kill = new AbortController();
    this.running.set(jid, kill);
    // a state run: acknowledged once it has lasted ACK_AFTER_MS (a reconnect meanwhile names it
    // in the hello's `running`, which the master takes as the acknowledgement)
    let ackTimer: NodeJS.Timeout | undefined;
    if (spec.kind === 'apply') ackTimer = setTimeout(() => this.running.has(jid) && this.send({ type: 'job_ack', jid }), ACK_AFTER_MS);
    else this.send({ type: 'job_ack', jid });
    this.log.info(`job ${jid}: ${spec.kind === 'apply' ? `apply ${spec.sls.length ? spec.sls.join(',') : 'highstate'}${spec.test ? ' (test)' : ''} at ${spec.revision.slice(0, 12)}` : 'run command'}`);
    let body: ReturnBody;
    try {
      body = spec.kind === 'apply' ? await this.applyJob(jid, spec, kill.signal) : await withJobSignal(kill.signal, () => this.runCommand(spec));
    } catch (e) {
      body = { kind: 'error', error: (e as Error).message };
    } finally {
      clearTimeout(ackTimer); // the return says it: no ack
      this.running.delete(jid);
      if (this.stateRun === jid) this.stateRun = undefined;
    }
    const whole: JobReturn = { type: 'job_return', jid, ...(spec.kind === 'apply' ? { revision: spec.revision } : {}), body };
    const { msg: ret, json } = fittedJson(whole, this.cfg.max_return_bytes, (m) => fitReturn(m, this.cfg.max_return_bytes));
    if (ret !== whole) this.log.warn(`job ${jid}: the return was over max_return_bytes (${this.cfg.max_return_bytes}); long output was shortened`);
    let spooled = true;
    try {
      this.spool.put(ret, json); // on disk first: a lost connection or a restart does not lose it
    } catch (e) {
      // a full disk must not cost the return while the master is there to take it
      spooled = false;
      this.log.error(`job ${jid}: the return could not be spooled (${(e as Error).message}); sent without a copy on disk`);
    }
    const sent = this.conn?.sendJson(json) ?? false;
    if (!sent && !spooled) this.log.error(`job ${jid}: finished, but the master is unreachable and the return could not be spooled: it is lost`);
    this.log.info(`job ${jid}: finished${body.kind === 'error' ? ' with an error' : ''}${sent ? '' : spooled ? ' (master unreachable; spooled)' : ''}`);
    if (this.running.size === 0) for (const f of this.idle) f();
  }

  private async applyJob(jid: string, spec: Extract<Job['spec'], { kind: 'apply' }>, signal: AbortSignal): Promise<ReturnBody> {
    await this.refreshGrains();
    if (!this.bundles.has(spec.bundle)) await this.fetchBundle(jid, spec.bundle, signal);
    if (this.worker) {
      const done = this.worker.request(jid, { type: 'apply', jid, spec, host: this.workerHost() }, (e) =>
        this.sendResult(jid, e.result),
      );
      if (signal.aborted) this.worker.kill(jid); // killed while the tree was fetched
      try {
        const end = await done;
        if (end.type !== 'apply_done') throw new Error('the job worker answered a state run with a call return');
        return end.body;
      } catch (e) {
        return { kind: 'error', error: (e as Error).message };
      }
    }
    const tree: TreeSource = this.bundles.open(spec.bundle, spec.revision);
    const { apply } = await import('./engine-inline.js');
    const hold = holdResults<StateResult>((r) => this.sendResult(jid, r));
    try {
      const report = await apply({
        tree,
        id: this.cfg.id,
        grains: this.grains,
        pillar: spec.pillar,
        sls: spec.sls,
        test: spec.test,
        ...(this.cfg.root ? { root: this.cfg.root } : {}),
        // downloads (file.managed/archive.extracted http sources) are kept with the agent's cache
        opts: { cachedir: this.cfg.cache_dir, grains_file: this.cfg.grains_file },
        signal,
        onResult: (r) => hold.add(r),
      });
      return { kind: 'apply', report };
    } catch (e) {
      return { kind: 'error', error: (e as Error).message };
    } finally {
      hold.end();
    }
  }

  private async runCommand(spec: Extract<Job['spec'], { kind: 'run' }>): Promise<ReturnBody> {
    // like Salt's cmd.run: the operator's command line goes to the shell as one argument
    const r = await exec(['/bin/sh', '-c', spec.command], { timeoutMs: spec.timeout_s ? spec.timeout_s * 1000 : undefined });
    return { kind: 'run', retcode: r.signal ? 128 + 15 : r.code, stdout: r.stdout, stderr: r.stderr };
  }
}
