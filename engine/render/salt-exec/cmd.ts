/**
 * Salt's cmd.run family (salt/modules/cmdmod.py) for templates. Synchronous because rendering
 * is. The command is always ONE argv element after `<shell> -c` (never pasted into a shell line
 * of ours); a list command runs directly without a shell. A template may not hang a run: the
 * default timeout is 60 s, after which the call fails with an error naming the function.
 */
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { asUserArgv, isDir, normaliseEnv, takePid } from '../../run/shell-command.js';
import { getpwnamSync, type PasswdInfo } from '../../run/nss.js';
import { bind, flag, type Data, type SaltFns } from './args.js';

const DEFAULT_TIMEOUT_S = 60;
const PARAMS = ['cmd', 'cwd', 'stdin', 'runas', 'shell', 'python_shell', 'env', 'clean_env', 'rstrip', 'timeout', 'ignore_retcode'];

export interface CmdResult {
  pid: number;
  retcode: number;
  stdout: string;
  stderr: string;
}


// Reports the pid that runs the command (Salt returns it) and, for cmd.run, folds stderr into
// stdout as Salt's stderr=subprocess.STDOUT does; then execs the real argv unchanged.
const WRAP = 'printf "tsalt-pid:%s\\n" "$$" >&2; if [ "$1" = 1 ]; then exec 2>&1; fi; shift; exec "$@"';

function run(fn: string, raw: unknown[], mergeStderr: boolean): CmdResult {
  const { a } = bind(fn, raw, PARAMS, { loose: true });
  const cmd = a.cmd;
  let argv: string[];
  const shell = a.shell === undefined || a.shell === null ? '/bin/sh' : String(a.shell);
  if (typeof cmd === 'string' && cmd !== '') {
    if (!shell.startsWith('/') || !fs.existsSync(shell)) throw new Error(`${fn}: shell '${shell}' is not an absolute path to an existing file`);
    argv = [shell, '-c', cmd];
  } else if (Array.isArray(cmd) && cmd.length > 0) {
    argv = cmd.map(String); // Salt runs a list without a shell
  } else {
    throw new Error(`${fn}: 'cmd' must be a non-empty string or list`);
  }

  let extraEnv: Record<string, string>;
  try {
    extraEnv = normaliseEnv(a.env);
  } catch (e) {
    throw new Error(`${fn}: ${(e as Error).message}`);
  }
  const env: NodeJS.ProcessEnv = flag(a.clean_env, false) ? {} : { ...process.env };
  let pw: PasswdInfo | undefined;
  if (a.runas !== undefined && a.runas !== null && a.runas !== '') {
    pw = getpwnamSync(String(a.runas));
    if (!pw) throw new Error(`${fn}: user '${String(a.runas)}' is not available`);
    Object.assign(env, { HOME: pw.home, USER: pw.name, LOGNAME: pw.name, SHELL: pw.shell });
  }
  Object.assign(env, extraEnv);

  // Salt: cwd defaults to the runas user's home (else the agent user's).
  let cwd: string;
  if (a.cwd !== undefined && a.cwd !== null && a.cwd !== '') {
    cwd = String(a.cwd);
    if (!cwd.startsWith('/') || !isDir(cwd)) throw new Error(`${fn}: specified cwd '${cwd}' either not absolute or does not exist`);
  } else {
    cwd = pw ? pw.home : (process.env.HOME ?? '/root');
    if (!isDir(cwd)) cwd = '/';
  }

  const timeout = a.timeout === undefined || a.timeout === null ? DEFAULT_TIMEOUT_S : Number(a.timeout);
  if (!Number.isFinite(timeout) || timeout <= 0) throw new Error(`${fn}: timeout must be a positive number of seconds`);

  const full: string[] = ['timeout', '-k', '5', String(timeout)];
  if (pw && pw.uid !== process.getuid?.()) {
    const as = asUserArgv(pw);
    if (!as) throw new Error(`${fn}: runas needs setpriv (util-linux)`);
    full.push(...as);
  }
  full.push('/bin/sh', '-c', WRAP, 'tsalt', mergeStderr ? '1' : '0', ...argv);

  const started = Date.now();
  const r = spawnSync(full[0]!, full.slice(1), {
    cwd,
    env,
    encoding: 'utf8',
    input: a.stdin === undefined || a.stdin === null ? '' : String(a.stdin),
    maxBuffer: 64 * 1024 * 1024,
    timeout: (timeout + 10) * 1000, // backstop: `timeout` kills the command's process group
  });
  if (r.error) throw new Error(`${fn}: could not run command: ${r.error.message}`);
  if ((r.status === 124 || r.status === 137 || r.signal) && Date.now() - started >= timeout * 1000 - 50) {
    throw new Error(`${fn}: command timed out after ${timeout} seconds`);
  }
  let { pid, stderr } = takePid(r.stderr ?? '');
  let stdout = r.stdout ?? '';
  if (flag(a.rstrip, true)) {
    stdout = stdout.trimEnd();
    stderr = stderr.trimEnd();
  }
  const retcode = r.status ?? 128;
  return { pid, retcode, stdout, stderr };
}

export function cmdFunctions(): SaltFns {
  const out = (fn: string, merge: boolean) => (...raw: unknown[]) => run(fn, raw, merge).stdout;
  return {
    'cmd.run': out('cmd.run', true),
    'cmd.shell': out('cmd.shell', true),
    'cmd.run_stdout': out('cmd.run_stdout', false),
    'cmd.run_stderr': (...raw: unknown[]) => run('cmd.run_stderr', raw, false).stderr,
    'cmd.retcode': (...raw: unknown[]) => run('cmd.retcode', raw, false).retcode,
    'cmd.run_all': (...raw: unknown[]): Data => ({ ...run('cmd.run_all', raw, false) }),
  };
}
