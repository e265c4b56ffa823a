#!/usr/bin/env node
// Launcher. `npm run build` makes dist/bundle/tsalt.cjs (the whole CLI in one file), loaded here
// with a V8 code cache next to it: start-up is part of tsalt's speed budget. Without a bundle
// (a build that skipped it), the plain tsc output in dist/cli is used.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import vm from 'node:vm';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const bundle = path.join(here, '../dist/bundle/tsalt.cjs');
const cacheFile = `${bundle}.v8cache`;

function loadBundle() {
  // the bundle is ASCII (scripts/bundle.mjs checks): latin1 skips UTF-8 decoding
  const source = fs.readFileSync(bundle, 'latin1');
  let cachedData;
  try {
    cachedData = fs.readFileSync(cacheFile);
  } catch {
    cachedData = undefined;
  }
  const wrapped = `(function (exports, require, module, __filename, __dirname) {${source}\n})`;
  const script = new vm.Script(wrapped, { filename: bundle, cachedData });
  const module = { exports: {} };
  script.runInThisContext().call(module.exports, module.exports, createRequire(bundle), module, bundle, path.dirname(bundle));
  // After the run, so the cache holds the functions this kind of run compiled. V8 rejects a
  // cache that does not match the source or the Node version; then it is written anew.
  // (The buffer itself is not kept: a long-running agent should not hold it.)
  const cacheUsable = cachedData !== undefined && !script.cachedDataRejected;
  cachedData = undefined;
  const saveCache = () => {
    if (cacheUsable) return;
    try {
      const tmp = `${cacheFile}.${process.pid}`;
      fs.writeFileSync(tmp, script.createCachedData());
      fs.renameSync(tmp, cacheFile);
    } catch {
      /* read-only install or not our file: run without a cache */
    }
  };
  return { main: module.exports.main, saveCache };
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
