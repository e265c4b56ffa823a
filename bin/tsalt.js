#!/usr/bin/env node
// Launcher. `npm run build` makes dist/bundle/tsalt.cjs (the whole CLI in one file), loaded here
// with a V8 code cache next to it: start-up is part of tsalt's speed budget. Without a bundle
// (a build that skipped it), the plain tsc output in dist/cli is used.
// CommonJS (bin/package.json says so): an ES module entry would make Node load and run its ES
// module loader first, for nothing the bundle needs.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');

const bundle = path.join(__dirname, '../dist/bundle/tsalt.cjs');
// A code cache holds the functions the run that wrote it compiled, so each kind of run keeps its
// own: with one file, the first to write it decided for all (a master stopping wrote its own
// functions, and `tsalt local apply` then compiled the engine lazily: W54 154 -> 219 ms).
const kindOf = (argv) => {
  if (argv[0] === 'agent') return 'job-worker'; // the daemon itself runs from its own bundle, uncached
  const words = [];
  for (const w of argv.slice(0, 2)) {
    if (!/^[a-z][a-z-]{0,23}$/.test(w)) break;
    words.push(w);
  }
  return words.join('-') || 'cli';
};
const kind = kindOf(process.argv.slice(2));
// `tsalt local` is a short process that allocates tens of MB of garbage and exits: V8 doubling the
// young generation as it goes (1 -> 8 MiB semi-spaces) only makes it touch fresh pages, which on
// a VM cost ≈ 12 µs each (W54: 1,300 fewer page faults, ≈ 20 ms). The growth factor is read when
// the space would grow (V8's SemiSpaceNewSpace::Grow), so it is safe to set here, where GC flags
// that shape the collector are not (--single-threaded-gc set at run time crashed a large run).
// Set before any script is compiled: the code cache's flag hash then matches the build's warm run.
if (process.argv[2] === 'local') require('node:v8').setFlagsFromString('--semi-space-growth-factor=1');
// The agent daemon idles for weeks and runs its jobs in a child process (agent/job-worker.ts):
// it compiles only the little it runs instead of holding the CLI's whole code cache (the
// engine's bytecode), and leaves that cache file to the CLI and the job worker.
const codeCacheWanted = !(process.argv[2] === 'agent' && !process.argv.includes('--job-worker'));
// ...and it runs from its own bundle (cli/agent-daemon.ts: the connection without the engine),
// which hands the command back ('cli') when this process would run the engine itself.
const daemonBundle = path.join(__dirname, '../dist/bundle/agent-daemon.cjs');
// Commands that start a new process for engine work run from a bundle of their own, a third of
// the CLI's size, which hands any other command back ('cli'): `tsalt local` (a new process every
// run: cli/local-main.ts) and the agent's job worker (started again after each quiet spell:
// cli/job-worker-main.ts).
const ownBundle = (argv) => {
  if (argv[0] === 'local') return path.join(__dirname, '../dist/bundle/local.cjs');
  if (argv[0] === 'agent' && argv.includes('--job-worker')) return path.join(__dirname, '../dist/bundle/job-worker.cjs');
  return undefined;
};

/** Run a bundle (stored wrapped as a CommonJS module function) and return its exports. */
function runBundle(file, cachedData) {
  // the bundle is ASCII (scripts/bundle.mjs checks): latin1 skips UTF-8 decoding
  const source = fs.readFileSync(file, 'latin1');
  // scripts/bundle.mjs stores the bundle already wrapped in this function (no 2.5 MB copy here)
  const head = '(function (exports, require, module, __filename, __dirname) {';
  const wrapped = source.startsWith(head) ? source : `${head}${source}\n})`;
  const script = new vm.Script(wrapped, { filename: file, cachedData });
  const mod = { exports: {} };
  // the bundle's require resolves from the bundle's own place (better-sqlite3 in node_modules);
  // module.constructor is node:module's Module, reached without loading that builtin's extras
  const bundleRequire = module.constructor.createRequire(file);
  script.runInThisContext().call(mod.exports, mod.exports, bundleRequire, mod, file, path.dirname(file));
  return { exports: mod.exports, script };
}

function loadDaemonBundle() {
  const { main } = runBundle(daemonBundle).exports;
  return {
    main: async (argv) => {
      const code = await main(argv.slice(1));
      return code === 'cli' ? loadBundle().main(argv) : code;
    },
    saveCache: () => {},
  };
}

/** A bundle run with the code cache of this kind of run (`<bundle>.<kind>.v8cache`). */
function loadBundle(file = bundle) {
  const cacheFile = `${file}.${kind}.v8cache`;
  let cachedData;
  try {
    cachedData = codeCacheWanted ? fs.readFileSync(cacheFile) : undefined;
  } catch {
    cachedData = undefined;
  }
  const { exports, script } = runBundle(file, cachedData);
  // After the run, so the cache holds the functions this kind of run compiled. V8 rejects a
  // cache that does not match the source or the Node version; then it is written anew.
  // (The buffer itself is not kept: a long-running agent should not hold it.)
  const cacheUsable = cachedData !== undefined && !script.cachedDataRejected;
  cachedData = undefined;
  const saveCache = () => {
    if (cacheUsable || !codeCacheWanted) return;
    try {
      const tmp = `${cacheFile}.${process.pid}`;
      fs.writeFileSync(tmp, script.createCachedData());
      fs.renameSync(tmp, cacheFile);
    } catch {
      /* read-only install or not our file: run without a cache */
    }
  };
  return { main: exports.main, saveCache };
}

function loadOwnBundle(file) {
  const own = loadBundle(file);
  let saveCache = own.saveCache;
  return {
    main: async (argv) => {
      const code = await own.main(argv);
      if (code !== 'cli') return code;
      const cli = loadBundle();
      saveCache = cli.saveCache;
      return cli.main(argv);
    },
    saveCache: () => saveCache(),
  };
}

async function start() {
  if (!codeCacheWanted && fs.existsSync(daemonBundle)) return loadDaemonBundle();
  const own = ownBundle(process.argv.slice(2));
  if (own && fs.existsSync(own)) return loadOwnBundle(own);
  if (fs.existsSync(bundle)) return loadBundle();
  const m = await import('../dist/cli/main.js');
  return { main: m.main, saveCache: () => {} };
}

start()
  .then(async ({ main, saveCache }) => {
    const code = await main(process.argv.slice(2));
    saveCache();
    return code;
  })
  .then(
    (code) => {
      process.exitCode = code ?? 0;
    },
    (err) => {
      console.error(err?.stack ?? String(err));
      process.exitCode = 1;
    },
  );
