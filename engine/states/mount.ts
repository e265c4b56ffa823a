/**
 * Salt's `mount` states: mounted and unmounted (salt/states/mount.py). Live mounts come from
 * /proc/self/mountinfo, read once per run through ctx.facts and re-read after this module
 * mounts or unmounts. The mount itself is the machine's (no --root); the fstab is a managed
 * file, so `config` goes through ctx.path() and is edited atomically, other lines kept byte
 * for byte (mount/fstab.ts). Changes and comments are Salt's: {mount: true},
 * {umount: <why>}, {persist: 'new' | 'update' | 'purged'}.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as z from 'zod/mini';
import { boolArg, defineState, StateFailure, type ApplyOutcome, type Changes, type StateModule } from './define.js';
import type { RunContext } from './context.js';
import { exec } from '../run/exec.js';
import { atomicWrite, makeDirs } from './file/atomic-write.js';
import { refuseSpecial } from './file/paths.js';
import { statPerms } from './file/ownership.js';
import { loadAccounts } from '../providers/accounts/db.js';
import { entriesFor, FSTAB_KEYS, fstabEscape, matchKeys, removeFromFstab, setFstab, type FstabEntry } from './mount/fstab.js';
import { isBind, isTagDevice, mountAt, optionDrift, parseMountinfo, realOr, resolveDevice, sameBindSource, sameDevice, type Ids, type MountInfo } from './mount/live.js';

const MOUNTINFO = '/proc/self/mountinfo';
const FACT = 'mount:mountinfo';

function liveMounts(ctx: RunContext): Promise<MountInfo[]> {
  return ctx.facts.get(FACT, async () => parseMountinfo(await fs.promises.readFile(MOUNTINFO, 'utf8')));
}

/** After mounting or unmounting: later states (and our own verification) must see the new truth. */
function freshMounts(ctx: RunContext): Promise<MountInfo[]> {
  ctx.facts.invalidate(FACT);
  return liveMounts(ctx);
}

// ---- arguments ----

const noControl = (s: string) => !/[\n\r\0]/.test(s);

/** A mount point: absolute and normalised, without the trailing slash (Salt strips it). */
const mountPoint = z.pipe(
  z.string().check(
    z.refine((s) => s.startsWith('/'), 'must be an absolute path'),
    z.refine(noControl, 'must not contain newlines'),
  ),
  z.transform((s) => path.posix.normalize(s).replace(/(.)\/+$/, '$1')),
);

/** The source: a device, `UUID=...`, `server:/export`, a directory for bind mounts. */
const deviceArg = z.string().check(
  z.minLength(1),
  z.refine(noControl, 'must not contain newlines'),
  z.refine((s) => !s.startsWith('-'), 'must not start with -'),
);

/** `opts: [rw, noatime]`, `opts: rw,noatime` or list items with commas: one flat list. */
const optsArg = z
  .pipe(
    z.union([z.string(), z.array(z.union([z.string(), z.number()]))]),
    z.transform((v) =>
      (Array.isArray(v) ? v : [v])
        .flatMap((o) => String(o).split(','))
        .map((o) => o.trim())
        .filter(Boolean),
    ),
  )
  .check(z.refine((l) => l.every((o) => !/\s/.test(o)), 'mount options contain no blanks (write a space as \\040)'));

/** dump / pass_num: YAML gives numbers, Jinja output gives strings. */
const fieldNumber = z.union([
  z.number().check(z.int(), z.nonnegative()),
  z.pipe(z.string().check(z.regex(/^\d+$/, 'must be a number')), z.transform(Number)),
]);

