/**
 * Run one shell command the way Salt's cmd.run_all does (python_shell=True): the command is ONE
 * argv element after `<shell> -c`, optionally as another user, with Salt's env/cwd/timeout/
 * success_retcodes handling. Shared by the cmd states and the unless/onlyif guards.
 *
 * The argv is built from fixed pieces only:
 *   [timeout -k 5 N] [setpriv --reuid --regid --init-groups --] sh -c WRAP tsalt UMASK SHELL -c CMD
 * WRAP is a constant script that reports the shell's pid on stderr (Salt returns it), applies
 * the umask and execs the user's shell, so the reported pid is the pid that ran the command.
 */
import fs from 'node:fs';
import os from 'node:os';
import * as z from 'zod/mini';
import { exec } from './exec.js';

export interface ShellCommandOptions {
  cmd: string;
  /** default /bin/sh */
  shell?: string;
  /** default: the runas user's home, else /root (Salt: `~runas`) */
  cwd?: string;
  runas?: string;
  /** already normalised (see `normaliseEnv`) */
  env?: Record<string, string>;
  prependPath?: string;
  umask?: string;
  timeoutSec?: number;
  successRetcodes?: number[];
}

export interface ShellCommandResult {
  pid: number;
  retcode: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** A problem that prevented running the command at all (Salt's CommandExecutionError). */
export class CommandExecutionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandExecutionError';
  }
}

/** Salt's env: a dict, or a list of one-key dicts; values become strings (YAML True -> 'True'). */
export const envArg = z.union([z.record(z.string(), z.unknown()), z.array(z.record(z.string(), z.unknown()))]);

export function normaliseEnv(env: unknown): Record<string, string> {
  if (env === undefined || env === null) return {};
  const parsed = envArg.safeParse(env);
  if (!parsed.success) throw new CommandExecutionError("Invalidly-formatted 'env' parameter. See documentation.");
  const out: Record<string, string> = {};
  const dicts = Array.isArray(parsed.data) ? parsed.data : [parsed.data];
  for (const d of dicts) {
    for (const [k, v] of Object.entries(d)) {
      if (v === null || v === undefined) out[k] = '';
      else if (typeof v === 'boolean') out[k] = v ? 'True' : 'False';
      else if (typeof v === 'object') out[k] = JSON.stringify(v);
      else out[k] = String(v);
    }
  }
  return out;
}

import { getpwnam, type PasswdInfo } from './nss.js';
export { getpwnam };

const WRAP = 'printf "tsalt-pid:%s\\n" "$$" >&2; if [ -n "$1" ]; then umask "$1" || exit 127; fi; shift; exec "$@"';
const PID_LINE = /^tsalt-pid:(\d+)\n/;

/** The `tsalt-pid:N` line a wrapper script writes first on stderr, taken off again. */
export function takePid(stderr: string): { pid: number; stderr: string } {
  const m = PID_LINE.exec(stderr);
  return m ? { pid: Number(m[1]), stderr: stderr.slice(m[0].length) } : { pid: 0, stderr };
}

let setprivPath: string | null | undefined;
function findSetpriv(): string | null {
  if (setprivPath === undefined) {
    setprivPath = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => fs.existsSync(p)) ?? null;
  }
  return setprivPath;
}

/**
 * `setpriv ... --` that runs the rest as `pw`: --init-groups gives the user its supplementary
 * groups, as Salt's su-based runas does (spawn's uid/gid alone would drop them). Undefined
 * without setpriv (then spawn's uid/gid is the fallback).
 */
export function asUserArgv(pw: Pick<PasswdInfo, 'uid' | 'gid'>): string[] | undefined {
  const setpriv = findSetpriv();
  return setpriv ? [setpriv, `--reuid=${pw.uid}`, `--regid=${pw.gid}`, '--init-groups', '--'] : undefined;
}

export function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

export async function runShellCommand(o: ShellCommandOptions): Promise<ShellCommandResult> {
  const shell = o.shell || '/bin/sh';
  const env: NodeJS.ProcessEnv = { ...process.env };
  let pw: PasswdInfo | undefined;
  if (o.runas !== undefined && o.runas !== '') {
    pw = await getpwnam(o.runas);
    if (!pw) throw new CommandExecutionError(`User '${o.runas}' is not available`);
    Object.assign(env, { HOME: pw.home, USER: pw.name, LOGNAME: pw.name, SHELL: pw.shell });
  }
  Object.assign(env, o.env ?? {});
  if (o.prependPath) env.PATH = env.PATH ? `${o.prependPath}:${env.PATH}` : o.prependPath;

  let cwd = o.cwd;
  if (cwd) {
    if (!cwd.startsWith('/') || !isDir(cwd)) {
      throw new CommandExecutionError(`Specified cwd '${cwd}' either not absolute or does not exist`);
    }
  } else {
    cwd = pw ? pw.home : '/root';
    if (!isDir(cwd)) cwd = '/'; // a system user's home often does not exist
  }
  if (o.umask !== undefined && !/^[0-7]{1,4}$/.test(o.umask)) {
    throw new CommandExecutionError(`Invalid umask: '${o.umask}'`);
  }

  const argv: string[] = [];
  if (o.timeoutSec !== undefined && o.timeoutSec > 0) argv.push('timeout', '-k', '5', String(o.timeoutSec));
  let uid: number | undefined;
  let gid: number | undefined;
  if (pw && pw.uid !== process.getuid?.()) {
    const as = asUserArgv(pw);
    if (as) argv.push(...as);
    else {
      uid = pw.uid;
      gid = pw.gid;
    }
  }
  argv.push('/bin/sh', '-c', WRAP, 'tsalt', o.umask ?? '', shell, '-c', o.cmd);

  const started = Date.now();
  const r = await exec(argv, {
    cwd,
    env,
    uid,
    gid,
    // backstop only: `timeout` kills the whole process group, spawn's timeout only the child
    timeoutMs: o.timeoutSec ? (o.timeoutSec + 15) * 1000 : undefined,
  });
  const { pid, stderr } = takePid(r.stderr);
  const timedOut =
    o.timeoutSec !== undefined && (r.code === 124 || r.code === 137 || r.signal !== null) && Date.now() - started >= o.timeoutSec * 1000 - 50;
  if (timedOut) {
    // Salt's cmdmod on timeout: stdout says so, retcode 1
    return { pid, retcode: 1, stdout: `Timed out after ${o.timeoutSec} seconds`, stderr: '', timedOut };
  }
  let retcode = r.signal ? 128 + (signalNumber(r.signal) ?? 0) : r.code;
  if (o.successRetcodes?.includes(retcode)) retcode = 0;
  // Salt rstrips output by default
  return { pid, retcode, stdout: r.stdout.trimEnd(), stderr: stderr.trimEnd(), timedOut };
}

function signalNumber(sig: NodeJS.Signals): number | undefined {
  return os.constants.signals[sig];
}
