/**
 * Footprint: `tsalt --help` cold start (against `node -e 0`, Node's own start), the size of
 * the shipped bundle (dist/bundle), the W54 no-op run from tsc's unbundled output (what the
 * bundle saves in module loading), and a CPU profile of the no-op run.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { REPO, TSALT, tsaltApply, expectSummary } from './w54.mjs';
import { timeMany, stats } from './lib/measure.mjs';
import { profileNode, summarise, mergeSummaries } from './profile.mjs';

export async function coldStart(runs) {
  const node = await timeMany('node -e 0', [process.execPath, '-e', '0'], { runs });
  const help = await timeMany('tsalt --help', [process.execPath, TSALT, '--help'], { runs });
  return { node, help };
}

function dirBytes(dir) {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    n += e.isDirectory() ? dirBytes(p) : fs.statSync(p).size;
  }
  return n;
}

/**
 * The shipped bundle (`npm run build` -> dist/bundle, scripts/bundle.mjs): the files reachable
 * from main.js through its static and dynamic imports (dist/bundle also keeps stale chunks of
 * earlier builds, which a package would not ship). Source maps not counted.
 */
export function bundleSize() {
  const dir = path.join(REPO, 'dist', 'bundle');
  if (!fs.existsSync(path.join(dir, 'main.js'))) return null;
  const seen = new Set();
  const todo = ['main.js'];
  let bytes = 0;
  while (todo.length) {
    const f = todo.pop();
    if (seen.has(f)) continue;
    seen.add(f);
    const text = fs.readFileSync(path.join(dir, f), 'utf8');
    bytes += Buffer.byteLength(text);
    for (const m of text.matchAll(/(?:from\s*|import\s*\(\s*|import\s*)["']\.\/([\w.-]+\.js)["']/g)) todo.push(m[1]);
  }
  const files = [...seen];
  const gz = spawnSync('sh', ['-c', 'cd "$1" && shift && tar -czf - "$@" | wc -c', 'sh', dir, ...files], { encoding: 'utf8' });
  return { bytes, files: files.length, gzBytes: Number(gz.stdout.trim()) };
}

/** W54 no-op from tsc's output (dist/cli, one file per module): what the bundle saves. */
export async function unbundledNoop(tree, runs) {
  const argv = tsaltApply(tree);
  argv[1] = '-e';
  argv.splice(2, 0, "import('./dist/cli/main.js').then((m) => m.main(process.argv.slice(1))).then((c) => { process.exitCode = c; })");
  return timeMany('tsalt local apply (dist/cli, no bundle)', argv, { runs, cwd: REPO, check: (r) => expectSummary(r.stdout, 54, 0) });
}

/** `runs` profiled no-op runs, averaged (top lists taken from each run's top 40). */
export function profileNoop(tree, runs = 5) {
  const [, ...args] = tsaltApply(tree);
  const sums = [];
  const walls = [];
  for (let i = 0; i < runs; i++) {
    const { profile, wallMs } = profileNode(args);
    walls.push(wallMs);
    sums.push(summarise(profile, 40));
  }
  return { wallMs: stats(walls).median, summary: mergeSummaries(sums, 15) };
}
