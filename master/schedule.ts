/**
 * Scheduled jobs on the master (Salt's `schedule:` in the master config): each entry starts a
 * job every N seconds/minutes/hours/days, typically a highstate that corrects drift. Jobs go
 * through JobManager.start like `tsalt apply`/`tsalt run`, started by `schedule:<name>`.
 *
 * Ticks are anchored (start + k * interval, so a slow job or splay does not drift the clock);
 * splay adds a fresh random 0..N seconds to each run. A tick that finds the schedule's previous
 * job still running is skipped (Salt's default maxrunning: 1), never run alongside. The last run
 * (time and jid) is kept in the store's meta table, so a restart does not reset the clock: the
 * next run is the last one plus the interval, at once if that passed while the master was down.
 */
import * as z from 'zod';
import { createTask, validate, type ScheduledTask } from 'node-cron';
import type { Logger } from '../core/log.js';
import { TargetTypeSchema, type CliRequest } from '../protocol/cli-messages.js';
import type { JobManager } from './jobs.js';
import type { Store } from './store-api.js';
import { BatchSchema } from './rollout.js';
import type { Leases } from './leases.js';

const Interval = z.number().nonnegative().finite();
const Names = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);

export const ScheduleEntrySchema = z
  .strictObject({
    /** state.highstate, state.apply (with or without sls), state.sls (with sls) or cmd.run (with arg) */
    function: z.enum(['state.highstate', 'state.apply', 'state.sls', 'cmd.run']),
    /** Salt target syntax, as `tsalt apply` */
    target: z.string().min(1).max(10_000).default('*'),
    /** how `target` is read: glob, pcre, list, grain, grain_pcre, pillar, pillar_pcre, ipcidr, compound, nodegroup */
    tgt_type: TargetTypeSchema.default('glob'),
    /** state.apply / state.sls: the SLS to apply (a list, or comma-separated) */
    sls: Names.optional(),
    /** cmd.run: the command (a string, or a one-item list as Salt's positional args) */
    arg: z.union([z.string().min(1), z.array(z.string().min(1)).length(1)]).optional(),
    /** state functions: a dry run */
    test: z.boolean().optional(),
    /** agents at a time: `N` or `N%` (absent: all at once) */
    batch: BatchSchema.optional(),
    // the interval is the sum of these (Salt), at least 1 second
    /** seconds of the interval (added to minutes, hours, days) */
    seconds: Interval.optional(),
    /** minutes of the interval */
    minutes: Interval.optional(),
    /** hours of the interval */
    hours: Interval.optional(),
    /** days of the interval */
    days: Interval.optional(),
    /** or a cron expression (`0 3 * * *`, every 30 minutes `0,30 * * * *`; a sixth field first is seconds), run by node-cron */
    cron: z
      .string()
      .min(1)
      .refine((c) => validate(c), 'not a cron expression (minute hour day-of-month month day-of-week)')
      .optional(),
    /** a random delay of 0..splay seconds added to each run */
    splay: Interval.default(0),
    /** false: kept in the config and listed, never run */
    enabled: z.boolean().default(true),
    /** run once right after the master starts (then every interval) */
    run_on_start: z.boolean().default(false),
    /** per-agent timeout of the schedule's jobs; default: the master's timeout_s */
    timeout_s: z.number().positive().optional(),
  })
  .superRefine((e, ctx) => {
    if (e.cron !== undefined && intervalSeconds(e) > 0) {
      ctx.addIssue({ code: 'custom', path: ['cron'], message: 'give cron or an interval (seconds, minutes, hours, days), not both' });
    } else if (e.cron === undefined && intervalSeconds(e) < 1) {
      ctx.addIssue({ code: 'custom', message: 'no interval: give seconds, minutes, hours and/or days (at least 1 second in all), or cron' });
    }
    const state = e.function !== 'cmd.run';
    if (e.sls !== undefined && e.function !== 'state.apply' && e.function !== 'state.sls') {
      ctx.addIssue({ code: 'custom', path: ['sls'], message: `sls is for state.apply and state.sls, not ${e.function}` });
    }
    if (e.function === 'state.sls' && e.sls === undefined) ctx.addIssue({ code: 'custom', path: ['sls'], message: 'state.sls needs sls' });
    if (e.function === 'cmd.run' && e.arg === undefined) ctx.addIssue({ code: 'custom', path: ['arg'], message: 'cmd.run needs arg: the command' });
    if (state && e.arg !== undefined) ctx.addIssue({ code: 'custom', path: ['arg'], message: `arg is for cmd.run, not ${e.function}` });
    if (!state && e.test !== undefined) ctx.addIssue({ code: 'custom', path: ['test'], message: 'test is for state functions, not cmd.run' });
  });
