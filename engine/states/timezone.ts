/**
 * Salt's `timezone.system`: the system time zone and whether the hardware clock keeps UTC.
 *
 * Done on the files that timedatectl edits underneath, so it works the same on the RedHat and
 * Debian families and under --root (an image being built):
 * - /etc/localtime, a symlink to /usr/share/zoneinfo/<name> (a regular file there counts as an
 *   unknown zone and is replaced by the link);
 * - /etc/timezone, one line with the name, on the Debian family (its tools read it);
 * - /etc/adjtime, third line UTC or LOCAL (hwclock(8)); a missing file means UTC.
 * The zone file must exist under the root's /usr/share/zoneinfo. The link text is always the
 * path as the system sees it, never the --root-mapped one.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as z from 'zod/mini';
import { boolArg, defineState, StateFailure, type Changes, type StateModule } from './define.js';
import type { RunContext } from './context.js';
import { readIfPresent, writeKeepingPerms } from './system-file.js';
import { syncDir, tempName } from './file/atomic-write.js';
import { followLinks, lstatOrNull, refuseSpecial, specialKind } from './file/paths.js';

const ZONEINFO = '/usr/share/zoneinfo';
const LOCALTIME = '/etc/localtime';
const TIMEZONE = '/etc/timezone';
const ADJTIME = '/etc/adjtime';

/** hwclock's defaults for the first two lines when it has never written the file */
const ADJTIME_LINES = ['0.0 0 0.0', '0'];

const args = z.object({
  /** an Olson name such as Europe/Paris, a file under /usr/share/zoneinfo */
  name: z.string().check(z.minLength(1)),
  /** hardware clock in UTC (true, Salt's default) or local time (false) */
  utc: z._default(boolArg, true),
});

/** Salt's comments print the flag as Python does */
const py = (b: boolean) => (b ? 'True' : 'False');

function invalid(name: string, why: string): StateFailure {
  // Salt's wording (states.timezone around modules.timezone.zone_compare), plus the reason
  return new StateFailure(`Unable to compare desired timezone '${name}' to system timezone: Invalid timezone '${name}' (${why})`);
}

