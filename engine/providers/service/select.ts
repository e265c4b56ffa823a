/**
 * Which service provider a host uses: Salt's `providers: {service: ...}` override first, then
 * grains `init`. A table, not branches, so adding an init system is one line.
 */
import type { HostEnv } from '../host.js';
import { SystemdProvider } from './systemd.js';
import { SysvProvider } from './sysv.js';
import { ServiceError, serviceOpts, type ServiceProvider, type ServiceProviderFactory } from './types.js';

const factories: Record<string, ServiceProviderFactory> = {
  // grains `init` values
  systemd: (ctx) => new SystemdProvider(ctx),
  sysvinit: (ctx) => new SysvProvider(ctx),
  // Salt's provider module names, as written in `providers:` overrides
  systemd_service: (ctx) => new SystemdProvider(ctx),
  sysv: (ctx) => new SysvProvider(ctx),
  service: (ctx) => new SysvProvider(ctx),
  debian_service: (ctx) => new SysvProvider(ctx),
  rh_service: (ctx) => new SysvProvider(ctx),
};

/** The provider's name for `init` / the override, or undefined when none fits. */
export function providerKey(init: unknown, override: string | undefined): string | undefined {
  const key = override ?? (typeof init === 'string' ? init : undefined);
  return key !== undefined && Object.prototype.hasOwnProperty.call(factories, key) ? key : undefined;
}

export function serviceProvider(ctx: HostEnv): ServiceProvider {
  const override = serviceOpts(ctx).providers?.service;
  const key = providerKey(ctx.grains.init, override);
  if (!key) {
    const what = override ? `providers.service '${override}'` : `grains init '${String(ctx.grains.init ?? '')}'`;
    throw new ServiceError(
      `no service provider for ${what}; known: ${Object.keys(factories).sort().join(', ')} (set grains 'init' or opts providers.service)`,
    );
  }
  try {
    return factories[key]!(ctx);
  } catch (e) {
    throw e instanceof ServiceError ? e : new ServiceError(e instanceof Error ? e.message : String(e));
  }
}
