/**
 * Grains: facts about this machine under Salt's grain names (os, os_family, osrelease,
 * osmajorrelease, kernel, kernelrelease, cpu_model, num_cpus, mem_total, ipv4, ipv6, host,
 * fqdn, nodename, virtual, init, ...), from systeminformation and /etc/os-release, merged with
 * the YAML grains file (`roles:` lives there) and the config's static grains.
 */
import fs from 'node:fs';
import YAML from 'yaml';
import si from 'systeminformation';
import { exec } from './run/exec.js';
import type { Data } from './render/salt-functions.js';

function osRelease(): Record<string, string> {
  const out: Record<string, string> = {};
  try {
    for (const line of fs.readFileSync('/etc/os-release', 'utf8').split('\n')) {
      const m = /^([A-Z_]+)=(.*)$/.exec(line);
      if (m) out[m[1]!] = m[2]!.replace(/^"(.*)"$/, '$1');
    }
  } catch {
    // not every system has it; grains then come from systeminformation alone
  }
  return out;
}

/** Salt's `os` grain from os-release ID. */
const OS_NAMES: Record<string, string> = {
  debian: 'Debian',
  ubuntu: 'Ubuntu',
  centos: 'CentOS',
  rhel: 'RedHat',
  rocky: 'Rocky',
  almalinux: 'AlmaLinux',
  fedora: 'Fedora',
  ol: 'OEL',
  amzn: 'Amazon',
  opensuse: 'SUSE',
  sles: 'SUSE',
  arch: 'Arch',
  alpine: 'Alpine',
};
const FAMILY: Record<string, string> = {
  Debian: 'Debian',
  Ubuntu: 'Debian',
  CentOS: 'RedHat',
  'CentOS Stream': 'RedHat',
  RedHat: 'RedHat',
  Rocky: 'RedHat',
  AlmaLinux: 'RedHat',
  Fedora: 'RedHat',
  OEL: 'RedHat',
  Amazon: 'RedHat',
  SUSE: 'Suse',
  Arch: 'Arch',
  Alpine: 'Alpine',
};

async function virtual(): Promise<string> {
  const r = await exec(['systemd-detect-virt']).catch(() => undefined);
  const v = r?.stdout.trim();
  if (!v || v === 'none') return 'physical';
  // Salt's names for the common ones
  return ({ oracle: 'VirtualBox', vmware: 'VMware', microsoft: 'VirtualPC', 'systemd-nspawn': 'systemd-nspawn', docker: 'container', podman: 'container', lxc: 'LXC' } as Record<string, string>)[v] ?? v;
}

let detected: Promise<Data> | undefined;

/** The machine's grains; detected once per process (several agents in one process share them). */
export function detectGrains(): Promise<Data> {
  detected ??= (async () => {
    const rel = osRelease();
    const [osi, cpu, mem, nics, virt] = await Promise.all([si.osInfo(), si.cpu(), si.mem(), si.networkInterfaces(), virtual()]);
    const id = (rel.ID ?? '').toLowerCase();
    let os = OS_NAMES[id] ?? (rel.NAME || osi.distro);
    if (id === 'centos' && /stream/i.test(rel.NAME ?? rel.PRETTY_NAME ?? '')) os = 'CentOS Stream';
    const osrelease = rel.VERSION_ID ?? osi.release;
    const list = Array.isArray(nics) ? nics : [nics];
    const ipv4 = list.map((n) => n.ip4).filter(Boolean);
    const ipv6 = list.map((n) => n.ip6).filter(Boolean);
    const ip_interfaces: Data = {};
    for (const n of list) ip_interfaces[n.iface] = [n.ip4, n.ip6].filter(Boolean);
    return {
      kernel: osi.platform === 'linux' ? 'Linux' : osi.platform,
      kernelrelease: osi.kernel,
      os,
      os_family: FAMILY[os] ?? os,
      osfullname: rel.NAME ?? osi.distro,
      osrelease,
      osmajorrelease: Number.parseInt(String(osrelease).split('.')[0] ?? '', 10) || osrelease,
      oscodename: rel.VERSION_CODENAME ?? osi.codename,
      osarch: osi.arch === 'x64' ? 'x86_64' : osi.arch,
      cpuarch: osi.arch === 'x64' ? 'x86_64' : osi.arch,
      cpu_model: `${cpu.manufacturer} ${cpu.brand}`.trim(),
      num_cpus: cpu.cores,
      mem_total: Math.round(mem.total / 1024 / 1024),
      host: osi.hostname.split('.')[0],
      nodename: osi.hostname,
      fqdn: osi.fqdn || osi.hostname,
      domain: (osi.fqdn || '').split('.').slice(1).join('.'),
      ipv4,
      ipv6,
      ip_interfaces,
      virtual: virt,
      init: fs.existsSync('/run/systemd/system') ? 'systemd' : 'unknown',
    };
  })();
  return detected;
}

/** The YAML grains file; missing is fine, unreadable or not a mapping is an error naming it. */
export function loadGrainsFile(file: string): Data {
  if (!fs.existsSync(file)) return {};
  const v: unknown = YAML.parse(fs.readFileSync(file, 'utf8'));
  if (v === null || v === undefined) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new Error(`${file}: grains must be a YAML mapping`);
  return v as Data;
}

export async function collectGrains(o: { id: string; grains_file: string; grains: Data }): Promise<Data> {
  return { ...(await detectGrains()), ...loadGrainsFile(o.grains_file), ...o.grains, id: o.id };
}