const mountedArgs = z.object({
  name: mountPoint,
  device: deviceArg,
  fstype: z.string().check(z.regex(/^[A-Za-z0-9_.+-]+$/, 'a filesystem type like ext4, tmpfs, nfs4, fuse.sshfs')),
  /** create the mount point (and its parents) when missing */
  mkmnt: z._default(boolArg, false),
  opts: z._default(optsArg, ['defaults']),
  dump: z._default(fieldNumber, 0),
  pass_num: z._default(fieldNumber, 0),
  config: z._default(z.string().check(z.refine((s) => s.startsWith('/'), 'config must be an absolute path')), '/etc/fstab'),
  /** keep the entry in `config` */
  persist: z._default(boolArg, true),
  /** mount now (False: only the fstab entry, and the mount point with mkmnt) */
  mount: z._default(boolArg, true),
  /** when the mounted options differ: remount (True) or leave the live mount as it is */
  remount: z._default(boolArg, true),
  /** which fstab fields find the existing entry; auto: mount point for tmpfs/nfs/..., else device */
  match_on: z._default(z.union([z.enum(['auto', ...FSTAB_KEYS]), z.array(z.enum(FSTAB_KEYS)).check(z.minLength(1))]), 'auto'),
  /** options never compared with the live mount (ones the kernel does not show) */
  hidden_opts: z._default(optsArg, []),
});
type MountedArgs = z.output<typeof mountedArgs>;

const unmountedArgs = z.object({
  name: mountPoint,
  /** only this device: something else mounted on `name` is left alone */
  device: z.optional(deviceArg),
  config: z._default(z.string().check(z.refine((s) => s.startsWith('/'), 'config must be an absolute path')), '/etc/fstab'),
  /** also remove the mount point's entry from `config` */
  persist: z._default(boolArg, false),
});

// ---- helpers ----

function readOptional(file: string): string | undefined {
  // a device, FIFO or socket (or a link to one: /etc/x -> /dev/null) is never read nor replaced
  refuseSpecial(file);
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new StateFailure(`Couldn't read from ${file}: ${(e as Error).message}`);
  }
}

/** Replace the fstab keeping its owner and mode; through a symlink, the link stays. */
async function writeFstab(file: string, text: string): Promise<void> {
  refuseSpecial(file);
  const real = realOr(file);
  await atomicWrite(real, Buffer.from(text), statPerms(fs.statSync(real)));
}

async function run(argv: string[]): Promise<string | undefined> {
  const r = await exec(argv, { env: { ...process.env, LC_ALL: 'C' } });
  if (r.code === 0) return undefined;
  return (r.stderr.trim() || r.stdout.trim() || `${argv[0]} exited ${r.code}`).split('\n').slice(-8).join('\n');
}

/** uid=/gid= options name accounts; the kernel shows numbers. Read /etc/passwd only if asked. */
function idsFor(ctx: RunContext, opts: readonly string[]): Promise<Ids> {
  const none: Ids = { uid: () => undefined, gid: () => undefined };
  if (!opts.some((o) => /^[ug]id=\D/.test(o))) return Promise.resolve(none);
  return loadAccounts(ctx.facts).then((db) => ({ uid: (n) => db.users.get(n)?.uid, gid: (n) => db.groups.get(n)?.gid }));
}

/** Salt unmounts and mounts these instead of `-o remount`. */
const cycleOnRemount = (fstype: string) => fstype === 'nfs' || fstype === 'cvfs' || fstype.startsWith('fuse');

/** What mount(8) gets: 'remount' is ours to add, an empty list means the defaults. */
function mountOpts(opts: readonly string[]): string[] {
  const o = opts.filter((x) => x !== 'remount');
  return o.length ? o : ['defaults'];
}

function isWanted(m: MountInfo, mounts: readonly MountInfo[], device: string, bind: boolean): boolean {
  return bind ? sameBindSource(m, mounts, device) : sameDevice(m, device);
}

/** unmounted's `device`: a device, or the directory a bind mount shows. */
const holds = (m: MountInfo, mounts: readonly MountInfo[], device: string) => sameDevice(m, device) || sameBindSource(m, mounts, device);

// ---- mount.mounted ----

interface MountedPlan {
  /** unmount first: the wrong device is mounted, or (nfs/fuse) options changed */
  umount?: { why: 'device' | 'options'; message: string; options?: string };
  mount?: boolean;
  /** remount in place; the options that differ */
  remount?: string[];
  mkdir?: boolean;
  persist?: boolean;
  /** the real run's comment when the live mount is left as it is */
  live: string;
}

