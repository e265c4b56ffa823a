#!/usr/bin/env node
/**
 * The W54 no-op in CPU time, to the microsecond, for comparing two builds on a busy machine
 * (wall times there swing 2–4x; the CPU a run spends swings far less). Runs the floor, this
 * checkout's tsalt and, with --tsalt, another build's, in rotation; each process reports its own
 * user+sys CPU at exit (bench/lib/cpu-at-exit.cjs, preloaded into all of them alike).
 *
 *   node bench/w54-cpu.mjs [--runs 30] [--tsalt DIR/bin/tsalt.js] [--scratch DIR]
 *
 * Prints the mean and median CPU of each and the tsalt/floor CPU ratios. Needs root (the bench
 * user) and a build (`npm run build`).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { prepare, tsaltFirst, tsaltApply, expectSummary, FLOOR } from './w54.mjs';
import { loadAvg } from './lib/measure.mjs';

const { values: o } = parseArgs({
  options: {
    runs: { type: 'string', default: '30' },
    scratch: { type: 'string', default: path.join(os.tmpdir(), 'tsalt-w54-cpu') },
    tsalt: { type: 'string' },
  },
});
const PRELOAD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'lib', 'cpu-at-exit.cjs');
const cpuFile = path.join(o.scratch, `cpu-${process.pid}`);
fs.mkdirSync(o.scratch, { recursive: true });
const tree = prepare(o.scratch, 54);
await tsaltFirst(tree, 54);

/** One run of argv (argv[0] is node) with the preload; returns its CPU in ms after checking its output. */
function cpuOnce(argv, check, env = process.env) {
  fs.rmSync(cpuFile, { force: true });
  const r = spawnSync(argv[0], ['--require', PRELOAD, ...argv.slice(1)], { env: { ...env, TSALT_BENCH_CPU_FILE: cpuFile }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}: ${r.stderr}`);
  check(r.stdout);
  return Number(fs.readFileSync(cpuFile, 'utf8')) / 1000;
}
const kinds = {
  floor: () => cpuOnce([process.execPath, FLOOR], (out) => {
    if (!/54 ok, 0 drifted/.test(out)) throw new Error(`floor: ${out}`);
  }, { ...process.env, W54_ROOT: tree.root }),
  tsalt: () => cpuOnce(tsaltApply(tree), (out) => expectSummary(out, 54, 0)),
};
if (o.tsalt) {
  const argv = tsaltApply(tree);
  argv[1] = path.resolve(o.tsalt);
  kinds.other = () => cpuOnce(argv, (out) => expectSummary(out, 54, 0));
}
for (const run of Object.values(kinds)) run(); // warm: page cache, code caches, template cache
const load0 = loadAvg();
const got = Object.fromEntries(Object.keys(kinds).map((k) => [k, []]));
for (let i = 0; i < Number(o.runs); i++) for (const [k, run] of Object.entries(kinds)) got[k].push(run());
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const f = mean(got.floor);
const lines = [`W54 no-op CPU (user+sys per process), ${o.runs} rotations; load average ${load0} at start, ${loadAvg()} at end`];
for (const [k, xs] of Object.entries(got)) {
  const name = k === 'other' ? o.tsalt : k === 'tsalt' ? 'bin/tsalt.js' : 'floor (bare Node)';
  lines.push(`${name}: mean ${mean(xs).toFixed(1)} ms, median ${median(xs).toFixed(1)} ms${k === 'floor' ? '' : `, mean/floor ${(mean(xs) / f).toFixed(2)}x`}`);
}
process.stdout.write(lines.join('\n') + '\n');
