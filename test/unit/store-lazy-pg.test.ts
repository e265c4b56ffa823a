/**
 * A SQLite master never loads pg: openStore imports the PostgreSQL store (and with it pg) only
 * for a postgres:// store. Checked on the built master (dist/) in a fresh node process, where
 * pg, a CommonJS package, shows up in the module cache once loaded.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';

const REPO = path.resolve(import.meta.dirname, '../..');

/** Opens `spec` with dist/'s openStore in a new process; whether pg was loaded afterwards. */
function loadsPg(spec: string): boolean {
  const script = `
    import { createRequire } from 'node:module';
    const { openStore } = await import(${JSON.stringify(path.join(REPO, 'dist/master/store.js'))});
    try { const s = await openStore(process.argv[1]); await s.close(); } catch {}
    const cache = Object.keys(createRequire(import.meta.url).cache);
    console.log(cache.some((f) => f.includes('/node_modules/pg/')) ? 'pg loaded' : 'pg not loaded');`;
  return execFileSync(process.execPath, ['--input-type=module', '-e', script, spec], { encoding: 'utf8' }).trim() === 'pg loaded';
}

it('opening a SQLite store does not load pg; opening a postgres:// one does', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsalt-lazy-'));
  try {
    expect(loadsPg(path.join(dir, 'master.db'))).toBe(false);
    // nothing listens on port 1: the open fails, after pg was loaded to try
    expect(loadsPg('postgres://tsalt@127.0.0.1:1/tsalt')).toBe(true);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
