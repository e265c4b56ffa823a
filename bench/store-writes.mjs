/**
 * The master's SQLite writes per agent and job, alone (issue 14, eleventh pass): a job of N
 * agents created, every run acknowledged (running) and every return stored, in ticks of T
 * returns (one transaction each, as master/tick-batcher.ts makes them), on a real store file.
 * Each configuration runs in a child process of its own, as the master's unit starts it (its
 * Environment=: MALLOC_MMAP_THRESHOLD_) and without it, side by side, and prints CPU per write.
 * A write that makes SQLite build a temporary b-tree (a CHECK's IN list, RETURNING) costs an
 * 88 KiB allocation the malloc setting maps and faults in: this is where it shows.
 *
 * usage: node bench/store-writes.mjs [--agents 2000] [--jobs 6] [--tick 100,1] [--dist DIR]
 *   --dist: another build's dist/ (the build before, to compare)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { unitEnv, MASTER_UNIT } from './lib/unit.mjs';
import { table } from './lib/table.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** In the child: the job's writes, CPU (user+sys) of each phase per job, as JSON on stdout. */
async function child({ dist, agents, jobs, tick }) {
  const { SqliteStore } = await import(pathToFileURL(path.join(dist, 'master', 'store-sqlite.js')).href);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsalt-store-writes-'));
  const s = new SqliteStore(path.join(dir, 'master.db'));
  const ids = Array.from({ length: agents }, (_, i) => `bench-${String(i).padStart(5, '0')}`);
  for (const id of ids) await s.addAgent(id, id.padEnd(64, '0'), 'accepted');
  const cpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  const result = (n) => ({ id: `s${n}`, sls: 'fleet', fun: 'test.nop', name: `s${n}`, result: true, changes: {}, comment: 'ok', start: new Date().toISOString(), duration_ms: 0.5, run_num: n });
  const out = [];
  for (let j = 0; j < jobs; j++) {
    const jid = `2026120700${String(j).padStart(10, '0')}`;
    let c = cpu();
    await s.createJob({ jid, kind: 'apply', target: '*', tgt_type: 'glob', args: {}, revision: 'r1', started_by: 'bench' }, ids.map((id) => ({ id, status: 'queued' })));
    const create = cpu() - c;
    c = cpu();
    for (let k = 0; k < agents; k += tick) {
      const part = ids.slice(k, k + tick);
      if (part.length > 1) await s.setJobAgentsRunning(part.map((agentId) => ({ jid, agentId })));
      else await s.setJobAgentStatus(jid, part[0], 'running');
    }
    const running = cpu() - c;
    c = cpu();
    for (let k = 0; k < agents; k += tick) {
      const rows = ids.slice(k, k + tick).map((agentId) => ({ jid, agentId, status: 'done', body: { kind: 'apply', report: { id: agentId, test: false, results: [result(0), result(1)], counts: { total: 2, succeeded: 2, changed: 0, failed: 0 }, duration_ms: 1 } } }));
      if (rows.length > 1) await s.finishJobAgents(rows);
      else await s.finishJobAgent(jid, rows[0].agentId, 'done', rows[0].body);
    }
    out.push({ create, running, finish: cpu() - c });
  }
  await s.close();
  fs.rmSync(dir, { recursive: true, force: true });
  process.stdout.write(JSON.stringify(out));
}

const { values: o } = parseArgs({
  options: {
    agents: { type: 'string', default: '2000' },
    jobs: { type: 'string', default: '6' },
    tick: { type: 'string', default: '100,1' },
    dist: { type: 'string', default: path.join(REPO, 'dist') },
    child: { type: 'boolean', default: false },
  },
});

if (o.child) {
  await child({ dist: o.dist, agents: Number(o.agents), jobs: Number(o.jobs), tick: Number(o.tick) });
} else {
  const unit = unitEnv(MASTER_UNIT);
  const envs = [
    [`as shipped (${Object.entries(unit).map(([k, v]) => `${k}=${v}`).join(' ') || 'no Environment='})`, unit],
    ['without the unit\'s Environment=', {}],
  ];
  const rows = [];
  for (const tick of o.tick.split(',').map(Number)) {
    for (const [label, env] of envs) {
      const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MALLOC_')));
      const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', '--agents', o.agents, '--jobs', o.jobs, '--tick', String(tick), '--dist', o.dist], { env: { ...clean, ...env }, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`child (${label}, tick ${tick}) exited ${r.status}: ${r.stderr}`);
      const jobs = JSON.parse(r.stdout);
      // the first job warms SQLite's page cache and the JIT: the rest are the steady state
      const steady = jobs.slice(1);
      const per = (k) => (steady.reduce((a, j) => a + j[k], 0) / steady.length / Number(o.agents)) * 1000;
      rows.push([label, String(tick), ...['create', 'running', 'finish'].map((k) => `${per(k).toFixed(1)} µs`), jobs.map((j) => `${Math.round(j.create + j.running + j.finish)}`).join(', ')]);
    }
  }
  console.log(`## The master's SQLite writes per agent and job (${o.agents} agents, ${o.jobs} jobs, dist ${path.relative(REPO, o.dist) || o.dist})\n`);
  console.log(table(['master environment', 'returns per transaction', 'create (CPU per agent)', 'running', 'return stored', 'CPU per job, ms (each job)'], rows));
  console.log(`\nload ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
}