export type ScheduleEntry = z.infer<typeof ScheduleEntrySchema>;

/** name -> entry. Names show in `tsalt jobs` as `schedule:<name>` and key the meta table. */
export const ScheduleConfigSchema = z.record(z.string(), ScheduleEntrySchema).superRefine((s, ctx) => {
  for (const name of Object.keys(s)) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(name)) {
      ctx.addIssue({ code: 'custom', path: [name], message: 'a schedule name is letters, digits, . _ - (at most 100, not starting with . _ -)' });
    }
  }
});
export type ScheduleConfig = z.infer<typeof ScheduleConfigSchema>;

// ---------------------------------------------------------------- time arithmetic (pure)

/** Salt: the interval is seconds + minutes + hours + days, all given ones added. */
export function intervalSeconds(e: Pick<ScheduleEntry, 'seconds' | 'minutes' | 'hours' | 'days'>): number {
  return (e.seconds ?? 0) + (e.minutes ?? 0) * 60 + (e.hours ?? 0) * 3600 + (e.days ?? 0) * 86400;
}

/** A random delay of 0..splay seconds inclusive, in ms; `rand` in [0, 1). */
export function splayMs(splayS: number, rand: number): number {
  const max = Math.round(splayS * 1000);
  return Math.min(max, Math.floor(rand * (max + 1)));
}

/** The first tick (without splay) after the master starts. */
export function firstTick(now: number, intervalMs: number, lastRun: number | undefined, runOnStart: boolean): number {
  if (runOnStart) return now;
  if (lastRun === undefined) return now + intervalMs;
  // the clock survives restarts; a tick missed while the master was down runs at once
  return Math.max(now, lastRun + intervalMs);
}

/** The next tick after `prev` that is still ahead of `now` (ticks that passed are skipped). */
export function nextTick(prev: number, intervalMs: number, now: number): number {
  if (prev + intervalMs > now) return prev + intervalMs;
  return prev + (Math.floor((now - prev) / intervalMs) + 1) * intervalMs;
}

// ---------------------------------------------------------------- the scheduler

/** setTimeout's longest delay (~24.8 days); longer waits are taken in steps. */
const MAX_DELAY_MS = 2 ** 31 - 1;

export interface LastRun {
  time: string;
  jid: string;
}

/** One line of `tsalt schedule`. */
export interface ScheduleStatus {
  name: string;
  function: ScheduleEntry['function'];
  target: string;
  tgt_type: string;
  sls: string[] | null;
  command: string | null;
  test: boolean;
  batch: string | null;
  /** the interval; 0 for a cron schedule */
  interval_s: number;
  /** the cron expression, or null for an interval */
  cron: string | null;
  splay_s: number;
  enabled: boolean;
  run_on_start: boolean;
  last_run: LastRun | null;
  /** when the next run starts (splay included); null when disabled */
  next_run: string | null;
  /** jid of the schedule's job still running, if any */
  running: string | null;
}

interface Item {
  name: string;
  entry: ScheduleEntry;
  intervalMs: number;
  /** the current tick, without splay */
  tick: number;
  /** when the current tick's run starts (tick + splay) */
  fireAt: number;
  timer?: NodeJS.Timeout;
  /** a cron schedule's node-cron task */
  task?: ScheduledTask;
  /** set from the moment a run begins until its job completes ('' before the jid is known) */
  running?: string;
  /** its last run as the store has it (read at start, kept as runs start) */
  last?: LastRun;
}

const metaKey = (name: string) => `schedule.${name}`;

export function sls(entry: ScheduleEntry): string[] {
  if (entry.sls === undefined) return [];
  const list = Array.isArray(entry.sls) ? entry.sls : entry.sls.split(',');
  return list.map((s) => s.trim()).filter((s) => s !== '');
}

export interface SchedulerOptions {
  /** per-agent timeout of jobs whose entry has no timeout_s */
  timeout_s: number;
  /**
   * Right after a (re)start the agents are still reconnecting; a job started then would find
   * them offline. Runs due then (run_on_start, or a tick missed while the master was down) wait
   * until `agentsBack()` or `max_s` passed.
   */
  settle?: { agentsBack: () => boolean | Promise<boolean>; max_s: number };
  /**
   * Masters sharing a store: a run goes ahead only on the master holding the schedule's lease
   * (`schedule.<name>`), so each tick starts one job for the fleet, not one per master.
   */
  leases?: Pick<Leases, 'hold'>;
}

