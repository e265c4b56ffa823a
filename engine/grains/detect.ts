/**
 * Grains for an agent: the core grains (engine/grains/core.ts: os, os_family, osrelease, init,
 * addresses, ... from the kernel and /etc) completed with what systeminformation and
 * systemd-detect-virt know better (cpu model, physical cores, fqdn, virtualisation), then the
 * YAML grains file (`roles:` lives there) and the config's static grains on top.
 */
import { exec } from '../run/exec.js';
import type { Data } from '../render/salt-functions.js';
import { coreGrains, loadGrainsFile } from './core.js';

/** Salt's names for what systemd-detect-virt prints. */
const VIRT_NAMES: Record<string, string> = {
  oracle: 'VirtualBox',
  vmware: 'VMware',
  microsoft: 'VirtualPC',
  kvm: 'kvm',
  qemu: 'kvm',
  docker: 'container',
  podman: 'container',
  lxc: 'LXC',
};

async function virtual(fallback: unknown): Promise<unknown> {
  const r = await exec(['systemd-detect-virt']).catch(() => undefined);
  const v = r?.stdout.trim();
  if (!r || !v) return fallback;
  if (v === 'none') return 'physical';
  return VIRT_NAMES[v] ?? v;
}

let detected: Promise<Data> | undefined;

/**
 * The machine's grains; detected once per process (several agents in one process share them).
 * systeminformation is loaded here, not with this module: an agent daemon with a job worker
 * has them detected there and never holds the library.
 */
export function detectGrains(): Promise<Data> {
  detected ??= (async () => {
    const { default: si } = await import('systeminformation');
    const core = coreGrains();
    const [osi, cpu, virt] = await Promise.all([si.osInfo(), si.cpu(), virtual(core.virtual)]);
    const fqdn = osi.fqdn || String(core.fqdn);
    return {
      ...core,
      osarch: core.cpuarch,
      cpu_model: `${cpu.manufacturer} ${cpu.brand}`.trim() || core.cpu_model,
      num_cpus: core.num_cpus,
      fqdn,
      domain: fqdn.split('.').slice(1).join('.'),
      virtual: virt,
    };
  })();
  return detected;
}

/** `detect`: where the machine's grains come from (default: detected in this process). */
export async function collectGrains(o: { id: string; grains_file: string; grains: Data }, detect: () => Promise<Data> = detectGrains): Promise<Data> {
  return { ...(await detect()), ...loadGrainsFile(o.grains_file), ...o.grains, id: o.id };
}

/** The grains without the grains file (when it does not parse). */
export async function grainsWithoutFile(o: { id: string; grains: Data }, detect: () => Promise<Data> = detectGrains): Promise<Data> {
  return { ...(await detect()), ...o.grains, id: o.id };
}
