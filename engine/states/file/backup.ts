/**
 * `backup: minion`: keep a copy of the file being replaced under the cache's file_backup
 * directory, at the path it had, with Salt's timestamp suffix (`_Sat_Jul_27_17:48:41_738027_2013`).
 * Under --root the cache lives beneath the root too, so a rooted run never writes the host's /var.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { RunContext } from '../context.js';

export const BACKUP_DIR = '/var/cache/tsalt/file_backup';

function stamp(d: Date): string {
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const micro = p(d.getMilliseconds() * 1000 + Math.floor(Math.random() * 1000), 6);
  return `${days[d.getDay()]}_${months[d.getMonth()]}_${p(d.getDate())}_${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}_${micro}_${d.getFullYear()}`;
}

/** Copy `onDisk` (the mapped path of `name`) into the backup area; returns the backup path. */
export async function backupMinion(ctx: RunContext, name: string, onDisk: string): Promise<string> {
  const dest = ctx.path(path.join(BACKUP_DIR, path.resolve('/', name)) + `_${stamp(new Date())}`);
  await fs.promises.mkdir(path.dirname(dest), { recursive: true, mode: 0o700 });
  await fs.promises.copyFile(onDisk, dest, fs.constants.COPYFILE_EXCL);
  return dest;
}
