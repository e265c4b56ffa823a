/**
 * Replace a file so readers see the old or the new content, never a mix: temp file in the same
 * directory (same filesystem, so rename is atomic), owner and mode set on the temp file, fsync,
 * rename over the target, fsync the directory. On failure the temp file is removed.
 *
 * A SIGKILL between creating the temp file and the rename leaves `.<name>.tsalt-<pid>-<random>`
 * behind; the next write of that file, and the next real run's check of it, remove the ones
 * whose process is gone (removeStaleTemps).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { StateFailure } from '../define.js';
import type { PermState } from './ownership.js';
import { lstatOrNull, specialKind } from './paths.js';

/** Temp files this process is writing right now: never stale. */
const inFlight = new Set<string>();

/** The temp name beside `target`, holding our pid so a later run can tell a dead writer's file. */
export function tempName(target: string, suffix = ''): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.tsalt-${process.pid}-${crypto.randomBytes(6).toString('hex')}${suffix}`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** `.<name>.tsalt-[<pid>-]<hex>`: ours, and the pid-less names earlier versions wrote. */
const TEMP = /^\..+\.tsalt-(?:(\d+)-)?[0-9a-f]+$/;

/**
 * Remove the temp files killed writers left in `dir` (only those beside `target`'s name when
 * given): ours that are not being written, those of processes that are gone, and the pid-less
 * names earlier versions wrote. Another live process's temp file is left alone. Returns the
 * paths removed.
 */
export async function removeStaleTemps(dir: string, target?: string): Promise<string[]> {
  const prefix = target === undefined ? '.' : `.${path.basename(target)}.tsalt-`;
  let entries: string[];
  try {
    // at once, like the check's other lstat/read calls: a no-op run reads each directory once,
    // and the promise API would load node:fs/promises for it
    entries = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const e of entries) {
    if (!e.startsWith(prefix)) continue;
    const m = TEMP.exec(e);
    if (!m) continue;
    const full = path.join(dir, e);
    if (inFlight.has(full)) continue;
    const pid = m[1];
    if (pid !== undefined && Number(pid) !== process.pid && alive(Number(pid))) continue;
    const st = await fs.promises.lstat(full).catch(() => null);
    if (!st || st.isDirectory()) continue;
    await fs.promises.rm(full, { force: true });
    removed.push(full);
  }
  return removed;
}

/**
 * Replace `target` (a symlink there is replaced, not followed: callers that mean to write
 * through one resolve it first). A device, FIFO or socket at `target` is refused: the rename
 * would put a regular file in place of /dev/null.
 */
export async function atomicWrite(target: string, data: Buffer, perms: PermState): Promise<void> {
  const st = lstatOrNull(target);
  const kind = st ? specialKind(st) : undefined;
  if (kind) throw new StateFailure(`Refusing to replace ${target}: it is a ${kind}, not a regular file`);
  await removeStaleTemps(path.dirname(target), target);
  const tmp = tempName(target);
  inFlight.add(tmp);
  const fh = await fs.promises.open(tmp, 'wx', 0o600).catch((e) => {
    inFlight.delete(tmp);
    throw e;
  });
  try {
    try {
      await fh.writeFile(data);
      await fh.chown(perms.uid, perms.gid);
      await fh.chmod(perms.mode);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.promises.rename(tmp, target);
  } catch (e) {
    await fs.promises.rm(tmp, { force: true });
    throw e;
  } finally {
    inFlight.delete(tmp);
  }
  await syncDir(path.dirname(target));
}

/** Make a rename durable. Best effort: some filesystems refuse fsync on directories. */
export async function syncDir(dir: string): Promise<void> {
  try {
    const d = await fs.promises.open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    /* ignore */
  }
}

/** Create missing parents of `dir` (outermost first), returning the ones created. */
export async function makeDirs(dir: string, perms: PermState | undefined): Promise<string[]> {
  const missing: string[] = [];
  let d = dir;
  while (!fs.existsSync(d)) {
    missing.unshift(d);
    const up = path.dirname(d);
    if (up === d) break;
    d = up;
  }
  // the nearest existing ancestor (links followed) must be a directory: never create below, or
  // set perms through, a device or FIFO a link leads to
  if (missing[0] !== d && !fs.statSync(d).isDirectory()) throw new StateFailure(`Cannot create directories in ${d}: it exists and is not a directory`);
  for (const m of missing) {
    await fs.promises.mkdir(m);
    if (perms) {
      await fs.promises.chown(m, perms.uid, perms.gid);
      await fs.promises.chmod(m, perms.mode);
    }
  }
  return missing;
}
