/**
 * Core grains from the kernel and /etc, without spawning a process: what states and top files
 * match on (os, os_family, osrelease, init, ipv4, roles from the grains file, ...). Cheap
 * enough to compute on every run; richer hardware facts come from systeminformation on agents.
 */
import fs from 'node:fs';
import os from 'node:os';
import { loadSaltYaml } from '../render/salt-yaml.js';
import * as z from 'zod/mini';

export type Grains = Record<string, unknown>;

const FAMILY: Record<string, string> = {
  centos: 'RedHat',
  rhel: 'RedHat',
  rocky: 'RedHat',
  almalinux: 'RedHat',
  fedora: 'RedHat',
  ol: 'RedHat',
  amzn: 'RedHat',
  debian: 'Debian',
  ubuntu: 'Debian',
  raspbian: 'Debian',
  linuxmint: 'Debian',
  sles: 'Suse',
  opensuse: 'Suse',
  'opensuse-leap': 'Suse',
  arch: 'Arch',
  alpine: 'Alpine',
};

const OS_NAME: Record<string, string> = {
  centos: 'CentOS',
  rhel: 'RedHat',
  rocky: 'Rocky',
  almalinux: 'AlmaLinux',
  fedora: 'Fedora',
  debian: 'Debian',
  ubuntu: 'Ubuntu',
  amzn: 'Amazon',
};

function readOsRelease(file = '/etc/os-release'): Record<string, string> {
  try {
    const out: Record<string, string> = {};
    for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
      const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
      if (m) out[m[1]!] = m[2]!.replace(/^["']|["']$/g, '');
    }
    return out;
  } catch {
    return {};
  }
}

function osrelease(rel: Record<string, string>): string {
  // Debian keeps the point release in /etc/debian_version; Salt reports that
  if (rel.ID === 'debian') {
    try {
      return fs.readFileSync('/etc/debian_version', 'utf8').trim();
    } catch {
      /* fall through */
    }
  }
  return rel.VERSION_ID ?? '';
}

function addresses(): { ipv4: string[]; ipv6: string[]; ip_interfaces: Record<string, string[]> } {
  const ipv4: string[] = [];
  const ipv6: string[] = [];
  const ip_interfaces: Record<string, string[]> = {};
  for (const [name, list] of Object.entries(os.networkInterfaces())) {
    for (const a of list ?? []) {
      (a.family === 'IPv4' ? ipv4 : ipv6).push(a.address);
      (ip_interfaces[name] ??= []).push(a.address);
    }
  }
  return { ipv4, ipv6, ip_interfaces };
}

function initSystem(): string {
  if (fs.existsSync('/run/systemd/system')) return 'systemd';
  try {
    const comm = fs.readFileSync('/proc/1/comm', 'utf8').trim();
    if (comm === 'systemd') return 'systemd';
    if (comm === 'init') return 'sysvinit';
    // containers and sandboxes run other things as pid 1; Salt says 'unknown' then
    return 'unknown';
  } catch {
    return 'unknown';
  }
}

function virtual(): string {
  try {
    const env = fs.readFileSync('/proc/1/environ', 'utf8');
    if (/container=/.test(env)) return 'container';
  } catch {
    /* not readable */
  }
  try {
    const vendor = fs.readFileSync('/sys/class/dmi/id/sys_vendor', 'utf8').trim();
    if (/QEMU|KVM/i.test(vendor)) return 'kvm';
    if (/VMware/i.test(vendor)) return 'VMware';
    if (/innotek|VirtualBox/i.test(vendor)) return 'VirtualBox';
    if (/Microsoft/i.test(vendor)) return 'HyperV';
  } catch {
    /* no DMI */
  }
  return 'physical';
}

export function coreGrains(): Grains {
  const rel = readOsRelease();
  const id = (rel.ID ?? 'unknown').toLowerCase();
  const release = osrelease(rel);
  const host = os.hostname();
  const cpus = os.cpus();
  return {
    id: host,
    host: host.split('.')[0],
    nodename: host,
    fqdn: host,
    localhost: host,
    kernel: os.type(),
    kernelrelease: os.release(),
    cpuarch: os.arch() === 'x64' ? 'x86_64' : os.arch() === 'arm64' ? 'aarch64' : os.arch(),
    os: OS_NAME[id] ?? rel.NAME?.split(' ')[0] ?? id,
    os_family: FAMILY[id] ?? FAMILY[(rel.ID_LIKE ?? '').split(' ')[0] ?? ''] ?? 'Unknown',
    osfullname: rel.NAME ?? id,
    osrelease: release,
    osmajorrelease: Number.parseInt(release, 10) || release,
    osfinger: `${rel.NAME ?? id}-${release.split('.')[0]}`,
    oscodename: rel.VERSION_CODENAME ?? '',
    num_cpus: cpus.length,
    cpu_model: cpus[0]?.model ?? '',
    mem_total: Math.round(os.totalmem() / 1024 / 1024),
    init: initSystem(),
    virtual: virtual(),
    ...addresses(),
    path: process.env.PATH ?? '',
    shell: '/bin/sh',
    // the Salt release whose behaviour tsalt follows (docs/sls.md): formulas compare these
    ...SALT_COMPAT_GRAINS,
  };
}

/**
 * What formulas test to pick code paths: tsalt follows Salt 3006 (the LTS line), and reports the
 * Python version that release's onedir package ships.
 */
export const SALT_COMPAT_GRAINS = {
  saltversion: '3006.9',
  saltversioninfo: [3006, 9],
  pythonversion: [3, 10, 14, 'final', 0],
  tsaltversion: '0.1.0',
} as const;

/** The grains file's text; undefined when there is no file. */
export function grainsFileText(file: string): string | undefined {
  try {
    // no file is the common case, on every state run: answered without an ENOENT error's stack
    if (!fs.statSync(file, { throwIfNoEntry: false })) return undefined;
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** /etc/tsalt/grains (YAML mapping; `roles:` lives there). Static grains override computed ones. */
export const GrainsFileSchema = z.record(z.string(), z.unknown());

export function loadGrainsFile(file: string): Grains {
  const text = grainsFileText(file);
  if (text === undefined) return {};
  const data = loadSaltYaml(text, file) ?? {};
  const r = GrainsFileSchema.safeParse(data);
  if (!r.success) throw new Error(`${file}: grains file must be a YAML mapping of grain names to values`);
  // YAML lets an anchor hold its own alias (`site: &s {self: *s}`): it parses, but no grain can
  // be sent, stored or printed as JSON
  if (refersToItself(r.data)) throw new Error(`${file}: grains file refers to itself (an alias inside its own anchor)`);
  return r.data;
}

/** A value that contains itself (aliases shared between branches are fine: they end). */
function refersToItself(v: unknown, open = new Set<object>()): boolean {
  if (v === null || typeof v !== 'object') return false;
  if (open.has(v)) return true;
  open.add(v);
  for (const x of Object.values(v)) if (refersToItself(x, open)) return true;
  open.delete(v);
  return false;
}
