/**
 * A throw-away Debian 12 container with real systemd as PID 1, for service tests.
 *
 * The cached rootfs (scripts/test-setup.d/20-container-rootfs.sh) is the lower layer of an
 * overlayfs; each container writes to its own upper dir, so the cache stays clean. The host
 * has no systemd-machined (systemd is not PID 1 here), so the container is not registered and
 * `systemctl -M` cannot reach it: tests enter it with `nsenter -t <leader> -a` instead, which
 * runs the container's own systemctl against its own systemd.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { exec, execOk, type ExecResult } from '../../engine/run/exec.js';
import { tempDir } from './harness.js';

export const ROOTFS = process.env.TSALT_ROOTFS ?? '/var/cache/tsalt-test/bookworm-rootfs';
const SETUP = path.resolve(import.meta.dirname, '../../scripts/test-setup.d/20-container-rootfs.sh');

export interface Container {
  readonly name: string;
  /** PID (host namespace) of the container's systemd. */
  readonly leader: number;
  /** argv prefix that runs a command inside the container. */
  readonly prefix: string[];
  /** Host path of the container's `/`. */
  readonly root: string;
  exec(argv: string[]): Promise<ExecResult>;
  /** Write a file inside the container. */
  write(p: string, text: string): void;
  stop(): Promise<void>;
}

/** Builds the rootfs cache when missing (idempotent; minutes on the first run). */
export async function ensureRootfs(): Promise<void> {
  if (fs.existsSync(path.join(ROOTFS, '.tsalt-complete'))) return;
  await execOk(['bash', SETUP], { env: { ...process.env, TSALT_ROOTFS: ROOTFS } });
}

/** The first child of `pid` (nspawn's container leader, the guest's init). */
export function childPid(pid: number): number | undefined {
  try {
    const kids = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/);
    const k = Number(kids[0]);
    return Number.isInteger(k) && k > 0 ? k : undefined;
  } catch {
    return undefined;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface BootOptions {
  /** extra systemd-nspawn arguments (e.g. `--bind-ro=/usr/bin/node`) */
  nspawnArgs?: string[];
}

export async function bootContainer(name = `tsalt-${process.pid}-${Date.now() % 100000}`, opts: BootOptions = {}): Promise<Container> {
  await ensureRootfs();
  const dir = tempDir('tsalt-nspawn-');
  const [upper, work, root] = ['upper', 'work', 'root'].map((d) => path.join(dir, d)) as [string, string, string];
  for (const d of [upper, work, root]) fs.mkdirSync(d);
  await execOk(['mount', '-t', 'overlay', 'overlay', '-o', `lowerdir=${ROOTFS},upperdir=${upper},workdir=${work}`, root]);

  const log = fs.openSync(path.join(dir, 'console.log'), 'w');
  const proc: ChildProcess = spawn(
    'systemd-nspawn',
    ['--boot', '--quiet', '--register=no', '--keep-unit', `--machine=${name}`, `--directory=${root}`, ...(opts.nspawnArgs ?? [])],
    { stdio: ['ignore', log, log] },
  );
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  let leaderPid: number | undefined;
  const cleanup = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      // a throw-away container needs no orderly shutdown: `poweroff -ff` ends its PID 1 at once
      if (leaderPid) await exec(['nsenter', '-t', String(leaderPid), '-a', 'systemctl', 'poweroff', '-ff']);
      await Promise.race([exited, sleep(5_000)]);
    }
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM'); // nspawn --boot turns this into an orderly shutdown of the container
      await Promise.race([exited, sleep(20_000)]);
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGKILL');
        await exited;
      }
    }
    fs.closeSync(log);
    await exec(['umount', root]);
    if (!fs.existsSync(path.join(root, 'etc'))) fs.rmSync(dir, { recursive: true, force: true });
  };

  try {
    let leader: number | undefined;
    const deadline = Date.now() + 90_000;
    let state = '';
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) break;
      // re-read every time: early on nspawn's child may be its short-lived outer helper
      leader = (proc.pid ? childPid(proc.pid) : undefined) ?? leader;
      if (leader) {
        const r = await exec(['nsenter', '-t', String(leader), '-a', 'systemctl', 'is-system-running']);
        state = r.stdout.trim();
        if (state === 'running' || state === 'degraded') break;
      }
      await sleep(300);
    }
    if (!leader || (state !== 'running' && state !== 'degraded')) {
      const tail = fs.readFileSync(path.join(dir, 'console.log'), 'utf8').split('\n').slice(-20).join('\n');
      throw new Error(`container ${name} did not boot (state '${state}', nspawn exit ${proc.exitCode}):\n${tail}`);
    }
    leaderPid = leader;
    const prefix = ['nsenter', '-t', String(leader), '-a'];
    return {
      name,
      leader,
      prefix,
      root,
      exec: (argv) => exec([...prefix, ...argv]),
      write(p, text) {
        const target = path.join(root, path.resolve('/', p));
        fs.mkdirSync(path.dirname(target), { recursive: true });
        fs.writeFileSync(target, text);
      },
      stop: cleanup,
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
