/**
 * `npm run package` (packaging/build.mjs): the .deb installed, upgraded and removed with dpkg
 * in a Debian 12 container that boots systemd (the agent runs as the packaged unit, and its
 * keys and cache survive the upgrade); the .rpm read back with rpm and installed, upgraded and
 * erased in an rpm database under a scratch root.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { bootContainer, type Container } from '../helpers/nspawn.js';
import { exec } from '../../engine/run/exec.js';
import { tempDir } from '../helpers/harness.js';
import { buildPackages, nodeBinds, nodejsStandIn, type Built } from './stack-packages.js';

const work = tempDir('tsalt-package-');
let r1: Built;
let r2: Built;
let standIn: string;
let ct: Container | undefined;

beforeAll(async () => {
  r1 = await buildPackages(path.join(work, 'r1'), 1);
  r2 = await buildPackages(path.join(work, 'r2'), 2);
  standIn = await nodejsStandIn(work);
  // the packages reach the container through a read-only bind of this directory
  ct = await bootContainer(undefined, { nspawnArgs: [...nodeBinds(), `--bind-ro=${work}:/pkgs`] });
}, 600_000);

afterAll(async () => {
  await ct?.stop();
  fs.rmSync(work, { recursive: true, force: true });
}, 120_000);

const inCt = (p: string) => `/pkgs/${path.relative(work, p)}`;
/** A shell in the container with its own clean environment (not this process's). */
async function sh(script: string) {
  const r = await ct!.exec(['env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'sh', '-c', script]);
  return { code: r.code, out: `${r.stdout}${r.stderr}`.trim() };
}
async function ok(script: string) {
  const r = await sh(script);
  expect(r.code, `${script}\n${r.out}`).toBe(0);
  return r.out;
}
async function waitFor(what: string, probe: () => Promise<boolean>) {
  for (let i = 0; i < 100; i++) {
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('the .deb in a container', () => {
  it('refuses to install without Node.js >= 20 (the dependency is declared)', async () => {
    const r = await sh(`dpkg -i ${inCt(r1.deb)}`);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/depends on nodejs \(>= 20\)/);
    await ok('dpkg --purge tsalt');
  });

  it('installs: tsalt runs, both units and the example configs are in place, nothing is started', async () => {
    await ok(`dpkg -i ${inCt(standIn)} ${inCt(r1.deb)}`);
    expect(await ok('dpkg-query -W -f=\'${Version} ${Status}\' tsalt')).toBe('0.1.0-1 install ok installed');
    expect(await ok('tsalt --version')).toBe('tsalt 0.1.0');
    // `tsalt local` runs from its own bundle, which writes its own code cache (prerm removes it
    // with the others: the remove case below finds /usr/lib/tsalt gone)
    await ok("mkdir -p /tmp/lt && printf 'one:\\n  test.succeed_without_changes: []\\n' > /tmp/lt/one.sls");
    expect(await ok('tsalt local show one --states /tmp/lt --pillar /tmp/none --id ct')).toContain('function: test.succeed_without_changes');
    expect(await ok('ls /usr/lib/tsalt/dist/bundle/')).toContain('local.cjs.local-show.v8cache');
    expect(await ok('systemctl cat tsalt-agent.service')).toContain('ExecStart=/usr/bin/node --max-semi-space-size=1 --lite-mode --single-threaded /usr/lib/tsalt/bin/tsalt.js agent --config /etc/tsalt/agent.yaml');
    const masterUnit = await ok('systemctl cat tsalt-master.service');
    expect(masterUnit).toContain('ExecStart=/usr/bin/tsalt master --config /etc/tsalt/master.yaml');
    // freed TLS buffers go back to the system (bench/fleet.mjs measures the master with it)
    expect(masterUnit).toContain('Environment=MALLOC_MMAP_THRESHOLD_=16384');
    expect((await ok('ls /etc/tsalt')).split('\n').sort()).toEqual(['agent.yaml.example', 'master.yaml.example', 'pki']);
    expect(await ok('cat /var/lib/dpkg/info/tsalt.conffiles')).toContain('/etc/tsalt/agent.yaml.example');
    expect((await sh('systemctl is-enabled tsalt-agent.service')).out).toBe('disabled');
    // the master starts from the example config as shipped (it only needs the tree directories)
    await ok('mkdir -p /srv/tsalt/states /srv/tsalt/pillar && cp /etc/tsalt/master.yaml.example /etc/tsalt/master.yaml && systemctl start tsalt-master');
    await waitFor('the master socket', async () => (await sh('test -S /run/tsalt/master.sock')).code === 0).catch(async (e) => {
      throw new Error(`${(e as Error).message}\n${(await sh('journalctl -u tsalt-master --no-pager | tail -20')).out}`);
    });
    expect(await ok('stat -c %a /etc/tsalt/pki')).toBe('700');
    expect(await ok('tsalt keys list')).toBeDefined();
  });

  let keyBefore = '';
  let pidBefore = '';
  it('the agent runs as the packaged unit and makes its keys', async () => {
    await ok("sed -e 's/^master: salt/master: 127.0.0.1/' -e 's/^tofu: false/tofu: true/' /etc/tsalt/agent.yaml.example > /etc/tsalt/agent.yaml");
    await ok('systemctl enable --now tsalt-agent.service');
    await waitFor('the agent key', async () => (await sh('test -s /etc/tsalt/pki/agent/agent.crt')).code === 0);
    keyBefore = await ok('cat /etc/tsalt/pki/agent/agent.key /etc/tsalt/pki/agent/agent.crt | sha256sum');
    await ok('echo spooled > /var/cache/tsalt/marker');
    pidBefore = await ok('systemctl show -p MainPID --value tsalt-agent');
    expect(Number(pidBefore)).toBeGreaterThan(0);
  });

  it('upgrades: the running agent restarts into the new version; keys, cache and config survive', async () => {
    await ok('echo "# local edit" >> /etc/tsalt/agent.yaml.example');
    await ok(`DEBIAN_FRONTEND=noninteractive dpkg -i --force-confold ${inCt(r2.deb)}`);
    expect(await ok("dpkg-query -W -f='${Version}' tsalt")).toBe('0.1.0-2');
    await waitFor('the agent back', async () => (await sh('systemctl is-active tsalt-agent')).out === 'active');
    expect(await ok('systemctl show -p MainPID --value tsalt-agent')).not.toBe(pidBefore);
    expect(await ok('cat /etc/tsalt/pki/agent/agent.key /etc/tsalt/pki/agent/agent.crt | sha256sum')).toBe(keyBefore);
    expect(await ok('cat /var/cache/tsalt/marker')).toBe('spooled');
    expect(await ok('grep -c "^master: 127.0.0.1" /etc/tsalt/agent.yaml')).toBe('1');
    expect(await ok('tail -1 /etc/tsalt/agent.yaml.example')).toBe('# local edit');
  });

  it('removes: services stopped and disabled, program gone, keys and configs kept', async () => {
    await ok('dpkg -r tsalt');
    expect((await sh('systemctl is-active tsalt-agent tsalt-master')).out.split('\n')).toEqual(['inactive', 'inactive']);
    expect((await sh('command -v tsalt')).code).not.toBe(0);
    expect((await sh('test -e /usr/lib/tsalt')).code).not.toBe(0);
    expect(await ok('cat /etc/tsalt/pki/agent/agent.key /etc/tsalt/pki/agent/agent.crt | sha256sum')).toBe(keyBefore);
    expect(await ok('test -f /etc/tsalt/agent.yaml && echo kept')).toBe('kept');
    expect(await ok("dpkg-query -W -f='${Status}' tsalt")).toBe('deinstall ok config-files');
  });
});

describe('the .rpm', () => {
  const q = async (...args: string[]) => {
    const r = await exec(['rpm', ...args]);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout.trim();
  };

  it('declares Node.js >= 20 (EL epoch 1), the files, the config files and its scripts', async () => {
    expect((await q('-qp', '--requires', r1.rpm!)).split('\n')).toContain('nodejs >= 1:20');
    const files = (await q('-qlp', r1.rpm!)).split('\n');
    for (const f of ['/usr/bin/tsalt', '/usr/lib/tsalt/bin/tsalt.js', '/usr/lib/tsalt/dist/bundle/tsalt.cjs', '/usr/lib/tsalt/dist/bundle/local.cjs', '/usr/lib/tsalt/dist/bundle/job-worker.cjs', '/usr/lib/tsalt/node_modules/better-sqlite3/build/Release/better_sqlite3.node', '/usr/lib/systemd/system/tsalt-agent.service', '/usr/lib/systemd/system/tsalt-master.service']) {
      expect(files).toContain(f);
    }
    expect((await q('-qcp', r1.rpm!)).split('\n').sort()).toEqual(['/etc/tsalt/agent.yaml.example', '/etc/tsalt/master.yaml.example']);
    expect(await q('-qp', '--scripts', r1.rpm!)).toMatch(/try-restart tsalt-agent\.service/);
    expect(await q('-qp', '--qf', '%{VERSION}-%{RELEASE} %{ARCH}', r2.rpm!)).toBe('0.1.0-2 x86_64');
  });

  it('installs, upgrades and erases in an rpm database (scratch root): keys and edited configs survive', async () => {
    const root = path.join(work, 'rpmroot');
    fs.mkdirSync(root);
    // no EL userland here: the dependencies and scriptlets are checked above and on the Vagrant path
    const rpm = (...args: string[]) => exec(['rpm', '--root', root, '--nodeps', '--noscripts', ...args]);
    expect((await rpm('-i', r1.rpm!)).code).toBe(0);
    expect(fs.readlinkSync(path.join(root, 'usr/bin/tsalt'))).toBe('../lib/tsalt/bin/tsalt.js');
    fs.mkdirSync(path.join(root, 'etc/tsalt/pki/agent'), { recursive: true });
    fs.writeFileSync(path.join(root, 'etc/tsalt/pki/agent/agent.pem'), 'key');
    fs.appendFileSync(path.join(root, 'etc/tsalt/agent.yaml.example'), '# local edit\n');
    const up = await rpm('-U', r2.rpm!);
    expect(up.code, up.stderr).toBe(0);
    expect(await q('--root', root, '-q', 'tsalt')).toBe('tsalt-0.1.0-2.x86_64');
    expect(fs.readFileSync(path.join(root, 'etc/tsalt/agent.yaml.example'), 'utf8')).toMatch(/# local edit\n$/);
    expect(fs.readFileSync(path.join(root, 'etc/tsalt/pki/agent/agent.pem'), 'utf8')).toBe('key');
    expect((await rpm('-e', 'tsalt')).code).toBe(0);
    expect(fs.existsSync(path.join(root, 'usr/lib/tsalt'))).toBe(false);
    expect(fs.readFileSync(path.join(root, 'etc/tsalt/pki/agent/agent.pem'), 'utf8')).toBe('key');
    // an edited config file is kept as .rpmsave on erase
    expect(fs.existsSync(path.join(root, 'etc/tsalt/agent.yaml.example.rpmsave'))).toBe(true);
  });
});
