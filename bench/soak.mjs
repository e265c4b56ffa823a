/**
 * Soak (issue 11): agent churn against one real master for a long run, watching the master's
 * memory and file descriptors. A real master (dist/, SQLite store, a small git-less state tree,
 * keys accepted by the operator through `tsalt keys accept`) and real agents (`tsalt agent`, one
 * process each, mutual-TLS websockets). Every cycle (default 5 s):
 *  - one or two running agents are stopped (SIGTERM or SIGKILL, alternately);
 *  - as many agents start: most are returning ids (key already accepted), every `--retire-every`
 *    cycles one id is retired (`tsalt keys delete`) and a new id joins (`tsalt keys accept`);
 *  - `tsalt apply -L <every connected agent>` runs through the CLI, as an operator would; every
 *    `--kill-mid-every` cycles one targeted agent is SIGKILLed during the apply (a job the
 *    master must give up on: counted as an expected loss, not a failure).
 * Every `--sample` seconds: the master's VmRSS and open fds from /proc, connected agents, the
 * counters; one CSV row in bench/results/soak-<stamp>.csv (raw, not committed) and a summary at
 * the end (and in bench/results/soak-<stamp>-summary.md).
 *
 * usage: node bench/soak.mjs [--minutes 60] [--agents 20] [--pool 40] [--cycle 5] [--sample 30]
 *                            [--warmup 2] [--window 10] [--heap-snapshot]
 * (npm run build first; the master and agents run from dist/)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort } from './lib/free-port.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TSALT = path.join(REPO, 'bin', 'tsalt.js');

const { values: opt } = parseArgs({
  options: {
    minutes: { type: 'string', default: '60' },
    agents: { type: 'string', default: '20' }, // running at once
    pool: { type: 'string', default: '40' }, // ids that come and go
    cycle: { type: 'string', default: '5' }, // seconds per churn cycle
    sample: { type: 'string', default: '30' }, // seconds between samples
    warmup: { type: 'string', default: '2' }, // minutes left out of the first window
    window: { type: 'string', default: '10' }, // minutes in the first/last windows compared
    'retire-every': { type: 'string', default: '12' },
    'kill-mid-every': { type: 'string', default: '10' },
    'heap-snapshot': { type: 'boolean', default: false }, // master heap snapshots after warm-up and at the end
    // the state tree in git, a commit every N cycles (0: a plain directory, one revision): each
    // apply then serves a new revision, as after `git push`es; --push-kib pads the changed file
    'push-every': { type: 'string', default: '0' },
    'push-kib': { type: 'string', default: '64' },
    dir: { type: 'string' },
  },
});
const MINUTES = Number(opt.minutes);
const RUNNING = Number(opt.agents);
const POOL = Number(opt.pool);
const CYCLE_MS = Number(opt.cycle) * 1000;
const SAMPLE_MS = Number(opt.sample) * 1000;
const WARMUP_MS = Number(opt.warmup) * 60_000;
const WINDOW_MS = Number(opt.window) * 60_000;
const RETIRE_EVERY = Number(opt['retire-every']);
const KILL_MID_EVERY = Number(opt['kill-mid-every']);
const PUSH_EVERY = Number(opt['push-every']);
const PUSH_KIB = Number(opt['push-kib']);

const sleep = (t) => new Promise((r) => setTimeout(r, t));
const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
const DIR = opt.dir ?? path.join(os.tmpdir(), `tsalt-soak-${stamp}`);
const RESULTS = path.join(REPO, 'bench', 'results');
const CSV = path.join(RESULTS, `soak-${stamp}.csv`);
const SUMMARY = path.join(RESULTS, `soak-${stamp}-summary.md`);

const y = (o) => Object.entries(o).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join('\n') + '\n';

/** A child with its output appended to a log file. */
function start(argv, logFile) {
  const fd = fs.openSync(logFile, 'a');
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', fd, fd], env: { ...process.env, NO_COLOR: '1' } });
  fs.closeSync(fd);
  child.exitPromise = new Promise((r) => child.on('exit', (code, sig) => r({ code, sig })));
  return child;
}

