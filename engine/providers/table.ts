/**
 * The providers a run uses, injectable in the run base: by default the tables in pkg/select.ts
 * and service/select.ts pick them from grains and options; fixture tests pass their own.
 */
import type { HostEnv } from './host.js';
import { pkgProvider } from './pkg/select.js';
import type { PkgProvider } from './pkg/types.js';
import { serviceProvider } from './service/select.js';
import type { ServiceProvider } from './service/types.js';

export interface Providers {
  /** The run's package manager (one per run: its memoised queries are shared by all states). */
  pkg(host: HostEnv): Promise<PkgProvider>;
  service(host: HostEnv): ServiceProvider;
}

export const defaultProviders: Providers = { pkg: pkgProvider, service: serviceProvider };
