/**
 * Fleet (issue 5, W3/W4): one master process and N real agents (each its own id, key and
 * directories; up to PER_PROCESS agents per process via repeated `tsalt agent --config`) on
 * loopback. Measures:
 *  - `tsalt apply '*'` of a small no-op tree: whole CLI process wall, and the job alone
 *    (socket request -> every return) from this process;
 *  - master CPU per apply and its peak RSS (/proc, the master is our child);
 *  - the reconnect storm: master killed and started again, time until all N are back;
 *  - with N = 1 and the W54 tree: the W54 no-op through a warm agent, and the agent's idle
 *    RSS and CPU.
 *
 * usage (standalone): node bench/fleet.mjs [--agents 1,100,1000] [--runs 5] [--per-process 100]
 *   [--profile-master] [--store postgres://user@host:port/db] [--masters 2] [--mem]
 *   [--profile-agents] [--jobs-only] [--storm-only] [--profile-stop] [--profile-storm]
 *
 * Agent CPU per job: the agent processes' (and their job workers') /proc CPU over the no-op
 * jobs, per job and per agent. --profile-agents: after each fleet size, one more fleet of that
 * size with its agent processes under --cpu-prof (the first process's profile is summarised).
 * --jobs-only: only the no-op jobs (no whole-CLI timing, no reconnect storm).
 * --storm-only: only the reconnect storm (all connected, then the master restarted: the old
 * master's exit after SIGTERM and the time until all are back), no jobs.
 * --profile-stop (implies --storm-only): the first master under --cpu-prof; its profile from SIGTERM to its exit (the
 * stop alone) is summarised. Its exit time then includes writing the profile: time without it.
 * --profile-storm (implies --storm-only): the new master under --cpu-prof, from its start until all agents are back
 * (its whole life: the bench stops it then), summarised; and the first agent process's, from the old master's SIGTERM
 * until all are back.
 *
 * --mem: where the (first) master's memory goes (bench/lib/mem-probe.cjs preloaded into it):
 * RSS, JS heap, external and arrayBuffers with no agent, with all connected and idle, and at
 * the peak of the no-op jobs, with the cost per agent of each.
 *
 * --masters 2: two masters on one PostgreSQL store (--store, an empty database per fleet size
 * is made in it; absent: a throwaway cluster, bench/lib/postgres.mjs), serving the same tree;
 * agents alternate between them (each lists one), the CLI and the bench talk to the first, so
 * every job is routed to the second master's half through the store. Master CPU per job is the
 * two masters' sum; each one's figure and peak RSS are printed too.
 *
 * TSALT_BENCH_MASTER_LOG_LEVEL (default warn), TSALT_BENCH_AGENT_LOG_LEVEL (default error): the masters' and agents' log_level, their logs in
 * <scratch>/fleet-N/log/agents-P.log (debug: every failed connection attempt and its reason).
 * TSALT_BENCH_AGENTS_NICE=19: the agent processes run at that nice level, so the master gets the CPU it asks for first
 * (agents on other machines, as in a real fleet, do not take the master's CPU); the figures say when it was set.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { REPO, TSALT, prepare } from './w54.mjs';
import { timeMany, stats, tail, loadAvg } from './lib/measure.mjs';
import { ms, mib, spread, table } from './lib/table.mjs';
import { freePort } from './lib/free-port.mjs';
import { unitEnv, MASTER_UNIT } from './lib/unit.mjs';

let PER_PROCESS = 100;
const IDLE_S = 30;
const CLK_TCK = 100; // Linux USER_HZ; /proc/<pid>/stat counts CPU in these ticks

/** node flags for the master processes only (trying heap settings, --heapsnapshot-signal=SIGUSR2): TSALT_BENCH_MASTER_NODE_FLAGS, space-separated */
const MASTER_NODE_FLAGS = (process.env.TSALT_BENCH_MASTER_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
/**
 * The masters' environment: the packaged unit's Environment= (packaging/tsalt-master.service:
 * the master as shipped), then TSALT_BENCH_MASTER_ENV (space-separated NAME=VALUE, to try other
 * malloc settings); TSALT_BENCH_MASTER_UNIT_ENV=0 leaves the unit's out.
 */
const MASTER_ENV = {
  ...(process.env.TSALT_BENCH_MASTER_UNIT_ENV === '0' ? {} : unitEnv(MASTER_UNIT)),
  ...Object.fromEntries((process.env.TSALT_BENCH_MASTER_ENV ?? '').split(/\s+/).filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])),
};
/** TSALT_BENCH_PG_STATS=1: the throwaway cluster loads pg_stat_statements; its top statements over the no-op jobs are logged */
const PG_STATS = process.env.TSALT_BENCH_PG_STATS === '1';
/** the throwaway PostgreSQL cluster of --masters 2 without --store (its CPU is measured around the jobs) */
let pgCluster;

const sleep = (t) => new Promise((r) => setTimeout(r, t));

/** CPU (user+sys ms), current and peak RSS (KiB) of a live process, from /proc. */
export function procUsage(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // fields after the ")" of comm: utime and stime are the 14th and 15th fields overall
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuMs = ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  return { cpuMs, rssKiB: kib('VmRSS'), hwmKiB: kib('VmHWM') };
}

/**
 * CPU (user+sys ms) of a process and its children (an agent's job workers), from /proc: the live
 * ones, and what the ended ones left in the parent's cutime/cstime (a job worker that idles out
 * inside the measured window would otherwise take its CPU with it).
 */
