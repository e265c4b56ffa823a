/**
 * Names starting with '-' must never reach a program as options (issue 11, item 5). Every name
 * a state passes to a program is checked at compile time: the whole tree is refused, naming the
 * file, line and state id, and nothing runs. One case per program family; the providers also
 * refuse such a name themselves (operands()), and put `--` before names where the program
 * supports it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CompileError } from '../../engine/compile/errors.js';
import { AptProvider } from '../../engine/providers/pkg/apt.js';
import { DnfProvider } from '../../engine/providers/pkg/dnf.js';
import { makeHostEnv } from '../../engine/providers/host.js';
import { operands } from '../../engine/run/exec.js';
import { compileTree, writeTree } from '../helpers/tree.js';
import { tempDir } from '../helpers/harness.js';

const debian = { id: 'h1', os_family: 'Debian', init: 'systemd' };
const redhat = { id: 'h1', os_family: 'RedHat', init: 'systemd' };

/** Compile one state; return the compile error text (the test fails when it compiles). */
async function refused(sls: string, grains: Record<string, unknown> = debian): Promise<string> {
  try {
    await compileTree({ 'evil.sls': sls }, { sls: ['evil'], grains });
  } catch (e) {
    expect(e).toBeInstanceOf(CompileError);
    return (e as CompileError).message;
  }
  throw new Error(`compiled, but should have been refused:\n${sls}`);
}

const OPTION = "starts with '-': a program would read it as an option";

describe('names starting with - are refused at compile time, naming the state', () => {
  it('apt/dpkg: pkg.installed name, pkgs (plain and with a version), sources, pkg.removed', async () => {
    const m = await refused("evil:\n  pkg.installed:\n    - name: '-oDPkg::Pre-Invoke::=touch /tmp/x'\n");
    expect(m).toContain("evil.sls:1, state 'evil': pkg.installed: argument 'name': package name \"-oDPkg::Pre-Invoke::=touch /tmp/x\" cannot be valid");
    expect(m).toContain(OPTION);
    expect(await refused("evil:\n  pkg.installed:\n    - pkgs: [curl, '-oAPT::Get::x=1']\n")).toContain("state 'evil'");
    expect(await refused("evil:\n  pkg.installed:\n    - pkgs:\n      - '-x': '1.0'\n")).toContain(OPTION);
    expect(await refused("evil:\n  pkg.installed:\n    - sources:\n      - '-x': salt://x.deb\n")).toContain(OPTION);
    expect(await refused("evil:\n  pkg.removed:\n    - name: '-y'\n")).toContain(OPTION);
    // with pkgs, name is the state's label only: any id is fine
    await compileTree({ 'ok.sls': "-label:\n  pkg.installed:\n    - pkgs: [curl]\n" }, { sls: ['ok'], grains: debian });
  });

  it('dnf/rpm: pkg.latest and pkg.purged on a RedHat host', async () => {
    expect(await refused("evil:\n  pkg.latest:\n    - name: '--setopt=tsflags=noscripts'\n", redhat)).toContain(OPTION);
    expect(await refused("evil:\n  pkg.purged:\n    - pkgs: ['-x']\n", redhat)).toContain(OPTION);
  });

  it('useradd/usermod/userdel: user name, groups, optional_groups', async () => {
    const m = await refused("evil:\n  user.present:\n    - name: '-oTOUCH'\n");
    expect(m).toContain("state 'evil': user.present: argument 'name': user name \"-oTOUCH\" cannot be valid");
    expect(await refused("evil:\n  user.present:\n    - name: ok\n    - groups: [adm, '-x']\n")).toContain(OPTION);
    expect(await refused("evil:\n  user.present:\n    - name: ok\n    - optional_groups: 'adm,-x'\n")).toContain(OPTION);
    expect(await refused("evil:\n  user.absent:\n    - name: '-r'\n")).toContain(OPTION);
    expect(await refused("evil:\n  user.present:\n    - name: 'a:b'\n")).toContain("contains ':', ',' or '/'");
  });

  it('groupadd/gpasswd/groupdel: group name and members', async () => {
    expect(await refused("evil:\n  group.present:\n    - name: '-x'\n")).toContain('group name "-x"');
    expect(await refused("evil:\n  group.present:\n    - name: ok\n    - members: ['-x']\n")).toContain(OPTION);
    expect(await refused("evil:\n  group.present:\n    - name: ok\n    - addusers: ['-x']\n")).toContain(OPTION);
    expect(await refused("evil:\n  group.absent:\n    - name: '-f'\n")).toContain(OPTION);
  });

  it('crontab: the cron user', async () => {
    expect(await refused("evil:\n  cron.present:\n    - name: /bin/true\n    - user: '-r'\n")).toContain('cron user name "-r"');
    expect(await refused("evil:\n  cron.absent:\n    - name: /bin/true\n    - user: '-r'\n")).toContain(OPTION);
  });

  it('npm: packages and the user', async () => {
    expect(await refused("evil:\n  npm.installed:\n    - pkgs: ['--prefix=/etc']\n")).toContain('npm package name');
    expect(await refused("evil:\n  npm.installed:\n    - name: '-g'\n")).toContain(OPTION);
    expect(await refused("evil:\n  npm.removed:\n    - name: '-g'\n")).toContain(OPTION);
    expect(await refused("evil:\n  npm.installed:\n    - name: left-pad\n    - user: '-x'\n")).toContain(OPTION);
  });

  it('git: repository URL (--upload-pack runs a command), rev, branch, remote', async () => {
    expect(await refused("evil:\n  git.latest:\n    - name: '--upload-pack=touch /tmp/x'\n    - target: /srv/x\n")).toContain('git repository URL');
    expect(await refused("evil:\n  git.latest:\n    - name: https://example.invalid/x.git\n    - target: /srv/x\n    - rev: '--output=/etc/x'\n")).toContain(OPTION);
    expect(await refused("evil:\n  git.latest:\n    - name: https://example.invalid/x.git\n    - target: /srv/x\n    - branch: '-f'\n")).toContain(OPTION);
    expect(await refused("evil:\n  git.latest:\n    - name: https://example.invalid/x.git\n    - target: /srv/x\n    - remote: '-x'\n")).toContain(OPTION);
  });

  it('setpriv/su: cmd.run runas; chown: file and archive owners; ssh_auth user', async () => {
    expect(await refused("evil:\n  cmd.run:\n    - name: id\n    - runas: '-x'\n")).toContain('runas user name');
    expect(await refused("evil:\n  file.managed:\n    - name: /tmp/x\n    - user: '-x'\n")).toContain(OPTION);
    expect(await refused("evil:\n  file.directory:\n    - name: /tmp/x\n    - group: '-x'\n")).toContain(OPTION);
    expect(await refused("evil:\n  ssh_auth.present:\n    - name: AAAA\n    - user: '-x'\n")).toContain(OPTION);
  });

  it('update-alternatives and localedef: group and locale names', async () => {
    expect(await refused("evil:\n  alternatives.auto:\n    - name: '-x'\n")).toContain("not starting with '-'");
    expect(await refused("evil:\n  locale.present:\n    - name: '--prefix=/tmp'\n")).toContain('not starting with');
    expect(await refused("evil:\n  locale.system:\n    - name: '-x'\n")).toContain('not starting with -');
  });

  it('held already: systemctl/service names, mount point and device, sysctl keys', async () => {
    expect(await refused("evil:\n  service.running:\n    - name: '-x'\n")).toContain('not starting with -');
    expect(await refused("evil:\n  mount.mounted:\n    - name: /mnt/x\n    - device: '-x'\n    - fstype: ext4\n")).toContain('must not start with -');
    expect(await refused("evil:\n  mount.unmounted:\n    - name: '-x'\n")).toContain('absolute path');
    expect(await refused("evil:\n  sysctl.present:\n    - name: '-w'\n    - value: 1\n")).toContain('sysctl key');
  });
});

