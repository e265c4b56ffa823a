/**
 * The one way tsalt starts programs: argv arrays, never a shell line built from data.
 * (cmd.run passes the user's command to `/bin/sh -c` as one argv element, as Salt does.)
 */
import { spawn } from 'node:child_process';
import { jobSignal } from './abort.js';

export interface ExecOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string | Buffer;
  uid?: number;
  gid?: number;
  timeoutMs?: number;
}

export interface ExecResult {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function exec(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const [cmd, ...args] = argv;
  if (!cmd) return Promise.reject(new Error('exec: empty argv'));
  const signal = jobSignal();
  if (signal?.aborted) return Promise.resolve({ code: 143, signal: 'SIGTERM', stdout: '', stderr: 'not started: the job was killed' });
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      uid: opts.uid,
      gid: opts.gid,
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: opts.timeoutMs,
      // a killable job's programs get their own process group, so a kill reaches their children
      detached: signal !== undefined,
    });
    let killTimer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      const group = (sig: NodeJS.Signals) => {
        try {
          if (child.pid) process.kill(-child.pid, sig);
        } catch {
          /* already gone */
        }
      };
      group('SIGTERM');
      killTimer = setTimeout(() => group('SIGKILL'), 5000);
      killTimer.unref();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    child.on('close', () => {
      signal?.removeEventListener('abort', onAbort);
      clearTimeout(killTimer);
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({
        code: code ?? 128,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      }),
    );
    child.stdin.on('error', () => {}); // a child that exits without reading stdin is fine
    child.stdin.end(opts.input ?? '');
  });
}

/** exec, and throw with the program's stderr when it fails. */
export async function execOk(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const r = await exec(argv, opts);
  if (r.code !== 0) {
    const msg = (r.stderr || r.stdout).trim().split('\n').slice(-5).join('\n');
    throw new Error(`${argv.join(' ')} exited ${r.code}${msg ? `: ${msg}` : ''}`);
  }
  return r;
}

/**
 * A name about to reach a program as an operand (package, user, group, npm package...). One
 * starting with '-' would be read as an option (`-oDPkg::Pre-Invoke::=...`); the states refuse
 * such names at compile time, and this last check keeps any other path from passing one.
 * Where the program supports it the caller also puts `--` before the operands.
 */
export function operands<T extends string>(what: string, names: readonly T[]): T[] {
  const bad = names.filter((n) => n.startsWith('-'));
  if (bad.length) throw new Error(`refusing ${what} ${bad.map((n) => `'${n}'`).join(', ')}: a name starting with '-' would reach the program as an option`);
  return [...names];
}
