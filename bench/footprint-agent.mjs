#!/usr/bin/env node
/**
 * The agent's idle footprint (issue 14: idle RSS <= 50 MB): one master and one agent on
 * loopback, as shipped (`node <flags> bin/tsalt.js agent --config FILE` with the node flags of
 * the packaged unit's ExecStart and its Environment=, packaging/tsalt-agent.service), with the
 * W54 tree. The agent's resident set (VmRSS from /proc) is read
 *   - connected, before any job ("fresh"),
 *   - right after the W54 jobs (a converging one, then --jobs no-op ones),
 *   - after --idle seconds without a job (what a fleet's agents spend most of their life as),
 * and its CPU over the idle span. Every job must come back with 54 states, 0 failed.
 * The agent runs its jobs in a child process (its job worker, agent/job-worker.ts) that it lets
 * go job_worker_idle_s after the last job: the worker's RSS is reported beside the daemon's
 * while it runs (their sum counts the shared pages of the node binary twice). The W54 no-op
 * job times (request -> return) are printed too: back to back (a warm worker) and once more
 * after the idle span (the worker started again: what the first job after a quiet spell costs).
 *
 *   node bench/footprint-agent.mjs [--jobs 10] [--idle 40] [--rounds 1] [--scratch DIR] [--json FILE]
 *                                  [--node-flags '--flag ...'] [--tsalt path/to/bin/tsalt.js]
 * (--node-flags and --tsalt compare other V8 settings or another build of the agent;
 * --node-flags= runs it without any)
 *
 * Run as root (W54 manages the user w54user) after `npm run build`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { REPO, TSALT, prepare, dropUser } from './w54.mjs';
import { stats, loadAvg } from './lib/measure.mjs';
import { freePort } from './lib/free-port.mjs';
import { unitNodeFlags, unitEnv } from './lib/unit.mjs';

const CLK_TCK = 100;

const sleep = (t) => new Promise((r) => setTimeout(r, t));

/** The pids of a process's children (the agent's job worker, while it runs). */
function childrenOf(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** usage() of the agent, plus the RSS of its children (the job worker) when it has any. */
function agentUsage(pid) {
  const u = usage(pid);
  let workerKiB = 0;
  for (const c of childrenOf(pid)) {
    try {
      workerKiB += usage(c).rssKiB;
    } catch {
      /* exited meanwhile */
    }
  }
  return { ...u, workerKiB };
}

/** CPU (user+sys ms), current and peak RSS (KiB), and the RSS split of a live process. */
export function usage(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  return {
    cpuMs: ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK,
    rssKiB: kib('VmRSS'),
    anonKiB: kib('RssAnon'),
    fileKiB: kib('RssFile'),
    hwmKiB: kib('VmHWM'),
  };
}

function start(argv, logFile, env = {}) {
  const fd = fs.openSync(logFile, 'a');
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', fd, fd], env: { ...process.env, ...env } });
  fs.closeSync(fd);
  child.exitPromise = new Promise((r) => child.on('exit', (code, sig) => r({ code, sig })));
  return child;
}

async function stop(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const done = await Promise.race([child.exitPromise, sleep(15000).then(() => null)]);
  if (!done) {
    child.kill('SIGKILL');
    await child.exitPromise;
  }
}

async function client() {
  return import(pathToFileURL(path.join(REPO, 'dist', 'master', 'cli-client.js')).href);
}

async function connected(sock) {
  const { request } = await client();
  let list = [];
  try {
    await request(sock, { type: 'agents.list' }, (ev) => {
      if (ev.type === 'data') list = ev.data;
    });
  } catch {
    return 0; // the master is not answering yet
  }
  return Array.isArray(list) ? list.filter((a) => a.connected).length : 0;
}

async function waitFor(what, fn, timeoutMs) {
  const t0 = Date.now();
  while (!(await fn())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function job(sock) {
  const { request } = await client();
  const t0 = performance.now();
  let done;
  const code = await request(sock, { type: 'apply', target: '*', tgt_type: 'glob', sls: [], test: false, timeout_s: 600, user: 'bench@cli' }, (ev) => {
    if (ev.type === 'agent_done') done = ev;
  });
  const counts = done?.body?.kind === 'apply' ? done.body.report.counts : undefined;
  if (code !== 0 || done?.status !== 'done' || !counts || counts.failed) {
    throw new Error(`apply: exit ${code}, ${JSON.stringify(done ?? {}).slice(0, 600)}`);
  }
  return { ...counts, ms: performance.now() - t0 };
}

/** One master + one agent; the agent's RSS fresh, after jobs, after idling. */
export async function agentFootprint({ scratch, jobs = 10, idleS = 40, nodeFlags = [], env = {}, agentConfig = {}, tsalt = TSALT, log = () => {} }) {
  const tree = prepare(scratch, 54);
  const dir = path.join(scratch, 'agent-footprint');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'agent'), { recursive: true });
  const port = await freePort();
  const y = (o) => Object.entries(o).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join('\n') + '\n';
  const sock = path.join(dir, 'master.sock');
  fs.writeFileSync(
    path.join(dir, 'master.yaml'),
    y({ interface: '127.0.0.1', port, pki_dir: 'pki', db: 'master.db', socket: 'master.sock', state_tree: tree.states, pillar_tree: tree.pillar, auto_accept: true, log_level: 'warn' }),
  );
  const agentYaml = path.join(dir, 'agent', 'agent.yaml');
  fs.writeFileSync(agentYaml, y({ id: 'footprint-1', master: '127.0.0.1', master_port: port, tofu: true, pki_dir: 'pki', cache_dir: 'cache', grains_file: 'grains', log_level: 'error', ...agentConfig }));
  const master = start([process.execPath, TSALT, 'master', '--config', path.join(dir, 'master.yaml')], path.join(dir, 'master.log'));
  let agent;
  try {
    await waitFor('the master', async () => fs.existsSync(sock) && (await connected(sock)) >= 0, 30000);
    agent = start([process.execPath, ...nodeFlags, tsalt, 'agent', '--config', agentYaml], path.join(dir, 'agent.log'), env);
    await waitFor('the agent to connect', async () => (await connected(sock)) >= 1, 60000);
    await sleep(2000); // the hello and its grains settle
    const fresh = agentUsage(agent.pid);
    log(`agent connected: RSS ${(fresh.rssKiB / 1024).toFixed(1)} MiB; W54 jobs x${jobs + 1}`);
    dropUser();
    const first = await job(sock);
    const warm = [];
    for (let i = 0; i < jobs; i++) {
      const c = await job(sock);
      if (c.changed) throw new Error(`no-op job ${i + 1} changed ${c.changed} state(s)`);
      warm.push(c.ms);
    }
    const afterJobs = agentUsage(agent.pid);
    log(`after the jobs: RSS ${(afterJobs.rssKiB / 1024).toFixed(1)} MiB (job worker ${(afterJobs.workerKiB / 1024).toFixed(1)} MiB); idle ${idleS} s`);
    await sleep(idleS * 1000);
    const idle = agentUsage(agent.pid);
    // one more no-op job after the idle span: the job worker (let go by then) starts again
    const cold = await job(sock);
    if (cold.changed) throw new Error(`the no-op job after idling changed ${cold.changed} state(s)`);
    return {
      warmJobMs: stats(warm).median,
      coldJobMs: cold.ms,
      states: first.succeeded ?? undefined,
      fresh,
      afterJobs,
      idle,
      idleCpuMsPerMin: ((idle.cpuMs - afterJobs.cpuMs) * 60000) / (idleS * 1000),
      peakKiB: idle.hwmKiB,
    };
  } finally {
    await stop(agent);
    await stop(master);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const { values: o } = parseArgs({
    options: {
      jobs: { type: 'string', default: '10' },
      idle: { type: 'string', default: '40' },
      rounds: { type: 'string', default: '1' },
      scratch: { type: 'string', default: path.join(os.tmpdir(), 'tsalt-footprint-agent') },
      json: { type: 'string' },
      'node-flags': { type: 'string' },
      // KEY=VALUE,... instead of the unit's Environment= ('' for none)
      env: { type: 'string' },
      // agent.yaml settings as JSON, e.g. '{"multiprocessing":false}'
      'agent-config': { type: 'string', default: '{}' },
      tsalt: { type: 'string', default: TSALT },
    },
  });
  const nodeFlags = o['node-flags'] === undefined ? unitNodeFlags() : o['node-flags'].split(' ').filter(Boolean);
  const env = o.env === undefined ? unitEnv() : Object.fromEntries(o.env.split(',').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  const agentConfig = JSON.parse(o['agent-config']);
  const log = (m) => process.stderr.write(`[footprint ${new Date().toISOString().slice(11, 19)} load ${loadAvg()}] ${m}\n`);
  const load0 = loadAvg();
  const rounds = [];
  for (let i = 0; i < Number(o.rounds); i++) rounds.push(await agentFootprint({ scratch: o.scratch, jobs: Number(o.jobs), idleS: Number(o.idle), nodeFlags, env, agentConfig, tsalt: path.resolve(o.tsalt), log }));
  const mib = (k) => `${(k / 1024).toFixed(1)} MiB`;
  const med = (f) => stats(rounds.map(f)).median;
  const line = (label, k) =>
    `${label.padEnd(34)} RSS ${mib(med((r) => r[k].rssKiB))} (anon ${mib(med((r) => r[k].anonKiB))}, file ${mib(med((r) => r[k].fileKiB))})` +
    (med((r) => r[k].workerKiB) ? `; its job worker ${mib(med((r) => r[k].workerKiB))}` : '');
  process.stdout.write(
    [
      `agent footprint (${path.relative(process.cwd(), path.resolve(o.tsalt)) || o.tsalt}${nodeFlags.length ? ` with ${nodeFlags.join(' ')}` : ''}${Object.keys(env).length ? `, env ${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ')}` : ''}${o['agent-config'] !== '{}' ? `, agent.yaml ${o['agent-config']}` : ''}), ${rounds.length} round(s), W54 tree, ${o.jobs} no-op jobs, idle ${o.idle} s; load ${load0} at start, ${loadAvg()} at end`,
      line('connected, before any job', 'fresh'),
      line('right after the jobs', 'afterJobs'),
      line(`after ${o.idle} s idle`, 'idle'),
      `W54 no-op job (request -> return): ${med((r) => r.warmJobMs).toFixed(1)} ms back to back, ${med((r) => r.coldJobMs).toFixed(1)} ms after the idle span`,
      `peak RSS ${mib(med((r) => r.peakKiB))}; idle CPU ${med((r) => r.idleCpuMsPerMin).toFixed(0)} ms per minute (/proc ticks of 10 ms)`,
      '',
    ].join('\n'),
  );
  if (o.json) fs.writeFileSync(o.json, JSON.stringify(rounds, null, 2));
}
