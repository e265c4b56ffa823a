/**
 * The 3-tier stack on real hosts for `npm run test:stack`: one network namespace the test
 * creates, a bridge in it on a test subnet, the tsalt master on the bridge, and one
 * `systemd-nspawn --boot` container per inventory host (an overlay over the cached Debian 12
 * rootfs), each with the tsalt agent from the .deb, set up by vagrant/bootstrap.sh itself.
 *
 * Nothing leaves the namespace: the containers have no route out, their packages come from a
 * local apt repository (scripts/stack-apt-repo.sh) bind-mounted read-only, the app's npm
 * dependency from a copy of the offline npm cache, Node.js is the host's, bind-mounted.
 * nspawn is started with `nsenter --net=` (under `ip netns exec` it cannot see the cgroup
 * mount); the master and every probe run with `ip netns exec`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { exec, execOk, type ExecResult } from '../../engine/run/exec.js';
import { childPid, ensureRootfs, ROOTFS } from '../helpers/nspawn.js';
import { REPO_DIR } from './stack-helpers.js';
import { nodeBinds } from './stack-packages.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The test subnet: the inventory's 192.168.56.x moved here (pillarOnNetwork). */
export const SUBNET = { cidr: '10.56.77.0/24', prefix: '10.56.77.', bits: 24 };
export const MASTER_IP = `${SUBNET.prefix}5`;
export const VIP = `${SUBNET.prefix}10`;

export class Netns {
  readonly name = `tsalt-stack-${process.pid}`;
  readonly path = `/run/netns/${this.name}`;

  async create(): Promise<void> {
    for (const argv of [
      ['ip', 'netns', 'add', this.name],
      ['ip', '-n', this.name, 'link', 'set', 'lo', 'up'],
      ['ip', '-n', this.name, 'link', 'add', 'br0', 'type', 'bridge'],
      ['ip', '-n', this.name, 'addr', 'add', `${MASTER_IP}/${SUBNET.bits}`, 'dev', 'br0'],
      ['ip', '-n', this.name, 'link', 'set', 'br0', 'up'],
    ]) {
      await execOk(argv);
    }
  }

  /** Runs argv inside the namespace. */
  run(argv: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<ExecResult> {
    return exec(['ip', 'netns', 'exec', this.name, ...argv], { timeoutMs: opts.timeoutMs ?? 30_000, input: opts.input });
  }

  spawn(argv: string[], log: number): ChildProcess {
    return spawn('ip', ['netns', 'exec', this.name, ...argv], { stdio: ['ignore', log, log] });
  }

  async remove(): Promise<void> {
    await exec(['ip', 'netns', 'delete', this.name]);
  }
}

export interface HostSpec {
  name: string;
  ip: string;
  roles: string[];
}

export interface StackFiles {
  /** the cached apt repository (archive packages) */
  archiveRepo: string;
  /** this run's repository: the tsalt .deb and the nodejs stand-in */
  tsaltRepo: string;
  /** the offline npm cache to copy into app hosts */
  npmCache: string;
}

/** One stack host: an overlay, a booted container in the namespace, and its console log. */
export class Host {
  readonly dir: string;
  readonly root: string;
  private proc?: ChildProcess;
  private exited?: Promise<number | null>;
  leader = 0;
  private logFd = -1;

  constructor(
    readonly spec: HostSpec,
    private readonly ns: Netns,
    private readonly files: StackFiles,
    work: string,
  ) {
    this.dir = path.join(work, spec.name);
    this.root = path.join(this.dir, 'root');
  }

  get name(): string {
    return this.spec.name;
  }

