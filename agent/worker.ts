/**
 * The job worker: a child process of the agent daemon (`tsalt agent --job-worker`, started by
 * agent/job-worker.ts) that runs state runs and engine calls sent over Node's IPC channel and
 * streams their results back. It lives while jobs come and exits when the daemon lets it go
 * (or goes away), so the engine's memory is returned to the system between bursts of jobs.
 */
import { BundleCache } from '../engine/tree/bundle.js';
import { loadOrCreateIdentity } from '../core/identity.js';
import { ToWorkerSchema, type FromWorker, type ToWorker, type WorkerHost } from './worker-protocol.js';
import type { CallHost } from './calls-light.js';
import { holdResults } from './result-hold.js';
import type { StateResult } from '../protocol/results.js';

/** (the daemon parses what it receives: FromWorkerSchema); nothing once it let this process go */
function send(m: FromWorker): void {
  if (process.connected) process.send?.(m);
}

const running = new Map<string, AbortController>();
const caches = new Map<string, BundleCache>();
const bundlesOf = (dir: string): BundleCache => {
  let c = caches.get(dir);
  if (!c) caches.set(dir, (c = new BundleCache(dir)));
  return c;
};
const opts = (h: WorkerHost) => ({ cachedir: h.cache_dir, grains_file: h.grains_file });

async function apply(m: Extract<ToWorker, { type: 'apply' }>): Promise<void> {
  const kill = new AbortController();
  running.set(m.jid, kill);
  // held here, not in the daemon: a run that ends within the mark sends the daemon none either
  const hold = holdResults<StateResult>((result) => send({ type: 'state_result', jid: m.jid, result }));
  let body: Extract<FromWorker, { type: 'apply_done' }>['body'];
  try {
    const { apply: run } = await import('../engine/engine.js');
    const report = await run({
      tree: bundlesOf(m.host.cache_dir).open(m.spec.bundle, m.spec.revision),
      id: m.host.id,
      grains: m.host.grains,
      pillar: m.spec.pillar,
      sls: m.spec.sls,
      test: m.spec.test,
      ...(m.host.root ? { root: m.host.root } : {}),
      opts: opts(m.host),
      signal: kill.signal,
      onResult: (result) => hold.add(result),
    });
    body = { kind: 'apply', report };
  } catch (e) {
    body = { kind: 'error', error: (e as Error).message };
  } finally {
    hold.end();
    running.delete(m.jid);
  }
  send({ type: 'apply_done', jid: m.jid, body });
}

async function call(m: Extract<ToWorker, { type: 'call' }>): Promise<void> {
  const host: CallHost = {
    id: m.host.id,
    grains: () => m.host.grains,
    opts: opts(m.host),
    // saltutil.sync_grains is answered by the daemon (agent/calls-light.ts), never sent here
    refreshGrains: () => Promise.resolve(),
    busy: () => m.busy,
    tree: (b) => {
      const cache = bundlesOf(m.host.cache_dir);
      return cache.has(b.hash) ? cache.open(b.hash, b.revision) : cache.store({ type: 'bundle', ...b }, b.hash);
    },
  };
  try {
    const { runCall } = await import('./calls.js');
    const ret = await runCall(m.call, host);
    send({ type: 'call_done', id: m.call.id, ok: true, return: ret === undefined ? null : ret });
  } catch (e) {
    send({ type: 'call_done', id: m.call.id, ok: false, error: (e as Error).message });
  }
}

async function detect(): Promise<void> {
  try {
    const { detectGrains } = await import('../engine/grains/detect.js');
    send({ type: 'grains_detected', grains: await detectGrains() });
  } catch (e) {
    send({ type: 'grains_detected', error: (e as Error).message });
  }
}

async function makeIdentity(m: Extract<ToWorker, { type: 'make_identity' }>): Promise<void> {
  try {
    const { created } = await loadOrCreateIdentity(m.dir, m.base, m.name);
    send({ type: 'identity_made', created });
  } catch (e) {
    send({ type: 'identity_made', created: false, error: (e as Error).message });
  }
}

/**
 * Serve the daemon until it disconnects; then stop what runs (its kill switch) and exit.
 *
 * No unhandled-rejection net here, unlike the daemons (core/last-resort.ts): a rejection nobody
 * handled ends this process with Node's default (its stack on stderr, which is the agent's), and
 * that fails only the jobs and calls in it: the daemon reports each as an error ("the job worker
 * process exited ... before the job ended"), stays connected, and the next job gets a new worker.
 * A worker kept alive would run the next state runs in an engine whose state nobody knows.
 */
export function serveJobs(): Promise<void> {
  if (!process.send) throw new Error('tsalt agent --job-worker is started by the agent itself (it needs its IPC channel)');
  // Ctrl-C in a terminal reaches the whole process group: the daemon decides (it waits for the
  // run in progress, then lets this process go)
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => {});
  process.on('message', (raw) => {
    const r = ToWorkerSchema.safeParse(raw);
    if (!r.success) {
      process.stderr.write(`tsalt job worker: bad message from the agent: ${r.error.issues[0]?.message ?? 'invalid'}\n`);
      return;
    }
    const m = r.data;
    if (m.type === 'kill') running.get(m.jid)?.abort();
    else if (m.type === 'apply') void apply(m);
    else if (m.type === 'detect_grains') void detect();
    else if (m.type === 'make_identity') void makeIdentity(m);
    else void call(m);
  });
  return new Promise((resolve) => {
    process.once('disconnect', () => {
      for (const k of running.values()) k.abort();
      resolve();
    });
  });
}