function treeCpuMs(pid) {
  let kids = [];
  try {
    kids = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  } catch {
    /* gone, or no children file: the process alone */
  }
  let cpu = 0;
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
    cpu += ((Number(fields[13]) + Number(fields[14])) * 1000) / CLK_TCK; // cutime, cstime: children reaped
  } catch {
    /* gone */
  }
  for (const p of [pid, ...kids]) {
    try {
      cpu += procUsage(p).cpuMs;
    } catch {
      /* exited between the listing and the read */
    }
  }
  return cpu;
}

/** The master's CLI client from the build, so the bench speaks the real protocol. */
async function client() {
  return import(pathToFileURL(path.join(REPO, 'dist', 'master', 'cli-client.js')).href);
}

async function ask(sock, req) {
  const { request } = await client();
  let out;
  await request(sock, req, (ev) => {
    if (ev.type === 'data') out = ev.data;
  });
  return out;
}

/** A child we started, with its output in a log file (the bench's stdout stays the report). */
/** TSALT_BENCH_AGENTS_NICE=19: agent processes at that nice level (the master at 0), as if the master had CPU of its own */
const AGENTS_NICE = Number(process.env.TSALT_BENCH_AGENTS_NICE || 0);

function start(argv, logFile, env) {
  const fd = fs.openSync(logFile, 'a');
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', fd, fd], env: { ...process.env, ...env } });
  fs.closeSync(fd);
  child.exitPromise = new Promise((r) => child.on('exit', (code, sig) => r({ code, sig })));
  return child;
}

async function stop(child, graceMs = 15000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const done = await Promise.race([child.exitPromise, sleep(graceMs).then(() => null)]);
  if (!done) {
    child.kill('SIGKILL');
    await child.exitPromise;
  }
}

/** Polls keys.list until `n` accepted agents are connected; returns ms waited or throws. */
async function waitConnected(sock, n, timeoutMs, from = Date.now(), curve) {
  for (;;) {
    let up = -1;
    try {
      // keys.list: ids and connected, no grains (the poll costs the master as little as it can)
      const list = (await ask(sock, { type: 'keys.list' }))?.keys;
      up = Array.isArray(list) ? list.filter((a) => a.state === 'accepted' && a.connected).length : 0;
    } catch {
      // the master is not answering yet (starting)
    }
    curve?.push([Date.now() - from, up]);
    if (up >= n) return Date.now() - from;
    if (Date.now() - from > timeoutMs) throw new Error(`only ${up} of ${n} agents connected after ${timeoutMs / 1000} s`);
    // listing thousands of agents costs the master CPU: poll a large fleet once a second
    await sleep(n >= 1000 ? 1000 : 100);
  }
}

/** A tiny no-op tree for the fleet: a directory under each agent's own root, and a test.nop. */
function smallTree(dir) {
  const st = path.join(dir, 'states');
  const pi = path.join(dir, 'pillar');
  fs.mkdirSync(st, { recursive: true });
  fs.mkdirSync(pi, { recursive: true });
  fs.writeFileSync(path.join(st, 'top.sls'), "base:\n  '*':\n    - fleet\n");
  fs.writeFileSync(path.join(st, 'fleet.sls'), "fleet_dir:\n  file.directory:\n    - name: /srv/fleet\n    - makedirs: True\nping:\n  test.nop: []\n");
  fs.writeFileSync(path.join(pi, 'top.sls'), "base:\n  '*':\n    - fleet\n");
  fs.writeFileSync(path.join(pi, 'fleet.sls'), 'fleet: true\n');
  return { states: st, pillar: pi, count: 2 };
}

class Fleet {
  /** profile: 'agent' or 'master' runs that process under --cpu-prof into profileDir. */
  constructor(dir, n, tree, { rooted, profile, profileDir, store, masters = 1 }) {
    Object.assign(this, { dir, n, tree, rooted, profile, profileDir, store, masters, agents: [], procs: [] });
    this.sock = path.join(dir, 'master.sock');
    this.masterYaml = path.join(dir, 'master.yaml');
    this.log = path.join(dir, 'log');
    /** every master's process and config (the first is `this.master`, the one the CLI talks to) */
    this.masterProcs = [];
    this.ports = [];
  }

  /** master i's files: the first keeps the single-master names */
  masterFiles(i) {
    const s = i === 0 ? '' : String(i + 1);
    return { yaml: path.join(this.dir, `master${s}.yaml`), sock: path.join(this.dir, `master${s}.sock`), pki: `pki${s}`, db: `master${s}.db`, log: path.join(this.log, `master${s}.log`) };
  }

  profFlags(who) {
    return this.profile === who ? ['--cpu-prof', '--cpu-prof-interval', String(this.profInterval ?? 100), '--cpu-prof-dir', this.profileDir] : [];
  }

  /** --mem: the memory probe's flags and file, for the first master */
  memFlags(i) {
    return this.memFile && i === 0 ? ['--expose-gc', '--require', path.join(REPO, 'bench', 'lib', 'mem-probe.cjs')] : [];
  }

  /** --mem: one sample of the first master's memory (bench/lib/mem-probe.cjs): the peak since the last one, now, and after a GC */
  async memSample(label) {
    if (!this.memFile) return undefined;
    const lines = () => (fs.existsSync(this.memFile) ? fs.readFileSync(this.memFile, 'utf8').split('\n').filter(Boolean) : []);
    const had = lines().length;
    this.master.kill('SIGWINCH');
    for (let i = 0; i < 200 && lines().length <= had; i++) await sleep(50);
    const l = lines();
    if (l.length <= had) throw new Error(`--mem: the master wrote no memory sample (${label})`);
    return { label, ...JSON.parse(l[l.length - 1]) };
  }

