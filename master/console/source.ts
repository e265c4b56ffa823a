/**
 * Everything the console may read, handed over by the master. There is deliberately no job
 * manager, key operation or agent connection here: the console cannot start, stop or change
 * anything, whatever request it is sent.
 */
import type { Store } from '../store.js';
import type { ScheduleStatus } from '../schedule.js';

export interface ConsoleSource {
  store: Store;
  /** ids of the agents connected now */
  connectedIds(): ReadonlySet<string>;
  /** the state tree's HEAD commit (undefined: a plain directory) */
  head(): Promise<string | undefined>;
  schedules(): ScheduleStatus[];
  nodegroups: Record<string, string | string[]>;
}