  /** A fresh overlay, prepared as the VM's first boot would find it. */
  async create(): Promise<void> {
    await ensureRootfs();
    fs.rmSync(this.dir, { recursive: true, force: true });
    for (const d of ['upper', 'work', 'root']) fs.mkdirSync(path.join(this.dir, d), { recursive: true });
    await execOk(['mount', '-t', 'overlay', 'overlay', '-o', `lowerdir=${ROOTFS},upperdir=${this.dir}/upper,workdir=${this.dir}/work`, this.root]);
    const w = (p: string, text: string) => {
      const target = path.join(this.root, p);
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.writeFileSync(target, text);
    };
    const link = (p: string, to: string) => {
      const target = path.join(this.root, p);
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.rmSync(target, { force: true });
      fs.symlinkSync(to, target);
    };
    // packages: the local repositories only
    for (const f of fs.readdirSync(path.join(this.root, 'etc/apt/sources.list.d'))) fs.rmSync(path.join(this.root, 'etc/apt/sources.list.d', f));
    w('etc/apt/sources.list', 'deb [trusted=yes] file:/srv/stack-repo/archive ./\ndeb [trusted=yes] file:/srv/stack-repo/tsalt ./\n');
    // a throw-away host needs no fsync per file (dpkg's default): much faster installs
    w('etc/dpkg/dpkg.cfg.d/tsalt-test-unsafe-io', 'force-unsafe-io\n');
    // the host's address on the bridge, as the VM's private network: systemd-networkd, so
    // it comes back after a reboot by itself
    w('etc/systemd/network/10-host0.network', `[Match]\nName=host0\n\n[Network]\nAddress=${this.spec.ip}/${SUBNET.bits}\nLinkLocalAddressing=no\nIPv6AcceptRA=no\nKeepConfiguration=static\n`);
    link('etc/systemd/system/multi-user.target.wants/systemd-networkd.service', '/lib/systemd/system/systemd-networkd.service');
    link('etc/systemd/system/sockets.target.wants/systemd-networkd.socket', '/lib/systemd/system/systemd-networkd.socket');
    w('etc/hostname', `${this.name}\n`);
    w('etc/hosts', `127.0.0.1 localhost\n${this.spec.ip} ${this.name}\n`);
    // the host's Node.js and npm (bind-mounted) on the usual paths
    link('usr/bin/npm', '../lib/node_modules/npm/bin/npm-cli.js');
    if (this.spec.roles.includes('app')) fs.cpSync(this.files.npmCache, path.join(this.root, 'var/cache/tsalt-npm'), { recursive: true });
  }

  /** Boots the container (first boot or after a reboot); resolves when systemd is up. */
  async boot(): Promise<void> {
    this.logFd = fs.openSync(path.join(this.dir, 'console.log'), 'a');
    const argv = [
      `--net=${this.ns.path}`,
      'systemd-nspawn',
      '--boot',
      '--quiet',
      '--register=no',
      '--keep-unit',
      `--machine=${this.name}`,
      `--hostname=${this.name}`,
      `--directory=${this.root}`,
      '--network-bridge=br0',
      ...nodeBinds(),
      `--bind-ro=${this.files.archiveRepo}:/srv/stack-repo/archive`,
      `--bind-ro=${this.files.tsaltRepo}:/srv/stack-repo/tsalt`,
    ];
    const proc = spawn('nsenter', argv, { stdio: ['ignore', this.logFd, this.logFd] });
    this.proc = proc;
    this.exited = new Promise((r) => proc.once('exit', (code) => r(code)));
    const deadline = Date.now() + 120_000;
    let state = '';
    let leader = 0;
    while (Date.now() < deadline && proc.exitCode === null) {
      leader = childPid(proc.pid!) ?? leader;
      if (leader) {
        const r = await exec(['nsenter', '-t', String(leader), '-a', 'systemctl', 'is-system-running']);
        state = r.stdout.trim();
        if (state === 'running' || state === 'degraded') break;
      }
      await sleep(300);
    }
    if (state !== 'running' && state !== 'degraded') {
      throw new Error(`${this.name} did not boot (state '${state}', nspawn exit ${proc.exitCode}):\n${this.console(20)}`);
    }
    this.leader = leader;
  }

