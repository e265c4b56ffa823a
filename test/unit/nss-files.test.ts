/**
 * nss-files.ts over fixture texts: when /etc/passwd and /etc/group hold getent's answer (glibc's
 * nsswitch.conf and files-backend rules), and every case where only getent can tell. The real
 * lookups against getent, with a real user, are in nss.test.ts (host).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NSS_PATHS, filesEntry, filesFirst, lookupKey, parseFilesDb } from '../../engine/run/nss-files.js';

const DEBIAN = `# /etc/nsswitch.conf
#
passwd:         files systemd
group:          files systemd
shadow:         files systemd

hosts:          files mdns4_minimal [NOTFOUND=return] dns
netgroup:       nis
`;

describe('nsswitch.conf: files first', () => {
  const conf = (passwd: string, group = 'files') => `passwd: ${passwd}\ngroup: ${group}\n`;

  it('files first, with or without later sources', () => {
    expect(filesFirst(DEBIAN)).toEqual({ passwd: true, group: true });
    expect(filesFirst(conf('files'))).toEqual({ passwd: true, group: true });
    expect(filesFirst(conf('files sss', 'files [SUCCESS=merge] systemd'))).toEqual({ passwd: true, group: false });
    expect(filesFirst('  passwd:files\tldap\r\ngroup :: files\n')).toEqual({ passwd: true, group: true });
    // a trailing comment line without newline is ignored like any comment
    expect(filesFirst(`${conf('files')}# end`)).toEqual({ passwd: true, group: true });
  });

  it('another first source, compat, or an action on files: getent', () => {
    expect(filesFirst(conf('sss files'))).toEqual({ passwd: false, group: true });
    expect(filesFirst(conf('compat'))).toEqual({ passwd: false, group: true });
    expect(filesFirst(conf('files [SUCCESS=continue] sss'))!.passwd).toBe(false);
    expect(filesFirst(conf('files[NOTFOUND=return] sss'))!.passwd).toBe(false);
    expect(filesFirst(conf('filesx'))!.passwd).toBe(false);
    expect(filesFirst(conf(''))!.passwd).toBe(false); // glibc: no source at all
    expect(filesFirst('passwd\ngroup: files\n')!.passwd).toBe(false);
  });

  it('no line for the database, or a configuration glibc reads otherwise or not at all: getent', () => {
    // no line for the database: the built-in default depends on how glibc was built
    expect(filesFirst('')).toEqual({ passwd: false, group: false });
    expect(filesFirst('passwd: files\n')).toEqual({ passwd: true, group: false });
    expect(filesFirst('#passwd: files\ngroup: files\n')).toEqual({ passwd: false, group: true });
    expect(filesFirst('passwd: files\ngroup: files\npasswd: sss\n')).toBeUndefined(); // duplicates
    expect(filesFirst('passwd: files\ngroup: files')).toBeUndefined(); // unterminated last line
    // an action list glibc rejects fails the whole file, whatever database it is on
    expect(filesFirst(`${conf('files')}hosts: files [BOGUS=return] dns\n`)).toBeUndefined();
    expect(filesFirst(`${conf('files')}hosts: files [NOTFOUND=return\n`)).toBeUndefined();
    expect(filesFirst(`${conf('files')}hosts: files dns # [comment]\n`)).toBeUndefined();
    expect(filesFirst(`${conf('files')}hosts: files [!UNAVAIL=return notfound = Continue] dns\n`)).toEqual({ passwd: true, group: true });
    expect(filesFirst(`passwd: files\ngroup:\u00a0files\n`)).toBeUndefined(); // non-ASCII: locale
  });
});

describe('/etc/passwd and /etc/group as the files backend reads them', () => {
  const PASSWD = `root:x:0:0:root:/root:/bin/bash
# a comment
   # an indented comment

\t  indented:x:1001:1001:In Dented,,,:/home/indented:/bin/sh
dup:x:1002:1002::/home/dup:/bin/sh
dup:x:1003:1003::/home/dup2:/bin/sh
zeros:x:007:0100::/:/usr/sbin/nologin
crlf:x:1004:1004::/:/bin/sh\r
first0:x:0:0::/:/bin/sh
last:x:1005:1005::/:/bin/sh`;

  it('comments, blank lines, leading whitespace, no final newline; the first of duplicates wins', () => {
    const t = parseFilesDb('passwd', PASSWD)!;
    expect(lookupKey(t, 'root')).toEqual(['root', 'x', '0', '0', 'root', '/root', '/bin/bash']);
    expect(lookupKey(t, 'indented')).toEqual(['indented', 'x', '1001', '1001', 'In Dented,,,', '/home/indented', '/bin/sh']);
    expect(lookupKey(t, 'dup')![2]).toBe('1002');
    expect(lookupKey(t, 'last')![0]).toBe('last');
    expect(lookupKey(t, '# a comment')).toBeUndefined();
    // ids as getent prints them (strtoul, then %lu); bytes of other fields kept
    expect(lookupKey(t, 'zeros')!.slice(2, 4)).toEqual(['7', '100']);
    expect(lookupKey(t, 'crlf')![6]).toBe('/bin/sh\r');
  });

  it('numeric keys: the first line with that id; keys strtoul reads differently go to getent', () => {
    const t = parseFilesDb('passwd', PASSWD)!;
    expect(lookupKey(t, '0')![0]).toBe('root');
    expect(lookupKey(t, '1003')![0]).toBe('dup');
    expect(lookupKey(t, '7')![0]).toBe('zeros');
    expect(lookupKey(t, '4242')).toBeUndefined();
    for (const k of ['', ' 0', '+0', '-1', '4294967296', '99999999999']) expect(lookupKey(t, k), k).toBeUndefined();
    expect(lookupKey(t, 'nobody-here')).toBeUndefined();
  });

  it('a line glibc would read differently: the whole file goes to getent', () => {
    const ok = 'root:x:0:0:root:/root:/bin/bash\n';
    expect(parseFilesDb('passwd', ok)).toBeDefined();
    for (const bad of [
      '+\n',
      '+@admins::::::\n',
      '-baduser:::::: \n',
      'short:x:1:1::/\n', // glibc fills missing fields with ''
      'long:x:1:1::/:/bin/sh:extra\n', // glibc's shell is the rest of the line
      'neg:x:-1:1::/:/bin/sh\n',
      'sp:x: 1:1::/:/bin/sh\n',
      'big:x:4294967296:1::/:/bin/sh\n',
      'nul:x:1:1::/:/bin/sh\0\n',
      '\u00a0nbsp:x:1:1::/:/bin/sh\n',
      // glibc's memmove leaves 'sh' behind: it reads the shell as '/bin/shsh'
      '  last:x:1:1::/:/bin/sh',
    ]) expect(parseFilesDb('passwd', ok + bad), JSON.stringify(bad)).toBeUndefined();
  });

  it('groups: members as getent prints them', () => {
    const t = parseFilesDb('group', 'root:x:0:\nadm:x:4:syslog,alice\nempty:x:5:a,,b,\nadm:x:9:\n')!;
    expect(lookupKey(t, 'root')).toEqual(['root', 'x', '0', '']);
    expect(lookupKey(t, 'adm')).toEqual(['adm', 'x', '4', 'syslog,alice']);
    expect(lookupKey(t, 'empty')![3]).toBe('a,b');
    expect(lookupKey(t, '9')![0]).toBe('adm');
    expect(parseFilesDb('group', 'g:x:1: alice\n')).toBeUndefined(); // glibc trims member names
    expect(parseFilesDb('group', 'g:x:1\n')).toBeUndefined();
    expect(parseFilesDb('group', '+:::\n')).toBeUndefined();
  });
});

describe('filesEntry over files on disk', () => {
  let dir: string;
  const saved = { ...NSS_PATHS };
  const write = (name: string, text: string) => {
    const p = path.join(dir, name);
    fs.writeFileSync(`${p}.tmp`, text);
    fs.renameSync(`${p}.tmp`, p); // as useradd does: a new inode
    return p;
  };

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsalt-nssfiles-'));
    Object.assign(NSS_PATHS, {
      nsswitch: write('nsswitch.conf', DEBIAN),
      passwd: write('passwd', 'root:x:0:0:root:/root:/bin/bash\n'),
      group: write('group', 'root:x:0:\n'),
      nscdSocket: path.join(dir, 'nscd-socket'),
    });
  });
  afterAll(() => {
    Object.assign(NSS_PATHS, saved);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('sees a changed file on the next lookup', () => {
    expect(filesEntry('passwd', 'root')![5]).toBe('/root');
    expect(filesEntry('passwd', 'newbie')).toBeUndefined();
    write('passwd', 'root:x:0:0:root:/root:/bin/bash\nnewbie:x:1000:1000::/home/newbie:/bin/sh\n');
    expect(filesEntry('passwd', 'newbie')![2]).toBe('1000');
    expect(filesEntry('group', 'root')).toEqual(['root', 'x', '0', '']);
  });

  it('getent when nsswitch.conf is missing, files is not first, or nscd runs', () => {
    write('passwd', 'root:x:0:0:root:/root:/bin/bash\n');
    write('group', 'root:x:0:\n');
    expect(filesEntry('passwd', 'root')).toBeDefined();
    write('nsswitch.conf', 'passwd: sss files\ngroup: files\n');
    expect(filesEntry('passwd', 'root')).toBeUndefined();
    expect(filesEntry('group', 'root')).toBeDefined();
    fs.rmSync(NSS_PATHS.nsswitch);
    expect(filesEntry('passwd', 'root')).toBeUndefined();
    write('nsswitch.conf', DEBIAN);
    expect(filesEntry('passwd', 'root')).toBeDefined();
    fs.writeFileSync(NSS_PATHS.nscdSocket, '');
    expect(filesEntry('passwd', 'root')).toBeUndefined();
    fs.rmSync(NSS_PATHS.nscdSocket);
  });
});
