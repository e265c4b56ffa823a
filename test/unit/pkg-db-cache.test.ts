/**
 * The installed-packages answer kept across runs (engine/providers/pkg/db-answer-cache.ts),
 * without a machine: the real apt provider on a dpkg database of files in a temp dir
 * (DPKG_ADMINDIR, as dpkg-query itself takes it) and a recording exec standing in for
 * dpkg-query. Each "run" is a new FactCache, as each tsalt run is. The real dpkg is in
 * test/integration/pkg-db-cache.test.ts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { makeHostEnv, type Exec } from '../../engine/providers/host.js';
import { AptProvider } from '../../engine/providers/pkg/apt.js';
import { PkgDbAnswerCache, dpkgAdmindir } from '../../engine/providers/pkg/db-answer-cache.js';
import { FactCache } from '../../engine/run/facts.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tsalt-pkgdb-unit-'));
const admin = path.join(work, 'dpkg');
const cacheDir = path.join(work, 'cache', 'pkgdb');
const saved = process.env.DPKG_ADMINDIR;
afterAll(() => {
  if (saved === undefined) delete process.env.DPKG_ADMINDIR;
  else process.env.DPKG_ADMINDIR = saved;
  fs.rmSync(work, { recursive: true, force: true });
});

/** The query's answer for `pkgs` (name -> version), as dpkg-query prints it. */
const answer = (pkgs: Record<string, string>) =>
  Object.entries(pkgs)
    .map(([n, v]) => `ii \t${n}\t${v}\tamd64\n`)
    .join('');

/** dpkg's way: status-new, then renamed over status (a new inode). */
function writeStatus(text: string): void {
  fs.writeFileSync(path.join(admin, 'status-new'), text);
  fs.renameSync(path.join(admin, 'status-new'), path.join(admin, 'status'));
}

let db: Record<string, string>;
let queries: number;
let debug: string[];
/** what happens while the query runs (a dpkg changing the database meanwhile) */
let during: (() => void) | undefined;

const exec: Exec = async (argv) => {
  expect(argv[0]).toBe('dpkg-query');
  queries++;
  const out = answer(db);
  during?.();
  return { code: 0, signal: null, stdout: out, stderr: '' };
};

/** One run: fresh facts, the same cache directory. */
function run() {
  const cache = new PkgDbAnswerCache(cacheDir, (m) => debug.push(m));
  const apt = new AptProvider(makeHostEnv({ facts: new FactCache(), exec, pkgDbCache: cache }));
  return { apt, cache };
}

async function installed(): Promise<Record<string, string>> {
  const r = await run().apt.installed();
  return Object.fromEntries([...r.installed].map(([n, p]) => [n, p.version]));
}

beforeEach(() => {
  fs.rmSync(work, { recursive: true, force: true });
  fs.mkdirSync(path.join(admin, 'updates'), { recursive: true });
  fs.mkdirSync(path.join(admin, 'triggers'));
  fs.writeFileSync(path.join(admin, 'triggers/Unincorp'), '');
  db = { hello: '2.10-3' };
  writeStatus('Package: hello\n');
  queries = 0;
  debug = [];
  during = undefined;
  process.env.DPKG_ADMINDIR = admin;
});