/** Refuse anything that is not a plain relative path of zone names: no '..', no hidden files. */
function checkZone(ctx: RunContext, name: string): void {
  const segs = name.split('/');
  if (segs.some((s) => !/^[A-Za-z0-9_+-][A-Za-z0-9._+-]*$/.test(s))) {
    throw invalid(name, 'a zone name is made of path segments like Europe/Paris, without .. or leading /');
  }
  const file = ctx.path(path.posix.join(ZONEINFO, name));
  let real: string;
  try {
    real = followLinks(ctx, file);
  } catch {
    throw invalid(name, `${path.posix.join(ZONEINFO, name)} is a symlink loop`);
  }
  const st = lstatOrNull(real);
  if (!st?.isFile()) throw invalid(name, `no zone file ${path.posix.join(ZONEINFO, name)}`);
  // zone.tab, tzdata.zi and friends live there too: a zone file starts with TZif
  const head = Buffer.alloc(4);
  const fd = fs.openSync(real, 'r');
  try {
    fs.readSync(fd, head, 0, 4, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (head.toString('latin1') !== 'TZif') throw invalid(name, `${path.posix.join(ZONEINFO, name)} is not a zone file`);
}


interface LocaltimeNow {
  /** the zone the link names, undefined when it is missing, a file or points elsewhere */
  zone?: string;
  kind: 'missing' | 'link' | 'file' | 'dir';
}

/** The zone /etc/localtime names: its link target, read as the system would (relative to /etc). */
function currentLocaltime(ctx: RunContext): LocaltimeNow {
  const st = lstatOrNull(ctx.path(LOCALTIME));
  if (!st) return { kind: 'missing' };
  if (st.isDirectory()) return { kind: 'dir' };
  // a device or FIFO there is not ours to replace by the link
  if (specialKind(st)) refuseSpecial(ctx.path(LOCALTIME), LOCALTIME);
  if (!st.isSymbolicLink()) return { kind: 'file' };
  const target = path.posix.resolve('/etc', fs.readlinkSync(ctx.path(LOCALTIME)));
  const prefix = `${ZONEINFO}/`;
  return { kind: 'link', zone: target.startsWith(prefix) ? target.slice(prefix.length) : undefined };
}

/** hwclock: the third line of /etc/adjtime; no file (or no third line) is UTC. */
export function adjtimeIsUtc(text: string | undefined): boolean {
  return (text?.split('\n')[2] ?? '').trim() !== 'LOCAL';
}

/** /etc/adjtime with the third line set, the drift lines (and anything after) kept. */
export function withAdjtimeClock(text: string | undefined, utc: boolean): string {
  const lines = text === undefined || text === '' ? [] : text.replace(/\n$/, '').split('\n');
  for (let i = 0; i < 2; i++) lines[i] ??= ADJTIME_LINES[i]!;
  lines[2] = utc ? 'UTC' : 'LOCAL';
  return lines.join('\n') + '\n';
}

interface Plan {
  link: boolean;
  timezoneFile: boolean;
  adjtime?: string;
  changes: Changes;
}


/** Replace /etc/localtime by the link in one rename (a regular file there included). */
async function relink(file: string, target: string): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = tempName(file);
  await fs.promises.symlink(target, tmp);
  try {
    await fs.promises.rename(tmp, file);
  } catch (e) {
    await fs.promises.rm(tmp, { force: true });
    throw e;
  }
  await syncDir(path.dirname(file));
}

const system = defineState<typeof args, Plan>({
  args,
  async check(ctx, a) {
    checkZone(ctx, a.name);
    const debian = ctx.grains.os_family === 'Debian';
    const now = currentLocaltime(ctx);
    if (now.kind === 'dir') throw new StateFailure(`Failed to set timezone: ${LOCALTIME} is a directory`);
    const link = now.zone !== a.name;
    const timezoneFile = debian && readIfPresent(ctx.path(TIMEZONE), TIMEZONE)?.trim() !== a.name;
    const adjText = readIfPresent(ctx.path(ADJTIME), ADJTIME);
    const utcNow = adjtimeIsUtc(adjText);

    const changes: Changes = {};
    if (link || timezoneFile) changes.timezone = a.name;
    if (utcNow !== a.utc) changes.utc = a.utc;
    if (!Object.keys(changes).length) {
      // Salt's wording ("UTC already set to <name>" there is a typo for the flag)
      return { comment: `Timezone ${a.name} already set, UTC already set to ${py(a.utc)}` };
    }
    const msgs: string[] = [];
    if (changes.timezone !== undefined) {
      msgs.push(`Timezone ${a.name} needs to be set`);
      if (now.kind === 'file') msgs.push(`${LOCALTIME} is a regular file and will be replaced by a symlink`);
    } else msgs.push(`Timezone ${a.name} already set`);
    if (changes.utc !== undefined) msgs.push(`UTC needs to be set to ${py(a.utc)}`);
    return {
      changes,
      comment: msgs.join(', '),
      plan: { link, timezoneFile, adjtime: changes.utc !== undefined ? withAdjtimeClock(adjText, a.utc) : undefined, changes },
    };
  },
  async apply(ctx, a, plan) {
    if (!plan) throw new Error('timezone.system: apply without a plan');
    const done: Changes = {};
    const msgs: string[] = [];
    let step = 'timezone';
    try {
      // each file counts as soon as it is written: a failure report says what did change
      if (plan.link) {
        await relink(ctx.path(LOCALTIME), path.posix.join(ZONEINFO, a.name));
        done.timezone = a.name;
      }
      if (plan.timezoneFile) {
        await writeKeepingPerms(ctx.path(TIMEZONE), `${a.name}\n`);
        done.timezone = a.name;
      }
      if (done.timezone !== undefined) msgs.push(`Set timezone ${a.name}`);
      step = 'utc';
      if (plan.adjtime !== undefined) {
        await writeKeepingPerms(ctx.path(ADJTIME), plan.adjtime);
        done.utc = a.utc;
        msgs.push(`Set UTC to ${py(a.utc)}`);
      }
    } catch (e) {
      const what = step === 'utc' ? `Failed to set UTC to ${py(a.utc)}` : 'Failed to set timezone';
      throw new StateFailure([...msgs, `${what}: ${(e as Error).message}`].join(', '), done);
    }
    return { changes: done, comment: msgs.join(', ') };
  },
});

export default { system } satisfies StateModule;
