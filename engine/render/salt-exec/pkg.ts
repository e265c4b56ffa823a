/**
 * Salt's pkg.version (aptpkg/yumpkg -> pkg_resource.version): the installed version of each
 * name, '' when not installed, a {name: version} dict for several names. One dpkg-query or rpm
 * call, chosen from grains['os_family'].
 */
import { spawnSync } from 'node:child_process';
import { bind, type Data, type SaltFns } from './args.js';

const RPM_FAMILIES = new Set(['RedHat', 'Suse', 'Mandriva']);
// a package name (optionally :arch); anything else (globs, options) is refused
const NAME = /^[A-Za-z0-9][A-Za-z0-9.+_-]*(:[A-Za-z0-9_-]+)?$/;

function query(fn: string, osFamily: string, names: string[]): Map<string, string[]> {
  const found = new Map<string, string[]>();
  const add = (k: string, v: string) => {
    const l = found.get(k) ?? [];
    if (!l.includes(v)) l.push(v);
    found.set(k, l);
  };
  if (osFamily === 'Debian') {
    const r = spawnSync('dpkg-query', ['-W', '-f=${Package}\t${Architecture}\t${db:Status-Status}\t${Version}\n', '--', ...names], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    if (r.error) throw new Error(`${fn}: could not run dpkg-query: ${r.error.message}`);
    // exit 1 only means some names are unknown; the known ones are still listed
    for (const line of r.stdout.split('\n')) {
      const [pkg, arch, status, version] = line.split('\t');
      if (!pkg || status !== 'installed' || !version) continue;
      add(pkg, version);
      add(`${pkg}:${arch}`, version);
    }
  } else if (RPM_FAMILIES.has(osFamily)) {
    const r = spawnSync('rpm', ['-q', '--qf', '%{NAME}\t%{EPOCH}\t%{VERSION}-%{RELEASE}\t%{ARCH}\n', '--', ...names], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    if (r.error) throw new Error(`${fn}: could not run rpm: ${r.error.message}`);
    for (const line of r.stdout.split('\n')) {
      const [pkg, epoch, vr, arch] = line.split('\t'); // "package x is not installed" has no tabs
      if (!pkg || !vr) continue;
      const v = epoch && epoch !== '(none)' && epoch !== '0' ? `${epoch}:${vr}` : vr;
      add(pkg, v);
      add(`${pkg}.${arch}`, v);
    }
  } else {
    throw new Error(`${fn}: not supported on os_family '${osFamily}'`);
  }
  return found;
}

export function pkgFunctions(grains: Data): SaltFns {
  return {
    'pkg.version': (...raw) => {
      // Salt's pkg.version(*names, **kwargs): kwargs such as fromrepo do not change the answer
      const { rest } = bind('pkg.version', raw, [], { varargs: true, loose: true });
      const names = rest.map(String);
      if (names.length === 0) throw new Error('pkg.version: must pass at least one package name');
      for (const n of names) if (!NAME.test(n)) throw new Error(`pkg.version: invalid package name '${n}'`);
      const found = query('pkg.version', String(grains.os_family ?? ''), names);
      const version = (n: string) => (found.get(n) ?? []).join(',');
      if (names.length === 1) return version(names[0]!);
      return Object.fromEntries(names.map((n) => [n, version(n)]));
    },
  };
}
