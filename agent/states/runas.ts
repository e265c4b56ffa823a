/**
 * Resolve a Salt `user:`/`group:` argument to ids, and build exec options that run a program
 * as that user (git, npm). Looked up through NSS (`getent`) so LDAP/sssd users work as well
 * as /etc/passwd ones.
 */
import { exec, type ExecOptions } from '../run/exec.js';
import { StateFailure } from './define.js';

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export async function lookupUser(user: string): Promise<PasswdEntry> {
  const r = await exec(['getent', 'passwd', user]);
  const f = r.stdout.trim().split('\n')[0]?.split(':');
  if (r.code !== 0 || !f || f.length < 7) throw new StateFailure(`User ${user} does not exist`);
  return { name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5]! };
}

export async function lookupGroup(group: string): Promise<number> {
  const r = await exec(['getent', 'group', group]);
  const f = r.stdout.trim().split('\n')[0]?.split(':');
  if (r.code !== 0 || !f || f.length < 3) throw new StateFailure(`Group ${group} does not exist`);
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