  async startMaster(i = 0) {
    const f = this.masterFiles(i);
    const memEnv = { ...MASTER_ENV, ...(this.memFile && i === 0 ? { TSALT_MEM_PROBE_FILE: this.memFile } : {}) };
    const proc = start([process.execPath, ...this.profFlags('master'), ...MASTER_NODE_FLAGS, ...this.memFlags(i), TSALT, 'master', '--config', f.yaml], f.log, memEnv);
    this.masterProcs[i] = proc;
    if (i === 0) this.master = proc;
    await waitConnected(f.sock, 0, 30000); // the socket answers: the master is up
  }

  async up() {
    fs.rmSync(this.dir, { recursive: true, force: true });
    fs.mkdirSync(this.log, { recursive: true });
    const y = (o) => Object.entries(o).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join('\n') + '\n';
    for (let i = 0; i < this.masters; i++) {
      this.ports[i] = await freePort();
      const f = this.masterFiles(i);
      fs.writeFileSync(
        f.yaml,
        y({
          interface: '127.0.0.1', port: this.ports[i], pki_dir: f.pki, db: f.db, socket: path.basename(f.sock),
          state_tree: this.tree.states, pillar_tree: this.tree.pillar, auto_accept: true, log_level: process.env.TSALT_BENCH_MASTER_LOG_LEVEL || 'warn',
          ...(this.masters > 1 ? { master_id: `bench-m${i + 1}` } : {}),
          ...(this.store ? { store: this.store } : {}),
        }),
      );
      // one after the other: the first migrates the shared store
      await this.startMaster(i);
    }
    this.port = this.ports[0];
    this.mem = [];
    const empty = await this.memSample('no agent');
    if (empty) this.mem.push(empty);
    const cfgs = [];
    for (let i = 1; i <= this.n; i++) {
      const id = `bench-${String(i).padStart(5, '0')}`;
      const d = path.join(this.dir, 'agents', id);
      fs.mkdirSync(d, { recursive: true });
      const cfg = {
        id, master: '127.0.0.1', master_port: this.ports[(i - 1) % this.masters], tofu: true, pki_dir: 'pki', cache_dir: 'cache',
        grains_file: 'grains', log_level: process.env.TSALT_BENCH_AGENT_LOG_LEVEL || 'error',
        ...(this.rooted ? { root: 'root' } : {}),
      };
      fs.writeFileSync(path.join(d, 'agent.yaml'), y(cfg));
      cfgs.push(path.join(d, 'agent.yaml'));
    }
    for (let p = 0; p * PER_PROCESS < cfgs.length; p++) {
      const mine = cfgs.slice(p * PER_PROCESS, (p + 1) * PER_PROCESS);
      // --profile-storm: the first agent process too (its profile cut to the storm)
      const agentProf = this.profileStorm && p === 0 ? ['--cpu-prof', '--cpu-prof-interval', '1000', '--cpu-prof-dir', this.profileDir] : this.profFlags('agent');
      const proc = start([process.execPath, ...agentProf, TSALT, 'agent', ...mine.flatMap((c) => ['--config', c])], path.join(this.log, `agents-${p}.log`));
      // TSALT_BENCH_AGENTS_NICE: the agents yield the CPU to the master (their job workers inherit it)
      if (AGENTS_NICE) os.setPriority(proc.pid, AGENTS_NICE);
      this.procs.push(proc);
    }
    // key generation + first contact of every agent; generous for 1,000+ on 2 cores
    this.connectMs = await waitConnected(this.sock, this.n, 60000 + this.n * 200);
  }

  /** The first (converging) apply, not timed: agents that failed it (a fetch cut off under load) get it again. */
  async converge(log, tries = 3) {
    for (let i = 1; ; i++) {
      try {
        return await this.job();
      } catch (e) {
        if (i >= tries) throw e;
        log(`fleet ${this.n}: converging apply, try ${i}: ${e.message.slice(0, 300)}; again`);
      }
    }
  }

  /** The job alone, from this process: request -> every agent's return. */
  async job() {
    const { request } = await client();
    const t0 = process.hrtime.bigint();
    const done = new Map();
    const code = await request(this.sock, { type: 'apply', target: '*', tgt_type: 'glob', sls: [], test: false, timeout_s: 600, user: 'bench@cli' }, (ev) => {
      if (ev.type === 'agent_done') done.set(ev.agent, ev);
    });
    const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const bad = [...done.values()].filter((e) => e.status !== 'done');
    if (code !== 0 || done.size !== this.n || bad.length) {
      throw new Error(`apply '*': exit ${code}, ${done.size}/${this.n} returned, ${bad.length} not done: ${JSON.stringify(bad[0] ?? {}).slice(0, 600)}`);
    }
    const changed = [...done.values()].reduce((a, e) => a + (e.body?.kind === 'apply' ? e.body.report.counts.changed : 0), 0);
    return { wallMs, changed };
  }

