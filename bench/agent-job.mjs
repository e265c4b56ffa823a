#!/usr/bin/env node
/**
 * An agent's CPU per no-op job, in one process, without a master or sockets (issue 14: 10,000
 * agents, 200 to a process in bench/fleet.mjs). Each simulated agent is a real AgentDaemon of
 * the build (inline mode, no job worker, as `tsalt agent --config a --config b ...` runs them):
 * its own config, cache dir (the bundle unpacked in it), spool and root, with the connection
 * replaced by a stub that takes every frame. A job is the daemon's own path: runJob with a job
 * message (grains re-read, BundleCache.has/open, engine apply with the daemon's arguments, the
 * result hold, fittedJson, spool put), then the master's return_ack (spool remove). The agents
 * of a job run at once, as a fleet's do.
 *
 * The tree is bench/fleet.mjs's small no-op one (top.sls `'*': [fleet]`; a file.directory under
 * each agent's root and a test.nop); the pillar is a fresh object per agent and job (as decoded
 * from the master's frame). Rounds of --jobs jobs on --agents agents, after --warmup jobs (the
 * JIT settles: the first jobs cost 2-3x); each round's process CPU (user+sys, process.cpuUsage)
 * over its jobs, per job and agent. Prints the median, the best and every round.
 *
 *   node bench/agent-job.mjs [--agents 50] [--jobs 10] [--rounds 9] [--warmup 40] [--dist DIR]... [--scratch DIR]
 *
 * --dist DIR: the build to run (default: this checkout's dist/, `npm run build` first). Given
 * twice (before/after), both builds are loaded in this one process, each with its own agents,
 * and their rounds alternate: a busy machine's swings reach both alike. Another build's dist/
 * (a copy of an older build) needs package.json's "type": "module" and node_modules next to it
 * (a symlink will do). The daemon's private fields are set from here
 * (spool, bundles, grains, conn): a build that renames them needs this file changed too.
 * Seconds, not minutes: (40 + 9 x 10) x 50 = 6,500 no-op applies per build.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';

const { values: o } = parseArgs({
  options: {
    agents: { type: 'string', default: '50' },
    jobs: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '9' },
    warmup: { type: 'string', default: '40' },
    dist: { type: 'string', multiple: true },
    scratch: { type: 'string', default: path.join(os.tmpdir(), 'tsalt-bench-agent-job') },
  },
});
const A = Number(o.agents);
const J = Number(o.jobs);
const DISTS = (o.dist?.length ? o.dist : [path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist')]).map((d) => path.resolve(d));

const scratch = path.resolve(o.scratch);
fs.rmSync(scratch, { recursive: true, force: true });
fs.mkdirSync(scratch, { recursive: true });

// bench/fleet.mjs's small tree, as the master would send it
const files = {
  'top.sls': "base:\n  '*':\n    - fleet\n",
  'fleet.sls': 'fleet_dir:\n  file.directory:\n    - name: /srv/fleet\n    - makedirs: True\nping:\n  test.nop: []\n',
};
const revision = 'a'.repeat(40);

/** what every agent's connection is: takes every frame */
const conn = { send: () => true, sendJson: () => true, buffered: 0, connected: true };

/** One build's agents, ready for jobs. */
async function fleetOf(dist, n) {
  const load = (rel) => import(pathToFileURL(path.join(dist, rel)).href);
  const { AgentDaemon } = await load('agent/daemon.js');
  const { loadAgentConfig } = await load('agent/connection/config.js');
  const { Spool } = await load('agent/connection/spool.js');
  const { BundleCache, bundleHash, toWire } = await load('engine/tree/bundle.js');
  const { collectGrains } = await load('engine/grains/detect.js');
  const { silentLogger } = await load('core/log.js');
  const entries = Object.entries(files).map(([p, t]) => ({ path: p, data: Buffer.from(t), executable: false }));
  const hash = bundleHash(entries);
  const bundle = { type: 'bundle', hash, revision, files: toWire(entries) };
  const agents = [];
  for (let i = 1; i <= A; i++) {
    const id = `bench-${String(i).padStart(5, '0')}`;
    const d = path.join(scratch, `build-${n}`, id);
    fs.mkdirSync(d, { recursive: true });
    const yaml = path.join(d, 'agent.yaml');
    fs.writeFileSync(yaml, `id: ${id}\nmaster: 127.0.0.1\ncache_dir: cache\npki_dir: pki\ngrains_file: grains\nroot: root\nmultiprocessing: false\nlog_level: error\n`);
    const cfg = loadAgentConfig(yaml);
    const daemon = new AgentDaemon(cfg, silentLogger, { multiprocessingDefault: false });
    // what start() sets up, but the connection
    fs.mkdirSync(cfg.cache_dir, { recursive: true, mode: 0o700 });
    daemon.spool = new Spool(cfg.cache_dir, silentLogger);
    daemon.bundles = new BundleCache(cfg.cache_dir);
    daemon.bundles.store(bundle, hash);
    daemon.grains = await collectGrains(cfg);
    daemon.conn = conn;
    agents.push(daemon);
  }
  return { dist, agents, hash, perJob: [] };
}

