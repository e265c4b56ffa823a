/**
 * The machine's live mounts for the mount states: /proc/self/mountinfo parsed, whether a
 * mounted filesystem is the wanted device, and which wanted options it lacks (Salt's
 * "Remount would be forced because options (...) changed" list). Pure apart from realpath
 * lookups; reading the file once per run is the state module's business.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface MountInfo {
  majmin: string;
  /** the directory of the source filesystem this mount shows (not '/' for bind mounts) */
  root: string;
  mountpoint: string;
  /** per-mount options (rw, nosuid, relatime...) */
  opts: string[];
  fstype: string;
  source: string;
  /** filesystem options (size=, mode=, errors=...) */
  superopts: string[];
}

/** mountinfo writes space, tab, newline and backslash in paths as \ooo. */
export function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** proc(5): `id parent maj:min root mountpoint opts [optional...] - fstype source superopts` */
export function parseMountinfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    if (sep < 0 || f.length < sep + 4) continue;
    out.push({
      majmin: f[2]!,
      root: unescapeOctal(f[3]!),
      mountpoint: unescapeOctal(f[4]!),
      opts: f[5]!.split(','),
      fstype: f[sep + 1]!,
      source: unescapeOctal(f[sep + 2]!),
      superopts: f[sep + 3]!.split(','),
    });
  }
  return out;
}

/** The visible mount at `dir`: the last one mounted there (stacked mounts hide earlier ones). */
export function mountAt(mounts: readonly MountInfo[], dir: string): MountInfo | undefined {
  for (let i = mounts.length - 1; i >= 0; i--) if (mounts[i]!.mountpoint === dir) return mounts[i];
  return undefined;
}

/** realpath when the path exists, else the path itself. */
export function realOr(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return p;
  }
}

const TAG_DIRS: Record<string, string> = { UUID: 'by-uuid', LABEL: 'by-label', PARTUUID: 'by-partuuid', PARTLABEL: 'by-partlabel' };

/**
 * The device node a device spec names: /dev paths through symlinks (LVM's /dev/vg/lv and
 * /dev/mapper/vg-lv both end at /dev/dm-N), UUID=/LABEL=... through udev's /dev/disk links.
 * Undefined for a tag no device carries.
 */