  async restartStorm() {
    const s0 = Date.now();
    // the profiles' clock (V8 ticks: CLOCK_MONOTONIC µs, as hrtime): where the stop begins
    this.stopFromUs = Number(process.hrtime.bigint() / 1000n);
    const oldPid = this.master.pid;
    // the old master's CPU over its stop: /proc read every 10 ms until it is gone (the last
    // few ms before the exit are missed: a floor, not a ceiling)
    const cpu0 = procUsage(oldPid).cpuMs;
    let cpuLast = cpu0;
    const poll = setInterval(() => {
      try {
        cpuLast = procUsage(oldPid).cpuMs;
      } catch {
        /* exited */
      }
    }, 10);
    await stop(this.master);
    clearInterval(poll);
    const stopCpuMs = cpuLast - cpu0;
    const stopMs = Date.now() - s0; // SIGTERM to exit: the agents' first retries fall in it
    this.stoppedPid = oldPid;
    this.stopToUs = Number(process.hrtime.bigint() / 1000n);
    // --profile-stop: only the old master was to be profiled; --profile-storm: only the new one
    if (this.profileStop) this.profile = undefined;
    if (this.profileStorm) this.profile = 'master';
    const t0 = Date.now();
    await this.startMaster();
    const masterUpMs = Date.now() - t0;
    const curve = [];
    const allBackMs = await waitConnected(this.sock, this.n, 120000 + this.n * 100, t0, curve);
    this.stormToUs = Number(process.hrtime.bigint() / 1000n);
    // when half, 90% and 99% of the fleet were back (first poll at or over the share)
    const at = (share) => curve.find(([, up]) => up >= share * this.n)?.[0] ?? null;
    return { stopMs, stopCpuMs, masterUpMs, allBackMs, halfMs: at(0.5), p90Ms: at(0.9), p99Ms: at(0.99) };
  }

  async down() {
    await Promise.all(this.procs.map((p) => stop(p)));
    await Promise.all(this.masterProcs.map((p) => stop(p)));
  }
}

/**
 * Where a process's time goes: the agent(s) or the master run under --cpu-prof for `runs`
 * no-op jobs (not timed: the profiler slows them); the profile, written when the process
 * exits, covers its start too, which the table of tsalt functions (inclusive) separates
 * from the jobs' own work.
 */
async function profilePass({ dir, n, tree, rooted, runs, who, log }) {
  const profileDir = path.join(dir, 'profile');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(profileDir, { recursive: true });
  const f = new Fleet(dir, n, tree, { rooted, profile: who, profileDir });
  try {
    await f.up();
    await f.job();
    log(`fleet ${n}: profiling the ${who} over ${runs} no-op jobs`);
    for (let i = 0; i < runs; i++) await f.job();
  } finally {
    await f.down();
  }
  // several agent processes: the first one's profile stands for all
  const file = fs.readdirSync(profileDir).filter((x) => x.endsWith('.cpuprofile')).sort()[0];
  if (!file) return null;
  const { summarise } = await import('./profile.mjs');
  return { who, n, jobs: runs, summary: summarise(JSON.parse(fs.readFileSync(path.join(profileDir, file), 'utf8')), 15) };
}

