/**
 * Salt refreshes the package database once instead of before every pkg state (its "rtag"):
 * here once per process (an agent refreshes after it starts, a `tsalt local` run once per run),
 * and again whenever the metadata has gone missing (a fresh host, `rm -r /var/lib/apt/lists`).
 * Unlike Salt, the refresh waits for the first state that needs the repositories (something to
 * install, a `pkg.latest` check): a converged host's run reads only the installed set and
 * stays offline and fast.
 */
import type { PkgProvider } from './types.js';

/** Package databases (PkgProvider.metadataKey) refreshed by this process. */
const refreshed = new Set<string>();

/** Called by providers after every successful refresh, forced or not. */
export function markRefreshed(metadataKey: string): void {
  refreshed.add(metadataKey);
}

/** Refresh unless this process already did and the metadata is still there. */
export async function refreshOnce(p: PkgProvider): Promise<void> {
  if (refreshed.has(p.metadataKey) && (await p.hasMetadata())) return;
  await p.refresh();
}
