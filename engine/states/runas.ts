/**
 * Resolve a Salt `user:`/`group:` argument to ids, and build exec options that run a program
 * as that user (git, npm). Looked up through NSS (`getent`) so LDAP/sssd users work as well
 * as /etc/passwd ones.
 */
import type { ExecOptions } from '../run/exec.js';
import { getgrnam, getpwnam } from '../run/nss.js';
import { StateFailure } from './define.js';

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export async function lookupUser(user: string): Promise<PasswdEntry> {
  const pw = await getpwnam(user);
  if (!pw) throw new StateFailure(`User ${user} does not exist`);
  return { name: pw.name, uid: pw.uid, gid: pw.gid, home: pw.home };
}

export async function lookupGroup(group: string): Promise<number> {
  const f = await getgrnam(group);
  if (!f) throw new StateFailure(`Group ${group} does not exist`);
  return Number(f[2]);
}

/**
 * Options for exec() that run as `user` with that user's HOME (git and npm read ~/.gitconfig,
 * ~/.npmrc). No user: run as ourselves, unchanged environment.
 */
export async function runAsOptions(user: string | undefined, extraEnv: Record<string, string> = {}): Promise<ExecOptions> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extraEnv };
  if (user === undefined) return { env };
  const pw = await lookupUser(user);
  if (pw.uid === process.getuid?.()) return { env };
  return {
    uid: pw.uid,
    gid: pw.gid,
    env: { ...env, HOME: pw.home, USER: pw.name, LOGNAME: pw.name },
  };
}
