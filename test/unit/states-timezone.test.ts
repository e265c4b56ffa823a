/**
 * timezone.system under --root: a temp root with a small zoneinfo tree copied from this
 * machine's tzdata, for the Debian and RedHat families. The machine's own /etc is never touched.
 */
import { afterAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { runState, tempDir } from '../helpers/harness.js';
import { convergeTwice } from './states-file-helpers.js';
import { adjtimeIsUtc, withAdjtimeClock } from '../../engine/states/timezone.js';

const DEBIAN = { os_family: 'Debian', init: 'systemd', id: 'testhost' };
const REDHAT = { os_family: 'RedHat', init: 'systemd', id: 'testhost' };
const ZONES = ['Europe/Paris', 'Etc/UTC', 'America/New_York'];

const roots: string[] = [];
afterAll(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
});

/** A root with zoneinfo (real zone files), a relative UTC link as tzdata ships it, and zone.tab. */
function makeRoot(): string {
  const r = tempDir('tsalt-tz-');
  roots.push(r);
  const zi = path.join(r, 'usr/share/zoneinfo');
  for (const z of ZONES) {
    fs.mkdirSync(path.dirname(path.join(zi, z)), { recursive: true });
    fs.copyFileSync(path.join('/usr/share/zoneinfo', z), path.join(zi, z));
  }
  fs.symlinkSync('Etc/UTC', path.join(zi, 'UTC'));
  fs.writeFileSync(path.join(zi, 'zone.tab'), 'FR\t+4852+00220\tEurope/Paris\n');
  return r;
}

const read = (r: string, p: string) => fs.readFileSync(path.join(r, p), 'utf8');
const link = (r: string) => fs.readlinkSync(path.join(r, 'etc/localtime'));

describe('timezone.system (Debian family)', () => {
  it('links /etc/localtime and writes /etc/timezone; a missing adjtime already means UTC', async () => {
    const r = makeRoot();
    const o = { root: r, grains: DEBIAN };
    const predicted = await runState('timezone.system', { name: 'Europe/Paris' }, { ...o, test: true });
    expect(predicted).toMatchObject({ result: null, changes: { timezone: 'Europe/Paris' }, comment: 'Timezone Europe/Paris needs to be set' });
    expect(fs.existsSync(path.join(r, 'etc'))).toBe(false);

    const real = await convergeTwice('timezone.system', { name: 'Europe/Paris' }, o);
    expect(real.changes).toEqual({ timezone: 'Europe/Paris' });
    expect(real.comment).toBe('Set timezone Europe/Paris');
    // the link names the path inside the system, not the --root path
    expect(link(r)).toBe('/usr/share/zoneinfo/Europe/Paris');
    expect(read(r, 'etc/timezone')).toBe('Europe/Paris\n');
    expect(fs.existsSync(path.join(r, 'etc/adjtime'))).toBe(false);
    const again = await runState('timezone.system', { name: 'Europe/Paris' }, o);
    expect(again.comment).toBe('Timezone Europe/Paris already set, UTC already set to True');

    // another zone: the link is replaced, nothing left behind in /etc
    const moved = await convergeTwice('timezone.system', { name: 'America/New_York', utc: 'True' }, o);
    expect(moved.changes).toEqual({ timezone: 'America/New_York' });
    expect(link(r)).toBe('/usr/share/zoneinfo/America/New_York');
    expect(read(r, 'etc/timezone')).toBe('America/New_York\n');
    expect(fs.readdirSync(path.join(r, 'etc')).sort()).toEqual(['localtime', 'timezone']);
  });

  it('utc: False writes LOCAL into a new /etc/adjtime; True sets UTC and keeps the drift lines', async () => {
    const r = makeRoot();
    const o = { root: r, grains: DEBIAN };
    await convergeTwice('timezone.system', { name: 'Etc/UTC' }, o);

    const predicted = await runState('timezone.system', { name: 'Etc/UTC', utc: false }, { ...o, test: true });
    expect(predicted.comment).toBe('Timezone Etc/UTC already set, UTC needs to be set to False');
    const local = await convergeTwice('timezone.system', { name: 'Etc/UTC', utc: false }, o);
    expect(local.changes).toEqual({ utc: false });
    expect(local.comment).toBe('Set UTC to False');
    expect(read(r, 'etc/adjtime')).toBe('0.0 0 0.0\n0\nLOCAL\n');
    expect(fs.statSync(path.join(r, 'etc/adjtime')).mode & 0o777).toBe(0o644);

    // hwclock's own drift figures stay; the mode of the existing file too
    fs.writeFileSync(path.join(r, 'etc/adjtime'), '0.013 1700000000 0.000000\n1700000000\nLOCAL\n');
    fs.chmodSync(path.join(r, 'etc/adjtime'), 0o600);
    const utc = await convergeTwice('timezone.system', { name: 'Etc/UTC', utc: true }, o);
    expect(utc.changes).toEqual({ utc: true });
    expect(read(r, 'etc/adjtime')).toBe('0.013 1700000000 0.000000\n1700000000\nUTC\n');
    expect(fs.statSync(path.join(r, 'etc/adjtime')).mode & 0o777).toBe(0o600);
  });

  it('zone and clock together; a stale /etc/timezone alone is a change; its mode is kept', async () => {
    const r = makeRoot();
    const o = { root: r, grains: DEBIAN };
    const both = await convergeTwice('timezone.system', { name: 'Europe/Paris', utc: false }, o);
    expect(both.changes).toEqual({ timezone: 'Europe/Paris', utc: false });
    expect(both.comment).toBe('Set timezone Europe/Paris, Set UTC to False');

    fs.writeFileSync(path.join(r, 'etc/timezone'), 'Etc/UTC\n');
    fs.chmodSync(path.join(r, 'etc/timezone'), 0o640);
    const stale = await convergeTwice('timezone.system', { name: 'Europe/Paris', utc: false }, o);
    expect(stale.changes).toEqual({ timezone: 'Europe/Paris' });
    expect(read(r, 'etc/timezone')).toBe('Europe/Paris\n');
    expect(fs.statSync(path.join(r, 'etc/timezone')).mode & 0o777).toBe(0o640);
    expect(link(r)).toBe('/usr/share/zoneinfo/Europe/Paris');
  });

  it('a zone that is itself a link in zoneinfo (UTC -> Etc/UTC) is valid, and differs from Etc/UTC by name', async () => {
    const r = makeRoot();
    const o = { root: r, grains: DEBIAN };
    await convergeTwice('timezone.system', { name: 'UTC' }, o);
    expect(link(r)).toBe('/usr/share/zoneinfo/UTC');
    const other = await convergeTwice('timezone.system', { name: 'Etc/UTC' }, o);
    expect(other.changes).toEqual({ timezone: 'Etc/UTC' });
  });
});