function fstabEntry(a: MountedArgs): FstabEntry {
  return {
    device: fstabEscape(a.device),
    name: fstabEscape(a.name),
    fstype: a.fstype,
    opts: mountOpts(a.opts).join(','),
    dump: String(a.dump),
    pass_num: String(a.pass_num),
  };
}

/** Salt's comments are sentences joined with '. ' (without doubling a final dot). */
function sentences(parts: string[]): string {
  return parts.reduce((acc, p) => (acc ? `${acc.replace(/\.$/, '')}. ${p}` : p), '');
}

const mountCmd = (a: MountedArgs, opts: string[], target: string) => ['mount', '-t', a.fstype, '-o', opts.join(','), '--', a.device, target];
const remountCmd = (a: MountedArgs, opts: string[], target: string) => ['mount', '-o', ['remount', ...opts].join(','), '-t', a.fstype, '--', a.device, target];

const mounted = defineState<typeof mountedArgs, MountedPlan>({
  args: mountedArgs,
  async check(ctx, a) {
    const opts = mountOpts(a.opts);
    const bind = isBind(opts);
    const mounts = await liveMounts(ctx);
    const cur = mountAt(mounts, realOr(a.name));
    const exists = fs.existsSync(a.name);
    const plan: MountedPlan = { live: 'Target was already mounted' };
    const changes: Changes = {};
    const said: string[] = [];

    if (a.mount && cur) {
      if (!isWanted(cur, mounts, a.device, bind)) {
        const resolved = bind ? undefined : resolveDevice(a.device);
        if (!bind && isTagDevice(a.device) && resolved === undefined) {
          // no way to tell whether the mounted device is this one: refuse rather than unmount it
          throw new StateFailure(`Unable to find device ${a.device} (no /dev/disk link names it), so the mount on ${a.name} (${cur.source}) cannot be compared`);
        }
        const real = resolved && resolved !== a.device ? ` (${resolved})` : '';
        plan.umount = { why: 'device', message: `Forced unmount because devices don't match. Wanted: ${a.device}${real}, current: ${cur.source}` };
        plan.mount = true;
        changes.umount = plan.umount.message;
        changes.mount = true;
        said.push(`An umount would have been forced because devices do not match.  Watched: ${a.device}`);
      } else {
        const drift = optionDrift(opts, cur, a.fstype, a.hidden_opts, await idsFor(ctx, opts));
        const list = drift.join(',');
        if (drift.length && a.remount) {
          if (cycleOnRemount(a.fstype)) {
            plan.umount = { why: 'options', options: list, message: `Forced unmount and mount because options (${list}) changed` };
            plan.mount = true;
            changes.umount = plan.umount.message;
          } else {
            plan.remount = drift;
            changes.umount = `Forced remount because options (${list}) changed`;
          }
          said.push(`Remount would be forced because options (${list}) changed`);
        } else {
          if (drift.length) plan.live += `. Options (${list}) differ from the mounted ones; not remounted (remount: False)`;
          said.push(plan.live);
        }
      }
    } else if (a.mount) {
      if (!exists && !a.mkmnt) {
        // test mode: an earlier state of the run may create it
        if (!ctx.test) throw new StateFailure(`Mount directory ${a.name} is not present (mkmnt: True creates it)`);
        said.push(`${a.name} does not exist and would not be created`);
      } else {
        said.push(exists ? `${a.name} would be mounted` : `${a.name} would be created and mounted`);
      }
      plan.mount = true;
      plan.mkdir = !exists;
      changes.mount = true;
    } else if (!cur && !exists && a.mkmnt) {
      // mount: False still makes the mount point (Salt's "was created, not mounted")
      plan.mkdir = true;
      changes.mkmnt = true;
      said.push(`${a.name} would be created, but not mounted`);
    } else {
      plan.live = cur ? 'Target was already mounted' : exists ? `${a.name} not mounted` : `${a.name} not present and not mounted`;
      said.push(plan.live);
    }

    if (a.persist) {
      const text = readOptional(ctx.path(a.config));
      if (text === undefined && !ctx.test) {
        throw new StateFailure(`Bad config file "${a.config}": it does not exist (persist: True writes the mount to it)`);
      }
      const status = setFstab(text ?? '', fstabEntry(a), matchKeys(a.match_on, a.fstype)).status;
      if (status === 'present') {
        said.push('Entry already exists in the fstab.');
      } else {
        plan.persist = true;
        changes.persist = status === 'new' ? 'new' : 'update';
        const isMounted = a.mount && !plan.mount;
        said.push(
          status === 'new'
            ? `${a.name} ${isMounted ? 'is mounted, but needs' : 'needs'} to be written to the fstab in order to be made persistent.`
            : isMounted
              ? `${a.name} is mounted, but its fstab entry must be updated.`
              : `The ${a.name} fstab entry must be updated.`,
        );
      }
    }
    const comment = sentences(said);
    return Object.keys(changes).length ? { changes, plan, comment } : { comment };
  },

  async apply(ctx, a, plan) {
    if (!plan) throw new StateFailure('mount.mounted: apply without a plan');
    const opts = mountOpts(a.opts);
    const changes: Changes = {};
    let comment = plan.live;

    if (plan.umount) {
      changes.umount = plan.umount.message;
      let err = await run(['umount', '--', realOr(a.name)]);
      if (err && plan.umount.why === 'options') {
        // Salt: a busy network mount is unmounted lazily
        changes.umount = `Forced a lazy unmount and mount because the previous unmount failed and because the options (${plan.umount.options}) changed`;
        err = await run(['umount', '-l', '--', realOr(a.name)]);
      }
      await freshMounts(ctx);
      if (err) throw new StateFailure(`Unable to unmount ${a.name}: ${err}`);
    }

    let created: string[] = [];
    if (plan.mkdir) {
      try {
        created = await makeDirs(a.name, undefined);
      } catch (e) {
        throw new StateFailure(`Failed to create the mount point ${a.name}: ${(e as Error).message}`, changes);
      }
      if (!plan.mount) changes.mkmnt = true;
      comment = `${a.name} was created, not mounted`;
    }

    const target = realOr(a.name);
    if (plan.mount) {
      const err = await run(mountCmd(a, opts, target));
      const now = mountAt(await freshMounts(ctx), target);
      if (err || !now) {
        // leave behind no mount point this state made for nothing
        for (const d of created.reverse()) {
          try {
            fs.rmdirSync(d);
          } catch {
            /* not empty or gone: not ours to force */
          }
        }
        throw new StateFailure(err ?? `mount reported success, but nothing is mounted on ${a.name}`, changes);
      }
      if (plan.umount?.why !== 'options') changes.mount = true;
      comment = 'Target was successfully mounted';
      const drift = optionDrift(opts, now, a.fstype, a.hidden_opts, await idsFor(ctx, opts));
      // every later run would remount for these: say so now
      if (drift.length) comment += `. Options (${drift.join(',')}) do not show in ${MOUNTINFO}; list them in hidden_opts`;
    } else if (plan.remount) {
      changes.umount = `Forced remount because options (${plan.remount.join(',')}) changed`;
      const err = await run(remountCmd(a, opts, target));
      const now = mountAt(await freshMounts(ctx), target);
      if (err || !now) throw new StateFailure(`Unable to remount ${a.name}: ${err ?? 'it is no longer mounted'}`, err ? {} : changes);
      const still = optionDrift(opts, now, a.fstype, a.hidden_opts, await idsFor(ctx, opts));
      if (still.length) {
        throw new StateFailure(
          `Remounted ${a.name}, but options (${still.join(',')}) still do not show in ${MOUNTINFO}; if the kernel does not report them, list them in hidden_opts`,
          changes,
        );
      }
      comment = 'Target was already mounted';
    }

    if (a.persist) {
      const file = ctx.path(a.config);
      try {
        const text = readOptional(file);
        if (text === undefined) throw new Error('it does not exist');
        const r = setFstab(text, fstabEntry(a), matchKeys(a.match_on, a.fstype));
        if (r.status !== 'present') {
          await writeFstab(file, r.text);
          changes.persist = r.status === 'new' ? 'new' : 'update';
        }
        comment = sentences([
          comment,
          r.status === 'new' ? 'Added new entry to the fstab.' : r.status === 'change' ? 'Updated the entry in the fstab.' : 'Entry already exists in the fstab.',
        ]);
      } catch (e) {
        throw new StateFailure(sentences([comment, `However, ${a.config} could not be written: ${(e as Error).message}`]), changes);
      }
    }
    return { changes, comment };
  },

  // Salt's mod_watch: remount with the state's options (mount when not mounted)
  async modWatch(ctx, a): Promise<ApplyOutcome> {
    const target = realOr(a.name);
    const cur = mountAt(await liveMounts(ctx), target);
    if (ctx.test) return { changes: {}, comment: `${a.name} would be ${cur ? 'remounted' : 'mounted'}` };
    const opts = mountOpts(a.opts);
    const err = await run(cur ? remountCmd(a, opts, target) : mountCmd(a, opts, target));
    await freshMounts(ctx);
    if (err) throw new StateFailure(`${a.name} failed to remount: ${err}`);
    return { changes: {}, comment: `${a.name} remounted` };
  },
});