/** `tsalt ...` through the master's socket, as an operator types it. */
function cli(args, timeoutMs = 120_000) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [TSALT, ...args, '--socket', SOCK], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => (stdout += b));
    child.stderr.on('data', (b) => (stderr += b));
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** The CLI protocol in-process (cheap, for sampling only; the churn itself uses the CLI). */
const { request } = await import(pathToFileURL(path.join(REPO, 'dist', 'master', 'cli-client.js')).href);
async function ask(req) {
  let out;
  await request(SOCK, req, (ev) => {
    if (ev.type === 'data') out = ev.data;
  });
  return out;
}
async function connectedIds() {
  const list = await ask({ type: 'agents.list' });
  return new Set((Array.isArray(list) ? list : []).filter((a) => a.connected).map((a) => a.id));
}

function masterUsage(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  const fds = fs.readdirSync(`/proc/${pid}/fd`).length;
  // RssFile is mostly node's own binary paged in as more of it runs: anon is the heap's side
  return { rssKiB: kib('VmRSS'), anonKiB: kib('RssAnon'), fileKiB: kib('RssFile'), fds };
}

// ------------------------------------------------------------------ setup
fs.rmSync(DIR, { recursive: true, force: true });
fs.mkdirSync(path.join(DIR, 'log'), { recursive: true });
fs.mkdirSync(RESULTS, { recursive: true });
const SOCK = path.join(DIR, 'master.sock');
const states = path.join(DIR, 'states');
const pillar = path.join(DIR, 'pillar');
fs.mkdirSync(states, { recursive: true });
fs.mkdirSync(pillar, { recursive: true });
// a small tree with a template, a managed file, a directory and grains/pillar lookups: each
// apply renders and compiles on the agent and sends back a few state results
fs.writeFileSync(path.join(states, 'top.sls'), "base:\n  '*':\n    - soak\n");
fs.writeFileSync(
  path.join(states, 'soak.sls'),
  [
    'soak_dir:',
    '  file.directory:',
    '    - name: /srv/soak',
    '    - makedirs: True',
    'soak_file:',
    '  file.managed:',
    '    - name: /srv/soak/motd',
    '    - source: salt://motd.j2',
    '    - template: jinja',
    '    - require:',
    '      - file: soak_dir',
    'ping:',
    '  test.nop: []',
    '',
  ].join('\n'),
);
fs.writeFileSync(path.join(states, 'motd.j2'), "host {{ grains['id'] }} in {{ pillar.get('site', 'none') }}\n");
fs.writeFileSync(path.join(pillar, 'top.sls'), "base:\n  '*':\n    - soak\n");
fs.writeFileSync(path.join(pillar, 'soak.sls'), 'site: soak-lab\n');
const git = (...a) => {
  const r = spawnSync('git', ['-C', states, '-c', 'user.name=soak', '-c', 'user.email=soak@soak.invalid', '-c', 'init.defaultBranch=main', ...a], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ${a.join(' ')}: ${r.stderr}`);
};
let pushes = 0;
/** A new revision of the tree: the template changes (padded to --push-kib), committed. */
function push() {
  const pad = Array.from({ length: Math.ceil((PUSH_KIB * 1024) / 64) }, (_, i) => `{# ${String(pushes).padStart(8, '0')} ${String(i).padStart(8, '0')} ${'x'.repeat(40)} #}`).join('\n');
  fs.writeFileSync(path.join(states, 'motd.j2'), `${pad}\nhost {{ grains['id'] }} in {{ pillar.get('site', 'none') }} at push ${pushes}\n`);
  git('add', '-A');
  git('commit', '-q', '-m', `push ${pushes}`);
  pushes++;
}
if (PUSH_EVERY) {
  git('init', '-q');
  push();
}

const port = await freePort();
fs.writeFileSync(
  path.join(DIR, 'master.yaml'),
  y({
    interface: '127.0.0.1', port, pki_dir: 'pki', db: 'master.db', socket: 'master.sock',
    state_tree: states, pillar_tree: pillar, auto_accept: false, log_level: 'info',
    heartbeat_s: 5, lost_after_s: 15,
  }),
);
const masterArgs = [process.execPath, ...(opt['heap-snapshot'] ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${DIR}`] : []), TSALT, 'master', '--config', path.join(DIR, 'master.yaml')];
const master = start(masterArgs, path.join(DIR, 'log', 'master.log'));
let fingerprint;
for (let i = 0; ; i++) {
  const m = /master fingerprint ([0-9a-f]{64})/.exec(fs.readFileSync(path.join(DIR, 'log', 'master.log'), 'utf8'));
  if (m && fs.existsSync(SOCK)) {
    fingerprint = m[1];
    break;
  }
  if (i > 300 || master.exitCode !== null) throw new Error(`the master did not start; see ${DIR}/log/master.log`);
  await sleep(100);
}

// ------------------------------------------------------------------ the pool
let nextSerial = 1;
const pool = []; // { id, cfg, accepted, proc }
function newId() {
  const id = `soak-${String(nextSerial++).padStart(5, '0')}`;
  const d = path.join(DIR, 'agents', id);
  fs.mkdirSync(d, { recursive: true });
  const cfg = path.join(d, 'agent.yaml');
  fs.writeFileSync(
    cfg,
    y({
      id, master: '127.0.0.1', master_port: port, master_finger: fingerprint, pki_dir: 'pki', cache_dir: 'cache',
      grains_file: 'grains', root: 'root', log_level: 'warn', backoff_min_s: 0.2, backoff_max_s: 1, heartbeat_s: 5,
    }),
  );
  const a = { id, dir: d, cfg, accepted: false, proc: undefined };
  pool.push(a);
  return a;
}
for (let i = 0; i < POOL; i++) newId();

const count = {
  cycles: 0, agentsStarted: 0, agentsStopped: 0, keysAccepted: 0, keysDeleted: 0,
  applies: 0, appliesOk: 0, appliesFailed: 0, returnsOk: 0, returnsLostExpected: 0, returnsBad: 0,
  connectTimeouts: 0,
};
const failures = []; // first few, for the summary

const running = () => pool.filter((a) => a.proc);
const idle = () => pool.filter((a) => !a.proc);
const pick = (xs) => xs[Math.floor(Math.random() * xs.length)];

function startAgent(a) {
  a.proc = start([process.execPath, TSALT, 'agent', '--config', a.cfg], path.join(DIR, 'log', `${a.id}.log`));
  count.agentsStarted++;
}
async function stopAgent(a, sig) {
  const p = a.proc;
  if (!p) return;
  a.proc = undefined;
  if (p.exitCode === null && p.signalCode === null) p.kill(sig);
  const done = await Promise.race([p.exitPromise, sleep(10_000).then(() => null)]);
  if (!done) {
    p.kill('SIGKILL');
    await p.exitPromise;
  }
  count.agentsStopped++;
}

/** New ids: wait until their keys are pending, accept them with `tsalt keys accept`. */
async function acceptNew(agents) {
  const ids = agents.map((a) => a.id);
  const end = Date.now() + 60_000;
  for (;;) {
    const r = await cli(['keys', 'list', '--json']);
    const keys = r.code === 0 ? JSON.parse(r.stdout).keys : [];
    if (ids.every((id) => keys.some((k) => k.id === id))) break;
    if (Date.now() > end) throw new Error(`keys of ${ids.join(',')} never appeared`);
    await sleep(300);
  }
  const r = await cli(['keys', 'accept', ...ids]);
  if (r.code !== 0) throw new Error(`tsalt keys accept: ${r.stderr}`);
  for (const a of agents) a.accepted = true;
  count.keysAccepted += ids.length;
}

async function waitConnected(ids, ms = 60_000) {
  const end = Date.now() + ms;
  for (;;) {
    const up = await connectedIds();
    if (ids.every((id) => up.has(id))) return true;
    if (Date.now() > end) return false;
    await sleep(200);
  }
}

/** An id leaves the fleet for good: process stopped, key deleted, files gone; a new id joins. */
async function retireOne() {
  const a = pick(pool);
  await stopAgent(a, 'SIGTERM');
  if (a.accepted) {
    const r = await cli(['keys', 'delete', a.id]);
    if (r.code !== 0) failures.push(`keys delete ${a.id}: ${r.stderr.trim()}`);
    else count.keysDeleted++;
  }
  pool.splice(pool.indexOf(a), 1);
  fs.rmSync(a.dir, { recursive: true, force: true });
  fs.rmSync(path.join(DIR, 'log', `${a.id}.log`), { force: true });
  newId();
}

async function applyConnected(killMid) {
  const up = [...(await connectedIds())].filter((id) => pool.some((a) => a.id === id && a.proc));
  if (!up.length) return;
  count.applies++;
  const masterLog = path.join(DIR, 'log', 'master.log');
  const from = fs.statSync(masterLog).size;
  const job = cli(['apply', '-L', up.join(','), '--json', '--timeout', '60']);
  let victim;
  if (killMid) {
    // SIGKILL one target as soon as the master has sent the job (its log says so): the
    // agent may still beat the kill, then its return simply counts as done
    victim = pool.find((a) => a.id === pick(up));
    const until = Date.now() + 20_000;
    while (Date.now() < until) {
      const fd = fs.openSync(masterLog, 'r');
      const buf = Buffer.alloc(Math.max(0, fs.fstatSync(fd).size - from));
      fs.readSync(fd, buf, 0, buf.length, from);
      fs.closeSync(fd);
      if (/: apply list /.test(buf.toString())) break;
      await sleep(20);
    }
    if (victim) await stopAgent(victim, 'SIGKILL');
  }
  const r = await job;
  let rec;
  try {
    rec = JSON.parse(r.stdout);
  } catch {
    count.appliesFailed++;
    failures.push(`apply: exit ${r.code}, unparsable output: ${(r.stdout + r.stderr).slice(0, 300)}`);
    return;
  }
  // --json: { jid, code, errors, offline, agents: { id: { status, body: { kind, report }, error } } }
  const list = Object.entries(rec.agents ?? {}).map(([agent, v]) => ({ agent, ...v }));
  let bad = 0;
  for (const x of list) {
    const id = x.agent;
    const ok = x.status === 'done' && (x.body?.report?.counts?.failed ?? 0) === 0;
    if (ok) count.returnsOk++;
    else if (victim && id === victim.id) count.returnsLostExpected++;
    else {
      bad++;
      count.returnsBad++;
      if (failures.length < 20) failures.push(`apply ${rec.jid ?? '?'} ${id}: ${JSON.stringify(x).slice(0, 300)}`);
    }
  }
  // targets gone between the agents list and the job's start (the victim, or not at all)
  for (const id of rec.offline ?? []) {
    if (victim && id === victim.id) count.returnsLostExpected++;
    else {
      bad++;
      count.returnsBad++;
      if (failures.length < 20) failures.push(`apply ${rec.jid ?? '?'} ${id}: offline at the job's start`);
    }
  }
  if (list.length + (rec.offline ?? []).length !== up.length && failures.length < 20) failures.push(`apply ${rec.jid ?? '?'}: ${list.length} results for ${up.length} targets`);
  if (bad === 0 && list.length + (rec.offline ?? []).length === up.length) count.appliesOk++;
  else count.appliesFailed++;
}

async function cycle() {
  count.cycles++;
  // stop one or two (not below half the running count), start back up to RUNNING
  const stopN = running().length > RUNNING / 2 ? 1 + (Math.random() < 0.5 ? 1 : 0) : 0;
  for (let i = 0; i < stopN; i++) {
    const r = running();
    if (r.length) await stopAgent(pick(r), count.agentsStopped % 2 ? 'SIGKILL' : 'SIGTERM');
  }
  if (RETIRE_EVERY && count.cycles % RETIRE_EVERY === 0) await retireOne();
  if (PUSH_EVERY && count.cycles % PUSH_EVERY === 0) push();
  const starting = [];
  while (running().length < RUNNING && idle().length) {
    const a = pick(idle());
    startAgent(a);
    starting.push(a);
  }
  const fresh = starting.filter((a) => !a.accepted);
  if (fresh.length) await acceptNew(fresh);
  if (starting.length && !(await waitConnected(starting.map((a) => a.id)))) {
    count.connectTimeouts++;
    failures.push(`cycle ${count.cycles}: ${starting.map((a) => a.id).join(',')} not all connected after 60 s`);
  }
  await applyConnected(KILL_MID_EVERY && count.cycles % KILL_MID_EVERY === 0);
}

// ------------------------------------------------------------------ run
const t0 = Date.now();
const samples = [];
const header = 't_s,rss_kib,rss_anon_kib,rss_file_kib,fds,connected,cycles,agents_started,agents_stopped,keys_accepted,keys_deleted,applies,applies_ok,applies_failed,returns_ok,returns_lost_expected,returns_bad,load1';
fs.writeFileSync(CSV, header + '\n');
async function sample() {
  const u = masterUsage(master.pid);
  let connected = -1;
  try {
    connected = (await connectedIds()).size;
  } catch {
    // the socket is busy; the row says -1
  }
  const row = { t: Math.round((Date.now() - t0) / 1000), ...u, connected, ...count, load1: os.loadavg()[0] };
  samples.push(row);
  fs.appendFileSync(
    CSV,
    [row.t, row.rssKiB, row.anonKiB, row.fileKiB, row.fds, connected, count.cycles, count.agentsStarted, count.agentsStopped, count.keysAccepted, count.keysDeleted, count.applies, count.appliesOk, count.appliesFailed, count.returnsOk, count.returnsLostExpected, count.returnsBad, row.load1.toFixed(2)].join(',') + '\n',
  );
  process.stdout.write(`t=${row.t}s rss=${(row.rssKiB / 1024).toFixed(1)}MiB anon=${(row.anonKiB / 1024).toFixed(1)}MiB fds=${row.fds} up=${connected} applies=${count.applies} ok=${count.appliesOk} bad=${count.returnsBad} load=${row.load1.toFixed(2)}\n`);
}

console.log(`soak: ${MINUTES} min, ${RUNNING} agents running of a pool of ${POOL}, a cycle every ${CYCLE_MS / 1000} s; master pid ${master.pid}; dir ${DIR}; csv ${CSV}`);
let stopping = false;
process.on('SIGINT', () => (stopping = true));
process.on('SIGTERM', () => (stopping = true));
const end = t0 + MINUTES * 60_000;
let nextSample = t0;
let snapped = false;
while (!stopping && Date.now() < end) {
  const c0 = Date.now();
  if (c0 >= nextSample) {
    await sample();
    nextSample += SAMPLE_MS;
  }
  if (opt['heap-snapshot'] && !snapped && c0 - t0 >= WARMUP_MS) {
    master.kill('SIGUSR2');
    snapped = true;
  }
  try {
    await cycle();
  } catch (e) {
    failures.push(`cycle ${count.cycles}: ${e.message}`);
  }
  if (master.exitCode !== null || master.signalCode !== null) {
    failures.push('the master exited');
    break;
  }
  await sleep(Math.max(0, CYCLE_MS - (Date.now() - c0)));
}
await sample();
if (opt['heap-snapshot']) {
  master.kill('SIGUSR2');
  await sleep(15_000);
}

// ------------------------------------------------------------------ summary
await Promise.all(running().map((a) => stopAgent(a, 'SIGTERM')));
master.kill('SIGTERM');
await Promise.race([master.exitPromise, sleep(15_000)]);

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};
const after = samples.filter((s) => s.t * 1000 >= WARMUP_MS);
const first = after.filter((s) => s.t * 1000 < WARMUP_MS + WINDOW_MS);
const lastT = samples.at(-1).t * 1000;
const last = after.filter((s) => s.t * 1000 > lastT - WINDOW_MS);
const mibOf = (k) => (k / 1024).toFixed(1);
const rssFirst = median(first.map((s) => s.rssKiB));
const rssLast = median(last.map((s) => s.rssKiB));
const drift = ((rssLast - rssFirst) / rssFirst) * 100;
const rssAll = after.map((s) => s.rssKiB);
const fdFirst = median(first.map((s) => s.fds));
const fdLast = median(last.map((s) => s.fds));
const loads = samples.map((s) => s.load1);
const lines = [
  `# Soak ${stamp}`,
  '',
  `command: node bench/soak.mjs ${process.argv.slice(2).join(' ')}`.trim(),
  `duration: ${((lastT) / 60000).toFixed(1)} min; ${RUNNING} agents running of a pool of ${POOL} ids; a cycle every ${CYCLE_MS / 1000} s`,
  ...(PUSH_EVERY ? [`revisions: the state tree in git, ${pushes} commits (one every ${PUSH_EVERY} cycles, ~${PUSH_KIB} KiB changed each)`] : []),
  `churn: ${count.cycles} cycles, ${count.agentsStarted} agent connections started, ${count.agentsStopped} stopped (SIGTERM/SIGKILL alternately), ${count.keysAccepted} keys accepted, ${count.keysDeleted} deleted`,
  `jobs: ${count.applies} applies (${count.appliesOk} without an unexpected failure, ${count.appliesFailed} with one), ${count.returnsOk} returns done, ${count.returnsLostExpected} lost because the agent was SIGKILLed mid-job (expected), ${count.returnsBad} other failures; ${count.connectTimeouts} connect timeouts`,
  `master RSS (MiB, after ${WARMUP_MS / 60000} min warm-up): first ${WINDOW_MS / 60000} min median ${mibOf(rssFirst)}, last ${WINDOW_MS / 60000} min median ${mibOf(rssLast)} (${drift >= 0 ? '+' : ''}${drift.toFixed(1)}%), min ${mibOf(Math.min(...rssAll))}, max ${mibOf(Math.max(...rssAll))}`,
  `master RssAnon (MiB): first window median ${mibOf(median(first.map((s) => s.anonKiB)))}, last window median ${mibOf(median(last.map((s) => s.anonKiB)))}; RssFile ${mibOf(median(first.map((s) => s.fileKiB)))} -> ${mibOf(median(last.map((s) => s.fileKiB)))}`,
  `master fds: first window median ${fdFirst}, last window median ${fdLast}; min ${Math.min(...after.map((s) => s.fds))}, max ${Math.max(...after.map((s) => s.fds))}`,
  `machine: ${os.cpus().length} cores, load1 min ${Math.min(...loads).toFixed(2)} median ${median(loads).toFixed(2)} max ${Math.max(...loads).toFixed(2)}`,
  `verdict: RSS ${Math.abs(drift) <= 10 ? 'flat (within ±10%)' : 'NOT flat'}; fds ${fdLast <= fdFirst + 2 ? 'no growth' : 'GREW'}`,
  ...(failures.length ? ['', 'failures (first 20):', ...failures.slice(0, 20).map((f) => `- ${f}`)] : []),
  '',
  `samples every ${SAMPLE_MS / 1000} s (t_s, RSS MiB, fds, connected, applies):`,
  '',
  '| t (s) | RSS (MiB) | anon (MiB) | fds | connected | applies |',
  '|------:|----------:|-----------:|----:|----------:|--------:|',
  ...samples.filter((_, i) => i % Math.max(1, Math.round(120_000 / SAMPLE_MS)) === 0 || _ === samples.at(-1)).map((s) => `| ${s.t} | ${mibOf(s.rssKiB)} | ${mibOf(s.anonKiB)} | ${s.fds} | ${s.connected} | ${s.applies} |`),
  '',
];
fs.writeFileSync(SUMMARY, lines.join('\n'));
console.log('\n' + lines.join('\n'));
console.log(`summary: ${SUMMARY}\nraw samples: ${CSV}\nlogs: ${DIR}/log`);
process.exit(0);
