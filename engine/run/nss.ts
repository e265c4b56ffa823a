/**
 * Users and groups through NSS (`getent`), as Python's pwd/grp do: LDAP/sssd accounts count as
 * much as /etc/passwd ones. Async for states and guards, sync for templates (rendering is sync).
 * getent also answers numeric ids: states accept them (`runas: 0`); the template functions,
 * like Salt's user.info, look up names only (`namesOnly`).
 * When /etc/passwd or /etc/group provably holds getent's answer, it is read from there instead
 * of forking getent (nss-files.ts): a fork of this process blocks the event loop for ms.
 */
import { spawnSync } from 'node:child_process';
import { exec } from './exec.js';
import { filesEntry } from './nss-files.js';

export interface PasswdInfo {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
  gecos: string;
  passwd: string;
}

/** The fields of `name`'s entry in an NSS database, or undefined. */
function entryOf(stdout: string, ok: boolean, name: string, minFields: number, namesOnly: boolean): string[] | undefined {
  return accept(ok ? stdout.split('\n')[0]?.split(':') : undefined, name, minFields, namesOnly);
}

function accept(f: string[] | undefined, name: string, minFields: number, namesOnly: boolean): string[] | undefined {
  return f && f.length >= minFields && (!namesOnly || f[0] === name) ? f : undefined;
}

function passwd(f: string[] | undefined): PasswdInfo | undefined {
  if (!f) return undefined;
  return { name: f[0]!, passwd: f[1]!, uid: Number(f[2]), gid: Number(f[3]), gecos: f[4]!, home: f[5]!, shell: f[6]! };
}

export async function getpwnam(name: string): Promise<PasswdInfo | undefined> {
  const f = filesEntry('passwd', name);
  if (f) return passwd(accept(f, name, 7, false));
  const r = await exec(['getent', 'passwd', '--', name]);
  return passwd(entryOf(r.stdout, r.code === 0, name, 7, false));
}

export function getpwnamSync(name: string): PasswdInfo | undefined {
  const f = filesEntry('passwd', name);
  if (f) return passwd(accept(f, name, 7, true));
  const r = spawnSync('getent', ['passwd', '--', name], { encoding: 'utf8', timeout: 30_000 });
  return passwd(entryOf(r.stdout ?? '', r.status === 0, name, 7, true));
}

/** `name:passwd:gid:members` fields of a group, or undefined. */
export async function getgrnam(name: string): Promise<string[] | undefined> {
  const f = filesEntry('group', name);
  if (f) return accept(f, name, 3, false);
  const r = await exec(['getent', 'group', '--', name]);
  return entryOf(r.stdout, r.code === 0, name, 3, false);
}

export function getgrnamSync(name: string): string[] | undefined {
  const f = filesEntry('group', name);
  if (f) return accept(f, name, 4, true);
  const r = spawnSync('getent', ['group', '--', name], { encoding: 'utf8', timeout: 30_000 });
  return entryOf(r.stdout ?? '', r.status === 0, name, 4, true);
}
