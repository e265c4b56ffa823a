/**
 * Salt refreshes the package database once instead of before every pkg state (its "rtag"):
 * here once per process (an agent refreshes after it starts, a `tsalt local` run once per run),
 * and again whenever the metadata has gone missing (a fresh host, `rm -r /var/lib/apt/lists`).
 * Unlike Salt, the refresh waits for the first state that needs the repositories (something to
 * install, a `pkg.latest` check): a converged host's run reads only the installed set and
 * stays offline and fast.
 */
import type { HostEnv } from '../host.js';
import type { PkgProvider } from './types.js';

const key = (metadataKey: string) => `pkg:refreshed:${metadataKey}`;

/** Called by providers after every successful refresh, forced or not: the process remembers. */
export function markRefreshed(host: HostEnv, metadataKey: string): void {
  host.memory.add(key(metadataKey));
}

/** Refresh unless this process already did and the metadata is still there. */
export async function refreshOnce(host: HostEnv, p: PkgProvider): Promise<void> {
  if (host.memory.has(key(p.metadataKey)) && (await p.hasMetadata())) return;
  await p.refresh();
}
