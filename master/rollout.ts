/**
 * Automatic rollout: when the state tree's git HEAD moves (a `git push` to the repository the
 * master serves), apply the new revision to the configured target, batch by batch, stopping at
 * the first agent that fails so one bad commit does not reach the whole fleet. Rolling back is
 * pushing a revert, or `tsalt apply <target> --revision <earlier commit>`.
 *
 * The last revision rolled out is kept in SQLite: a push made while the master was down is
 * rolled out when it starts; a brand-new master only records the current HEAD.
 */
import { z } from 'zod';
import type { Logger } from '../core/log.js';
import { TargetTypeSchema } from '../protocol/messages.js';
import type { JobManager } from './jobs.js';
import type { Store } from './store.js';
import type { StateTree } from './tree.js';

export const RolloutConfigSchema = z.strictObject({
  /** who receives new revisions (Salt target syntax, as `tsalt apply`) */
  target: z.string().min(1).default('*'),
  /** how `target` is read: glob, pcre, list, grain, grain_pcre, pillar, pillar_pcre, ipcidr, compound, nodegroup */
  tgt_type: TargetTypeSchema.default('glob'),
  /** agents at a time: `N` or `N%` */
  batch: z.string().regex(/^\d+%?$/).default('25%'),
  /** stop (cancel the agents not started yet) when an agent fails or does not return */
  stop_on_failure: z.boolean().default(true),
  /** how often HEAD is looked at */
  poll_s: z.number().positive().default(5),
  /** per-agent timeout of a rollout job */
  timeout_s: z.number().positive().default(600),
});
export type RolloutConfig = z.infer<typeof RolloutConfigSchema>;

const META_KEY = 'rollout.revision';

export class Rollout {
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  constructor(
    private readonly cfg: RolloutConfig,
    private readonly tree: StateTree,
    private readonly jobs: JobManager,
    private readonly store: Store,
    private readonly log: Logger,
  ) {}

  start(): void {
    void this.check();
    this.timer = setInterval(() => void this.check(), this.cfg.poll_s * 1000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One look at HEAD; starts a rollout job when it moved. Never throws. */
  async check(): Promise<void> {
    if (this.busy) return; // a rollout is running; the next look after it sees any newer push
    this.busy = true;
    try {
      const head = await this.tree.head();
      if (!head) return;
      const last = this.store.getMeta(META_KEY);
      if (last === head) return;
      this.store.setMeta(META_KEY, head); // recorded first: a master restart never rolls it out twice
      if (last === undefined) {
        this.log.info(`rollout: first start, revision ${head.slice(0, 12)} recorded (not applied)`);
        return;
      }
      this.log.info(`rollout: revision ${last.slice(0, 12)} -> ${head.slice(0, 12)}: applying to ${this.cfg.tgt_type} ${JSON.stringify(this.cfg.target)}, batch ${this.cfg.batch}`);
      const code = await this.jobs.start(
        {
          type: 'apply',
          target: this.cfg.target,
          tgt_type: this.cfg.tgt_type,
          sls: [],
          test: false,
          batch: this.cfg.batch,
          stop_on_failure: this.cfg.stop_on_failure,
          timeout_s: this.cfg.timeout_s,
          user: 'rollout',
          revision: head,
        },
        (ev) => {
          if (ev.type === 'job_started') this.log.info(`rollout: job ${ev.jid} for ${ev.targets.length} agent(s)`);
          if (ev.type === 'error') this.log.warn(`rollout: ${ev.message}`);
        },
      );
      this.log.info(`rollout of ${head.slice(0, 12)} finished (exit ${code})`);
    } catch (e) {
      this.log.warn(`rollout: ${(e as Error).message}`);
    } finally {
      this.busy = false;
    }
  }
}
