/**
 * mount.mounted / mount.unmounted for real: tmpfs and bind mounts on temp directories (the
 * tests run as root), `config` pointed at a temp fstab. Every mount made here is undone in
 * afterAll. The pure parts (fstab editing, mountinfo parsing, option comparison) are tested
 * on text first.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runModWatch, runState, tempDir } from '../helpers/harness.js';
import { convergeTwice } from './states-file-helpers.js';
import { exec } from '../../engine/run/exec.js';
import { formatEntry, matchKeys, removeFromFstab, setFstab, type FstabEntry } from '../../engine/states/mount/fstab.js';
import { optionDrift, parseMountinfo, type MountInfo } from '../../engine/states/mount/live.js';

// ---- pure helpers ----

describe('fstab editing (set_fstab / rm_fstab)', () => {
  const text = '# static information\n\nUUID=1111 / ext4 errors=remount-ro 0 1\n  # indented comment\nbroken line\ntmpfs /run/x tmpfs size=1m 0 0\n';
  const want: FstabEntry = { device: 'tmpfs', name: '/run/x', fstype: 'tmpfs', opts: 'size=1m', dump: '0', pass_num: '0' };

  it('present when the entry matches (options in any order), text untouched', () => {
    expect(setFstab(text, want, ['name'])).toEqual({ status: 'present', text });
    const t2 = text.replace('size=1m 0 0', 'mode=755,size=1m 0 0');
    expect(setFstab(t2, { ...want, opts: 'size=1m,mode=755' }, ['name']).status).toBe('present');
  });

  it('change replaces only the matched line, in Salt\'s format', () => {
    const r = setFstab(text, { ...want, opts: 'size=2m' }, ['name']);
    expect(r.status).toBe('change');
    expect(r.text).toBe(text.replace('tmpfs /run/x tmpfs size=1m 0 0\n', 'tmpfs\t\t/run/x\ttmpfs\tsize=2m\t0 0\n'));
  });

  it('new appends, and never glues onto a last line without newline', () => {
    const r = setFstab('proc /proc proc defaults 0 0', { ...want, name: '/y' }, ['name']);
    expect(r).toEqual({ status: 'new', text: 'proc /proc proc defaults 0 0\ntmpfs\t\t/y\ttmpfs\tsize=1m\t0 0\n' });
    expect(setFstab('', want, ['name']).text).toBe(formatEntry(want));
  });

  it('match_on auto: mount point for tmpfs/nfs/none, device otherwise; explicit keys as given', () => {
    expect(matchKeys('auto', 'tmpfs')).toEqual(['name']);
    expect(matchKeys('auto', 'nfs4')).toEqual(['name']);
    expect(matchKeys('auto', 'ext4')).toEqual(['device']);
    expect(matchKeys('name', 'ext4')).toEqual(['name']);
    // by device: the / entry is found and its mount point rewritten
    const r = setFstab(text, { device: 'UUID=1111', name: '/', fstype: 'ext4', opts: 'defaults', dump: '0', pass_num: '1' }, ['device']);
    expect(r.status).toBe('change');
    expect(r.text).toContain('UUID=1111\t\t/\text4\tdefaults\t0 1\n');
    expect(r.text).not.toContain('errors=remount-ro');
  });

  it('rm_fstab drops the mount point\'s entries (only the device\'s, when given)', () => {
    expect(removeFromFstab(text, '/run/x')).toEqual({ removed: 1, text: text.replace('tmpfs /run/x tmpfs size=1m 0 0\n', '') });
    expect(removeFromFstab(text, '/run/x', 'other')).toEqual({ removed: 0, text });
    expect(removeFromFstab(text, '/nope').removed).toBe(0);
  });
});

describe('mountinfo and option comparison', () => {
  const info =
    '36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue\n' +
    '40 27 0:50 / /srv/t rw,nosuid,relatime - tmpfs tmpfs rw,size=1024k,mode=755,uid=33\n';
  const [a, b] = parseMountinfo(info) as [MountInfo, MountInfo];
  const ids = { uid: (n: string) => (n === 'www-data' ? 33 : undefined), gid: () => undefined };

  it('parses optional fields and octal escapes', () => {
    expect(a).toMatchObject({ majmin: '98:0', root: '/mnt1', mountpoint: '/mnt/with space', fstype: 'ext3', source: '/dev/root' });
    expect(a.opts).toEqual(['rw', 'noatime']);
    expect(b.superopts).toEqual(['rw', 'size=1024k', 'mode=755', 'uid=33']);
  });

  it('wanted options the mount does not show, as Salt counts them', () => {
    const drift = (opts: string[], m = b, fstype = 'tmpfs') => optionDrift(opts, m, fstype, [], ids);
    expect(drift(['defaults', 'size=1m', 'mode=0755', 'nosuid', 'uid=www-data'])).toEqual([]);
    expect(drift(['size=2m', 'noexec', 'rw'])).toEqual(['noexec', 'size=2m']);
    // defaults the kernel does not print are met unless their opposite shows
    expect(drift(['exec', 'dev', 'suid'])).toEqual(['suid']);
    // userspace-only options never force a remount
    expect(drift(['noauto', 'nofail', '_netdev', 'x-systemd.automount', 'comment=x', 'password=secret'])).toEqual([]);
    expect(optionDrift(['inode64'], b, 'tmpfs', ['inode64'], ids)).toEqual([]);
  });
});

// ---- against the real kernel ----

const base = tempDir('tsalt-mount-');
const mnt = path.join(base, 'mnt');
const fstab = path.join(base, 'fstab');
const ORIGINAL =
  '# /etc/fstab: static file system information.\n#\nUUID=0a1b2c3d-0000-4000-8000-000000000001 /  ext4  errors=remount-ro 0 1\n' +
  '  # an indented comment\n/dev/sdz9\t/data\txfs\tdefaults,noatime 0 2\n\nproc /proc proc defaults 0 0\n';

/** The live mounts under our temp dir, from the kernel (not from the code under test). */
function mountsUnder(dir: string): { mountpoint: string; fstype: string; source: string; superopts: string[]; opts: string[] }[] {
  return parseMountinfo(fs.readFileSync('/proc/self/mountinfo', 'utf8')).filter((m) => m.mountpoint === dir || m.mountpoint.startsWith(`${dir}/`));
}
const top = (dir: string) => mountsUnder(dir).filter((m) => m.mountpoint === dir).at(-1);