describe('the providers refuse such names themselves (any path that skips the compiler)', () => {
  it('operands() refuses, naming the kind and the names', () => {
    expect(() => operands('package', ['curl', '-oAPT::x=1'])).toThrow("refusing package '-oAPT::x=1': a name starting with '-' would reach the program as an option");
    expect(operands('package', ['curl'])).toEqual(['curl']);
  });

  it('apt and dnf providers reject before starting apt-get or dnf', async () => {
    const apt = new AptProvider(makeHostEnv());
    await expect(apt.planInstall([{ name: '-oDPkg::Pre-Invoke::=touch /tmp/x' }], {})).rejects.toThrow(/refusing package/);
    await expect(apt.planRemove(['-x'], false)).rejects.toThrow(/refusing package/);
    const dnf = new DnfProvider(makeHostEnv(), { installroot: tempDir('tsalt-inj-') });
    await expect(dnf.install([{ name: '--setopt=x' }], {})).rejects.toThrow(/refusing package/);
  });
});

describe('as an outsider: `tsalt local apply` with the two examples from the issue', () => {
  it('exits 1 with the file, line and state id; nothing ran', () => {
    const marker = path.join(tempDir('tsalt-inj-'), 'touched');
    const tree = writeTree({
      'top.sls': "base:\n  '*':\n    - evil\n",
      'evil.sls': `first:\n  test.succeed_with_changes: []\nevil_pkg:\n  pkg.installed:\n    - name: '-oDPkg::Pre-Invoke::=touch ${marker}'\nevil_user:\n  user.present:\n    - name: '-oTOUCH'\n`,
    });
    const bin = path.resolve(import.meta.dirname, '../../bin/tsalt.js');
    const r = spawnSync(process.execPath, [bin, 'local', 'apply', '--test', '--states', tree, '--pillar', '/nonexistent', '--id', 'h1', '--grains-file', '/nonexistent'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    const out = r.stdout + r.stderr;
    expect(out).toContain("evil.sls:3, state 'evil_pkg': pkg.installed: argument 'name': package name");
    expect(out).toContain("evil.sls:6, state 'evil_user': user.present: argument 'name': user name \"-oTOUCH\" cannot be valid");
    expect(out).not.toContain('Succeeded');
    expect(fs.existsSync(marker)).toBe(false);
  });
});
