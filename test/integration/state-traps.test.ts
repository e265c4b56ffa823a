/**
 * No state writes, truncates, chmods, chowns, touches or replaces a device, FIFO or socket,
 * reached directly or through a symlink (a masked systemd unit is a link to /dev/null: a
 * state managing that path once left this machine's /dev/null at 0644).
 *
 * Real traps in a temp dir: a character device 1,3 (what /dev/null is), a FIFO and a unix
 * socket, each mode 0640 so any chmod shows; links to them where the states look for their
 * files (/etc/hosts, the grains file, /etc/default/locale, fstab, a unit in
 * /etc/systemd/system...). The tree runs through `tsalt local apply --root` in a child process
 * (a FIFO read would block: the child is killed on a timeout instead of hanging the run). The
 * links are relative, so the real /dev/null is never reachable from here, whatever a broken
 * guard does.
 */
import { spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/harness.js';
import { writeTree } from '../helpers/tree.js';
import { devNullProblem } from '../helpers/dev-null.js';
import { atomicWrite, makeDirs } from '../../engine/states/file/atomic-write.js';
import { setPerms } from '../../engine/states/file/ownership.js';

const BIN = path.resolve(import.meta.dirname, '../../bin/tsalt.js');

let root: string;
let tree: string;
const TRAPS = ['traps/dev', 'traps/fifo', 'traps/sock'];

interface Snap {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  rdev: number;
  ctimeMs: number;
  mtimeMs: number;
}

function snap(p: string): Snap {
  const st = fs.lstatSync(p);
  const type = st.isCharacterDevice() ? 'chr' : st.isFIFO() ? 'fifo' : st.isSocket() ? 'sock' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'link' : 'other';
  return { type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, rdev: st.rdev, ctimeMs: st.ctimeMs, mtimeMs: st.mtimeMs };
}

const at = (rel: string) => path.join(root, rel);

function isLink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false; // missing, or below a link to a device (ENOTDIR)
  }
}