const run = (fun: string, args: Record<string, unknown>, test = false) => runState(fun, args, { test });

const tmpfsArgs = (extra: Record<string, unknown> = {}) => ({
  name: mnt,
  device: 'tmpfs',
  fstype: 'tmpfs',
  opts: 'size=1m,mode=0755',
  config: fstab,
  ...extra,
});

beforeAll(() => {
  fs.mkdirSync(mnt);
  fs.writeFileSync(fstab, ORIGINAL, { mode: 0o640 });
});

afterAll(async () => {
  // innermost and most recent first; lazy so a busy mount cannot keep the temp dir mounted
  for (let i = 0; i < 20 && mountsUnder(base).length; i++) {
    for (const m of mountsUnder(base).reverse()) await exec(['umount', '-l', m.mountpoint]);
  }
  if (!mountsUnder(base).length) fs.rmSync(base, { recursive: true, force: true });
});

describe('mount.mounted (tmpfs on a temp dir, temp fstab)', () => {
  it('mounts and persists; test run predicts; a second run changes nothing', async () => {
    const t = await run('mount.mounted', tmpfsArgs(), true);
    expect(t.comment).toBe(`${mnt} would be mounted. ${mnt} needs to be written to the fstab in order to be made persistent.`);
    expect(top(mnt)).toBeUndefined();
    expect(fs.readFileSync(fstab, 'utf8')).toBe(ORIGINAL);

    const r = await convergeTwice('mount.mounted', tmpfsArgs());
    expect(r.changes).toEqual({ mount: true, persist: 'new' });
    expect(r.comment).toBe('Target was successfully mounted. Added new entry to the fstab.');
    expect(top(mnt)).toMatchObject({ fstype: 'tmpfs', source: 'tmpfs' });
    expect(top(mnt)!.superopts).toContain('size=1024k');
    // other lines byte for byte, ours appended in Salt's format; owner and mode kept
    expect(fs.readFileSync(fstab, 'utf8')).toBe(`${ORIGINAL}tmpfs\t\t${mnt}\ttmpfs\tsize=1m,mode=0755\t0 0\n`);
    expect(fs.statSync(fstab).mode & 0o777).toBe(0o640);

    const again = await run('mount.mounted', tmpfsArgs());
    expect(again).toMatchObject({ result: true, changes: {}, comment: 'Target was already mounted. Entry already exists in the fstab.' });
    // the same options written differently are the same
    expect(await run('mount.mounted', tmpfsArgs({ opts: ['mode=0755', 'size=1024k'] }))).toMatchObject({ result: true, changes: { persist: 'update' } });
    expect((await run('mount.mounted', tmpfsArgs({ opts: ['mode=0755', 'size=1024k'] }))).changes).toEqual({});
    expect((await run('mount.mounted', tmpfsArgs())).changes).toEqual({ persist: 'update' });
  });

  it('changed options remount in place (contents survive) and update the fstab entry', async () => {
    fs.writeFileSync(path.join(mnt, 'marker'), 'still here');
    const args = tmpfsArgs({ opts: ['size=2m', 'mode=0755', 'nosuid'] });
    const t = await run('mount.mounted', args, true);
    expect(t.comment).toBe(`Remount would be forced because options (nosuid,size=2m) changed. ${mnt} is mounted, but its fstab entry must be updated.`);
    const r = await convergeTwice('mount.mounted', args);
    expect(r.changes).toEqual({ umount: 'Forced remount because options (nosuid,size=2m) changed', persist: 'update' });
    expect(r.comment).toBe('Target was already mounted. Updated the entry in the fstab.');
    expect(top(mnt)!.superopts).toContain('size=2048k');
    expect(top(mnt)!.opts).toContain('nosuid');
    expect(fs.readFileSync(path.join(mnt, 'marker'), 'utf8')).toBe('still here');
    expect(mountsUnder(mnt)).toHaveLength(1);
    expect(fs.readFileSync(fstab, 'utf8')).toBe(`${ORIGINAL}tmpfs\t\t${mnt}\ttmpfs\tsize=2m,mode=0755,nosuid\t0 0\n`);
  });

  it('remount: False leaves the live options and only updates the fstab', async () => {
    const r = await convergeTwice('mount.mounted', tmpfsArgs({ opts: 'size=3m,mode=0755,nosuid', remount: false }));
    expect(r.changes).toEqual({ persist: 'update' });
    expect(r.comment).toContain('Options (size=3m) differ from the mounted ones; not remounted (remount: False)');
    expect(top(mnt)!.superopts).toContain('size=2048k');
  });

  it('another device mounted there: unmount and mount the wanted one', async () => {
    const args = tmpfsArgs({ device: 'tsalt-other', opts: 'size=2m,mode=0755,nosuid' });
    const t = await run('mount.mounted', args, true);
    expect(t.comment).toContain('An umount would have been forced because devices do not match.  Watched: tsalt-other');
    const r = await convergeTwice('mount.mounted', args);
    expect(r.changes).toEqual({
      umount: "Forced unmount because devices don't match. Wanted: tsalt-other, current: tmpfs",
      mount: true,
      persist: 'update',
    });
    expect(top(mnt)!.source).toBe('tsalt-other');
    expect(mountsUnder(mnt)).toHaveLength(1);
    expect(fs.existsSync(path.join(mnt, 'marker'))).toBe(false); // a fresh filesystem
  });

  it('mod_watch remounts (test mode only reports)', async () => {
    const args = tmpfsArgs({ device: 'tsalt-other', opts: 'size=2m,mode=0755,nosuid' });
    expect(await runModWatch('mount.mounted', args, { test: true })).toMatchObject({ result: null, comment: `${mnt} would be remounted` });
    expect(await runModWatch('mount.mounted', args)).toMatchObject({ result: true, changes: {}, comment: `${mnt} remounted` });
    expect(await runModWatch('mount.unmounted', { name: mnt })).toMatchObject({ result: true, comment: 'Watch not supported in unmounted at this time' });
  });

  it('mkmnt creates a missing mount point (with parents); a failed mount removes what it made', async () => {
    const deep = path.join(base, 'new', 'deeper');
    const bad = await run('mount.mounted', { name: deep, device: 'x', fstype: 'tsaltnosuchfs', mkmnt: true, persist: false });
    expect(bad.result).toBe(false);
    expect(bad.comment).toMatch(/unknown filesystem type|tsaltnosuchfs/);
    expect(fs.existsSync(path.join(base, 'new'))).toBe(false);

    const r = await convergeTwice('mount.mounted', { name: `${deep}/`, device: 'tmpfs', fstype: 'tmpfs', mkmnt: true, persist: false });
    expect(r).toMatchObject({ changes: { mount: true }, comment: 'Target was successfully mounted' });
    expect(top(deep)?.fstype).toBe('tmpfs');
  });

  it('a missing mount point without mkmnt fails (test mode: would not be created); nothing is done', async () => {
    const args = { name: path.join(base, 'absent'), device: 'tmpfs', fstype: 'tmpfs', config: fstab };
    const before = fs.readFileSync(fstab, 'utf8');
    const r = await run('mount.mounted', args);
    expect(r).toMatchObject({ result: false, changes: {} });
    expect(r.comment).toContain('is not present');
    expect((await run('mount.mounted', args, true)).comment).toContain('does not exist and would not be created');
    expect(fs.readFileSync(fstab, 'utf8')).toBe(before);
  });

  it('persist with a missing fstab fails before mounting anything', async () => {
    const dir = path.join(base, 'nofstab');
    fs.mkdirSync(dir);
    const r = await run('mount.mounted', { name: dir, device: 'tmpfs', fstype: 'tmpfs', config: path.join(base, 'missing-fstab') });
    expect(r.result).toBe(false);
    expect(r.comment).toContain('Bad config file');
    expect(top(dir)).toBeUndefined();
  });

  it('mount: False writes only the fstab entry', async () => {
    const dir = path.join(base, 'later');
    fs.mkdirSync(dir);
    const r = await convergeTwice('mount.mounted', { name: dir, device: 'tmpfs', fstype: 'tmpfs', config: fstab, mount: false });
    expect(r).toMatchObject({ changes: { persist: 'new' }, comment: `${dir} not mounted. Added new entry to the fstab.` });
    expect(top(dir)).toBeUndefined();
    expect(fs.readFileSync(fstab, 'utf8')).toContain(`tmpfs\t\t${dir}\ttmpfs\tdefaults\t0 0\n`);
  });

  it('bind mounts compare the source directory, and follow a changed device', async () => {
    const src1 = path.join(base, 'src1');
    const src2 = path.join(base, 'src2');
    const dst = path.join(base, 'bound');
    for (const d of [src1, src2, dst]) fs.mkdirSync(d);
    fs.writeFileSync(path.join(src1, 'which'), '1');
    fs.writeFileSync(path.join(src2, 'which'), '2');
    const args = { name: dst, device: src1, fstype: 'none', opts: 'bind', config: fstab };
    const r = await convergeTwice('mount.mounted', args);
    expect(r.changes).toEqual({ mount: true, persist: 'new' });
    expect(fs.readFileSync(path.join(dst, 'which'), 'utf8')).toBe('1');

    const r2 = await convergeTwice('mount.mounted', { ...args, device: src2 });
    expect(r2.changes).toMatchObject({ mount: true, persist: 'update' });
    expect(String(r2.changes.umount)).toContain("devices don't match");
    expect(fs.readFileSync(path.join(dst, 'which'), 'utf8')).toBe('2');
    expect(mountsUnder(dst)).toHaveLength(1);
  });

  it('mount points with spaces: \\040 in mountinfo and in the fstab', async () => {
    const dir = path.join(base, 'with space');
    fs.mkdirSync(dir);
    const r = await convergeTwice('mount.mounted', { name: dir, device: 'tmpfs', fstype: 'tmpfs', config: fstab });
    expect(r.changes).toEqual({ mount: true, persist: 'new' });
    expect(fs.readFileSync(fstab, 'utf8')).toContain(`tmpfs\t\t${dir.replace(' ', '\\040')}\ttmpfs\tdefaults\t0 0\n`);
    expect(top(dir)?.fstype).toBe('tmpfs');
  });

  it('--root maps the fstab path, not the mount', async () => {
    const root = path.join(base, 'root');
    fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(root, 'etc/fstab'), '# chroot fstab\n');
    const dir = path.join(base, 'rooted');
    fs.mkdirSync(dir);
    const r = await convergeTwice('mount.mounted', { name: dir, device: 'tmpfs', fstype: 'tmpfs' }, { root });
    expect(r.changes).toEqual({ mount: true, persist: 'new' });
    expect(fs.readFileSync(path.join(root, 'etc/fstab'), 'utf8')).toBe(`# chroot fstab\ntmpfs\t\t${dir}\ttmpfs\tdefaults\t0 0\n`);
    expect(top(dir)?.fstype).toBe('tmpfs');
  });

  it('bad arguments are refused before anything runs', async () => {
    await expect(run('mount.mounted', { name: 'relative', device: 'tmpfs', fstype: 'tmpfs' })).rejects.toThrow(/absolute path/);
    await expect(run('mount.mounted', { name: mnt, device: '-o', fstype: 'tmpfs' })).rejects.toThrow(/must not start with -/);
    await expect(run('mount.mounted', { name: mnt, device: 'tmpfs', fstype: 'tmp fs' })).rejects.toThrow(/filesystem type/);
    await expect(run('mount.mounted', { name: mnt, device: 'tmpfs', fstype: 'tmpfs', opts: 'a b' })).rejects.toThrow(/blanks/);
    await expect(run('mount.mounted', { name: mnt, device: 'tmpfs', fstype: 'tmpfs', match_on: 'nope' })).rejects.toThrow(/match_on/);
  });
});