let seq = 0;
const jobMessage = (hash) => JSON.stringify({ type: 'job', jid: String(1e15 + seq++).padStart(20, '0'), spec: { kind: 'apply', revision, bundle: hash, sls: [], test: false, pillar: { fleet: true } } });

/** One job on every agent of a build at once, then the master's acknowledgements; the CPU it took. */
async function job({ agents, hash }) {
  // each agent decodes its own frame (its own pillar object), before the CPU counted here
  const msgs = agents.map(() => JSON.parse(jobMessage(hash)));
  const c0 = process.cpuUsage();
  await Promise.all(agents.map((a, i) => a.runJob(msgs[i])));
  for (let i = 0; i < A; i++) agents[i].onMessage({ type: 'return_ack', jid: msgs[i].jid });
  const c = process.cpuUsage(c0);
  for (let i = 0; i < A; i++) {
    if (agents[i].spool.has(msgs[i].jid)) throw new Error(`${agents[i].cfg.id}: the return was not acknowledged`);
  }
  return c.user + c.system;
}

/** One agent's return of a job, checked (a bench of failures measures nothing): outside the counted CPU. */
async function check({ agents, hash }) {
  const a = agents[0];
  const m = JSON.parse(jobMessage(hash));
  let ret;
  const keep = a.conn;
  a.conn = { ...conn, sendJson: (json) => ((ret = JSON.parse(json)), true) };
  await a.runJob(m);
  a.conn = keep;
  a.onMessage({ type: 'return_ack', jid: m.jid });
  const body = ret?.body;
  if (body?.kind !== 'apply') throw new Error(`not an apply return: ${JSON.stringify(body)}`);
  const bad = body.report.results.filter((r) => r.result !== true);
  if (body.report.results.length !== 2 || bad.length) throw new Error(`not a clean no-op: ${JSON.stringify(body.report.results)}`);
  return body.report;
}

const builds = [];
for (const [n, dist] of DISTS.entries()) builds.push(await fleetOf(dist, n));
for (const b of builds) {
  await check(b); // converges agent 0's root; the warm-up the others'
  for (let i = 0; i < Number(o.warmup); i++) await job(b);
  const report = await check(b);
  if (report.results.some((r) => Object.keys(r.changes).length)) throw new Error(`${b.dist}: the warm-up did not converge the tree`);
}
// builds in turn, round by round: a busy machine's swings reach each alike
for (let r = 0; r < Number(o.rounds); r++) {
  for (const b of builds) {
    let us = 0;
    for (let j = 0; j < J; j++) us += await job(b);
    b.perJob.push(us / (J * A));
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const b of builds) {
  process.stdout.write(
    `agent CPU per no-op job (user+sys), ${b.dist}: median ${median(b.perJob).toFixed(0)} µs, best ${Math.min(...b.perJob).toFixed(0)} µs ` +
      `(rounds: ${b.perJob.map((x) => x.toFixed(0)).join(', ')})\n`,
  );
}
process.stdout.write(`${o.rounds} rounds x ${J} jobs x ${A} agents per build, after ${o.warmup} jobs of warm-up; load ${os.loadavg()[0].toFixed(2)}\n`);
fs.rmSync(scratch, { recursive: true, force: true });