export class Scheduler {
  private readonly items: Item[];
  private stopped = true;
  private settled: Promise<void> = Promise.resolve();
  private settleTimer: NodeJS.Timeout | undefined;

  constructor(
    cfg: ScheduleConfig,
    private readonly jobs: Pick<JobManager, 'start'>,
    private readonly store: Pick<Store, 'getMeta' | 'setMeta'>,
    private readonly opts: SchedulerOptions,
    private readonly log: Logger,
    private readonly now: () => number = () => Date.now(),
    private readonly random: () => number = () => Math.random(),
  ) {
    this.items = Object.entries(cfg).map(([name, entry]) => ({ name, entry, intervalMs: intervalSeconds(entry) * 1000, tick: 0, fireAt: 0 }));
  }

  async start(): Promise<void> {
    for (const it of this.items) it.last = await this.lastRun(it.name);
    this.stopped = false;
    const now = this.now();
    if (this.opts.settle && this.items.some((it) => it.entry.enabled)) this.settled = this.waitForAgents(this.opts.settle);
    for (const it of this.items) {
      if (!it.entry.enabled) {
        this.log.info(`schedule ${it.name}: disabled`);
        continue;
      }
      if (it.entry.cron !== undefined) {
        this.startCron(it);
        continue;
      }
      const last = it.last;
      it.tick = firstTick(now, it.intervalMs, last ? Date.parse(last.time) : undefined, it.entry.run_on_start);
      // run_on_start means right away; every other run gets its splay
      it.fireAt = it.entry.run_on_start ? it.tick : it.tick + splayMs(it.entry.splay, this.random());
      this.log.info(`schedule ${it.name}: ${it.entry.function} every ${formatInterval(it.intervalMs / 1000)}, next run ${new Date(it.fireAt).toISOString()}`);
      this.arm(it);
    }
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.settleTimer);
    for (const it of this.items) {
      clearTimeout(it.timer);
      void it.task?.destroy();
      it.task = undefined;
    }
  }

  /** node-cron fires the ticks; overlap and splay are handled here as for intervals. */
  private startCron(it: Item): void {
    const cron = it.entry.cron!;
    const quiet = { info: () => {}, debug: () => {}, warn: (m: string) => this.log.debug(`schedule ${it.name}: ${m}`), error: (m: string | Error) => this.log.warn(`schedule ${it.name}: ${String(m)}`) };
    it.task = createTask(cron, () => this.fireCron(it), { name: `schedule:${it.name}`, unref: true, logger: quiet, suppressMissedWarning: true });
    void it.task.start();
    if (it.entry.run_on_start) this.fireCron(it, true);
    this.log.info(`schedule ${it.name}: ${it.entry.function} at cron '${cron}', next run ${it.task.getNextRun()?.toISOString() ?? '-'}`);
  }

  private fireCron(it: Item, now = false): void {
    if (this.stopped) return;
    if (it.running !== undefined) {
      this.log.info(`schedule ${it.name}: skipping this run: job ${it.running || '(starting)'} of the previous run is still running`);
      return;
    }
    const delay = now ? 0 : splayMs(it.entry.splay, this.random());
    it.running = '';
    it.timer = setTimeout(() => {
      it.running = undefined;
      if (!this.stopped) void this.run(it);
    }, delay);
    it.timer.unref();
  }

  /** Resolves when every accepted agent is connected again, or after max_s. */
  private waitForAgents(o: NonNullable<SchedulerOptions['settle']>): Promise<void> {
    const end = this.now() + o.max_s * 1000;
    return new Promise((resolve) => {
      const poll = async () => {
        let back = false;
        try {
          back = await o.agentsBack();
        } catch (e) {
          this.log.debug(`schedule: are the agents back? ${(e as Error).message}`);
        }
        if (this.stopped || back) return resolve();
        if (this.now() >= end) {
          this.log.info(`schedule: not every agent reconnected within ${o.max_s}s of the start; runs go ahead`);
          return resolve();
        }
        this.settleTimer = setTimeout(() => void poll(), 100);
        this.settleTimer.unref();
      };
      void poll();
    });
  }

  list(): ScheduleStatus[] {
    return this.items.map((it) => {
      const e = it.entry;
      return {
        name: it.name,
        function: e.function,
        target: e.target,
        tgt_type: e.tgt_type,
        sls: e.function === 'state.apply' || e.function === 'state.sls' ? sls(e) : null,
        command: e.function === 'cmd.run' ? command(e) : null,
        test: e.test ?? false,
        batch: e.batch ?? null,
        interval_s: it.intervalMs / 1000,
        cron: e.cron ?? null,
        splay_s: e.splay,
        enabled: e.enabled,
        run_on_start: e.run_on_start,
        last_run: it.last ?? null,
        next_run: !e.enabled || this.stopped ? null : it.task ? (it.task.getNextRun()?.toISOString() ?? null) : new Date(it.fireAt).toISOString(),
        running: it.running || null,
      };
    });
  }

  private async lastRun(name: string): Promise<LastRun | undefined> {
    const raw = await this.store.getMeta(metaKey(name));
    if (raw === undefined) return undefined;
    try {
      const v = JSON.parse(raw) as LastRun;
      return typeof v.time === 'string' && typeof v.jid === 'string' ? v : undefined;
    } catch {
      return undefined;
    }
  }

  private arm(it: Item): void {
    clearTimeout(it.timer);
    const delay = Math.min(MAX_DELAY_MS, Math.max(0, it.fireAt - this.now()));
    it.timer = setTimeout(() => this.fire(it), delay);
    it.timer.unref(); // a schedule never keeps the process alive by itself
  }

  private fire(it: Item): void {
    if (this.stopped) return;
    if (this.now() < it.fireAt - 50) return this.arm(it); // a long wait taken in steps
    if (it.running !== undefined) {
      this.log.info(`schedule ${it.name}: skipping this run: job ${it.running || '(starting)'} of the previous run is still running`);
    } else {
      void this.run(it);
    }
    it.tick = nextTick(it.tick, it.intervalMs, this.now());
    it.fireAt = it.tick + splayMs(it.entry.splay, this.random());
    this.arm(it);
  }

  /** One run: start the job and wait for it to complete. Never throws. */
  private async run(it: Item): Promise<void> {
    it.running = '';
    await this.settled;
    if (this.stopped) {
      it.running = undefined;
      return;
    }
    if (this.opts.leases && !(await this.opts.leases.hold(`schedule.${it.name}`))) {
      it.running = undefined;
      this.log.debug(`schedule ${it.name}: run by the master holding its lease, not this one`);
      return;
    }
    const e = it.entry;
    const common = {
      target: e.target,
      tgt_type: e.tgt_type,
      ...(e.batch !== undefined ? { batch: e.batch } : {}),
      timeout_s: e.timeout_s ?? this.opts.timeout_s,
      user: `schedule:${it.name}`,
    };
    const req: Extract<CliRequest, { type: 'apply' | 'run' }> =
      e.function === 'cmd.run'
        ? { type: 'run', ...common, command: command(e) }
        : { type: 'apply', ...common, sls: e.function === 'state.highstate' ? [] : sls(e), test: e.test ?? false };
    let jid: string | undefined;
    const errors: string[] = [];
    try {
      const code = await this.jobs.start(req, (ev) => {
        if (ev.type === 'job_started') {
          jid = ev.jid;
          it.running = ev.jid;
          if (!this.stopped) {
            it.last = { time: new Date(this.now()).toISOString(), jid: ev.jid };
            void this.store.setMeta(metaKey(it.name), JSON.stringify(it.last satisfies LastRun)).catch((e: Error) => this.log.warn(`schedule ${it.name}: recording the run: ${e.message}`));
          }
          this.log.info(`schedule ${it.name}: job ${ev.jid} started for ${ev.targets.length} agent(s)`);
        }
        if (ev.type === 'error') errors.push(ev.message);
      }, { intent: 'corrective', waitIdle: true });
      if (jid) this.log.info(`schedule ${it.name}: job ${jid} finished (exit ${code})`);
      // a target that matches nothing (yet) is not fatal: the next tick tries again
      else this.log.warn(`schedule ${it.name}: no job started: ${errors.join('; ') || `exit ${code}`}; the schedule goes on`);
    } catch (err) {
      this.log.warn(`schedule ${it.name}: ${(err as Error).message}; the schedule goes on`);
    } finally {
      it.running = undefined;
    }
  }
}

function command(e: ScheduleEntry): string {
  return Array.isArray(e.arg) ? e.arg[0]! : (e.arg ?? '');
}

/** 90 -> "1m30s", 86400 -> "1d". */
export function formatInterval(s: number): string {
  const parts: string[] = [];
  let rest = s;
  for (const [unit, n] of [['d', 86400], ['h', 3600], ['m', 60]] as const) {
    if (rest >= n) {
      parts.push(`${Math.floor(rest / n)}${unit}`);
      rest -= Math.floor(rest / n) * n;
    }
  }
  if (rest > 0 || parts.length === 0) parts.push(`${Number(rest.toFixed(3))}s`);
  return parts.join('');
}