/** One fleet size: converge once, then time the no-op applies. */
async function measure({ dir, n, tree, rooted, runs, expectStates, log, idle, profileMaster, store, masters = 1, mem = false, jobsOnly = false, stormOnly = false, profileStop = false, profileStorm = false }) {
  const profileDir = path.join(dir + '-profile');
  if (profileMaster || profileStop || profileStorm) {
    fs.rmSync(profileDir, { recursive: true, force: true });
    fs.mkdirSync(profileDir, { recursive: true });
  }
  const f = new Fleet(dir, n, tree, { rooted, store, masters, ...(profileMaster || profileStop ? { profile: 'master', profileDir } : profileStorm ? { profileDir } : {}) });
  f.profInterval = 1000; // a whole run of thousands of agents: 1 ms samples
  f.profileStop = profileStop;
  f.profileStorm = profileStorm;
  if (mem) f.memFile = path.join(dir + '-mem.jsonl');
  if (mem) fs.rmSync(f.memFile, { force: true });
  try {
    log(`fleet ${n}: starting ${masters > 1 ? `${masters} masters on ${store}` : 'master'} and ${n} agent(s) in ${Math.ceil(n / PER_PROCESS)} process(es)`);
    await f.up();
    const fresh = procUsage(f.procs[0].pid); // agent connected, before its first job
    if (mem) {
      // the connections settle (hellos stored, handshake buffers freed) before the idle sample
      await sleep(3000);
      f.mem.push(await f.memSample('all connected, idle'));
    }
    if (stormOnly) {
      log(`fleet ${n}: all connected in ${ms(f.connectMs)}; reconnect storm (master restart)`);
      const storm = await f.restartStorm();
      storm.masterCpuMs = procUsage(f.master.pid).cpuMs;
      log(`fleet ${n}: all back ${ms(storm.allBackMs)} after the restart (half ${ms(storm.halfMs)}, 90% ${ms(storm.p90Ms)}, 99% ${ms(storm.p99Ms)}; old master exited in ${ms(storm.stopMs)} (its CPU over the stop ${ms(storm.stopCpuMs)}), new one up in ${ms(storm.masterUpMs)}, its CPU ${ms(storm.masterCpuMs)}); load ${loadAvg()}`);
      const out = { n, stormOnly: true, connectMs: f.connectMs, storm, masters, agentProcs: f.procs.length, loadAvg: loadAvg() };
      if (profileStop) out.stopProfile = await stopProfile(profileDir, f, log);
      if (profileStorm) {
        const pid = f.master.pid;
        const agentPid = f.procs[0].pid;
        await f.down(); // the profiles are written as the processes exit
        out.stormProfile = await pidProfile(profileDir, pid, `the new master's profile over the storm at ${n} agents`, log);
        out.stormAgentProfile = await pidProfile(profileDir, agentPid, `the first agent process's profile over the storm (SIGTERM to the old master until all are back)`, log, [f.stopFromUs, f.stormToUs]);
      }
      return out;
    }
    log(`fleet ${n}: all connected in ${ms(f.connectMs)}; first (converging) apply`);
    await f.converge(log);
    if (mem) f.mem.push(await f.memSample('converging apply'));
    const usage = () => f.masterProcs.map((p) => procUsage(p.pid));
    const pgDb = store && pgCluster ? decodeURIComponent(new URL(store).pathname.slice(1)) : undefined;
    if (pgDb && PG_STATS) await pgCluster.statements(pgDb, { reset: true });
    const pg0 = pgDb ? pgCluster.cpuMs() : undefined;
    const m0 = usage();
    // the profiles' clock (V8 ticks: CLOCK_MONOTONIC µs, as hrtime): the no-op jobs' window
    const jobsFromUs = Number(process.hrtime.bigint() / 1000n);
    const jobsPids = f.masterProcs.map((p) => p.pid);
    const agentCpu = () => f.procs.reduce((a, p) => a + treeCpuMs(p.pid), 0);
    const ac0 = agentCpu();
    log(`fleet ${n}: no-op job x${runs}`);
    const jobs = [];
    for (let i = 0; i < runs; i++) {
      const j = await f.job();
      if (j.changed) throw new Error(`fleet ${n}: no-op apply changed ${j.changed} state(s)`);
      jobs.push(j.wallMs);
    }
    const m1 = usage();
    const jobsWindowUs = [jobsFromUs, Number(process.hrtime.bigint() / 1000n)];
    const pgCpu = pgDb ? (pgCluster.cpuMs() - pg0) / runs : undefined;
    if (mem) f.mem.push(await f.memSample(`${runs} no-op jobs`));
    const agentCpuPerJobMs = (agentCpu() - ac0) / runs;
    const loadJobs = loadAvg();
    if (pgCpu !== undefined) log(`fleet ${n}: PostgreSQL CPU ${ms(pgCpu)} per job (all its processes)`);
    if (pgDb && PG_STATS) {
      for (const r of await pgCluster.statements(pgDb)) log(`  pg: ${String(r.calls).padStart(7)} calls ${String(r.ms).padStart(6)} ms ${String(r.rows).padStart(8)} rows  ${r.query}`);
    }
    const cpuEach = m1.map((u, i) => (u.cpuMs - m0[i].cpuMs) / runs);
    const cpuSum = cpuEach.reduce((a, b) => a + b, 0);
    log(`fleet ${n}: no-op jobs ${jobs.map((j) => ms(j)).join(', ')}; master CPU ${ms(cpuSum)} per job${masters > 1 ? ` (${cpuEach.map(ms).join(' + ')})` : ''}, peak RSS ${m1.map((u) => mib(u.hwmKiB)).join(' + ')}; load ${loadJobs}`);
    log(`fleet ${n}: agents' CPU ${ms(agentCpuPerJobMs)} per job (${f.procs.length} process(es)), ${(agentCpuPerJobMs / n).toFixed(2)} ms per agent per job`);
    if (jobsOnly) {
      if (mem) log(`fleet ${n}: master memory\n${formatMem(f.mem, n)}`);
      return { n, ...(mem ? { mem: f.mem } : {}), states: expectStates, connectMs: f.connectMs, job: stats(jobs), masterCpuPerJobMs: cpuSum, masterCpuPerJobEachMs: cpuEach, masterPeakKiB: procUsage(f.master.pid).hwmKiB, mastersPeakKiB: f.masterProcs.map((p) => procUsage(p.pid).hwmKiB), masters, agentProcs: f.procs.length, agentRssKiB: f.procs.map((p) => procUsage(p.pid).rssKiB), agentCpuPerJobMs, agentCpuPerAgentPerJobMs: agentCpuPerJobMs / n, loadJobs, loadAvg: loadAvg() };
    }
    log(`fleet ${n}: tsalt apply '*' (whole CLI process) x${runs}`);
    const cli = await timeMany(`tsalt apply '*' (${n})`, [process.execPath, TSALT, 'apply', '*', '--socket', f.sock], {
      runs,
      check: (r) => {
        const s = /Job \S+: (\d+) targeted, (\d+) succeeded/.exec(r.stdout);
        if (!s || Number(s[1]) !== n || Number(s[2]) !== n) throw new Error(`tsalt apply: ${tail(r.stdout, 5)}\n${tail(r.stderr, 5)}`);
        const changed = [...r.stdout.matchAll(/changed=(\d+)/g)].reduce((a, x) => a + Number(x[1]), 0);
        if (changed) throw new Error(`tsalt apply: no-op run changed ${changed} state(s)`);
      },
    });
    const out = {
      n,
      states: expectStates,
      connectMs: f.connectMs,
      job: stats(jobs),
      cli: { wall: cli.wall, rssKiB: cli.rssKiB },
      masterCpuPerJobMs: cpuSum,
      masterCpuPerJobEachMs: cpuEach,
      ...(pgCpu !== undefined ? { pgCpuPerJobMs: pgCpu } : {}),
      masterPeakKiB: procUsage(f.master.pid).hwmKiB,
      mastersPeakKiB: f.masterProcs.map((p) => procUsage(p.pid).hwmKiB),
      masters,
      agentProcs: f.procs.length,
      agentRssKiB: f.procs.map((p) => procUsage(p.pid).rssKiB),
      ...(mem ? { mem: f.mem } : {}),
      agentCpuPerJobMs,
      agentCpuPerAgentPerJobMs: agentCpuPerJobMs / n,
    };
    if (mem) log(`fleet ${n}: master memory\n${formatMem(f.mem, n)}`);
    if (idle) {
      log(`fleet ${n}: agent idle for ${idle / 1000} s`);
      const a0 = procUsage(f.procs[0].pid);
      await sleep(idle);
      const a1 = procUsage(f.procs[0].pid);
      out.agentIdle = { freshRssKiB: fresh.rssKiB, rssKiB: a1.rssKiB, cpuMsPerMin: ((a1.cpuMs - a0.cpuMs) * 60000) / idle };
    }
    out.loadJobs = loadJobs;
    log(`fleet ${n}: reconnect storm (master restart)`);
    out.storm = await f.restartStorm();
    out.storm.masterCpuMs = procUsage(f.master.pid).cpuMs;
    out.loadStorm = loadAvg();
    log(`fleet ${n}: all back ${ms(out.storm.allBackMs)} after the restart (half ${ms(out.storm.halfMs)}, 90% ${ms(out.storm.p90Ms)}, 99% ${ms(out.storm.p99Ms)}; old master exited in ${ms(out.storm.stopMs)} (its CPU over the stop ${ms(out.storm.stopCpuMs)}), new one up in ${ms(out.storm.masterUpMs)}, its CPU ${ms(out.storm.masterCpuMs)})`);
    out.masterPeakAfterStormKiB = procUsage(f.master.pid).hwmKiB;
    out.loadAvg = loadAvg();
    if (profileStop) out.stopProfile = await stopProfile(profileDir, f, log);
    if (profileMaster) {
      await f.down(); // the profiles are written as the masters exit
      out.masterProfiles = await jobsProfiles(profileDir, jobsPids, jobsWindowUs, runs, log);
    }
    return out;
  } finally {
    await f.down();
  }
}