describe('mount.unmounted', () => {
  it('a device argument that is not what is mounted leaves the mount alone', async () => {
    const r = await run('mount.unmounted', { name: mnt, device: 'tmpfs' });
    expect(r).toMatchObject({ result: true, changes: {} });
    expect(r.comment).toContain('tsalt-other is mounted on');
    expect(top(mnt)).toBeDefined();
  });

  it('persist: False (the default) unmounts and keeps the fstab entry', async () => {
    const dir = path.join(base, 'with space');
    const before = fs.readFileSync(fstab, 'utf8');
    const r = await convergeTwice('mount.unmounted', { name: dir, config: fstab });
    expect(r).toMatchObject({ changes: { umount: true }, comment: 'Target was successfully unmounted' });
    expect(top(dir)).toBeUndefined();
    expect(fs.readFileSync(fstab, 'utf8')).toBe(before);
  });

  it('persist: True unmounts (stacked mounts too) and purges the entry; the rest of the fstab is untouched', async () => {
    await exec(['mount', '-t', 'tmpfs', 'tsalt-stacked', mnt]);
    expect(mountsUnder(mnt)).toHaveLength(2);
    const args = { name: mnt, config: fstab, persist: true };
    const t = await run('mount.unmounted', args, true);
    expect(t).toMatchObject({ result: null, comment: `Mount point ${mnt} is mounted but should not be. Mount point ${mnt} is unmounted but needs to be purged from ${fstab} to be made persistent` });
    const r = await convergeTwice('mount.unmounted', args);
    expect(r).toMatchObject({ changes: { umount: true, persist: 'purged' }, comment: 'Target was successfully unmounted. Removed target from fstab' });
    expect(mountsUnder(mnt)).toHaveLength(0);
    expect(fs.readFileSync(fstab, 'utf8')).not.toContain(`\t${mnt}\t`);
    expect(fs.readFileSync(fstab, 'utf8').startsWith(ORIGINAL)).toBe(true);
    const again = await run('mount.unmounted', args);
    expect(again.comment).toBe('Target was already unmounted. fstab entry not found');
  });
});
