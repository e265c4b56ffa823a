/**
 * Replace a file so readers see the old or the new content, never a mix: temp file in the same
 * directory (same filesystem, so rename is atomic), owner and mode set on the temp file, fsync,
 * rename over the target, fsync the directory. On failure the temp file is removed.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { PermState } from './ownership.js';

export function tempName(target: string, suffix = ''): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.tsalt-${crypto.randomBytes(6).toString('hex')}${suffix}`);
}

export async function atomicWrite(target: string, data: Buffer, perms: PermState): Promise<void> {
  const tmp = tempName(target);
  const fh = await fs.promises.open(tmp, 'wx', 0o600);
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
  for (const m of missing) {
    await fs.promises.mkdir(m);
    if (perms) {
      await fs.promises.chown(m, perms.uid, perms.gid);
      await fs.promises.chmod(m, perms.mode);
    }
  }
  return missing;
}
