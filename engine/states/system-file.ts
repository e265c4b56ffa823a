/**
 * Small system files that state modules other than `file` own (/etc/timezone, /etc/adjtime,
 * /etc/locale.conf, /etc/locale.gen): read if present, written atomically keeping the
 * file's owner and mode (0644 root for a new one).
 */
import fs from 'node:fs';
import path from 'node:path';
import { StateFailure } from './define.js';
import { atomicWrite } from './file/atomic-write.js';
import { defaultPerms, statPerms } from './file/ownership.js';
import { lstatOrNull, refuseSpecial } from './file/paths.js';

/** The file's text, or undefined when it (or a parent) does not exist. */
export function readIfPresent(file: string, label: string): string | undefined {
  // a device, FIFO or socket (or a link to one: /etc/x -> /dev/null) is never read nor replaced
  refuseSpecial(file, label);
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new StateFailure(`Problem reading ${label}: ${(e as Error).message}`);
  }
}

export async function writeKeepingPerms(file: string, text: string): Promise<void> {
  refuseSpecial(file);
  fs.mkdirSync(path.dirname(file), { recursive: true }); // only ever missing under --root
  const st = lstatOrNull(file);
  const perms = st?.isFile() ? statPerms(st) : { ...defaultPerms('file'), mode: 0o644 };
  await atomicWrite(file, Buffer.from(text), perms);
}
