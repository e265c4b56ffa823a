#!/usr/bin/env node
/**
 * The W54 no-op ratio alone, measured for a busy machine: tsalt and the bare-Node floor run in
 * alternation (tsalt, floor, tsalt, floor, ...), so a burst of other load hits both about
 * equally, and the ratio is the median of the per-pair ratios as well as the ratio of the
 * medians. Every tsalt run is checked (54 states, 0 changed), every floor run too.
 *
 *   node bench/w54-ratio.mjs [--pairs 21] [--scratch /tmp/tsalt-w54-ratio] [--json FILE] [--tsalt DIR/bin/tsalt.js]
 *
 * --tsalt times another build (a checkout of an earlier commit, built there) against the same
 * floor and tree, for before/after figures from one machine state.
 *
 * Needs root (the bench user `w54user`), a build (`npm run build`) and GNU time.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { prepare, tsaltFirst, tsaltApply, expectSummary, FLOOR } from './w54.mjs';
import { timeOnce, stats, loadAvg } from './lib/measure.mjs';

const { values: o } = parseArgs({
  options: {
    pairs: { type: 'string', default: '21' },
    scratch: { type: 'string', default: path.join(os.tmpdir(), 'tsalt-w54-ratio') },
    json: { type: 'string' },
    tsalt: { type: 'string' },
  },
});
/** `tsalt local apply` of the tree, from this checkout or the one --tsalt names. */
const apply = (tree) => {
  const argv = tsaltApply(tree);
  if (o.tsalt) argv[1] = path.resolve(o.tsalt);
  return argv;
};
const pairs = Number(o.pairs);
fs.mkdirSync(o.scratch, { recursive: true });
const tree = prepare(o.scratch, 54);
const load0 = loadAvg();
await tsaltFirst(tree, 54);
// one untimed run of each: the page cache and the V8 code cache are warm for both
await timeOnce(apply(tree));
await timeOnce([process.execPath, FLOOR], { env: { ...process.env, W54_ROOT: tree.root } });

const t = [];
const f = [];
const ratios = [];
for (let i = 0; i < pairs; i++) {
  const a = await timeOnce(apply(tree));
  if (a.code !== 0) throw new Error(`tsalt exited ${a.code}: ${a.stderr}`);
  expectSummary(a.stdout, 54, 0);
  const b = await timeOnce([process.execPath, FLOOR], { env: { ...process.env, W54_ROOT: tree.root } });
  if (!/54 ok, 0 drifted/.test(b.stdout)) throw new Error(`floor: ${b.stdout}${b.stderr}`);
  t.push(a);
  f.push(b);
  ratios.push(a.wallMs / b.wallMs);
}
const pick = (xs, k) => stats(xs.map((x) => x[k]));
const out = {
  pairs,
  load: { start: load0, end: loadAvg() },
  tsalt: { wall: pick(t, 'wallMs'), cpu: pick(t, 'cpuMs'), rssKiB: pick(t, 'rssKiB') },
  floor: { wall: pick(f, 'wallMs'), cpu: pick(f, 'cpuMs'), rssKiB: pick(f, 'rssKiB') },
  ratio: stats(ratios),
};
const r1 = (x) => x.toFixed(1);
process.stdout.write(
  [
    `W54 no-op, ${pairs} alternating pairs (${o.tsalt ?? 'bin/tsalt.js'}); load average ${out.load.start} at start, ${out.load.end} at end`,
    `tsalt local apply: wall median ${r1(out.tsalt.wall.median)} ms (${r1(out.tsalt.wall.min)}–${r1(out.tsalt.wall.max)}), CPU ${r1(out.tsalt.cpu.median)} ms, peak RSS ${r1(out.tsalt.rssKiB.median / 1024)} MiB`,
    `floor (bare Node):  wall median ${r1(out.floor.wall.median)} ms (${r1(out.floor.wall.min)}–${r1(out.floor.wall.max)}), CPU ${r1(out.floor.cpu.median)} ms, peak RSS ${r1(out.floor.rssKiB.median / 1024)} MiB`,
    `ratio: ${out.ratio.median.toFixed(2)}x (median of per-pair ratios, ${out.ratio.min.toFixed(2)}–${out.ratio.max.toFixed(2)}); ratio of medians ${(out.tsalt.wall.median / out.floor.wall.median).toFixed(2)}x`,
    '',
  ].join('\n'),
);
if (o.json) fs.writeFileSync(o.json, JSON.stringify(out, null, 2));
