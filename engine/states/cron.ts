/**
 * cron.present / cron.absent: jobs in a user's crontab, as salt.states.cron does it
 * (`crontab -u USER -l` to read, `crontab -u USER -` to write, Salt's identifier marker).
 */
import * as z from 'zod/mini';
import { randomInt } from 'node:crypto';
import { accountNameArg, boolArg, defineState, StateFailure, type StateModule } from './define.js';
import type { RunContext } from './context.js';
import { exec, operands } from '../run/exec.js';
import { jobMatches, parseTab, renderTab, type CronJob, type CronTab, type SpecialJob } from './cron/tab.js';

/** YAML hands us `minute: 5` as a number; cron wants text. */
const timeArg = z.pipe(
  z.union([z.string(), z.number().check(z.int())]),
  z.transform((v) => String(v).trim().toLowerCase()),
);

async function readTab(ctx: RunContext, user: string): Promise<string> {
  return ctx.facts.get(`cron:tab:${user}`, async () => {
    const r = await exec(['crontab', '-u', ...operands('cron user', [user]), '-l']);
    if (r.code === 0) return r.stdout;
    // "no crontab for USER" is an empty crontab, not an error
    if (/no crontab for/i.test(r.stderr)) return '';
    throw new StateFailure(`Cannot read the crontab of ${user}: ${(r.stderr || r.stdout).trim()}`);
  });
}

async function writeTab(ctx: RunContext, user: string, tab: CronTab): Promise<void> {
  const r = await exec(['crontab', '-u', ...operands('cron user', [user]), '-'], { input: renderTab(tab) });
  ctx.facts.invalidate(`cron:tab:${user}`);
  if (r.code !== 0) {
    throw new StateFailure(`Cron for user ${user} failed to commit with error \n${(r.stderr || r.stdout).trim()}`);
  }
}

/** Salt's _needs_change: `random` only replaces '*'; an unset value (null) never forces a change. */
function needsChange(old: unknown, want: unknown): boolean {
  if (old === want) return false;
  if (want === 'random') return old === '*';
  return want !== null && want !== undefined;
}

const RANGES = { minute: [0, 59], hour: [0, 23], daymonth: [1, 31], month: [1, 12], dayweek: [0, 6] } as const;
type TimeField = keyof typeof RANGES;
const TIME_FIELDS = Object.keys(RANGES) as TimeField[];

const presentArgs = z.object({
  name: z.pipe(
    z.string(),
    z.transform((s) => s.trim()),
  ),
  user: z._default(accountNameArg('cron user'), 'root'),
  minute: z._default(timeArg, '*'),
  hour: z._default(timeArg, '*'),
  daymonth: z._default(timeArg, '*'),
  month: z._default(timeArg, '*'),
  dayweek: z._default(timeArg, '*'),
  comment: z.optional(z.nullable(z.string())),
  commented: z._default(boolArg, false),
  // Salt: identifier False (the default) means "use the name"
  identifier: z.optional(z.union([z.string(), z.number(), z.literal(false)])),
  special: z.optional(z.string()),
});
type PresentArgs = z.output<typeof presentArgs>;

function identifierOf(a: { name: string; identifier?: string | number | false }): string {
  return a.identifier === undefined || a.identifier === false ? a.name : String(a.identifier);
}

