/**
 * Where a run's time goes: runs a command under `node --cpu-prof` and sums the V8 profile's
 * samples by function (self time) and by area (our directories, each npm package, Node's
 * internals, the module loader, GC). The areas say which layer to make faster; the
 * functions say where inside it.
 *
 * usage (standalone): node bench/profile.mjs -- node bin/tsalt.js local apply --states ... --pillar ...
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { SourceMap } from 'node:module';
import { fileURLToPath } from 'node:url';
import { ms, table } from './lib/table.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Runs `node <args>` with --cpu-prof; returns the parsed profile and the wall time. */
export function profileNode(args, { env } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsalt-prof-'));
  const t0 = process.hrtime.bigint();
  // 100 µs sampling: a 0.3 s run gives ~3000 samples, enough to rank functions.
  const r = spawnSync(process.execPath, ['--cpu-prof', '--cpu-prof-interval', '100', '--cpu-prof-dir', dir, ...args], {
    env: env ?? process.env,
    encoding: 'utf8',
  });
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const file = fs.readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no profile written (exit ${r.status}): ${r.stderr}`);
  const profile = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
  fs.rmSync(dir, { recursive: true, force: true });
  return { profile, wallMs, code: r.status };
}

const maps = new Map();

/**
 * A bundled frame (dist/bundle/chunk-X.js) says nothing; its source map names the original
 * file (engine/compile/high.ts, node_modules/yaml/...), so areas stay meaningful.
 */
function original(frame) {
  const url = frame.url ?? '';
  if (!url.startsWith('file://') || !/\.c?js$/.test(url)) return frame;
  const file = url.slice(7);
  let sm = maps.get(file);
  if (sm === undefined) {
    sm = null;
    try {
      sm = new SourceMap(JSON.parse(fs.readFileSync(file + '.map', 'utf8')));
    } catch {
      /* no map: a plain module file, already named by its path */
    }
    maps.set(file, sm);
  }
  if (!sm) return frame;
  const e = sm.findEntry(frame.lineNumber, frame.columnNumber);
  if (!e || !e.originalSource) return frame;
  const src = e.originalSource.startsWith('file://') ? e.originalSource.slice(7) : path.resolve(path.dirname(file), e.originalSource);
  return { functionName: frame.functionName, url: 'file://' + src, lineNumber: e.originalLine, columnNumber: e.originalColumn };
}

/** The layer a frame belongs to, from its script URL. */
function area(frame) {
  const url = frame.url ?? '';
  const fn = frame.functionName;
  if (!url) {
    if (fn === '(garbage collector)') return 'GC';
    if (fn === '(idle)') return 'idle (waiting: I/O, child processes)';
    if (fn === '(program)') return 'V8/native (program)';
    return `native ${fn || '(anonymous)'}`;
  }
  if (url.startsWith('node:internal/modules') || url.includes('internal/modules/')) return 'node: module loader';
  if (url.startsWith('node:')) return 'node: ' + url.slice(5).split('/').slice(0, 2).join('/');
  const p = url.replace(/^file:\/\//, '');
  const nm = p.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = p.slice(nm + 14).split('/');
    return 'npm: ' + (rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]);
  }
  if (p.startsWith(REPO)) {
    const rel = path.relative(REPO, p).split(path.sep);
    // dist/engine/render/jinja.js -> tsalt: engine/render
    if (rel[0] === 'dist' && rel[1] === 'bundle') return 'esbuild glue (bundle code without a mapping)';
    const parts = rel[0] === 'dist' ? rel.slice(1) : rel;
    return 'tsalt: ' + (parts.length > 2 ? parts.slice(0, 2).join('/') : parts.join('/'));
  }
  return p;
}

/** Self time per node id, from the sample list and its time deltas (µs). */
function selfTimes(profile) {
  const self = new Map();
  const { samples = [], timeDeltas = [] } = profile;
  // timeDeltas[i] is the time *before* sample i; attribute it to the sample after it.
  for (let i = 0; i < samples.length; i++) {
    const dt = timeDeltas[i + 1] ?? 0;
    self.set(samples[i], (self.get(samples[i]) ?? 0) + dt);
  }
  return self;
}

/**
 * Inclusive time of tsalt's own functions and of the dependencies' entry points: each
 * sample counts once for every distinct function on its stack, which shows the phases
 * (render, compile, run, each state module) rather than leaf work.
 */
function inclusive(profile, self, keep) {
  const parent = new Map();
  const byId = new Map();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const incl = new Map();
  for (const [id, us] of self) {
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur).callFrame;
      if (!keep(f)) continue;
      const where = `${f.url.replace(/^file:\/\//, '').replace(REPO + '/', '')}:${f.lineNumber + 1}`;
      const key = `${f.functionName || '(anonymous)'}\t${where}`;
      if (seen.has(key)) continue;
      seen.add(key);
      incl.set(key, (incl.get(key) ?? 0) + us);
    }
  }
  return incl;
}