describe('package-database cache', () => {
  it('a second run with the database unchanged reads the answer back: no query', async () => {
    // the database is the one dpkg-query reads: the admindir as dpkg 1.21 takes it
    expect(dpkgAdmindir({})).toBe('/var/lib/dpkg');
    expect(dpkgAdmindir({ DPKG_ROOT: '/srv/r' })).toBe('/srv/r/var/lib/dpkg');
    expect(dpkgAdmindir({ DPKG_ROOT: '/srv/r', DPKG_ADMINDIR: '/a' })).toBe('/a');
    expect(dpkgAdmindir()).toBe(admin);
    expect(await installed()).toEqual({ hello: '2.10-3' });
    expect(queries).toBe(1);
    expect(fs.readdirSync(cacheDir)).toHaveLength(1);
    expect(await installed()).toEqual({ hello: '2.10-3' });
    expect(await installed()).toEqual({ hello: '2.10-3' });
    expect(queries).toBe(1);
  });

  it('a changed status file (a transaction), Unincorp or arch file is a new key: the query runs', async () => {
    await installed();
    db = { hello: '2.10-3', sl: '5.02-1' };
    writeStatus('Package: hello\n\nPackage: sl\n');
    expect(await installed()).toEqual(db);
    expect(queries).toBe(2);
    // a trigger activated and not yet folded in turns `ii` into `it`
    fs.writeFileSync(path.join(admin, 'triggers/Unincorp'), 'ldconfig -\n');
    db = { sl: '5.02-1' };
    expect(await installed()).toEqual(db);
    expect(queries).toBe(3);
    fs.writeFileSync(path.join(admin, 'arch'), 'amd64\ni386\n');
    await installed();
    expect(queries).toBe(4);
    await installed();
    expect(queries).toBe(4);
  });

  it('a journal entry in updates/: no cache read or written while it is there', async () => {
    await installed();
    fs.writeFileSync(path.join(admin, 'updates/0000'), 'Package: hello\nStatus: deinstall ok config-files\n');
    db = {};
    expect(await installed()).toEqual({});
    expect(await installed()).toEqual({});
    expect(queries).toBe(3);
    expect(fs.readdirSync(cacheDir)).toHaveLength(1);
    // dpkg's own temp file there is not an entry
    fs.renameSync(path.join(admin, 'updates/0000'), path.join(admin, 'updates/tmp.i'));
    db = { hello: '2.10-3' };
    expect(await installed()).toEqual({ hello: '2.10-3' });
    expect(queries).toBe(3);
  });

  it('the database changing while the query runs: the answer is used but not stored', async () => {
    during = () => {
      db = { hello: '2.10-4' };
      writeStatus('Package: hello\nVersion: 2.10-4\n');
    };
    expect(await installed()).toEqual({ hello: '2.10-3' });
    expect(fs.existsSync(cacheDir) ? fs.readdirSync(cacheDir) : []).toEqual([]);
    during = undefined;
    expect(await installed()).toEqual({ hello: '2.10-4' });
    expect(queries).toBe(2);
    expect(await installed()).toEqual({ hello: '2.10-4' });
    expect(queries).toBe(2);
  });

  it('a corrupt file is ignored (said with TSALT_DEBUG) and replaced', async () => {
    await installed();
    const [name] = fs.readdirSync(cacheDir);
    const file = path.join(cacheDir, name!);
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('2.10-3', '9.99-9'));
    expect(await installed()).toEqual({ hello: '2.10-3' });
    expect(queries).toBe(2);
    expect(debug).toEqual([`ignoring package-database cache file ${file}: its content does not match its checksum; computing it again`]);
    expect(fs.readFileSync(file, 'utf8')).toContain('hello\t2.10-3');
    expect(await installed()).toEqual({ hello: '2.10-3' });
    expect(queries).toBe(2);
  });

  it('within a run, a transaction invalidates the answer and the next look queries again', async () => {
    const { apt } = run();
    expect((await apt.installed()).installed.has('sl')).toBe(false);
    // what apt-get install does to the database, then the provider's invalidate
    const realExec = exec;
    const host = makeHostEnv({
      facts: new FactCache(),
      pkgDbCache: new PkgDbAnswerCache(cacheDir),
      exec: async (argv, o) => {
        if (argv[0] !== 'apt-get') return realExec(argv, o);
        db = { ...db, sl: '5.02-1' };
        writeStatus('Package: hello\n\nPackage: sl\n');
        return { code: 0, signal: null, stdout: '', stderr: '' };
      },
    });
    const apt2 = new AptProvider(host);
    expect((await apt2.installed()).installed.has('sl')).toBe(false);
    expect(queries).toBe(1);
    await apt2.install([{ name: 'sl' }], {});
    expect((await apt2.installed()).installed.get('sl')?.version).toBe('5.02-1');
    expect(queries).toBe(2);
  });

  it('a failed query is not stored', async () => {
    const host = makeHostEnv({
      facts: new FactCache(),
      pkgDbCache: new PkgDbAnswerCache(cacheDir),
      exec: async () => ({ code: 2, signal: null, stdout: '', stderr: 'dpkg-query: error: no' }),
    });
    await expect(new AptProvider(host).installed()).rejects.toThrow('dpkg-query failed: dpkg-query: error: no');
    expect(fs.existsSync(cacheDir) ? fs.readdirSync(cacheDir) : []).toEqual([]);
    // the next run queries (nothing stored) and stores its good answer
    expect(await installed()).toEqual({ hello: '2.10-3' });
    expect(await installed()).toEqual({ hello: '2.10-3' });
    expect(queries).toBe(1);
  });
});