  console(lines: number): string {
    try {
      return fs.readFileSync(path.join(this.dir, 'console.log'), 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  /** Runs argv in the container with a clean environment (not the test process's). */
  exec(argv: string[], opts: { input?: string; timeoutMs?: number; env?: Record<string, string> } = {}): Promise<ExecResult> {
    const env = Object.entries({ PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', ...opts.env }).map(([k, v]) => `${k}=${v}`);
    return exec(['nsenter', '-t', String(this.leader), '-a', 'env', '-i', ...env, ...argv], { input: opts.input, timeoutMs: opts.timeoutMs ?? 120_000 });
  }

  async sh(script: string, timeoutMs?: number): Promise<string> {
    const r = await this.exec(['sh', '-c', script], { timeoutMs });
    if (r.code !== 0) throw new Error(`${this.name}: ${script} exited ${r.code}: ${(r.stderr || r.stdout).trim().slice(-2000)}`);
    return r.stdout.trim();
  }

  /** Runs vagrant/bootstrap.sh as the Vagrantfile does, with this host's id and roles. */
  async bootstrap(roles: string[]): Promise<string> {
    const script = fs.readFileSync(path.join(REPO_DIR, 'vagrant/bootstrap.sh'), 'utf8');
    const r = await this.exec(['bash', '-s'], {
      input: script,
      timeoutMs: 300_000,
      env: { TSALT_ROLE: 'agent', TSALT_ID: this.name, TSALT_MASTER: MASTER_IP, TSALT_ROLES: roles.join(','), TSALT_SRC: '/nonexistent', TSALT_PKG_DIR: '/srv/stack-repo/tsalt' },
    });
    if (r.code !== 0) throw new Error(`${this.name}: bootstrap.sh exited ${r.code}: ${(r.stderr || r.stdout).slice(-2000)}`);
    return r.stdout + r.stderr;
  }

  /** Addresses on the container's host0, read from the host side (no iproute2 needed inside). */
  async addresses(): Promise<string[]> {
    const r = await exec(['nsenter', '-t', String(this.leader), '-n', 'ip', '-4', '-o', 'addr', 'show', 'dev', 'host0']);
    return [...r.stdout.matchAll(/inet (\S+)\//g)].map((m) => m[1]!);
  }

  /** `systemctl reboot` inside; nspawn then exits with 133 and is started again, as its unit would. */
  async reboot(): Promise<void> {
    const exited = this.exited!;
    await this.exec(['systemctl', 'reboot'], { timeoutMs: 10_000 });
    const code = await Promise.race([exited, sleep(120_000).then(() => 'timeout' as const)]);
    if (code !== 133) throw new Error(`${this.name}: nspawn ended with ${code} on reboot, not 133:\n${this.console(20)}`);
    fs.closeSync(this.logFd);
    await this.boot();
  }

  /** Stops the container (at once), unmounts and deletes the overlay. Safe to call twice. */
  async destroy(): Promise<void> {
    const proc = this.proc;
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      if (this.leader) await exec(['nsenter', '-t', String(this.leader), '-a', 'systemctl', 'poweroff', '-ff'], { timeoutMs: 10_000 });
      await Promise.race([this.exited, sleep(10_000)]);
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGKILL');
        await Promise.race([this.exited, sleep(10_000)]);
      }
    }
    if (this.logFd >= 0) {
      try {
        fs.closeSync(this.logFd);
      } catch {
        /* closed already */
      }
      this.logFd = -1;
    }
    await exec(['umount', this.root]);
    if (!fs.existsSync(path.join(this.root, 'etc'))) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * The tsalt master on the bridge, from this repository's build, serving states and pillar from
 * a bare git repository (`git:`), as operators run it: the test pushes to it.
 */
export class Master {
  readonly dir: string;
  readonly config: string;
  readonly socket: string;
  private proc?: ChildProcess;
  private logFd = -1;

  constructor(
    private readonly ns: Netns,
    work: string,
    /** the bare repository (states/ and pillar/ in it) */
    private readonly repo: string,
  ) {
    this.dir = path.join(work, 'master');
    this.config = path.join(this.dir, 'master.yaml');
    this.socket = path.join(this.dir, 'master.sock');
  }

  /** Starts the master; `extra` is more master.yaml (e.g. a `rollout:` section). */
  async start(extra = ''): Promise<void> {
    fs.mkdirSync(this.dir, { recursive: true });
    fs.writeFileSync(
      this.config,
      [
        `interface: ${MASTER_IP}`,
        'port: 4506',
        `pki_dir: ${this.dir}/pki`,
        `db: ${this.dir}/master.db`,
        `socket: ${this.socket}`,
        `git: {repo: ${this.repo}, branch: main, states_dir: states, pillar_dir: pillar}`,
        'timeout_s: 900',
        // Prometheus on mon1 scrapes it (pillar prometheus:tsalt_master)
        `metrics: {interface: ${MASTER_IP}, port: 9506}`,
        extra,
        '',
      ].join('\n'),
    );
    fs.rmSync(this.socket, { force: true });
    this.logFd = fs.openSync(path.join(this.dir, 'master.log'), 'a');
    this.proc = this.ns.spawn([process.execPath, path.join(REPO_DIR, 'bin/tsalt.js'), 'master', '--config', this.config], this.logFd);
    for (let i = 0; i < 100; i++) {
      if (fs.existsSync(this.socket)) return;
      if (this.proc.exitCode !== null) break;
      await sleep(100);
    }
    throw new Error(`the master did not start:\n${this.log()}`);
  }

  log(chars = 4000): string {
    try {
      return fs.readFileSync(path.join(this.dir, 'master.log'), 'utf8').slice(-chars);
    } catch {
      return '';
    }
  }

  /** `tsalt <args>` against this master (the CLI over its Unix socket). */
  cli(args: string[], timeoutMs = 900_000): Promise<ExecResult> {
    return exec([process.execPath, path.join(REPO_DIR, 'bin/tsalt.js'), ...args, '--socket', this.socket], { timeoutMs });
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (p && p.exitCode === null && p.signalCode === null) {
      const done = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await Promise.race([done, sleep(10_000)]);
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    }
    if (this.logFd >= 0) fs.closeSync(this.logFd);
    this.logFd = -1;
  }
}
