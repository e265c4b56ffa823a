#!/usr/bin/env node
/**
 * The W54 no-op in CPU time, to the millisecond, for comparing two builds on a busy machine
 * (wall times there swing 2-4x; the CPU a run spends swings far less). Runs the floor, this
 * checkout's `tsalt` command (bin/tsalt) and, with --tsalt, another launcher (another build's
 * bin/tsalt, or a bin/tsalt.js run with node), in rotation. Each run's CPU is its user+sys time
 * with that of its children (the one dpkg-query both run), as its parent shell reads it after
 * the wait (bash's `times`: getrusage of the children, printed to the ms); the same for all.
 *
 *   node bench/w54-cpu.mjs [--runs 30] [--tsalt DIR/bin/tsalt[.js]] [--scratch DIR]
 *
 * Prints the mean and median CPU of each and the tsalt/floor CPU ratios. Needs root (the bench
 * user), bash and a build (`npm run build`).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { prepare, tsaltFirst, tsaltCommand, expectSummary, FLOOR } from './w54.mjs';
import { loadAvg } from './lib/measure.mjs';

const { values: o } = parseArgs({
  options: {
    runs: { type: 'string', default: '30' },
    scratch: { type: 'string', default: path.join(os.tmpdir(), 'tsalt-w54-cpu') },
    tsalt: { type: 'string' },
  },
});
fs.mkdirSync(o.scratch, { recursive: true });
const tree = prepare(o.scratch, 54);
await tsaltFirst(tree, 54);

/** `times` prints two lines: the shell's own user/sys, then its children's ("0m0.123s 0m0.045s"). */
const TIMES = /(\d+)m([\d.]+)s (\d+)m([\d.]+)s\s*$/;
/** One run of argv under bash; returns its CPU (with its children's) in ms after checking its output. */
function cpuOnce(argv, check, env = process.env) {
  const r = spawnSync('bash', ['-c', '"$@"; s=$?; times >&2; exit $s', 'bash', ...argv], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}: ${r.stderr}`);
  check(r.stdout);
  const t = TIMES.exec(r.stderr);
  if (!t) throw new Error(`no CPU times from bash: ${r.stderr}`);
  return (Number(t[1]) * 60 + Number(t[2]) + Number(t[3]) * 60 + Number(t[4])) * 1000;
}
const kinds = {
  floor: () => cpuOnce([process.execPath, FLOOR], (out) => {
    if (!/54 ok, 0 drifted/.test(out)) throw new Error(`floor: ${out}`);
  }, { ...process.env, W54_ROOT: tree.root }),
  tsalt: () => cpuOnce(tsaltCommand(tree), (out) => expectSummary(out, 54, 0)),
};
if (o.tsalt) {
  const argv = tsaltCommand(tree, [], path.resolve(o.tsalt));
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
  const name = k === 'other' ? o.tsalt : k === 'tsalt' ? 'bin/tsalt' : 'floor (bare Node)';
  lines.push(`${name}: mean ${mean(xs).toFixed(1)} ms, median ${median(xs).toFixed(1)} ms${k === 'floor' ? '' : `, mean/floor ${(mean(xs) / f).toFixed(2)}x`}`);
}
process.stdout.write(lines.join('\n') + '\n');