/** A relative link at `rel` (inside the root) to `to` (inside the root). */
function link(rel: string, to: string): void {
  const p = at(rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.symlinkSync(path.relative(path.dirname(p), at(to)), p);
}

const DEV = 'traps/dev';
const FIFO = 'traps/fifo';
const SOCK = 'traps/sock';

/**
 * state id -> [function, args, the link (or trap) it names, the trap that must stay untouched].
 * Every one of them must fail, naming its path and what the path leads to.
 */
const REFUSED: Record<string, { fun: string; args: Record<string, unknown>; path: string; trap: string; name?: string }> = {
  managed_through_link: { fun: 'file.managed', args: { contents: 'x', mode: '0644' }, path: 'links/managed', trap: DEV },
  managed_keep_content_set_mode: { fun: 'file.managed', args: { replace: false, mode: '0644' }, path: 'links/keep', trap: DEV },
  managed_fifo_itself: { fun: 'file.managed', args: { contents: 'x' }, path: FIFO, trap: FIFO },
  managed_socket_link: { fun: 'file.managed', args: { contents: 'x' }, path: 'links/sock', trap: SOCK },
  masked_unit_managed: { fun: 'file.managed', args: { contents: '[Unit]\n', mode: '0644' }, path: 'etc/systemd/system/trap.service', trap: DEV },
  append: { fun: 'file.append', args: { text: 'x' }, path: 'links/append', trap: FIFO },
  prepend: { fun: 'file.prepend', args: { text: 'x' }, path: 'links/prepend', trap: DEV },
  replace: { fun: 'file.replace', args: { pattern: 'a', repl: 'b' }, path: 'links/replace', trap: FIFO },
  line: { fun: 'file.line', args: { mode: 'insert', location: 'end', content: 'x' }, path: 'links/line', trap: DEV },
  comment: { fun: 'file.comment', args: { regex: '^x' }, path: 'links/comment', trap: FIFO },
  uncomment: { fun: 'file.uncomment', args: { regex: 'x' }, path: 'links/uncomment', trap: DEV },
  blockreplace: { fun: 'file.blockreplace', args: { marker_start: '# s', marker_end: '# e', content: 'x', append_if_not_found: true }, path: 'links/block', trap: FIFO },
  keyvalue: { fun: 'file.keyvalue', args: { key: 'a', value: 'b', append_if_not_found: true }, path: 'links/keyvalue', trap: DEV },
  serialize: { fun: 'file.serialize', args: { dataset: { a: 1 }, formatter: 'json', mode: '0644' }, path: 'links/serialize', trap: DEV },
  touch: { fun: 'file.touch', args: {}, path: 'links/touch', trap: DEV },
  touch_fifo: { fun: 'file.touch', args: {}, path: FIFO, trap: FIFO },
  copy_force: { fun: 'file.copy', args: { source: '/src/plain', force: true, mode: '0644' }, path: 'links/copy', trap: FIFO },
  copy_mode_only: { fun: 'file.copy', args: { source: '/src/plain', mode: '0644' }, path: 'links/copymode', trap: DEV },
  recurse_file_is_link: { fun: 'file.recurse', args: { source: 'salt://rsrc', file_mode: '0644' }, path: 'rtree', trap: DEV },
  directory_below_link: { fun: 'file.directory', args: { makedirs: true, mode: '0755' }, path: 'links/mkparent/sub', trap: DEV },
  managed_below_link: { fun: 'file.managed', args: { contents: 'x', makedirs: true }, path: 'links/mkparent2/sub/f', trap: DEV },
  // the file is regular; the backup beside it (file.replace's default '.bak') is a link to a FIFO
  replace_backup_link: { fun: 'file.replace', args: { pattern: 'a', repl: 'b' }, path: 'src/edit', trap: FIFO },
  hosts: { fun: 'host.present', args: { ip: '127.0.0.9' }, path: 'etc/hosts', trap: FIFO, name: 'trap.example' },
  grains: { fun: 'grains.present', args: { value: 1 }, path: 'etc/tsalt/grains', trap: DEV, name: 'trap_grain' },
  fstab: { fun: 'mount.mounted', args: { device: 'tmpfs', fstype: 'tmpfs', mount: false, config: '/links/fstab' }, path: 'links/fstab', trap: FIFO, name: '/mnt/tsalt-trap' },
  // sysctl's config path is not mapped under --root: @ROOT@ is the temp root; the live value is
  // today's, so only the file would change
  sysctl: { fun: 'sysctl.present', args: { value: '@SWAPPINESS@', config: '@ROOT@/links/sysctl.conf' }, path: 'links/sysctl.conf', trap: FIFO, name: 'vm.swappiness' },
  locale: { fun: 'locale.system', args: {}, path: 'etc/default/locale', trap: DEV, name: 'C.UTF-8' },
  timezone_localtime_fifo: { fun: 'timezone.system', args: {}, path: 'etc/localtime', trap: 'etc/localtime', name: 'UTC' },
  ssh_auth: {
    fun: 'ssh_auth.present',
    args: { user: 'root', enc: 'ssh-ed25519', config: '/links/authorized_keys' },
    path: 'links/authorized_keys',
    trap: FIFO,
    name: 'AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl',
  },
};

/** Done on purpose, as Salt does: the link itself is replaced or removed, the trap stays. */
const ON_PURPOSE: Record<string, { fun: string; args: Record<string, unknown>; path: string; trap: string }> = {
  managed_no_follow: { fun: 'file.managed', args: { contents: 'x', follow_symlinks: false }, path: 'links/nofollow', trap: DEV },
  symlink_relinked: { fun: 'file.symlink', args: { target: '/src/plain' }, path: 'links/relink', trap: DEV },
  absent_removes_link: { fun: 'file.absent', args: {}, path: 'links/absent', trap: FIFO },
};

function sls(): string {
  const out: string[] = [];
  for (const [id, s] of Object.entries({ ...REFUSED, ...ON_PURPOSE })) {
    const name = 'name' in s && s.name ? s.name : `/${s.path}`;
    const args = { name, ...s.args };
    const yaml = Object.entries(args).map(([k, v]) => `    - ${k}: ${JSON.stringify(v)}`).join('\n');
    const swappiness = fs.readFileSync('/proc/sys/vm/swappiness', 'utf8').trim();
    out.push(`${id}:\n  ${s.fun}:\n${yaml.replaceAll('@ROOT@', root).replaceAll('@SWAPPINESS@', swappiness)}\n`);
  }
  // recursion over a tree holding a device and a FIFO: the regular file is changed, they are not
  out.push(`recurse_leaves_specials:\n  file.directory:\n    - name: /dtree\n    - mode: '0755'\n    - file_mode: '0600'\n    - recurse: [mode]\n`);
  return out.join('');
}

function tsalt(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, 'local', 'apply', 'traps', '--states', tree, '--pillar', '/nonexistent', '--id', 'trap', '--grains-file', '/nonexistent', '--root', root, ...args], {
    encoding: 'utf8',
    // a state reading a FIFO blocks forever, with its event loop (and SIGTERM handler) stuck
    timeout: 90_000,
    killSignal: 'SIGKILL',
  });
  if (r.error) throw new Error(`tsalt local apply did not finish (a FIFO read?): ${r.error.message}\n${r.stderr}`);
  return r;
}

