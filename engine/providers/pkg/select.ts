/**
 * Which package manager runs this host: from grains `os_family` and the binaries present, or
 * forced with Salt's `providers: {pkg: dnf}` option. State modules only ever see a PkgProvider.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { HostEnv } from '../host.js';
import { AptProvider } from './apt.js';
import { DnfProvider, type DnfOptions } from './dnf.js';
import { YumProvider } from './yum.js';
import { PkgError, type PkgProvider } from './types.js';

interface Candidate {
  bins: string[];
  make(host: HostEnv, o: DnfOptions): PkgProvider;
}

const PROVIDERS: Record<string, Candidate> = {
  apt: { bins: ['apt-get', 'dpkg-query'], make: (host) => new AptProvider(host) },
  dnf: { bins: ['dnf', 'rpm'], make: (host, o) => new DnfProvider(host, o) },
  yum: { bins: ['yum', 'rpm'], make: (host, o) => new YumProvider(host, o) },
};

/** Preference per os_family: dnf where present, yum where dnf is missing. */
const BY_FAMILY: Record<string, string[]> = {
  Debian: ['apt'],
  RedHat: ['dnf', 'yum'],
};

function onPath(bin: string): boolean {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    if (!dir) continue;
    try {
      fs.accessSync(path.join(dir, bin), fs.constants.X_OK);
      return true;
    } catch {
      /* next */
    }
  }
  return false;
}

/** opts first (agent config), then grains (tests, per-host overrides). */
function setting(ctx: Pick<HostEnv, 'opts' | 'grains'>, key: string): unknown {
  return ctx.opts[key] ?? ctx.grains[key];
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' || typeof v === 'number' ? String(v) : undefined;
}

export function pkgProviderName(ctx: Pick<HostEnv, 'opts' | 'grains'>): string {
  const forced = setting(ctx, 'providers');
  const f = forced && typeof forced === 'object' ? str((forced as Record<string, unknown>).pkg) : undefined;
  if (f) {
    const name = f.replace(/pkg$/, ''); // Salt spells them aptpkg / yumpkg
    if (!PROVIDERS[name]) throw new PkgError(`unknown pkg provider '${f}' (known: ${Object.keys(PROVIDERS).join(', ')})`);
    return name;
  }
  const family = str(ctx.grains.os_family) ?? '';
  const options = BY_FAMILY[family];
  if (!options) throw new PkgError(`no package manager known for os_family '${family}' (known: ${Object.keys(BY_FAMILY).join(', ')})`);
  const found = options.find((n) => PROVIDERS[n]!.bins.every(onPath));
  if (!found) throw new PkgError(`none of ${options.join(', ')} is installed on this ${family} host`);
  return found;
}

/**
 * The run's package provider (one per run, so its memoised queries are shared by all states).
 * `pkg_installroot` / `pkg_releasever` (opts or grains) point dnf/yum at an install root.
 */
export function pkgProvider(ctx: HostEnv): Promise<PkgProvider> {
  return ctx.facts.get('pkg:provider', async () => {
    const name = pkgProviderName(ctx);
    const root = str(setting(ctx, 'pkg_installroot'));
    if (root && !path.isAbsolute(root)) throw new PkgError(`pkg_installroot must be an absolute path, got '${root}'`);
    const releasever = str(setting(ctx, 'pkg_releasever')) ?? (root ? str(ctx.grains.osmajorrelease) : undefined);
    return PROVIDERS[name]!.make(ctx, { installroot: root, releasever });
  });
}