/**
 * Each master's profile over the no-op jobs alone (samples inside the jobs' window; its start,
 * the agents' connections and the converging apply left out), logged and returned per master.
 */
async function jobsProfiles(profileDir, pids, [fromUs, toUs], runs, log) {
  const { summarise, formatProfile } = await import('./profile.mjs');
  const files = fs.readdirSync(profileDir).filter((x) => x.endsWith('.cpuprofile'));
  const out = [];
  for (const [i, pid] of pids.entries()) {
    const file = files.find((x) => x.split('.')[3] === String(pid));
    if (!file) continue;
    const prof = JSON.parse(fs.readFileSync(path.join(profileDir, file), 'utf8'));
    const summary = summarise(profileWindow(prof, fromUs, toUs), 25);
    log(`master ${i + 1}'s profile over the ${runs} no-op jobs (${file}):\n${formatProfile(summary)}`);
    out.push({ master: i + 1, file, summary });
  }
  return out;
}

/** A V8 CPU profile cut to the samples taken between fromUs and toUs (its clock: CLOCK_MONOTONIC µs). */
function profileWindow(prof, fromUs, toUs) {
  const samples = [];
  const deltas = [0];
  let t = prof.startTime;
  for (let k = 0; k < prof.samples.length; k++) {
    t += prof.timeDeltas[k] ?? 0;
    if (t >= fromUs && t <= toUs) {
      samples.push(prof.samples[k]);
      deltas.push(prof.timeDeltas[k + 1] ?? 0);
    }
  }
  return { ...prof, samples, timeDeltas: deltas };
}

/** --profile-stop: the old master's profile from SIGTERM to its exit (the stop alone), logged and returned. */
async function stopProfile(profileDir, f, log) {
  const { summarise, formatProfile } = await import('./profile.mjs');
  const file = fs.readdirSync(profileDir).find((x) => x.endsWith('.cpuprofile') && x.split('.')[3] === String(f.stoppedPid));
  if (!file) {
    log(`--profile-stop: no profile of the old master (pid ${f.stoppedPid}) in ${profileDir}`);
    return undefined;
  }
  const prof = JSON.parse(fs.readFileSync(path.join(profileDir, file), 'utf8'));
  const summary = summarise(profileWindow(prof, f.stopFromUs, f.stopToUs), 30);
  log(`the old master's profile from SIGTERM to its exit at ${f.n} agents (${file}):\n${formatProfile(summary)}`);
  return { n: f.n, file, summary };
}

/** The whole profile of one process (by pid), logged and returned. */
async function pidProfile(profileDir, pid, title, log, windowUs) {
  const { summarise, formatProfile } = await import('./profile.mjs');
  const file = fs.readdirSync(profileDir).find((x) => x.endsWith('.cpuprofile') && x.split('.')[3] === String(pid));
  if (!file) {
    log(`${title}: no profile (pid ${pid}) in ${profileDir}`);
    return undefined;
  }
  const prof = JSON.parse(fs.readFileSync(path.join(profileDir, file), 'utf8'));
  const summary = summarise(windowUs ? profileWindow(prof, ...windowUs) : prof, 30);
  log(`${title} (${file}):\n${formatProfile(summary)}`);
  return { file, summary };
}

/** --mem samples as a table: MiB, and KiB per agent over the no-agent sample. */
export function formatMem(samples, n) {
  const M = (b) => (b / 1048576).toFixed(1);
  const K = (b) => (b / 1024 / n).toFixed(1);
  const base = samples[0];
  const rows = [];
  for (const s of samples) {
    const per = (a, b) => (s === base ? '' : ` (${K(a - b)} KiB/agent)`);
    rows.push([
      s.label,
      `${M(s.peak.rss)}${per(s.peak.rss, base.afterGc.rss)}`,
      `${M(s.afterGc.rss)}${per(s.afterGc.rss, base.afterGc.rss)}`,
      `${M(s.peak.heapUsed)} / ${M(s.afterGc.heapUsed)}${per(s.afterGc.heapUsed, base.afterGc.heapUsed)}`,
      `${M(s.peak.external)} / ${M(s.afterGc.external)}${per(s.afterGc.external, base.afterGc.external)}`,
      `${M(s.peak.arrayBuffers)} / ${M(s.afterGc.arrayBuffers)}`,
      `${M(s.afterGc.rss - s.afterGc.heapTotal - s.afterGc.external)}${per(s.afterGc.rss - s.afterGc.heapTotal - s.afterGc.external, base.afterGc.rss - base.afterGc.heapTotal - base.afterGc.external)}`,
    ]);
  }
  return table(['phase', 'peak RSS MiB', 'RSS after GC MiB', 'heapUsed at peak / after GC', 'external at peak / after GC', 'arrayBuffers at peak / after GC', 'RSS - heapTotal - external after GC (native)'], rows);
}