describe('timezone.system (RedHat family)', () => {
  it('replaces a regular /etc/localtime by the link and writes no /etc/timezone', async () => {
    const r = makeRoot();
    const o = { root: r, grains: REDHAT };
    fs.mkdirSync(path.join(r, 'etc'));
    fs.copyFileSync('/usr/share/zoneinfo/Europe/Paris', path.join(r, 'etc/localtime'));
    const predicted = await runState('timezone.system', { name: 'Europe/Paris' }, { ...o, test: true });
    expect(predicted.comment).toBe('Timezone Europe/Paris needs to be set, /etc/localtime is a regular file and will be replaced by a symlink');
    const real = await convergeTwice('timezone.system', { name: 'Europe/Paris' }, o);
    expect(real.changes).toEqual({ timezone: 'Europe/Paris' });
    expect(fs.lstatSync(path.join(r, 'etc/localtime')).isSymbolicLink()).toBe(true);
    expect(link(r)).toBe('/usr/share/zoneinfo/Europe/Paris');
    expect(fs.existsSync(path.join(r, 'etc/timezone'))).toBe(false);
  });

  it("a relative link as systemd writes it (../usr/share/zoneinfo/...) is that zone", async () => {
    const r = makeRoot();
    fs.mkdirSync(path.join(r, 'etc'));
    fs.symlinkSync('../usr/share/zoneinfo/America/New_York', path.join(r, 'etc/localtime'));
    const same = await runState('timezone.system', { name: 'America/New_York' }, { root: r, grains: REDHAT });
    expect([same.result, same.changes]).toEqual([true, {}]);
    expect(link(r)).toBe('../usr/share/zoneinfo/America/New_York');
  });
});

describe('timezone.system refuses what is not a zone, changing nothing', () => {
  it.each([
    ['Mars/Olympus_Mons', 'no zone file /usr/share/zoneinfo/Mars/Olympus_Mons'],
    ['../../../etc/passwd', 'without .. or leading /'],
    ['Europe/../Europe/Paris', 'without .. or leading /'],
    ['/Europe/Paris', 'without .. or leading /'],
    ['zone.tab', '/usr/share/zoneinfo/zone.tab is not a zone file'],
    ['Europe', 'no zone file /usr/share/zoneinfo/Europe'],
  ])('%s', async (name, why) => {
    const r = makeRoot();
    for (const test of [true, false]) {
      const out = await runState('timezone.system', { name }, { root: r, grains: DEBIAN, test });
      expect(out.result).toBe(false);
      expect(out.comment).toContain(`Unable to compare desired timezone '${name}' to system timezone: Invalid timezone '${name}'`);
      expect(out.comment).toContain(why);
    }
    expect(fs.existsSync(path.join(r, 'etc'))).toBe(false);
  });

  it('a directory at /etc/localtime', async () => {
    const r = makeRoot();
    fs.mkdirSync(path.join(r, 'etc/localtime'), { recursive: true });
    const out = await runState('timezone.system', { name: 'Europe/Paris' }, { root: r, grains: DEBIAN });
    expect([out.result, out.comment]).toEqual([false, 'Failed to set timezone: /etc/localtime is a directory']);
  });

  it('utc must be a boolean', async () => {
    await expect(runState('timezone.system', { name: 'Etc/UTC', utc: 'maybe' }, { root: makeRoot() })).rejects.toThrow(/utc/);
  });
});

describe('/etc/adjtime helpers', () => {
  it('reads and writes the third line', () => {
    expect(adjtimeIsUtc(undefined)).toBe(true);
    expect(adjtimeIsUtc('0.0 0 0.0\n0\n')).toBe(true);
    expect(adjtimeIsUtc('0.0 0 0.0\n0\nLOCAL\n')).toBe(false);
    expect(withAdjtimeClock('', false)).toBe('0.0 0 0.0\n0\nLOCAL\n');
    expect(withAdjtimeClock('1.5 2 0.0\n3', true)).toBe('1.5 2 0.0\n3\nUTC\n');
  });
});