interface Row {
  id: string;
  result: boolean | null;
  comment: string;
  changes: Record<string, unknown>;
}

function rows(args: string[]): Record<string, Row> {
  const r = tsalt(['--json', ...args]);
  expect(r.status, r.stderr).toBe(2); // some states failed
  return Object.fromEntries((JSON.parse(r.stdout).results as Row[]).map((x) => [x.id, x]));
}

const KIND: Record<string, RegExp> = { [DEV]: /character device/, [FIFO]: /FIFO/, [SOCK]: /socket/, 'etc/localtime': /FIFO/ };

let before: Record<string, Snap>;
function untouched(): void {
  for (const t of [...TRAPS, 'etc/localtime', 'dtree/dev', 'dtree/fifo']) expect(snap(at(t)), t).toEqual(before[t]);
}

beforeAll(() => {
  root = tempDir('tsalt-traps-');
  fs.mkdirSync(at('traps'));
  execFileSync('mknod', ['-m', '0640', at(DEV), 'c', '1', '3']);
  execFileSync('mkfifo', ['-m', '0640', at(FIFO)]);
  execFileSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', at(SOCK)]);
  fs.chmodSync(at(SOCK), 0o640);
  fs.mkdirSync(at('etc'));
  execFileSync('mkfifo', ['-m', '0640', at('etc/localtime')]);
  fs.mkdirSync(at('usr/share/zoneinfo'), { recursive: true });
  fs.copyFileSync('/usr/share/zoneinfo/UTC', at('usr/share/zoneinfo/UTC'));
  fs.mkdirSync(at('src'));
  fs.writeFileSync(at('src/plain'), 'plain\n');
  for (const [id, s] of Object.entries({ ...REFUSED, ...ON_PURPOSE })) {
    if (s.path === s.trap || id === 'recurse_file_is_link') continue;
    if (id === 'replace_backup_link') {
      fs.writeFileSync(at(s.path), 'a\n');
      link(`${s.path}.bak`, s.trap);
      continue;
    }
    // links/mkparent -> the device: the state's missing directories would go below it
    if (id.endsWith('_below_link')) link(s.path.split('/').slice(0, 2).join('/'), s.trap);
    else link(s.path, s.trap);
  }
  // file.recurse: the directory exists, one of its files is a link to the device
  fs.mkdirSync(at('rtree'));
  link('rtree/a.conf', DEV);
  fs.mkdirSync(at('dtree'));
  fs.writeFileSync(at('dtree/f'), 'f\n', { mode: 0o644 });
  execFileSync('mknod', ['-m', '0640', at('dtree/dev'), 'c', '1', '3']);
  execFileSync('mkfifo', ['-m', '0640', at('dtree/fifo')]);
  tree = writeTree({ 'traps.sls': sls(), 'rsrc/a.conf': 'a\n' });
  before = Object.fromEntries([...TRAPS, 'etc/localtime', 'dtree/dev', 'dtree/fifo'].map((t) => [t, snap(at(t))]));
  expect(before[DEV]).toMatchObject({ type: 'chr', mode: 0o640 });
});