// ---- mount.unmounted ----

interface UnmountedPlan {
  umount: boolean;
  purge: boolean;
}

const unmounted = defineState<typeof unmountedArgs, UnmountedPlan>({
  args: unmountedArgs,
  async check(ctx, a) {
    const mounts = await liveMounts(ctx);
    const cur = mountAt(mounts, realOr(a.name));
    const plan: UnmountedPlan = { umount: false, purge: false };
    const changes: Changes = {};
    const said: string[] = [];
    if (cur && (a.device === undefined || holds(cur, mounts, a.device))) {
      plan.umount = true;
      changes.umount = true;
      said.push(`Mount point ${a.name} is mounted but should not be`);
    } else {
      said.push(cur ? `Target was already unmounted (${cur.source} is mounted on ${a.name}, not ${a.device})` : 'Target was already unmounted');
    }
    if (a.persist) {
      const entries = entriesFor(readOptional(ctx.path(a.config)) ?? '', fstabEscape(a.name));
      if (!entries.length) said.push('fstab entry not found');
      else if (a.device !== undefined && !entries.some((e) => e.device === fstabEscape(a.device!))) said.push(`fstab entry for device ${a.device} not found`);
      else {
        plan.purge = true;
        changes.persist = 'purged';
        said.push(`Mount point ${a.name} is unmounted but needs to be purged from ${a.config} to be made persistent`);
      }
    }
    const comment = sentences(said);
    return Object.keys(changes).length ? { changes, plan, comment } : { comment };
  },

  async apply(ctx, a, plan) {
    if (!plan) throw new StateFailure('mount.unmounted: apply without a plan');
    const changes: Changes = {};
    let comment = 'Target was already unmounted';
    if (plan.umount) {
      const target = realOr(a.name);
      // stacked mounts: unmount until the mount point shows what was underneath them all
      for (let i = 0; ; i++) {
        const err = await run(['umount', '--', target]);
        const now = await freshMounts(ctx);
        if (err) throw new StateFailure(`Unable to unmount ${a.name}: ${err}`, changes);
        changes.umount = true;
        const top = mountAt(now, target);
        if (!top || (a.device !== undefined && !holds(top, now, a.device))) break;
        if (i >= 15) throw new StateFailure(`${a.name} is still mounted after ${i + 1} unmounts`, changes);
      }
      comment = 'Target was successfully unmounted';
    }
    if (plan.purge) {
      const file = ctx.path(a.config);
      try {
        const r = removeFromFstab(readOptional(file) ?? '', fstabEscape(a.name), a.device === undefined ? undefined : fstabEscape(a.device));
        if (r.removed) {
          await writeFstab(file, r.text);
          changes.persist = 'purged';
        }
        comment = sentences([comment, 'Removed target from fstab']);
      } catch (e) {
        throw new StateFailure(sentences([comment, `Failed to persist purge: ${(e as Error).message}`]), changes);
      }
    }
    return { changes, comment };
  },

  async modWatch() {
    return { changes: {}, comment: 'Watch not supported in unmounted at this time' };
  },
});

export default { mounted, unmounted } satisfies StateModule;