export async function runFleet({ scratch, sizes, runs, log, perProcess, profileMaster, store, masters = 1, mem = false, profileAgents = false, jobsOnly = false, stormOnly = false, profileStop = false, profileStorm = false }) {
  if (perProcess) PER_PROCESS = perProcess;
  if (!fs.existsSync(path.join(REPO, 'dist', 'cli', 'commands', 'master.js'))) {
    return { skipped: 'the master/agent commands are not built (dist/cli/commands/master.js missing)' };
  }
  if (masters > 1 && store && !/^postgres(ql)?:\/\//.test(store)) throw new Error('--masters 2 needs a PostgreSQL --store (or none: a throwaway cluster is started)');
  // several masters: one empty database per fleet size, on the server --store names or on a throwaway one
  let cluster;
  const storeFor = async (n) => {
    if (masters < 2) return store;
    if (!store) {
      log('starting a throwaway PostgreSQL cluster for the masters');
      cluster ??= pgCluster = await (await import('./lib/postgres.mjs')).startPostgres({ stats: PG_STATS });
    }
    const name = `bench_fleet_${n}_${Date.now()}`;
    if (cluster) return cluster.createDatabase(name);
    const { default: pg } = await import('pg');
    const c = new pg.Client({ connectionString: store });
    await c.connect();
    try {
      await c.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
    } finally {
      await c.end();
    }
    const u = new URL(store);
    u.pathname = `/${name}`;
    return u.href;
  };
  try {
    return await runSizes({ scratch, sizes, runs, log, profileMaster, store, masters, storeFor, mem, profileAgents, jobsOnly, stormOnly, profileStop, profileStorm });
  } finally {
    await cluster?.stop();
    pgCluster = undefined;
  }
}

async function runSizes({ scratch, sizes, runs, log, profileMaster, store, masters, storeFor, mem, profileAgents, jobsOnly, stormOnly, profileStop, profileStorm }) {
  const rows = [];
  const profiles = [];
  for (const n of sizes) {
    if (stormOnly || profileStop || profileStorm) {
      const tree = smallTree(path.join(scratch, 'fleet-tree'));
      const m = await measure({ dir: path.join(scratch, `fleet-${n}`), n, tree, rooted: true, runs, expectStates: tree.count, log, store: await storeFor(n), masters, stormOnly: true, profileStop, profileStorm });
      rows.push({ kind: 'small no-op tree', ...m });
      if (m.stopProfile) profiles.push({ who: 'master', stop: true, ...m.stopProfile });
      continue;
    }
    if (n === 1) {
      // W54 through one warm agent: the agent manages the real W54 paths (no root).
      const tree = prepare(scratch, 54);
      rows.push({ kind: 'W54, 1 warm agent', ...(await measure({ dir: path.join(scratch, 'fleet-w54'), n: 1, tree, rooted: false, runs, expectStates: 54, log, idle: jobsOnly ? 0 : IDLE_S * 1000, jobsOnly })) });
      profiles.push(await profilePass({ dir: path.join(scratch, 'fleet-w54-prof'), n: 1, tree, rooted: false, runs: 20, who: 'agent', log }));
    } else {
      const tree = smallTree(path.join(scratch, 'fleet-tree'));
      rows.push({ kind: 'small no-op tree', ...(await measure({ dir: path.join(scratch, `fleet-${n}`), n, tree, rooted: true, runs, expectStates: tree.count, log, profileMaster, store: await storeFor(n), masters, mem, jobsOnly })) });
      if (profileAgents) profiles.push(await profilePass({ dir: path.join(scratch, `fleet-${n}-agent-prof`), n, tree, rooted: true, runs: Math.max(runs, 3), who: 'agent', log }));
      // the master's cost per agent shows at 100 already, without 1,000 agents' start-up
      if (n === 100) profiles.push(await profilePass({ dir: path.join(scratch, 'fleet-100-prof'), n, tree, rooted: true, runs: 10, who: 'master', log }));
    }
  }
  return { rows, profiles: profiles.filter(Boolean) };
}

export async function formatFleet(fleet) {
  if (fleet.skipped) return `## Fleet\n\nnot measured: ${fleet.skipped}`;
  const lines = ['## Fleet: master + N agents on loopback (agents ' + PER_PROCESS + ' per process)', ''];
  // --storm-only rows have no jobs: they get a line each below, not a row here
  if (fleet.rows.some((r) => r.storm && !r.stormOnly)) lines.push(
    table(
      ['agents', 'tree', 'job: apply \'*\' → all returns', 'tsalt apply \'*\' whole CLI', 'master CPU per job', 'master peak RSS', 'all connected (cold)', 'reconnect after master restart'],
      fleet.rows.filter((r) => r.storm && !r.stormOnly).map((r) => [
        r.n,
        `${r.kind} (${r.states} states)`,
        spread(r.job),
        spread(r.cli.wall),
        r.masters > 1 ? `${ms(r.masterCpuPerJobMs)} (${r.masterCpuPerJobEachMs.map(ms).join(' + ')})${r.pgCpuPerJobMs !== undefined ? `; PostgreSQL ${ms(r.pgCpuPerJobMs)}` : ''}` : ms(r.masterCpuPerJobMs),
        r.masters > 1 ? r.mastersPeakKiB.map(mib).join(' + ') : mib(r.masterPeakKiB),
        ms(r.connectMs),
        `${ms(r.storm.allBackMs)} (half ${ms(r.storm.halfMs)}, 90% ${ms(r.storm.p90Ms)}; master up in ${ms(r.storm.masterUpMs)}, its CPU ${ms(r.storm.masterCpuMs)}; its peak RSS ${mib(r.masterPeakAfterStormKiB)})`,
      ]),
    ),
  );
  for (const r of fleet.rows) {
    if (r.stormOnly) {
      const st = r.storm;
      lines.push('', `reconnect storm at ${r.n} agents (${r.agentProcs} agent process(es)${AGENTS_NICE ? `, at nice ${AGENTS_NICE}` : ''}): old master exited ${ms(st.stopMs)} after SIGTERM (its CPU over the stop ${ms(st.stopCpuMs)}); all back ${ms(st.allBackMs)} after the restart (half ${ms(st.halfMs)}, 90% ${ms(st.p90Ms)}, 99% ${ms(st.p99Ms)}; new master up in ${ms(st.masterUpMs)}, its CPU ${ms(st.masterCpuMs)}); load at the end ${r.loadAvg}`);
      continue;
    }
    if (r.mem) lines.push('', `master memory at ${r.n} agents (--mem; MiB, per agent over the no-agent figure):`, '', formatMem(r.mem, r.n));
    if (r.agentCpuPerJobMs !== undefined) {
      lines.push('', `agents' CPU at ${r.n} (${r.agentProcs} process(es), /proc over the no-op jobs): ${ms(r.agentCpuPerJobMs)} per job, ${r.agentCpuPerAgentPerJobMs.toFixed(2)} ms per agent per job${r.storm ? '' : `; job ${spread(r.job)}, master CPU ${ms(r.masterCpuPerJobMs)} per job, peak RSS ${mib(r.masterPeakKiB)}`}`);
    }
    if (r.agentIdle) {
      const a = r.agentIdle;
      lines.push('', `agent idle (1 agent in its process): RSS ${mib(a.freshRssKiB)} connected before any job, ${mib(a.rssKiB)} after the jobs; CPU ${a.cpuMsPerMin.toFixed(0)} ms per minute (/proc ticks of 10 ms over ${IDLE_S} s)`);
    }
    if (r.n > 1) lines.push(`agent processes at ${r.n}: ${r.agentProcs} x ~${mib(stats(r.agentRssKiB).median)} RSS; load average during the jobs ${r.loadJobs}, at the end ${r.loadAvg}`);
    if (r.masters > 1) lines.push(`${r.masters} masters on one PostgreSQL store, agents alternating between them; the CLI on the first (master CPU: their sum, then each; peak RSS: each); the reconnect storm restarts the first`);
  }
  const { formatProfile } = await import('./profile.mjs');
  for (const p of fleet.profiles ?? []) {
    if (p.stop) {
      lines.push('', `### Where the old master's stop goes (node --cpu-prof, SIGTERM to exit, ${p.n} agents)`, '', formatProfile(p.summary));
      continue;
    }
    const what = p.who === 'agent' ? (p.n === 1 ? `a warm agent's (W54, ${p.n} agent)` : `an agent process's (${Math.min(p.n, PER_PROCESS)} of ${p.n} agents, small tree)`) : `the master's (${p.n} agents, small tree)`;
    lines.push('', `### Where ${what} time goes (node --cpu-prof on the ${p.who}: its start, 1 converging and ${p.jobs} no-op jobs)`, '', formatProfile(p.summary));
  }
  lines.push('', "goals: warm agent W54 no-op ≤ 100 ms (the job line); 1,000 agents: ≤ 3 s wall, master RSS ≤ 400 MB; agent idle RSS ≤ 50 MB, CPU ≈ 0");
  return lines.join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values: o } = parseArgs({
    options: {
      agents: { type: 'string', default: '1,100,1000' },
      runs: { type: 'string', default: '5' },
      scratch: { type: 'string', default: path.join(os.tmpdir(), 'tsalt-bench') },
      'per-process': { type: 'string', default: '100' },
      'profile-master': { type: 'boolean', default: false },
      // the master's store (master.yaml store:), e.g. postgres://user@127.0.0.1:5432/db; an empty database
      store: { type: 'string' },
      // 2: two masters sharing one PostgreSQL store (--store, or a throwaway cluster)
      masters: { type: 'string', default: '1' },
      // where the master's memory goes: bench/lib/mem-probe.cjs preloaded into it
      mem: { type: 'boolean', default: false },
      'profile-agents': { type: 'boolean', default: false },
      'jobs-only': { type: 'boolean', default: false },
      'storm-only': { type: 'boolean', default: false },
      'profile-stop': { type: 'boolean', default: false },
      'profile-storm': { type: 'boolean', default: false },
    },
  });
  const log = (m) => process.stderr.write(`[fleet ${new Date().toISOString().slice(11, 19)} load ${loadAvg()}] ${m}\n`);
  log(`masters' environment: ${Object.entries(MASTER_ENV).map(([k, v]) => `${k}=${v}`).join(' ') || 'none added'}`);
  if (AGENTS_NICE) log(`agent processes at nice ${AGENTS_NICE} (the master at 0)`);
  const r = await runFleet({ scratch: o.scratch, sizes: o.agents.split(',').map(Number), runs: Number(o.runs), log, perProcess: Number(o['per-process']), profileMaster: o['profile-master'], store: o.store, masters: Number(o.masters), mem: o.mem, profileAgents: o['profile-agents'], jobsOnly: o['jobs-only'], stormOnly: o['storm-only'], profileStop: o['profile-stop'], profileStorm: o['profile-storm'] });
  process.stdout.write((await formatFleet(r)) + '\n');
}