/** Summaries: total profiled ms, by area, by function (top n). */
export function summarise(profile, top = 15) {
  for (const n of profile.nodes) n.callFrame = original(n.callFrame);
  const self = selfTimes(profile);
  const byArea = new Map();
  const byFn = new Map();
  let total = 0;
  for (const node of profile.nodes) {
    const us = self.get(node.id) ?? 0;
    if (!us) continue;
    total += us;
    const f = node.callFrame;
    const a = area(f);
    byArea.set(a, (byArea.get(a) ?? 0) + us);
    const where = f.url ? `${f.url.replace(/^file:\/\//, '').replace(REPO + '/', '')}:${f.lineNumber + 1}` : '';
    const key = `${f.functionName || '(anonymous)'}\t${where}`;
    byFn.set(key, (byFn.get(key) ?? 0) + us);
  }
  const sorted = (m) => [...m.entries()].sort((a, b) => b[1] - a[1]);
  const ours = (f) => {
    const u = f.url ?? '';
    return u.startsWith(`file://${REPO}/`) && !u.includes('/node_modules/') && f.functionName !== '';
  };
  const incl = inclusive(profile, self, ours);
  return {
    ours: sorted(incl)
      .slice(0, top)
      .map(([k, us]) => {
        const [fn, where] = k.split('\t');
        return { fn, where, ms: us / 1000, pct: (100 * us) / total };
      }),
    totalMs: total / 1000,
    areas: sorted(byArea).map(([k, us]) => ({ area: k, ms: us / 1000, pct: (100 * us) / total })),
    functions: sorted(byFn)
      .slice(0, top)
      .map(([k, us]) => {
        const [fn, where] = k.split('\t');
        return { fn, where, ms: us / 1000, pct: (100 * us) / total };
      }),
  };
}

/** Mean of several runs' summaries: one profile of a 0.3 s run is noisy. */
export function mergeSummaries(list, top = 15) {
  const n = list.length;
  const merge = (field, keyOf) => {
    const acc = new Map();
    for (const s of list) {
      for (const row of s[field]) {
        const k = keyOf(row);
        const a = acc.get(k) ?? { ...row, ms: 0, pct: 0 };
        a.ms += row.ms / n;
        a.pct += row.pct / n;
        acc.set(k, a);
      }
    }
    return [...acc.values()].sort((a, b) => b.ms - a.ms);
  };
  return {
    runs: n,
    totalMs: list.reduce((a, s) => a + s.totalMs, 0) / n,
    areas: merge('areas', (r) => r.area),
    functions: merge('functions', (r) => `${r.fn}\t${r.where}`).slice(0, top),
    ours: merge('ours', (r) => `${r.fn}\t${r.where}`).slice(0, top),
  };
}

export function formatProfile(s, { areas = 12 } = {}) {
  const pct = (p) => `${p.toFixed(1)}%`;
  return [
    `profiled: ${ms(s.totalMs)}${s.runs ? ` (mean of ${s.runs} runs)` : ''}`,
    '',
    table(['area (self time)', 'ms', 'share'], s.areas.slice(0, areas).map((a) => [a.area, a.ms.toFixed(1), pct(a.pct)])),
    '',
    table(['function (self time)', 'where', 'ms', 'share'], s.functions.map((f) => [f.fn, f.where, f.ms.toFixed(1), pct(f.pct)])),
    '',
    table(['tsalt function (inclusive: itself and all it calls)', 'where', 'ms', 'share'], s.ours.map((f) => [f.fn, f.where, f.ms.toFixed(1), pct(f.pct)])),
  ].join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--');
  const args = i >= 0 ? process.argv.slice(i + 1) : [];
  if (args[0] === 'node' || args[0] === process.execPath) args.shift();
  if (!args.length) {
    process.stderr.write('usage: node bench/profile.mjs -- node SCRIPT [ARGS...]\n');
    process.exit(1);
  }
  const { profile, wallMs, code } = profileNode(args);
  process.stdout.write(`wall ${ms(wallMs)} (exit ${code}, under the profiler)\n` + formatProfile(summarise(profile, 25)) + '\n');
}
