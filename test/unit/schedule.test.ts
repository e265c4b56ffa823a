/**
 * The master's schedule: interval and splay arithmetic, config validation, and the scheduler's
 * ticking (fake clock, a stand-in for JobManager.start, the real SQLite store for last runs).
 * test/integration/fleet-schedule.test.ts runs it against real agents.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { z } from 'zod';
import { firstTick, formatInterval, intervalSeconds, nextTick, Scheduler, ScheduleConfigSchema, splayMs } from '../../master/schedule.js';
import { loadMasterConfig } from '../../master/config.js';
import { SqliteStore as Store } from '../../master/store-sqlite.js';
import type { CliEvent, CliRequest } from '../../protocol/cli-messages.js';
import type { Logger } from '../../core/log.js';
import { tempDir } from '../helpers/harness.js';

function writeConfig(text: string): string {
  const f = path.join(tempDir(), 'master.yaml');
  fs.writeFileSync(f, text);
  return f;
}

describe('schedule: interval and splay', () => {
  it('the interval is the sum of seconds, minutes, hours and days (Salt)', async () => {
    expect(intervalSeconds({ seconds: 35, minutes: 30, hours: 3 })).toBe(12_635);
    expect(intervalSeconds({ days: 1 })).toBe(86_400);
    expect(intervalSeconds({ minutes: 0.5 })).toBe(30);
    expect(intervalSeconds({})).toBe(0);
  });

  it('splay is a delay of 0..N seconds inclusive', async () => {
    expect(splayMs(0, 0.7)).toBe(0);
    expect(splayMs(10, 0)).toBe(0);
    expect(splayMs(10, 0.999_999_9)).toBe(10_000);
    expect(splayMs(10, 0.5)).toBe(5000);
    for (let i = 0; i < 1000; i++) {
      const d = splayMs(3, Math.random());
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(3000);
    }
  });

  it('the first run: one interval after the start, at once with run_on_start, from the last run across restarts', async () => {
    const now = 1_000_000;
    expect(firstTick(now, 60_000, undefined, false)).toBe(now + 60_000);
    expect(firstTick(now, 60_000, undefined, true)).toBe(now);
    expect(firstTick(now, 60_000, now - 20_000, false)).toBe(now + 40_000);
    // missed while the master was down: at once
    expect(firstTick(now, 60_000, now - 600_000, false)).toBe(now);
    expect(firstTick(now, 60_000, now - 20_000, true)).toBe(now);
  });

  it('ticks stay anchored and passed ticks are skipped, not caught up one by one', async () => {
    expect(nextTick(0, 1000, 10)).toBe(1000);
    expect(nextTick(0, 1000, 999)).toBe(1000);
    expect(nextTick(0, 1000, 1000)).toBe(2000);
    expect(nextTick(0, 1000, 3500)).toBe(4000);
    expect(nextTick(5000, 60_000, 5000 + 60_000 * 7 + 1)).toBe(5000 + 60_000 * 8);
  });

  it('intervals read as Salt writes them', async () => {
    expect(formatInterval(1)).toBe('1s');
    expect(formatInterval(90)).toBe('1m30s');
    expect(formatInterval(12_635)).toBe('3h30m35s');
    expect(formatInterval(86_400)).toBe('1d');
    expect(formatInterval(1.5)).toBe('1.5s');
  });
});

describe('schedule: master.yaml', () => {
  it('an entry gets Salt-like defaults', async () => {
    const c = loadMasterConfig(writeConfig('schedule:\n  drift-fix:\n    function: state.highstate\n    minutes: 30\n'));
    expect(c.schedule['drift-fix']).toEqual({ function: 'state.highstate', target: '*', tgt_type: 'glob', minutes: 30, splay: 0, enabled: true, run_on_start: false });
    expect(loadMasterConfig(writeConfig('port: 4506\n')).schedule).toEqual({});
  });

  it('a bad entry is refused with the key named', async () => {
    const bad = (yaml: string) => () => loadMasterConfig(writeConfig(`schedule:\n  s1:\n${yaml}`));
    expect(bad('    function: state.highstate\n    minutes: 1\n    minuts: 5\n')).toThrow(/unknown key 'schedule\.s1\.minuts'/);
    expect(bad('    function: state.highstate\n')).toThrow(/'schedule\.s1': no interval/);
    expect(bad('    function: state.highstate\n    seconds: 0.5\n')).toThrow(/'schedule\.s1': no interval/);
    expect(bad('    function: state.highstate\n    seconds: -5\n')).toThrow(/'schedule\.s1\.seconds'/);
    expect(bad('    function: state.highstate\n    sls: [web]\n    seconds: 5\n')).toThrow(/'schedule\.s1\.sls': sls is for state.apply and state.sls/);
    expect(bad('    function: state.sls\n    seconds: 5\n')).toThrow(/'schedule\.s1\.sls': state.sls needs sls/);
    expect(bad('    function: cmd.run\n    seconds: 5\n')).toThrow(/'schedule\.s1\.arg': cmd.run needs arg/);
    expect(bad('    function: cmd.run\n    arg: uptime\n    test: true\n    seconds: 5\n')).toThrow(/'schedule\.s1\.test'/);
    expect(bad('    function: state.apply\n    arg: uptime\n    seconds: 5\n')).toThrow(/'schedule\.s1\.arg': arg is for cmd.run/);
    expect(bad('    function: test.ping\n    seconds: 5\n')).toThrow(/'schedule\.s1\.function'/);
    expect(bad('    function: state.apply\n    seconds: 5\n    tgt_type: everything\n')).toThrow(/'schedule\.s1\.tgt_type'/);
    expect(bad('    function: state.apply\n    seconds: 5\n    batch: half\n')).toThrow(/'schedule\.s1\.batch'/);
    expect(() => loadMasterConfig(writeConfig('schedule:\n  "bad name":\n    function: state.apply\n    seconds: 5\n'))).toThrow(/'schedule\.bad name': a schedule name/);
  });

  it('sls is a list or comma-separated; cmd.run takes a string or a one-item list', async () => {
    const ok = (e: unknown) => ScheduleConfigSchema.safeParse({ s: e }).success;
    expect(ok({ function: 'state.apply', sls: 'web,db', seconds: 5 })).toBe(true);
    expect(ok({ function: 'state.apply', sls: ['web'], seconds: 5 })).toBe(true);
    expect(ok({ function: 'cmd.run', arg: ['uptime'], seconds: 5 })).toBe(true);
    expect(ok({ function: 'cmd.run', arg: ['uptime', '/tmp'], seconds: 5 })).toBe(false);
  });
});

// ------------------------------------------------------------------------ the scheduler

type Req = Extract<CliRequest, { type: 'apply' | 'run' }>;

/** Stands in for JobManager.start: each job lasts `durationMs` of (fake) time. */
class FakeJobs {
  started: { req: Req; at: number; jid: string }[] = [];
  durationMs = 100;
  /** a target that matches nothing, as JobManager reports it */
  noMatch = false;
  private n = 0;
  start(req: Req, sink: (ev: CliEvent) => void): Promise<number> {
    if (this.noMatch) {
      sink({ type: 'error', message: `target ${JSON.stringify(req.target)} (glob) matched no accepted agent` });
      return Promise.resolve(1);
    }
    const jid = `2024010100000000000${this.n++}`.slice(-20).padStart(20, '0');
    this.started.push({ req, at: Date.now(), jid });
    sink({ type: 'job_started', jid, revision: null, targets: ['a1'], offline: [] });
    return new Promise((r) => setTimeout(() => r(0), this.durationMs));
  }
}

function recordingLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const l: Logger & { lines: string[] } = {
    lines,
    error: (m) => lines.push(`error ${m}`),
    warn: (m) => lines.push(`warn ${m}`),
    info: (m) => lines.push(`info ${m}`),
    debug: () => {},
    child: () => l,
  };
  return l;
}

describe('schedule: the scheduler', () => {
  let store: Store;
  let jobs: FakeJobs;
  let log: ReturnType<typeof recordingLog>;
  let sched: Scheduler | undefined;
  const T0 = Date.parse('2024-01-01T00:00:00Z');

  beforeEach(async () => {
    vi.useFakeTimers({ now: T0 });
    store = new Store(path.join(tempDir(), 'master.db'));
    jobs = new FakeJobs();
    log = recordingLog();
  });
  afterEach(async () => {
    sched?.stop();
    sched = undefined;
    await store.close();
    vi.useRealTimers();
  });

  const make = (cfg: z.input<typeof ScheduleConfigSchema>, o: { random?: () => number; settle?: { agentsBack: () => boolean; max_s: number } } = {}) => {
    sched = new Scheduler(ScheduleConfigSchema.parse(cfg), jobs, store, { timeout_s: 600, ...(o.settle ? { settle: o.settle } : {}) }, log, undefined, o.random);
    return sched;
  };
  const startedAt = () => jobs.started.map((s) => (s.at - T0) / 1000);

  it('starts a job every interval, as schedule:<name>, and keeps the last run in the meta table', async () => {
    await make({ drift: { function: 'state.highstate', minutes: 1, batch: '25%' } }).start();
    await vi.advanceTimersByTimeAsync(59_000);
    expect(jobs.started).toEqual([]);
    await vi.advanceTimersByTimeAsync(3 * 60_000);
    expect(startedAt()).toEqual([60, 120, 180]);
    expect(jobs.started[0]!.req).toEqual({ type: 'apply', target: '*', tgt_type: 'glob', batch: '25%', timeout_s: 600, user: 'schedule:drift', sls: [], test: false });
    expect(JSON.parse((await store.getMeta('schedule.drift'))!)).toEqual({ time: new Date(T0 + 180_000).toISOString(), jid: jobs.started[2]!.jid });
    const [row] = sched!.list();
    expect(row).toMatchObject({ name: 'drift', interval_s: 60, enabled: true, last_run: { jid: jobs.started[2]!.jid }, next_run: new Date(T0 + 240_000).toISOString(), running: null });
  });

  it('state.apply with sls, and cmd.run with its command', async () => {
    await make({
      web: { function: 'state.apply', sls: 'web, db', test: true, seconds: 10, target: 'roles:web', tgt_type: 'grain' },
      up: { function: 'cmd.run', arg: ['uptime'], seconds: 10, timeout_s: 5 },
    }).start();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(jobs.started.map((s) => s.req)).toEqual([
      { type: 'apply', target: 'roles:web', tgt_type: 'grain', timeout_s: 600, user: 'schedule:web', sls: ['web', 'db'], test: true },
      { type: 'run', target: '*', tgt_type: 'glob', timeout_s: 5, user: 'schedule:up', command: 'uptime' },
    ]);
  });

  it('a tick that finds the previous job running is skipped, never run alongside', async () => {
    jobs.durationMs = 2500;
    await make({ slow: { function: 'state.highstate', seconds: 1 } }).start();
    await vi.advanceTimersByTimeAsync(7_500);
    // job at 1 runs to 3.5: ticks 2 and 3 skipped; job at 4 runs to 6.5: 5 and 6 skipped; 7
    expect(startedAt()).toEqual([1, 4, 7]);
    expect(log.lines.filter((l) => /slow: skipping this run: job \d{20} of the previous run is still running/.test(l))).toHaveLength(4);
  });

  it('splay delays each run by its own random 0..N seconds, without moving the ticks', async () => {
    const rolls = [0.5, 0, 0.999_999];
    await make({ s: { function: 'state.highstate', seconds: 10, splay: 4 } }, { random: () => rolls.shift() ?? 0 }).start();
    await vi.advanceTimersByTimeAsync(35_000);
    expect(startedAt()).toEqual([12, 20, 34]);
  });

  it('enabled: False never runs, not even with run_on_start', async () => {
    await make({ off: { function: 'state.highstate', seconds: 1, enabled: false, run_on_start: true } }).start();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(jobs.started).toEqual([]);
    expect(sched!.list()[0]).toMatchObject({ enabled: false, next_run: null, last_run: null });
  });

  it('run_on_start runs at once (when the agents are back), then every interval', async () => {
    let back = false;
    await make({ boot: { function: 'state.highstate', hours: 1, run_on_start: true } }, { settle: { agentsBack: () => back, max_s: 60 } }).start();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(jobs.started).toEqual([]); // agents still reconnecting
    back = true;
    await vi.advanceTimersByTimeAsync(200);
    expect(startedAt()).toEqual([1.1]);
    await vi.advanceTimersByTimeAsync(3600_000);
    expect(startedAt()).toEqual([1.1, 3600]);
  });

  it('agents that never come back delay a start-up run by at most max_s', async () => {
    await make({ boot: { function: 'state.highstate', hours: 1, run_on_start: true } }, { settle: { agentsBack: () => false, max_s: 4 } }).start();
    await vi.advanceTimersByTimeAsync(3_500);
    expect(jobs.started).toEqual([]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(jobs.started).toHaveLength(1);
  });

  it('the clock survives a restart: the next run is the last one plus the interval', async () => {
    await store.setMeta('schedule.drift', JSON.stringify({ time: new Date(T0 - 20_000).toISOString(), jid: '20231231235940000000' }));
    await make({ drift: { function: 'state.highstate', minutes: 1 } }).start();
    expect(sched!.list()[0]!.next_run).toBe(new Date(T0 + 40_000).toISOString());
    await vi.advanceTimersByTimeAsync(40_000);
    expect(startedAt()).toEqual([40]);
  });

  it('a target that matches nothing logs a warning and the schedule goes on', async () => {
    jobs.noMatch = true;
    await make({ nobody: { function: 'state.highstate', seconds: 1, target: 'nobody*' } }).start();
    await vi.advanceTimersByTimeAsync(2_500);
    const warns = log.lines.filter((l) => l.startsWith('warn schedule nobody: no job started: target "nobody*" (glob) matched no accepted agent'));
    expect(warns).toHaveLength(2);
    jobs.noMatch = false;
    await vi.advanceTimersByTimeAsync(1_000);
    expect(startedAt()).toEqual([3]);
    expect(await store.getMeta('schedule.nobody')).toBeDefined();
  });

  it('stop() clears the timers: nothing runs after it', async () => {
    await make({ s: { function: 'state.highstate', seconds: 1 } }).start();
    await vi.advanceTimersByTimeAsync(1_200); // one job, started at 1 s and done at 1.1 s
    sched!.stop();
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(jobs.started).toHaveLength(1);
  });

  it('intervals longer than a timer can wait (24.8 days) are waited in steps', async () => {
    await make({ monthly: { function: 'state.highstate', days: 30 } }).start();
    await vi.advanceTimersByTimeAsync(29 * 86_400_000);
    expect(jobs.started).toEqual([]);
    await vi.advanceTimersByTimeAsync(86_400_000);
    expect(startedAt()).toEqual([30 * 86_400]);
  });
  it('cron: node-cron fires at the expression\'s times; list shows it and its next run', async () => {
    await make({ half: { function: 'state.highstate', cron: '*/2 * * * *' } }).start();
    await vi.advanceTimersByTimeAsync(5 * 60_000 + 500);
    expect(startedAt().map((s) => Math.round(s))).toEqual([120, 240]);
    const [row] = sched!.list();
    expect(row).toMatchObject({ name: 'half', cron: '*/2 * * * *', interval_s: 0, next_run: new Date(T0 + 360_000).toISOString() });
  });

  it('cron: a bad expression, or cron with an interval, is named', async () => {
    expect(ScheduleConfigSchema.safeParse({ x: { function: 'state.highstate', cron: '61 * * * *' } }).error?.issues[0]).toMatchObject({ path: ['x', 'cron'], message: expect.stringMatching(/not a cron expression/) });
    expect(ScheduleConfigSchema.safeParse({ x: { function: 'state.highstate', cron: '* * * * *', minutes: 5 } }).error?.issues[0]?.message).toMatch(/cron or an interval/);
  });
});
