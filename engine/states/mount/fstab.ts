/**
 * fstab text editing for mount.mounted / mount.unmounted, as salt/modules/mount.py does it
 * (set_fstab / rm_fstab): entries are found by `match_on` fields, a found entry that differs is
 * replaced by Salt's line format, a missing one is appended. Every other line (comments,
 * blanks, lines that are not entries) stays byte for byte. Pure functions over text.
 */

export const FSTAB_KEYS = ['device', 'name', 'fstype', 'opts', 'dump', 'pass_num'] as const;
export type FstabKey = (typeof FSTAB_KEYS)[number];
export type FstabEntry = Record<FstabKey, string>;

/**
 * Salt's `match_on: auto`: pseudo and network filesystems have no unique device ("tmpfs",
 * "none"), so their entry is found by mount point; everything else by device.
 */
const MATCH_ON_NAME = new Set(['none', 'tmpfs', 'sysfs', 'proc', 'fusectl', 'debugfs', 'securityfs', 'devtmpfs', 'cgroup', 'nfs', 'nfs4', 'glusterfs', 'btrfs']);

export function matchKeys(matchOn: 'auto' | FstabKey | FstabKey[], fstype: string): FstabKey[] {
  if (Array.isArray(matchOn)) return matchOn;
  if (matchOn !== 'auto') return [matchOn];
  return MATCH_ON_NAME.has(fstype) ? ['name'] : ['device'];
}

/** fstab(5) writes blanks in fields as octal escapes. */
export function fstabEscape(s: string): string {
  return s.replace(/ /g, '\\040').replace(/\t/g, '\\011').replace(/\n/g, '\\012');
}

/** Salt's line format for an entry it writes. */
export function formatEntry(e: FstabEntry): string {
  return `${e.device}\t\t${e.name}\t${e.fstype}\t${e.opts}\t${e.dump} ${e.pass_num}\n`;
}

/** The file split into lines that keep their own terminator, so joining gives the text back. */
export function splitLines(text: string): string[] {
  return text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
}

/** An entry line's fields (as written, escapes kept), or undefined for comments/blanks/junk. */
export function parseEntry(line: string): FstabEntry | undefined {
  const body = line.replace(/\r?\n$/, '').trim();
  if (!body || body.startsWith('#')) return undefined;
  const f = body.split(/\s+/);
  // Salt: 4 to 6 fields, missing dump/pass are 0
  if (f.length < 4 || f.length > 6) return undefined;
  while (f.length < 6) f.push('0');
  return { device: f[0]!, name: f[1]!, fstype: f[2]!, opts: f[3]!, dump: f[4]!, pass_num: f[5]! };
}

/** '/mnt/x/' and '/mnt/x' are one mount point. */
const normName = (n: string) => (n.length > 1 ? n.replace(/\/+$/, '') : n);
const sortedOpts = (o: string) => o.split(',').sort().join(',');

function fieldEqual(key: FstabKey, a: string, b: string): boolean {
  if (key === 'opts') return sortedOpts(a) === sortedOpts(b);
  if (key === 'name') return normName(a) === normName(b);
  return a === b;
}

export function entryMatches(line: FstabEntry, want: Partial<FstabEntry>, keys: readonly FstabKey[]): boolean {
  return keys.every((k) => want[k] === undefined || fieldEqual(k, line[k], want[k]));
}

export type SetStatus = 'present' | 'new' | 'change';

/**
 * set_fstab: every entry matching `keys` is compared with `want` and replaced when it differs;
 * with no match the entry is appended. `text` is returned unchanged for 'present'.
 */
export function setFstab(text: string, want: FstabEntry, keys: readonly FstabKey[]): { status: SetStatus; text: string } {
  let status: SetStatus | undefined;
  const out = splitLines(text).map((line) => {
    const e = parseEntry(line);
    if (!e || !entryMatches(e, want, keys)) return line;
    if (entryMatches(e, want, FSTAB_KEYS)) {
      status ??= 'present';
      return line;
    }
    status = 'change';
    return formatEntry(want);
  });
  if (status === undefined) {
    // a last line without its newline must not run into ours
    if (text !== '' && !text.endsWith('\n')) out.push('\n');
    out.push(formatEntry(want));
    status = 'new';
  }
  return { status, text: status === 'present' ? text : out.join('') };
}

/** The entries for mount point `name` (fields as written). */
export function entriesFor(text: string, name: string): FstabEntry[] {
  return splitLines(text)
    .map(parseEntry)
    .filter((e): e is FstabEntry => e !== undefined && fieldEqual('name', e.name, name));
}

/** rm_fstab: drop the entries for `name` (and `device`, when given); the rest stays as it is. */
export function removeFromFstab(text: string, name: string, device?: string): { removed: number; text: string } {
  let removed = 0;
  const out = splitLines(text).filter((line) => {
    const e = parseEntry(line);
    if (!e || !fieldEqual('name', e.name, name) || (device !== undefined && e.device !== device)) return true;
    removed++;
    return false;
  });
  return { removed, text: removed ? out.join('') : text };
}
