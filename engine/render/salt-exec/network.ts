/**
 * Salt's network.* lookups (salt/modules/network.py, salt/utils/network.py) from
 * os.networkInterfaces(): addresses sorted numerically as Python's ipaddress sorts them,
 * loopback left out unless asked for.
 */
import net from 'node:net';
import os from 'node:os';
import { spawnSync } from 'node:child_process';
import { bind, flag, str, type SaltFns } from './args.js';

type Family = 4 | 6;

/** An address as a number (IPv4 32 bits, IPv6 128 bits); undefined if not an address. */
export function ipToBig(ip: string): { fam: Family; n: bigint } | undefined {
  const s = ip.split('%')[0]!;
  if (net.isIPv4(s)) return { fam: 4, n: s.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n) };
  if (!net.isIPv6(s)) return undefined;
  let words: string[];
  let v6 = s;
  let tail: number[] = [];
  const m = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(v6);
  if (m) {
    const v4 = ipToBig(m[2]!)!.n;
    tail = [Number(v4 >> 16n), Number(v4 & 0xffffn)];
    v6 = m[1]!.endsWith('::') ? m[1]! : m[1]!.slice(0, -1);
  }
  const [head, rest] = v6.split('::') as [string, string | undefined];
  const hw = head ? head.split(':') : [];
  if (rest === undefined) words = hw;
  else {
    const rw = rest ? rest.split(':') : [];
    words = [...hw, ...Array(8 - tail.length - hw.length - rw.length).fill('0'), ...rw];
  }
  const all = [...words.map((w) => parseInt(w, 16)), ...tail];
  return { fam: 6, n: all.reduce((acc, w) => (acc << 16n) | BigInt(w), 0n) };
}

export interface Cidr {
  fam: Family;
  net: bigint;
  mask: bigint;
}

export function parseCidr(fn: string, cidr: string): Cidr {
  const [addr, len] = cidr.split('/');
  const ip = ipToBig(addr ?? '');
  if (!ip) throw new Error(`${fn}: invalid network '${cidr}'`);
  const bits = ip.fam === 4 ? 32 : 128;
  const plen = len === undefined ? bits : Number(len);
  if (!/^\d+$/.test(len ?? String(bits)) || plen > bits) throw new Error(`${fn}: invalid network '${cidr}'`);
  const mask = plen === 0 ? 0n : ((1n << BigInt(plen)) - 1n) << BigInt(bits - plen);
  return { fam: ip.fam, net: ip.n & mask, mask };
}

export function inCidr(ip: string, c: Cidr): boolean {
  const a = ipToBig(ip);
  return !!a && a.fam === c.fam && (a.n & c.mask) === c.net;
}

// Python ipaddress's is_private networks (3.11+); parsed on first use, not at load: parsing
// them compiles Node's IPv6 pattern, a cost every run paid for a lookup few trees make
let privateNets: Cidr[] | undefined;
const PRIVATE = (): Cidr[] => (privateNets ??= [
  '0.0.0.0/8', '10.0.0.0/8', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.0.0.0/29', '192.0.0.170/31',
  '192.0.2.0/24', '192.168.0.0/16', '198.18.0.0/15', '198.51.100.0/24', '203.0.113.0/24', '240.0.0.0/4', '255.255.255.255/32',
  '::1/128', '::/128', '::ffff:0:0/96', '100::/64', '2001::/23', '2001:2::/48', '2001:db8::/32', '2001:10::/28', 'fc00::/7', 'fe80::/10',
].map((c) => parseCidr('network', c)));

export function isPrivate(ip: string): boolean {
  return PRIVATE().some((c) => inCidr(ip, c));
}

function isLoopback(ip: string): boolean {
  const a = ipToBig(ip);
  if (!a) return false;
  return a.fam === 4 ? a.n >> 24n === 127n : a.n === 1n;
}

function sortIps(ips: Iterable<string>): string[] {
  return [...new Set(ips)].sort((x, y) => {
    const a = ipToBig(x)!.n;
    const b = ipToBig(y)!.n;
    return a < b ? -1 : a > b ? 1 : 0;
  });
}

function addrs(fam: Family, interfaceName: unknown, includeLoopback: boolean): string[] {
  const all = os.networkInterfaces();
  let names = Object.keys(all);
  if (interfaceName !== undefined && interfaceName !== null) {
    if (!Object.prototype.hasOwnProperty.call(all, String(interfaceName))) return []; // Salt logs and returns []
    names = [String(interfaceName)];
  }
  const out: string[] = [];
  for (const n of names) {
    for (const i of all[n] ?? []) {
      if (i.family !== (fam === 4 ? 'IPv4' : 'IPv6')) continue;
      if (!includeLoopback && isLoopback(i.address)) continue;
      out.push(i.address);
    }
  }
  return sortIps(out);
}

function ipAddrs(fn: string, fam: Family) {
  return (...raw: unknown[]) => {
    const { a } = bind(fn, raw, ['interface', 'include_loopback', 'cidr', 'type']);
    const list = addrs(fam, a.interface, flag(a.include_loopback, false));
    if (a.cidr !== undefined && a.cidr !== null && a.cidr !== '') {
      const c = parseCidr(fn, String(a.cidr));
      return list.filter((ip) => inCidr(ip, c));
    }
    if (a.type === 'public') return list.filter((ip) => !isPrivate(ip));
    if (a.type === 'private') return list.filter((ip) => isPrivate(ip));
    return list;
  };
}

/** Salt's get_fqhostname: getaddrinfo(hostname, AI_CANONNAME)'s canonical name, else the hostname. */
function fqdn(): string {
  const host = os.hostname();
  const r = spawnSync('getent', ['ahosts', '--', host], { encoding: 'utf8', timeout: 10_000 });
  const canon = r.status === 0 ? r.stdout.split('\n')[0]?.trim().split(/\s+/)[2] : undefined;
  return canon || host;
}

export function networkFunctions(): SaltFns {
  return {
    'network.ip_addrs': ipAddrs('network.ip_addrs', 4),
    'network.ipaddrs': ipAddrs('network.ipaddrs', 4),
    'network.ip_addrs6': ipAddrs('network.ip_addrs6', 6),
    'network.ipaddrs6': ipAddrs('network.ipaddrs6', 6),
    'network.interface_ip': (...raw) => {
      const iface = str('network.interface_ip', bind('network.interface_ip', raw, ['iface']).a, 'iface');
      const all = os.networkInterfaces();
      if (!Object.prototype.hasOwnProperty.call(all, iface)) {
        throw new Error(`network.interface_ip: interface "${iface}" not in available interfaces: ${Object.keys(all).sort().join(', ')}`);
      }
      return (all[iface] ?? []).find((i) => i.family === 'IPv4')?.address ?? '';
    },
    'network.get_hostname': (...raw) => {
      bind('network.get_hostname', raw, []);
      return os.hostname();
    },
    'network.get_fqdn': (...raw) => {
      bind('network.get_fqdn', raw, []);
      return fqdn();
    },
    'network.in_subnet': (...raw) => {
      const cidr = str('network.in_subnet', bind('network.in_subnet', raw, ['cidr']).a, 'cidr');
      const c = parseCidr('network.in_subnet', cidr);
      // Salt checks the host's non-loopback addresses of both families
      return [...addrs(4, undefined, false), ...addrs(6, undefined, false)].some((ip) => inCidr(ip, c));
    },
  };
}
