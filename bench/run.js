#!/usr/bin/env node
/**
 * `npm run bench`: every workload of issue 5, printed as markdown tables (they paste into
 * docs/benchmarks.md). Run as root on a quiet machine: it creates the user `w54user` and
 * files under a scratch directory, and needs `bash bench/setup.sh` (Ansible, GNU time) once.
 *
 *   node bench/run.js [--runs 5] [--only w54,footprint,scaling,fleet] [--no-ansible]
 *                     [--sizes 54,540,5400] [--agents 1,100,1000] [--scratch DIR] [--json FILE] [--build]
 *
 * Timings are medians of --runs whole-process runs with min–max; CPU is user+sys of the
 * process (less sensitive to other load than wall time); RSS is the peak (GNU time).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { REPO, runW54, ansibleAvailable } from './w54.mjs';
import { coldStart, bundleSize, unbundledNoop, profileNoop } from './footprint.mjs';
import { runScaling } from './scaling.mjs';
import { formatProfile } from './profile.mjs';
import { loadAvg } from './lib/measure.mjs';
import { ms, mib, spread, ratio, table } from './lib/table.mjs';

const { values: o } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    only: { type: 'string', default: 'w54,footprint,scaling,fleet' },
    'no-ansible': { type: 'boolean', default: false },
    sizes: { type: 'string', default: '54,540,5400' },
    agents: { type: 'string', default: '1,100,1000' },
    scratch: { type: 'string', default: path.join(os.tmpdir(), 'tsalt-bench') },
    json: { type: 'string' },
    build: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (o.help) {
  process.stdout.write(fs.readFileSync(new URL(import.meta.url), 'utf8').split('*/')[0].replace(/^#!.*\n\/\*\*\n/, '').replace(/^ \* ?/gm, '') + '\n');
  process.exit(0);
}
const runs = Number(o.runs);
if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be a positive integer');
const only = new Set(o.only.split(','));
const log = (m) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)} load ${loadAvg()}] ${m}\n`);
const out = [];
const print = (s = '') => {
  out.push(s);
  process.stdout.write(s + '\n');
};
const results = { machine: machine(), runs };

if (process.getuid?.() !== 0) {
  process.stderr.write('bench: run as root (W54 manages a user and packages)\n');
  process.exit(1);
}
if (o.build || !fs.existsSync(path.join(REPO, 'dist', 'cli', 'main.js'))) {
  log('npm run build');
  // tsc emits even when other modules in the tree do not type-check yet; the bench checks
  // every run's result, so a broken build shows up as a failed run, not a silent figure.
  try {
    execFileSync('npm', ['run', '-s', 'build'], { cwd: REPO, stdio: 'ignore' });
  } catch {
    log('npm run build reported type errors (output emitted anyway)');
  }
}
fs.mkdirSync(o.scratch, { recursive: true });

function gitDescribe() {
  try {
    const head = execFileSync('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['-C', REPO, 'status', '--porcelain'], { encoding: 'utf8' }).trim() !== '';
    return dirty ? `${head} + uncommitted changes` : head;
  } catch {
    return 'unknown';
  }
}

function machine() {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    model: cpus[0]?.model ?? '?',
    memGiB: (os.totalmem() / 2 ** 30).toFixed(1),
    kernel: os.release(),
    node: process.version,
    loadStart: loadAvg(),
    commit: gitDescribe(),
  };
}

const m = results.machine;
print(`# tsalt benchmarks`);
print('');
print(`machine: ${m.cpus} x ${m.model}, ${m.memGiB} GiB, Linux ${m.kernel}, Node ${m.node}; tree ${m.commit}; load average at start ${m.loadStart}; ${runs} runs per figure`);

// ------------------------------------------------------------------ W54
let w54;
if (only.has('w54') || only.has('footprint')) {
  const ansible = only.has('w54') && !o['no-ansible'] && ansibleAvailable();
  if (only.has('w54') && !o['no-ansible'] && !ansible) log('ansible-playbook missing: bash bench/setup.sh (skipping Ansible)');
  w54 = await runW54({ scratch: o.scratch, runs: only.has('w54') ? runs : 1, ansible, log });
  results.w54 = strip(w54);
}
if (only.has('w54')) {
  const { tsalt, floor, ansible } = w54;
  print('');
  print('## W54 no-op (54 states, every one already converged), whole process');
  print('');
  const rows = [
    ['tsalt local apply', spread(tsalt.wall), spread(tsalt.cpu), spread(tsalt.rssKiB, mib), '1x', ratio(tsalt.wall.median, floor.wall.median), ansible ? ratio(ansible.wall.median, tsalt.wall.median) : '-'],
    ['bare Node floor script', spread(floor.wall), spread(floor.cpu), spread(floor.rssKiB, mib), ratio(floor.wall.median, tsalt.wall.median), '1x', ansible ? ratio(ansible.wall.median, floor.wall.median) : '-'],
  ];
  if (ansible) rows.push(['ansible-playbook (2.14)', spread(ansible.wall), spread(ansible.cpu), spread(ansible.rssKiB, mib), ratio(ansible.wall.median, tsalt.wall.median), ratio(ansible.wall.median, floor.wall.median), '1x']);
  rows.push(['salt-call --local 3006 (quoted, not measured)', '≈ 5 s', '-', '146 MiB', ratio(5000, tsalt.wall.median), ratio(5000, floor.wall.median), ansible ? ratio(ansible.wall.median, 5000) : '-']);
  print(table(['tool', 'wall median (min–max)', 'CPU user+sys', 'peak RSS', 'x tsalt', 'x floor', 'Ansible ÷ this'], rows));
  print('');
  print(`goal: tsalt within 2x of the floor (${ratio(tsalt.wall.median, floor.wall.median)} now), peak RSS ≤ 80 MB (${mib(tsalt.rssKiB.median)} now)`);

  const f = w54.tsaltFirst;
  print('');
  print('## W54 first converge (from nothing: 5 dirs, 40 files, 3 commands and the user change; packages already there)');
  print('');
  const frows = [['tsalt local apply', ms(f.wallMs), ms(f.cpuMs), mib(f.rssKiB), `${f.changed} states changed; their own check+apply ${ms(f.workMs)}, tsalt beyond that ${ms(f.overheadMs)}`]];
  if (w54.ansibleFirst) {
    const a = w54.ansibleFirst;
    frows.push(['ansible-playbook', ms(a.wallMs), ms(a.cpuMs), mib(a.rssKiB), `${a.changed} tasks changed`]);
  }
  print(table(['tool', 'wall', 'CPU', 'peak RSS', 'notes'], frows));
}

