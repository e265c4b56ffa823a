#!/usr/bin/env node
// Thin launcher. `npm run build` makes dist/bundle (one file per command, fast to load) and
// dist/cli (plain tsc output, used when the bundle is absent).
import fs from 'node:fs';

const bundle = new URL('../dist/bundle/main.js', import.meta.url);
const entry = fs.existsSync(bundle) ? bundle.href : new URL('../dist/cli/main.js', import.meta.url).href;
import(entry).then(
  (m) => m.main(process.argv.slice(2)),
).then(
  (code) => { process.exitCode = code ?? 0; },
  (err) => { console.error(err?.stack ?? String(err)); process.exitCode = 1; },
);
