/**
 * The answer of the installed-packages query (`dpkg-query -W`) kept on disk between runs, keyed
 * by the state of the package database: a run whose database has not changed since reads the
 * answer back instead of forking the query (libuv forks the whole process: ≈ 11 ms blocked on
 * a no-op `tsalt local apply`, the same on each agent job).
 *
 * The key is the query (argv) and the cache format, and what dpkg-query reads, as it reads it
 * (strace of dpkg 1.21): `<admindir>/status`, `updates/` (journal entries `NNNN` written during
 * a transaction, folded into status at its end), `triggers/Unincorp` (triggers activated but
 * not yet folded in: they turn `ii` into `it`), `triggers/File` and `arch`. Of each file its
 * (dev, ino, size, mtime ns, ctime ns): dpkg writes status-new and renames it over status, so a
 * change gives a new inode and new times (ctime cannot be set back). With any journal entry
 * the status file is not the whole truth: no key, the query runs and nothing is stored.
 *
 * The package list holds no secret: agents use it too. Same trust rules as the template cache
 * (../../render/compile-cache.ts): private directory, checksummed files, atomic writes, bounded.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { ExecResult } from '../../run/exec.js';
import { PrivateCacheDir, templateCacheDir, type CacheDebug } from '../../render/compile-cache.js';

/** Bumped when the file format or what a key covers changes. */
export const PKGDB_CACHE_FORMAT = 'tsalt-pkgdb-1';

/** `<cachedir>/pkgdb` (beside `jinja/` and `yaml/`). */
export function pkgDbCacheDir(cachedir: unknown): string {
  return path.join(path.dirname(templateCacheDir(cachedir)), 'pkgdb');
}

/** dpkg-query's admindir as dpkg 1.21 takes it: DPKG_ADMINDIR, else DPKG_ROOT + /var/lib/dpkg. */
export function dpkgAdmindir(env: NodeJS.ProcessEnv = process.env): string {
  return env.DPKG_ADMINDIR ?? `${env.DPKG_ROOT ?? ''}/var/lib/dpkg`;
}

function stamp(file: string): string {
  try {
    const s = fs.statSync(file, { bigint: true });
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return '-';
    throw e;
  }
}

/**
 * The state of dpkg's database under `admindir`, or undefined when it cannot be proved whole
 * (a journal entry in updates/, a file that cannot be read).
 */
export function dpkgDbState(admindir: string): string | undefined {
  try {
    // dpkg reads only all-digit names there (its temp file is updates/tmp.i)
    if (fs.readdirSync(`${admindir}/updates`).some((n) => /^\d+$/.test(n))) return undefined;
    const status = stamp(`${admindir}/status`);
    if (status === '-') return undefined;
    return [admindir, status, ...['triggers/Unincorp', 'triggers/File', 'arch'].map((f) => stamp(`${admindir}/${f}`))].join('\n');
  } catch {
    return undefined;
  }
}

export class PkgDbAnswerCache extends PrivateCacheDir {
  constructor(dir: string, debug?: CacheDebug) {
    // a new key per database change: the last few are plenty
    super(dir, PKGDB_CACHE_FORMAT, 'package-database cache', '.txt', debug, { files: 16, bytes: 16 * 1024 * 1024 });
  }

  /**
   * The query's result: its stored stdout when the database is in the state it was stored in,
   * else `run()`'s, stored only when the database held still around it (the same state before
   * and after: otherwise the answer may belong to either).
   */
  async answer(argv: readonly string[], state: () => string | undefined, run: () => Promise<ExecResult>): Promise<ExecResult> {
    const before = state();
    const key = before === undefined ? undefined : crypto.createHash('sha256').update([PKGDB_CACHE_FORMAT, ...argv, before].join('\0')).digest('hex');
    const stored = key && this.getBytes(key);
    if (stored) return { code: 0, signal: null, stdout: stored.toString('utf8'), stderr: '' };
    const r = await run();
    if (key && r.code === 0 && state() === before) this.setBytes(key, Buffer.from(r.stdout, 'utf8'));
    return r;
  }
}
