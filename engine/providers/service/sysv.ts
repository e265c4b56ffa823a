/**
 * SysV init provider for hosts without systemd: `/etc/init.d/<name> start|stop|...`, running
 * when `status` exits 0 (Salt's rule), boot links through `update-rc.d` (Debian family) or
 * `chkconfig` (RedHat family), chosen by grains `os_family`.
 */
import path from 'node:path';
import { exec, type ExecResult } from '../../run/exec.js';
import type { HostEnv } from '../host.js';
import { commandError, ServiceError, serviceOpts, TIMED_OUT, withTimeout, type ActionOptions, type ServiceProvider, type ServiceStatus } from './types.js';

export const INIT_DIR = '/etc/init.d';

type Run = (argv: string[], timeoutMs?: number) => Promise<ExecResult>;

/** How one OS family records "start at boot". */
interface BootLinks {
  enabled(name: string, run: Run): Promise<boolean>;
  enable(name: string, run: Run, o: ActionOptions): Promise<void>;
  disable(name: string, run: Run, o: ActionOptions): Promise<void>;
}

async function ok(run: Run, argv: string[], timeoutMs?: number): Promise<void> {
  const r = await run(argv, timeoutMs);
  if (r.code !== 0) throw new Error(`${argv.join(' ')}: ${commandError(r.stdout, r.stderr, r.code)}`);
}

/** `runlevel` prints "N 2"; without a SysV init it prints "unknown", and Salt assumes 2. */
export function parseRunlevel(out: string): string {
  const m = /^\S+\s+([0-6S])\s*$/.exec(out.trim());
  return m?.[1] ?? '2';
}

/** Debian: enabled when the default runlevel's rc directory has an S link to the script. */
export function hasStartLink(entries: readonly string[], name: string): boolean {
  return entries.some((e) => /^S\d\d/.test(e) && e.slice(3) === name);
}

const debianLinks: BootLinks = {
  async enabled(name, run) {
    const level = parseRunlevel((await run(['runlevel'])).stdout);
    // listed through `run` so a command prefix (another mount namespace) sees its own links
    const r = await run(['ls', '-1', '--', `/etc/rc${level}.d`]);
    return r.code === 0 && hasStartLink(r.stdout.split('\n'), name);
  },
  async enable(name, run, o) {
    // `enable` only flips existing K links to S; `defaults` creates the links first (a no-op when present)
    await ok(run, ['update-rc.d', name, 'defaults'], o.timeoutMs);
    await ok(run, ['update-rc.d', name, 'enable'], o.timeoutMs);
  },
  async disable(name, run, o) {
    await ok(run, ['update-rc.d', name, 'disable'], o.timeoutMs);
  },
};

const redhatLinks: BootLinks = {
  async enabled(name, run) {
    // `chkconfig <name>` exits 0 when the service starts in the current runlevel
    return (await run(['chkconfig', name])).code === 0;
  },
  async enable(name, run, o) {
    await ok(run, ['chkconfig', '--add', name], o.timeoutMs);
    await ok(run, ['chkconfig', name, 'on'], o.timeoutMs);
  },
  async disable(name, run, o) {
    await ok(run, ['chkconfig', name, 'off'], o.timeoutMs);
  },
};

const bootLinksByFamily: Record<string, BootLinks> = {
  Debian: debianLinks,
  RedHat: redhatLinks,
  Suse: redhatLinks,
};

export class SysvProvider implements ServiceProvider {
  readonly name = 'sysv';
  private readonly links: BootLinks;
  private readonly prefix: string[];

  constructor(private readonly ctx: HostEnv) {
    const family = String(ctx.grains.os_family ?? '');
    const links = bootLinksByFamily[family];
    if (!links) {
      throw new ServiceError(
        `sysv service provider: no boot-link tool known for os_family '${family}' (known: ${Object.keys(bootLinksByFamily).join(', ')})`,
      );
    }
    this.links = links;
    this.prefix = serviceOpts(ctx).service_command_prefix ?? [];
  }

  private readonly run: Run = (argv, timeoutMs) =>
    this.ctx.exec([...this.prefix, ...withTimeout(argv, timeoutMs)], { env: { ...process.env, LC_ALL: 'C' } });

  private script(name: string): string {
    return path.join(INIT_DIR, name);
  }

  private key(name: string): string {
    return `service:sysv:${this.prefix.join('\u0000')}:${name}`;
  }

  async status(name: string, o: { sig?: string; fresh?: boolean } = {}): Promise<ServiceStatus> {
    // the process table's answer for one sig is not the script's, nor another sig's
    const key = o.sig ? `${this.key(name)}\u0000sig:${o.sig}` : this.key(name);
    if (o.fresh) this.ctx.facts.invalidate(key);
    const st = await this.ctx.facts.get(key, async (): Promise<ServiceStatus> => {
      const available = (await this.run(['test', '-x', this.script(name)])).code === 0;
      if (!available) return { available, running: false, enabled: false, togglable: true };
      // Salt: with `sig`, the process table decides; otherwise the script's status exit code
      const running = o.sig
        ? (await this.run(['pgrep', '-f', '--', o.sig])).code === 0
        : (await this.run([this.script(name), 'status'])).code === 0;
      return { available, running, enabled: await this.links.enabled(name, this.run), togglable: true };
    });
    // a missing script is not remembered: a later state of the run may install it
    if (!st.available) this.ctx.facts.invalidate(key);
    return st;
  }

  private async act(name: string, f: () => Promise<void>): Promise<void> {
    try {
      await f();
    } finally {
      // the script's status and every sig's (keys under `${key}\0`; not another service's)
      this.ctx.facts.invalidate(this.key(name));
      this.ctx.facts.invalidatePrefix(`${this.key(name)}\u0000`);
    }
  }

  private script_(verb: string, name: string, o: ActionOptions = {}): Promise<void> {
    return this.act(name, async () => {
      const r = await this.run([this.script(name), verb], o.timeoutMs);
      if (r.code === TIMED_OUT && o.timeoutMs) throw new Error(`${this.script(name)} ${verb} did not finish within ${o.timeoutMs / 1000}s`);
      if (r.code !== 0) throw new Error(`${this.script(name)} ${verb}: ${commandError(r.stdout, r.stderr, r.code)}`);
    });
  }

  start(name: string, o?: ActionOptions) {
    return this.script_('start', name, o);
  }
  stop(name: string, o?: ActionOptions) {
    return this.script_('stop', name, o);
  }
  restart(name: string, o?: ActionOptions) {
    return this.script_('restart', name, o);
  }
  reload(name: string, o?: ActionOptions) {
    return this.script_('reload', name, o);
  }
  enable(name: string, o: ActionOptions = {}) {
    return this.act(name, () => this.links.enable(name, this.run, o));
  }
  disable(name: string, o: ActionOptions = {}) {
    return this.act(name, () => this.links.disable(name, this.run, o));
  }
}
