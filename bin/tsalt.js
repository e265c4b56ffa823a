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
const cacheFile = `${bundle}.v8cache`;
// The agent daemon idles for weeks and runs its jobs in a child process (agent/job-worker.ts):
// it compiles only the little it runs instead of holding the CLI's whole code cache (the
// engine's bytecode), and leaves that cache file to the CLI and the job worker.
const codeCacheWanted = !(process.argv[2] === 'agent' && !process.argv.includes('--job-worker'));

function loadBundle() {
  // the bundle is ASCII (scripts/bundle.mjs checks): latin1 skips UTF-8 decoding
  const source = fs.readFileSync(bundle, 'latin1');
  let cachedData;
  try {
    cachedData = codeCacheWanted ? fs.readFileSync(cacheFile) : undefined;
  } catch {
    cachedData = undefined;
  }
  // scripts/bundle.mjs stores the bundle already wrapped in this function (no 2.5 MB copy here)
  const head = '(function (exports, require, module, __filename, __dirname) {';
  const wrapped = source.startsWith(head) ? source : `${head}${source}\n})`;
  const script = new vm.Script(wrapped, { filename: bundle, cachedData });
  const mod = { exports: {} };
  // the bundle's require resolves from the bundle's own place (better-sqlite3 in node_modules);
  // module.constructor is node:module's Module, reached without loading that builtin's extras
  const bundleRequire = module.constructor.createRequire(bundle);
  script.runInThisContext().call(mod.exports, mod.exports, bundleRequire, mod, bundle, path.dirname(bundle));
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
  return { main: mod.exports.main, saveCache };
}

async function start() {
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
