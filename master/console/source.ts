/**
 * Everything the console may read, handed over by the master. There is deliberately no job
 * manager, key operation or agent connection here: the console cannot start, stop or change
 * anything, whatever request it is sent.
 */
import type { BundleEntry } from '../../engine/tree/bundle.js';
import type { Store } from '../store-api.js';
import type { ScheduleStatus } from '../schedule.js';
import type { ConfigSource } from '../tree.js';
import type { RolloutConfig } from '../rollout.js';
import { checkName } from '../verify.js';

/** Releases (git: or rollout: configured): what the releases page reads besides the store. */
export interface ConsoleReleases {
  /** what the master serves, e.g. `git repository /srv/tsalt/config.git (branch main)` */
  label: string;
  /** the id of the rollout running now, if any */
  running(): number | undefined;
  /** the rollout's target and batch, as configured */
  target: string | undefined;
  batch: string | undefined;
  /** rollout.verify checks, by name, run after each batch */
  verifyChecks: string[];
  /** the state tree's files at a revision (pillar is never asked for) */
  states(revision: string): Promise<{ revision: string; entries: BundleEntry[] }>;
}

export interface ConsoleSource {
  store: Store;
  /**
   * ids of the agents connected now, fleet-wide: to this master or, masters sharing a store, to
   * another live one (its sessions in the store)
   */
  connected(): Promise<ReadonlySet<string>>;
  /** the state tree's HEAD commit (undefined: a plain directory) */
  head(): Promise<string | undefined>;
  schedules(): ScheduleStatus[];
  nodegroups: Record<string, string | string[]>;
  /** undefined: this master does not track releases (a lab's plain state_tree) */
  releases?: ConsoleReleases;
}

export function consoleReleases(source: ConfigSource, rollout: RolloutConfig | undefined, running: () => number | undefined): ConsoleReleases {
  return {
    label: source.label,
    running,
    target: rollout ? `${rollout.tgt_type === 'glob' ? '' : `${rollout.tgt_type}:`}${rollout.target}` : undefined,
    batch: rollout ? String(rollout.batch) : undefined,
    verifyChecks: (rollout?.verify ?? []).map(checkName),
    states: async (revision) => {
      const snap = await source.snapshot(revision);
      return { revision: snap.revision, entries: snap.bundle.entries };
    },
  };
}