/** The crontab after making `a` present, or undefined when it already is. */
function planPresent(tab: CronTab, a: PresentArgs): { tab: CronTab; status: 'new' | 'updated' } | undefined {
  const id = identifierOf(a);
  const comment = a.comment ?? null;
  const next: CronTab = { pre: tab.pre, env: tab.env, crons: [...tab.crons], special: [...tab.special] };
  let changed = false;
  let status: 'new' | 'updated' = 'new';
  if (a.special === undefined) {
    // a job switching from '@daily' to times: drop the special form (Salt's rm_special)
    const keep = next.special.filter((s) => !jobMatches(s, a.name, id));
    if (keep.length !== next.special.length) (next.special = keep), (changed = true);
    const i = next.crons.findIndex((c) => jobMatches(c, a.name, id));
    const old = i >= 0 ? next.crons[i] : undefined;
    const want = (f: TimeField): string => {
      const v = a[f];
      if (v !== 'random') return v;
      if (old && old[f] !== '*') return old[f]; // keep the minute chosen at random last time
      const [lo, hi] = RANGES[f];
      return String(randomInt(lo, hi + 1));
    };
    if (old) {
      const diff =
        TIME_FIELDS.some((f) => needsChange(old[f], a[f])) ||
        needsChange(old.identifier, id) ||
        needsChange(old.cmd, a.name) ||
        needsChange(old.comment, comment) ||
        needsChange(old.commented, a.commented);
      if (diff) {
        const job: CronJob = {
          minute: needsChange(old.minute, a.minute) ? want('minute') : old.minute,
          hour: needsChange(old.hour, a.hour) ? want('hour') : old.hour,
          daymonth: needsChange(old.daymonth, a.daymonth) ? want('daymonth') : old.daymonth,
          month: needsChange(old.month, a.month) ? want('month') : old.month,
          dayweek: needsChange(old.dayweek, a.dayweek) ? want('dayweek') : old.dayweek,
          cmd: a.name,
          identifier: id,
          comment: comment ?? old.comment,
          commented: a.commented,
        };
        next.crons[i] = job;
        changed = true;
        status = 'updated';
      }
    } else {
      next.crons.push({
        minute: want('minute'),
        hour: want('hour'),
        daymonth: want('daymonth'),
        month: want('month'),
        dayweek: want('dayweek'),
        cmd: a.name,
        identifier: id,
        comment,
        commented: a.commented,
      });
      changed = true;
    }
  } else {
    const keep = next.crons.filter((c) => !jobMatches(c, a.name, id));
    if (keep.length !== next.crons.length) (next.crons = keep), (changed = true);
    const i = next.special.findIndex((s) => jobMatches(s, a.name, id));
    const old = i >= 0 ? next.special[i] : undefined;
    if (old) {
      const diff =
        needsChange(old.spec, a.special) ||
        needsChange(old.identifier, id) ||
        needsChange(old.cmd, a.name) ||
        needsChange(old.comment, comment) ||
        needsChange(old.commented, a.commented);
      if (diff) {
        const job: SpecialJob = { spec: a.special, cmd: a.name, identifier: id, comment: comment ?? old.comment, commented: a.commented };
        next.special[i] = job;
        changed = true;
        status = 'updated';
      }
    } else {
      next.special.push({ spec: a.special, cmd: a.name, identifier: id, comment, commented: a.commented });
      changed = true;
    }
  }
  return changed ? { tab: next, status } : undefined;
}

const present = defineState({
  args: presentArgs,
  async check(ctx, a) {
    if (a.special !== undefined && !a.special.startsWith('@')) {
      throw new StateFailure(`special must be a keyword like '@reboot' or '@hourly', got '${a.special}'`);
    }
    const plan = planPresent(parseTab(await readTab(ctx, a.user)), a);
    if (!plan) return { comment: `Cron ${a.name} already present` };
    return {
      changes: { [a.user]: a.name },
      comment: `Cron ${a.name} is set to be ${plan.status === 'new' ? 'added' : 'updated'}`,
      plan,
    };
  },
  async apply(ctx, a, plan) {
    if (!plan) throw new Error('cron.present: apply without a plan');
    await writeTab(ctx, a.user, plan.tab);
    return {
      changes: { [a.user]: a.name },
      comment: plan.status === 'new' ? `Cron ${a.name} added to ${a.user}'s crontab` : `Cron ${a.name} updated`,
    };
  },
});

const absentArgs = z.object({
  name: z.pipe(
    z.string(),
    z.transform((s) => s.trim()),
  ),
  user: z._default(accountNameArg('cron user'), 'root'),
  identifier: z.optional(z.union([z.string(), z.number(), z.literal(false)])),
  special: z.optional(z.string()),
  // accepted and ignored, as Salt's **kwargs: trees often copy present's arguments
  minute: z.optional(timeArg),
  hour: z.optional(timeArg),
  daymonth: z.optional(timeArg),
  month: z.optional(timeArg),
  dayweek: z.optional(timeArg),
  comment: z.optional(z.nullable(z.string())),
  commented: z.optional(boolArg),
});

const absent = defineState({
  args: absentArgs,
  async check(ctx, a) {
    const tab = parseTab(await readTab(ctx, a.user));
    const id = identifierOf(a);
    // Salt: without `special` only timed jobs are removed; with it, only that special's jobs
    const next: CronTab =
      a.special === undefined
        ? { ...tab, crons: tab.crons.filter((c) => !jobMatches(c, a.name, id)) }
        : { ...tab, special: tab.special.filter((s) => !(jobMatches(s, a.name, id) && s.spec === a.special)) };
    if (next.crons.length === tab.crons.length && next.special.length === tab.special.length) {
      return { comment: `Cron ${a.name} already absent` };
    }
    return { changes: { [a.user]: a.name }, comment: `Cron ${a.name} is set to be removed`, plan: next };
  },
  async apply(ctx, a, plan) {
    if (!plan) throw new Error('cron.absent: apply without a plan');
    await writeTab(ctx, a.user, plan);
    return { changes: { [a.user]: a.name }, comment: `Cron ${a.name} removed from ${a.user}'s crontab` };
  },
});

export default { present, absent } satisfies StateModule;