export function resolveDevice(device: string): string | undefined {
  const tag = /^(UUID|LABEL|PARTUUID|PARTLABEL)=("?)(.*)\2$/i.exec(device);
  if (!tag) return device.startsWith('/') ? realOr(device) : device;
  const dir = `/dev/disk/${TAG_DIRS[tag[1]!.toUpperCase()]}`;
  const value = tag[3]!;
  for (const v of [value, value.toLowerCase(), value.toUpperCase()]) {
    // udev's link names escape '/' and blanks
    const p = path.join(dir, v.replace(/\//g, '\\x2f').replace(/ /g, '\\x20'));
    if (fs.existsSync(p)) return realOr(p);
  }
  return undefined;
}

export const isTagDevice = (device: string) => /^(UUID|LABEL|PARTUUID|PARTLABEL)=/i.test(device);
export const isBind = (opts: readonly string[]) => opts.includes('bind') || opts.includes('rbind');

/**
 * Is `m` the wanted device? Compared as Salt does: as written, resolved, and (for FUSE specs
 * like `sshfs#user@host:/dir`) without the helper prefix the kernel never shows.
 */
export function sameDevice(m: MountInfo, device: string): boolean {
  const have = new Set([m.source]);
  if (m.source.startsWith('/')) have.add(realOr(m.source));
  const want = [device];
  const resolved = resolveDevice(device);
  if (resolved) want.push(resolved);
  const fuse = /^\w+#(.+)$/.exec(device);
  if (fuse) want.push(fuse[1]!);
  return want.some((w) => have.has(w));
}

/**
 * A bind mount shows the source filesystem's device and the directory within it, so it is the
 * wanted bind when both equal those of the directory `source` names today.
 */
export function sameBindSource(m: MountInfo, mounts: readonly MountInfo[], source: string): boolean {
  const real = realOr(source);
  let best: MountInfo | undefined;
  for (const c of mounts) {
    // the mount being checked cannot be its own source
    if (c === m) continue;
    const inside = c.mountpoint === '/' || real === c.mountpoint || real.startsWith(`${c.mountpoint}/`);
    if (inside && (!best || c.mountpoint.length >= best.mountpoint.length)) best = c;
  }
  if (!best) return false;
  const root = path.posix.join(best.root, path.posix.relative(best.mountpoint, real));
  return m.majmin === best.majmin && m.root === root;
}

// ---- options: which wanted options does the live mount not show? ----

/** Options the kernel never reports (userspace-only, or not kept): Salt's list plus a few more. */
const INVISIBLE_OPTS = new Set([
  '_netdev', 'actimeo', 'bg', 'comment', 'defaults', 'delay_connect', 'direct-io-mode', 'intr', 'loop', 'nointr',
  'nobootwait', 'nofail', 'password', 'reconnect', 'retry', 'soft', 'auto', 'users', 'bind', 'nonempty',
  'transform_symlinks', 'port', 'backup-volfile-servers',
  // not in Salt's list, but never shown either (Salt remounts on every run for them)
  'noauto', 'user', 'nouser', 'owner', 'group', 'rbind', 'remount',
]);
/** key=value options whose value is not shown (passwords, ports): the key alone is compared. */
const INVISIBLE_KEYS = new Set(['actimeo', 'comment', 'credentials', 'direct-io-mode', 'password', 'port', 'retry', 'secretfile']);
/** Filesystem options that do not force a remount. */
const IGNORE_FS_KEYS: Record<string, string[]> = { ramfs: ['size'] };
/** Options the kernel reports under another name. */
const TRANSLATE: Record<string, string> = { tcp: 'proto=tcp', udp: 'proto=udp' };
/** Defaults the kernel does not print: met unless the opposite flag is shown. */
const UNPRINTED_DEFAULTS: Record<string, string> = {
  exec: 'noexec',
  suid: 'nosuid',
  dev: 'nodev',
  async: 'sync',
  atime: 'noatime',
  diratime: 'nodiratime',
  loud: 'silent',
};

/** size=1m and size=1024k are one size; mode=0755 is shown as mode=755. */
function normaliseOpt(opt: string): string {
  const size = /^size=(\d+)([kmg])$/i.exec(opt);
  if (size) {
    const mult = { k: 1, m: 1024, g: 1024 * 1024 }[size[2]!.toLowerCase() as 'k' | 'm' | 'g'];
    return `size=${Number(size[1]) * mult}k`;
  }
  const mode = /^mode=0*([0-7]+)$/.exec(opt);
  if (mode) return `mode=${mode[1]}`;
  return opt;
}

export interface Ids {
  uid(name: string): number | undefined;
  gid(name: string): number | undefined;
}

/**
 * The wanted options the mount does not show, sorted (Salt's trigger_remount). `hidden` are the
 * user's hidden_opts: never compared.
 */
export function optionDrift(want: readonly string[], m: MountInfo, fstype: string, hidden: readonly string[], ids: Ids): string[] {
  const shown = new Set([...m.opts, ...m.superopts].map(normaliseOpt));
  const ignoreKeys = IGNORE_FS_KEYS[fstype] ?? [];
  const drift: string[] = [];
  for (const raw of want) {
    let opt = TRANSLATE[raw] ?? raw;
    const [key, ...rest] = opt.split('=');
    const value = rest.join('=');
    if (INVISIBLE_OPTS.has(opt) || hidden.includes(opt) || hidden.includes(raw) || opt.startsWith('x-')) continue;
    if (INVISIBLE_KEYS.has(key!) || ignoreKeys.includes(key!)) continue;
    if (rest.length && key === 'user' && fstype === 'cifs') opt = `username=${value}`;
    // uid=www-data is shown as uid=33
    if (rest.length && (key === 'uid' || key === 'gid') && !/^\d+$/.test(value)) {
      const id = key === 'uid' ? ids.uid(value) : ids.gid(value);
      if (id !== undefined) opt = `${key}=${id}`;
    }
    opt = normaliseOpt(opt);
    const opposite = UNPRINTED_DEFAULTS[opt];
    if (opposite !== undefined ? !shown.has(opposite) : shown.has(opt)) continue;
    drift.push(raw);
  }
  return drift.sort();
}