// ------------------------------------------------------------------ footprint
if (only.has('footprint')) {
  log(`footprint: cold start x${Math.max(runs, 10)}`);
  const cs = await coldStart(Math.max(runs, 10));
  const bundle = bundleSize();
  log(`footprint: W54 no-op from unbundled dist/cli x${runs}`);
  const unb = await unbundledNoop(w54.tree, runs);
  log('footprint: profile of the W54 no-op run');
  const prof = profileNoop(w54.tree);
  results.footprint = { coldStart: strip(cs), bundle, unbundledNoop: strip(unb), profile: prof };
  print('');
  print('## Footprint');
  print('');
  const rows = [
    ["node -e 0 (Node's own start)", spread(cs.node.wall), ms(cs.node.cpu.median), spread(cs.node.rssKiB, mib)],
    ['tsalt --help (cold start)', spread(cs.help.wall), ms(cs.help.cpu.median), spread(cs.help.rssKiB, mib)],
    ['W54 no-op, tsc output without the bundle', spread(unb.wall), ms(unb.cpu.median), spread(unb.rssKiB, mib)],
  ];
  if (w54.tsalt) rows.push(['W54 no-op, bin/tsalt.js (bundle)', spread(w54.tsalt.wall), ms(w54.tsalt.cpu.median), spread(w54.tsalt.rssKiB, mib)]);
  print(table(['what', 'wall median (min–max)', 'CPU', 'peak RSS'], rows));
  if (bundle) print(`\nshipped bundle (dist/bundle, reachable from main.js; maps not counted): ${(bundle.bytes / 2 ** 20).toFixed(2)} MiB in ${bundle.files} files, ${(bundle.gzBytes / 2 ** 20).toFixed(2)} MiB as .tar.gz (+ better-sqlite3 for the master only)`);
  print('goal: tsalt --help ≤ 150 ms');
  print('');
  print(`### Where the W54 no-op time goes (node --cpu-prof, mean of ${prof.summary.runs} runs, median wall ${ms(prof.wallMs)} under the profiler)`);
  print('');
  print(formatProfile(prof.summary));
}

// ------------------------------------------------------------------ scaling
if (only.has('scaling')) {
  const sizes = o.sizes.split(',').map(Number);
  const rows = await runScaling({ scratch: o.scratch, sizes, runs, log });
  results.scaling = rows.map((r) => ({ states: r.states, mix: r.mix, firstMs: r.first.wallMs, noop: strip(r.noop) }));
  print('');
  print('## Scaling: no-op run by tree size (--terse output; packages stay 5)');
  print('');
  const base = rows[0];
  print(
    table(
      ['states', 'dirs/files/cmds', 'first converge', 'no-op wall median (min–max)', 'no-op CPU', 'peak RSS', 'CPU per state', 'CPU x vs first row'],
      rows.map((r) => [
        r.states,
        `${r.mix.dirs}/${r.mix.files}/${r.mix.cmds}`,
        ms(r.first.wallMs),
        spread(r.noop.wall),
        ms(r.noop.cpu.median),
        mib(r.noop.rssKiB.median),
        `${(r.noop.cpu.median / r.states).toFixed(2)} ms`,
        `${ratio(r.noop.cpu.median, base.noop.cpu.median)} for ${ratio(r.states, base.states)} states`,
      ]),
    ),
  );
  for (let i = 1; i < rows.length; i++) {
    const a = rows[i - 1];
    const b = rows[i];
    const marg = (b.noop.cpu.median - a.noop.cpu.median) / (b.states - a.states);
    print(`marginal CPU per added state ${a.states}→${b.states}: ${marg.toFixed(2)} ms`);
  }
}

// ------------------------------------------------------------------ fleet
if (only.has('fleet')) {
  const { runFleet, formatFleet } = await import('./fleet.mjs');
  const fleet = await runFleet({ scratch: o.scratch, sizes: o.agents.split(',').map(Number), runs, log });
  results.fleet = fleet;
  print('');
  print(await formatFleet(fleet));
}

results.machine.loadEnd = loadAvg();
print('');
print(`load average at end: ${results.machine.loadEnd}`);
if (o.json) fs.writeFileSync(o.json, JSON.stringify(results, null, 2) + '\n');

/** Drops captured process output from a summary (it is only kept for error messages). */
function strip(x) {
  if (!x || typeof x !== 'object') return x;
  if (Array.isArray(x)) return x.map(strip);
  const r = {};
  for (const [k, v] of Object.entries(x)) if (k !== 'last') r[k] = strip(v);
  return r;
}
