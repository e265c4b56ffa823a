/**
 * nss.ts on this machine (root): users and groups in /etc/passwd and /etc/group are answered
 * without forking getent, with exactly getent's fields; anything else still asks getent. A
 * `getent` first on PATH logs every call (then runs the real one), so "no fork" is observed,
 * not assumed. And the files parser against glibc itself: fixture files bind-mounted over
 * /etc/passwd and /etc/group in a private mount namespace, read by the real getent.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { getgrnam, getgrnamSync, getpwnam, getpwnamSync } from '../../engine/run/nss.js';
import { NSS_PATHS, filesEntry, lookupKey, parseFilesDb, type NssDb } from '../../engine/run/nss-files.js';

const USER = `tsalt_nss_${process.pid}`;
const GROUP = `tsalt_nssg_${process.pid}`;
const ABSENT = `tsalt_nss_absent_${process.pid}`;

let dir: string;
let log: string;
const savedPath = process.env.PATH;
const savedNss = { ...NSS_PATHS };

/** the real getent's fields, as nss.ts splits them */
function getent(db: NssDb, key: string): string[] | undefined {
  const r = spawnSync('/usr/bin/getent', [db, '--', key], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.split('\n')[0]!.split(':') : undefined;
}
const calls = () => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').filter(Boolean) : []);

function cleanup() {
  spawnSync('userdel', [USER], { stdio: 'ignore' });
  spawnSync('groupdel', [USER], { stdio: 'ignore' });
  spawnSync('groupdel', [GROUP], { stdio: 'ignore' });
}

beforeAll(() => {
  cleanup();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsalt-nss-'));
  log = path.join(dir, 'getent.log');
  fs.mkdirSync(path.join(dir, 'bin'));
  fs.writeFileSync(path.join(dir, 'bin/getent'), `#!/bin/sh\nprintf '%s\\n' "$*" >> '${log}'\nexec /usr/bin/getent "$@"\n`, { mode: 0o755 });
  process.env.PATH = `${dir}/bin:${savedPath}`;
});

afterAll(() => {
  process.env.PATH = savedPath;
  Object.assign(NSS_PATHS, savedNss);
  cleanup();
  fs.rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  fs.rmSync(log, { force: true });
  Object.assign(NSS_PATHS, savedNss);
});

describe('a real user and group, on this machine', () => {
  it('the wrapper on PATH sees the getent forks', async () => {
    expect(await getpwnam(ABSENT)).toBeUndefined();
    expect(getgrnamSync(ABSENT)).toBeUndefined();
    expect(calls()).toEqual([`passwd -- ${ABSENT}`, `group -- ${ABSENT}`]);
  });

  it('a user added during the process is found in /etc/passwd, without forking getent', async () => {
    expect(await getpwnam(USER)).toBeUndefined(); // not there yet: getent asked
    execFileSync('groupadd', [GROUP]);
    execFileSync('useradd', ['-M', '-U', '-G', GROUP, '-s', '/usr/sbin/nologin', '-c', 'Nss Test,1,,', '-d', '/nonexistent', USER]);
    fs.rmSync(log);
    const pw = getent('passwd', USER)!;
    const gr = getent('group', GROUP)!;
    expect(pw[0]).toBe(USER);
    expect(gr[3]).toBe(USER);

    const a = await getpwnam(USER);
    expect(a).toEqual({ name: pw[0], passwd: pw[1], uid: Number(pw[2]), gid: Number(pw[3]), gecos: pw[4], home: pw[5], shell: pw[6] });
    expect(getpwnamSync(USER)).toEqual(a);
    expect(await getpwnam(pw[2]!)).toEqual(a); // runas: <uid>
    expect(getpwnamSync(pw[2]!)).toBeUndefined(); // templates: names only
    expect(await getgrnam(GROUP)).toEqual(gr);
    expect(getgrnamSync(GROUP)).toEqual(gr);
    expect(await getgrnam(USER)).toEqual(getent('group', USER));
    expect(await getgrnam(gr[2]!)).toEqual(gr);
    expect(await getpwnam('root')).toMatchObject({ uid: 0, gid: 0, home: '/root' });
    expect(calls()).toEqual([]);
  });

  it('a user removed is gone on the next lookup (the file changed): getent is asked', async () => {
    expect(await getpwnam(USER)).toBeDefined();
    execFileSync('userdel', [USER]);
    expect(await getpwnam(USER)).toBeUndefined();
    expect(calls()).toEqual([`passwd -- ${USER}`]);
  });

  it('with another source before files in nsswitch.conf, getent answers', async () => {
    NSS_PATHS.nsswitch = path.join(dir, 'nsswitch.conf');
    fs.writeFileSync(NSS_PATHS.nsswitch, 'passwd: sss files\ngroup: sss files\n');
    expect((await getpwnam('root'))?.uid).toBe(0);
    expect(getgrnamSync('root')?.[2]).toBe('0');
    expect(calls()).toEqual(['passwd -- root', 'group -- root']);
  });
});

describe('the files parser against glibc (fixtures bind-mounted over /etc in a private namespace)', () => {
  const PASSWD = [
    'root:x:0:0:root:/root:/bin/bash',
    '# comment',
    '   # indented comment',
    '',
    ' \t indented:x:1001:1001:In Dented,,,:/home/indented:/bin/sh',
    'dup:x:1002:1002::/home/dup:/bin/sh',
    'dup:x:1003:1003::/home/dup2:/bin/sh',
    'zeros:x:007:0100::/:/usr/sbin/nologin',
    'crlf:x:1004:1004::/:/bin/sh\r',
    'sameuid:x:1002:1:other:/:/bin/sh',
    'utf:x:1006:1006:Zoë Ünïcode:/home/zoë:/bin/sh',
    'emptypw::1007:1007::/:',
    'last:x:1005:1005::/:/bin/sh', // no final newline
  ].join('\n');
  const GROUP = ['root:x:0:', 'adm:x:4:syslog,alice', 'sparse:x:5:a,,b,', 'adm:x:9:', '  ind:!:11:u', 'zero:x:010:'].join('\n');

  /** what the real getent prints for each db=key in a namespace where /etc/passwd|group are the fixtures */
  function glibc(keys: Array<[NssDb, string]>): Array<string[] | undefined> {
    fs.writeFileSync(path.join(dir, 'passwd'), PASSWD);
    fs.writeFileSync(path.join(dir, 'group'), GROUP);
    const script =
      'mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/group || exit 99; shift 2\n' +
      'while [ $# -gt 0 ]; do /usr/bin/getent "$1" -- "$2"; echo "@@$?"; shift 2; done\n';
    const out = execFileSync('unshare', ['-m', 'sh', '-c', script, 'sh', path.join(dir, 'passwd'), path.join(dir, 'group'), ...keys.flat()], {
      encoding: 'utf8',
    });
    const parts = out.split(/@@(\d+)\n/);
    return keys.map((_, i) => (parts[2 * i + 1] === '0' ? parts[2 * i]!.replace(/\n$/, '').split(':') : undefined));
  }

  it('every entry the parser claims is what getent prints', () => {
    const keys: Array<[NssDb, string]> = [
      ...['root', 'indented', 'dup', 'zeros', 'crlf', 'sameuid', 'utf', 'emptypw', 'last', '0', '1002', '1003', '7', '1005', '# comment', 'absent'].map(
        (k) => ['passwd', k] as [NssDb, string],
      ),
      ...['root', 'adm', 'sparse', 'zero', 'ind', '4', '9', '10', '8'].map((k) => ['group', k] as [NssDb, string]),
    ];
    const tables = { passwd: parseFilesDb('passwd', PASSWD)!, group: parseFilesDb('group', GROUP)! };
    expect(tables.passwd).toBeDefined();
    expect(tables.group).toBeDefined();
    const real = glibc(keys);
    const claimed = keys.map(([db, k]) => lookupKey(tables[db], k));
    // the parser's answers are glibc's; where it has none, the key is not in the fixture
    expect(claimed.map((c, i) => (c === undefined ? undefined : real[i]))).toEqual(claimed);
    expect(claimed.filter(Boolean).length).toBe(keys.length - 3); // all but '# comment', 'absent', gid 8
  });

  it("this machine's /etc/passwd and /etc/group: every name and id as getent prints it", () => {
    for (const db of ['passwd', 'group'] as const) {
      const text = fs.readFileSync(`/etc/${db}`, 'utf8');
      const t = parseFilesDb(db, text)!;
      expect(t, db).toBeDefined();
      const keys = text.split('\n').filter(Boolean).flatMap((l) => [l.split(':')[0]!, l.split(':')[2]!]);
      expect(keys.length).toBeGreaterThan(10);
      for (const k of keys) expect(lookupKey(t, k), `${db} ${k}`).toEqual(getent(db, k));
    }
  });
});

/**
 * Timestamps with a resolution of a second (ext4 with 128-byte inodes, as older filesystems
 * and kernels have): an edit in place within the second keeps size, inode, mtime and ctime, so
 * a file's version cannot be told from its stat. A file changed in the last 2 s is therefore not
 * kept: the next lookup reads it again. A real loop-mounted filesystem (this machine's own has
 * nanosecond timestamps, where the rule is never needed).
 */
describe('a passwd file on a filesystem with one-second timestamps', () => {
  let mnt: string;
  let img: string;
  beforeAll(() => {
    img = path.join(dir, 'coarse.img');
    mnt = path.join(dir, 'coarse');
    fs.mkdirSync(mnt);
    execFileSync('truncate', ['-s', '8M', img]);
    execFileSync('mkfs.ext4', ['-q', '-F', '-I', '128', img], { stdio: 'ignore' });
    execFileSync('mount', ['-o', 'loop', img, mnt]);
  });
  afterAll(() => {
    spawnSync('umount', [mnt]);
  });

  it('an edit in place within the same second is seen on the next lookup', () => {
    const p = path.join(mnt, 'passwd');
    const line = (shell: string) => `coarse:x:1234:1234::/home/coarse:${shell}\n`;
    Object.assign(NSS_PATHS, { nsswitch: path.join(mnt, 'nsswitch.conf'), passwd: p, nscdSocket: path.join(mnt, 'nscd') });
    fs.writeFileSync(NSS_PATHS.nsswitch, 'passwd: files\ngroup: files\n');
    // both writes in one second (tried again when the second turns between them)
    for (let i = 0; ; i++) {
      fs.writeFileSync(p, line('/bin/aaa'));
      expect(filesEntry('passwd', 'coarse')![6]).toBe('/bin/aaa');
      const before = fs.statSync(p, { bigint: true });
      fs.writeFileSync(p, line('/bin/bbb')); // same size, same inode
      const after = fs.statSync(p, { bigint: true });
      if (after.mtimeNs === before.mtimeNs && after.ctimeNs === before.ctimeNs) {
        expect(after.mtimeNs % 1_000_000_000n).toBe(0n); // the filesystem's timestamps are whole seconds
        expect(filesEntry('passwd', 'coarse')![6]).toBe('/bin/bbb');
        break;
      }
      expect(i).toBeLessThan(20);
    }
  });
});