describe('states never change a device, FIFO or socket, directly or through a symlink', () => {
  it('the links are where the states look (setup sanity)', () => {
    expect(fs.readlinkSync(at('etc/systemd/system/trap.service'))).toBe('../../../traps/dev');
    expect(fs.lstatSync(at('links/mkparent')).isSymbolicLink()).toBe(true);
    expect(fs.lstatSync(at('links/mkparent2')).isSymbolicLink()).toBe(true);
  });

  for (const test of [true, false]) {
    it(`${test ? 'test=True' : 'a real run'}: every state fails naming its path and what it leads to; nothing is changed`, () => {
      const links = Object.fromEntries(
        Object.values({ ...REFUSED, ...ON_PURPOSE })
          .filter((s) => isLink(at(s.path)))
          .map((s) => [s.path, fs.readlinkSync(at(s.path))]),
      );
      const by = rows(test ? ['--test'] : []);
      for (const [id, s] of Object.entries(REFUSED)) {
        const r = by[id];
        expect(r, id).toBeDefined();
        expect(r!.result, `${id}: ${r!.comment}`).toBe(false);
        expect(r!.changes, id).toEqual({});
        // the path the state was given (or the file it manages), and what it really is
        const shown = s.path.startsWith('links/mkparent') ? s.path.split('/').slice(0, 2).join('/') : s.path;
        expect(r!.comment, id).toContain(`/${shown}`);
        expect(r!.comment, id).toMatch(s.path.startsWith('links/mkparent') ? /not a directory/ : KIND[s.trap]!);
      }
      untouched();
      expect(fs.readFileSync(at('src/edit'), 'utf8')).toBe('a\n');
      // the refused states' links are still links to the traps
      for (const s of Object.values(REFUSED)) if (links[s.path]) expect(fs.readlinkSync(at(s.path)), s.path).toBe(links[s.path]);
    });
  }

  it('on purpose, as Salt: follow_symlinks False and file.symlink replace the link, file.absent removes it; the trap stays', () => {
    const by = rows([]);
    for (const id of Object.keys(ON_PURPOSE)) expect(by[id]!.result, `${id}: ${by[id]!.comment}`).toBe(true);
    expect(fs.readFileSync(at('links/nofollow'), 'utf8')).toBe('x\n');
    expect(fs.readlinkSync(at('links/relink'))).toBe('/src/plain');
    expect(fs.existsSync(at('links/absent'))).toBe(false);
    untouched();
  });

  it('file.directory recurse sets the mode of regular files only, and says what it left alone', () => {
    const by = rows([]);
    const r = by.recurse_leaves_specials!;
    expect(r.result, r.comment).toBe(true);
    expect(fs.statSync(at('dtree/f')).mode & 0o7777).toBe(0o600);
    expect(r.comment).toMatch(/left alone, not regular files: \/dtree\/dev \(character device\), \/dtree\/fifo \(FIFO\)/);
    untouched();
  });

  it('the highstate text names the state id and the path', () => {
    const r = tsalt([]);
    expect(r.stdout).toMatch(/ID: masked_unit_managed\n {4}Function: file.managed\n {8}Name: \/etc\/systemd\/system\/trap.service\n {6}Result: False\n {5}Comment: Specified target \/etc\/systemd\/system\/trap.service exists and is not a regular file: it is a character device through a symlink to \S+\/traps\/dev/);
  });

  it('the shared helpers refuse too, whoever calls them: setPerms (chmod follows links), atomicWrite, makeDirs', async () => {
    link('helpers/dev', DEV);
    const cur = { uid: 0, gid: 0, mode: 0o640 };
    const want = { uid: 0, gid: 0, mode: 0o644 };
    await expect(setPerms(at('helpers/dev'), cur, want)).rejects.toThrow(/Refusing to set owner or mode of \S+\/helpers\/dev: it is a character device \(through a symlink to \S+\/traps\/dev\)/);
    await expect(setPerms(at(FIFO), cur, want)).rejects.toThrow(/it is a FIFO/);
    // link=true: lchown on the link is fine, on a device node is not
    await setPerms(at('helpers/dev'), { ...cur, uid: 1 }, cur, true);
    await expect(setPerms(at(DEV), { ...cur, uid: 1 }, cur, true)).rejects.toThrow(/it is a character device/);
    await expect(atomicWrite(at(FIFO), Buffer.from('x'), want)).rejects.toThrow(/Refusing to replace \S+\/traps\/fifo: it is a FIFO/);
    await expect(atomicWrite(at(SOCK), Buffer.from('x'), want)).rejects.toThrow(/it is a socket/);
    await expect(makeDirs(at('helpers/dev/sub/dir'), want)).rejects.toThrow(/Cannot create directories in \S+\/helpers\/dev: it exists and is not a directory/);
    untouched();
  });

  it('the suite guard: /dev/null is a 0666 character device 1,3, and a node that is not is reported', () => {
    expect(devNullProblem()).toBeUndefined();
    expect(devNullProblem(at(DEV))).toMatch(/mode 0640, not 0666/);
    expect(devNullProblem(at(FIFO))).toMatch(/not a character device/);
    expect(devNullProblem(at('src/plain'))).toMatch(/not a character device/);
  });
});
