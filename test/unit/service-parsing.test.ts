/** Pure parts of the service providers and sysctl: parsing and choosing, no system touched. */
import { describe, expect, it } from 'vitest';
import { parseShow, statusFromUnit, unitName } from '../../engine/providers/service/systemd.js';
import { hasStartLink, parseRunlevel } from '../../engine/providers/service/sysv.js';
import { providerKey } from '../../engine/providers/service/select.js';
import { serviceNameSchema, serviceOpts } from '../../engine/providers/service/types.js';
import { configuredValue, normalise, withSetting } from '../../engine/states/sysctl.js';
import { makeRunBase, makeRunContext } from '../../engine/run/context.js';
import { LocalTree } from '../../engine/tree/local.js';
import { runState, tempDir } from '../helpers/harness.js';

describe('systemd provider parsing', () => {
  it('unitName adds .service like systemctl, keeps other unit types', () => {
    expect(unitName('nginx')).toBe('nginx.service');
    expect(unitName('nginx.service')).toBe('nginx.service');
    expect(unitName('docker.socket')).toBe('docker.socket');
    expect(unitName('getty@tty1')).toBe('getty@tty1.service');
    expect(unitName('php7.4-fpm')).toBe('php7.4-fpm.service');
  });

  it('parseShow splits blocks on blank lines and keeps = inside values', () => {
    const blocks = parseShow('Id=a.service\nLoadState=loaded\nEnvironment=A=1 B=2\n\nId=b.service\nLoadState=not-found\n');
    expect(blocks).toEqual([
      { Id: 'a.service', LoadState: 'loaded', Environment: 'A=1 B=2' },
      { Id: 'b.service', LoadState: 'not-found' },
    ]);
  });

  it('statusFromUnit follows is-active / is-enabled semantics', () => {
    expect(statusFromUnit({ LoadState: 'loaded', ActiveState: 'active', UnitFileState: 'enabled' })).toEqual({
      available: true,
      running: true,
      enabled: true,
      togglable: true,
    });
    // a unit in a restart loop is "activating": not running
    expect(statusFromUnit({ LoadState: 'loaded', ActiveState: 'activating', UnitFileState: 'disabled' }).running).toBe(false);
    expect(statusFromUnit({ LoadState: 'not-found', ActiveState: 'inactive' }).available).toBe(false);
    expect(statusFromUnit({ LoadState: 'loaded', ActiveState: 'inactive', UnitFileState: 'static' })).toMatchObject({
      enabled: true,
      togglable: false,
    });
    expect(statusFromUnit({ LoadState: 'masked', UnitFileState: 'masked' })).toMatchObject({ available: true, enabled: false });
  });
});

describe('sysv provider parsing', () => {
  it('parseRunlevel reads `runlevel`, falling back to 2 like Salt', () => {
    expect(parseRunlevel('N 5\n')).toBe('5');
    expect(parseRunlevel('unknown\n')).toBe('2');
    expect(parseRunlevel('')).toBe('2');
  });
  it('hasStartLink matches S<nn><name> exactly', () => {
    expect(hasStartLink(['S01nginx', 'K01other'], 'nginx')).toBe(true);
    expect(hasStartLink(['K01nginx'], 'nginx')).toBe(false);
    expect(hasStartLink(['S01nginx-extra'], 'nginx')).toBe(false);
  });
});

describe('provider selection', () => {
  it('uses grains init, and Salt-style providers overrides win', () => {
    expect(providerKey('systemd', undefined)).toBe('systemd');
    expect(providerKey('sysvinit', undefined)).toBe('sysvinit');
    expect(providerKey('systemd', 'debian_service')).toBe('debian_service');
    expect(providerKey('upstart', undefined)).toBeUndefined();
    expect(providerKey('constructor', undefined)).toBeUndefined();
  });

  it('an unknown init system fails the state with a clear comment', async () => {
    const r = await runState('service.running', { name: 'x' }, { grains: { init: 'runit', os_family: 'Debian' } });
    expect(r.result).toBe(false);
    expect(r.comment).toContain("no service provider for grains init 'runit'");
  });

  it('serviceOpts: opts beat grains; malformed opts are rejected', () => {
    const ctx = (opts: Record<string, unknown>, grains: Record<string, unknown> = {}) =>
      makeRunContext(makeRunBase({ test: false, tree: new LocalTree(tempDir()), grains, pillar: {}, opts }), 'id', 'sls');
    expect(serviceOpts(ctx({ service_machine: 'web1' }, { service_machine: 'other' })).service_machine).toBe('web1');
    expect(serviceOpts(ctx({}, { service_command_prefix: ['nsenter', '-t', '1', '-a'] })).service_command_prefix).toEqual([
      'nsenter',
      '-t',
      '1',
      '-a',
    ]);
    expect(() => serviceOpts(ctx({ service_command_prefix: 'nsenter -t 1' }))).toThrow(/service_command_prefix/);
    expect(() => serviceOpts(ctx({ service_machine: '-H evil' }))).toThrow(/service_machine/);
  });
});

describe('service argument validation', () => {
  it('refuses names that would be options or paths', () => {
    expect(serviceNameSchema.safeParse('nginx').success).toBe(true);
    expect(serviceNameSchema.safeParse('getty@tty1.service').success).toBe(true);
    expect(serviceNameSchema.safeParse('--now').success).toBe(false);
    expect(serviceNameSchema.safeParse('../../bin/sh').success).toBe(false);
    expect(serviceNameSchema.safeParse('..').success).toBe(false);
  });
  it('bad init_delay is an argument error before anything runs', async () => {
    await expect(runState('service.running', { name: 'x', init_delay: 'soon' })).rejects.toThrow(/init_delay/);
  });
});

describe('sysctl config editing', () => {
  it('configuredValue: last assignment wins, comments ignored, dots and slashes equal', () => {
    const text = '# vm.swappiness = 1\nvm.swappiness = 10\n; x\nvm/swappiness=20\n-net.core.somaxconn = 5\n';
    expect(configuredValue(text, 'vm.swappiness')).toBe('20');
    expect(configuredValue(text, 'net.core.somaxconn')).toBe('5');
    expect(configuredValue(text, 'kernel.x')).toBeUndefined();
  });
  it('withSetting replaces in place, drops later duplicates, appends when absent', () => {
    expect(withSetting('a = 1\nvm.swappiness=3\nb = 2\nvm.swappiness = 4\n', 'vm.swappiness', '10')).toBe(
      'a = 1\nvm.swappiness = 10\nb = 2\n',
    );
    expect(withSetting('', 'vm.swappiness', '10')).toBe('vm.swappiness = 10\n');
    expect(withSetting('# c\n', 'k.x', '1 2')).toBe('# c\nk.x = 1 2\n');
  });
  it('normalise compares multi-word values word by word', () => {
    expect(normalise('32768\t60999\n')).toBe('32768 60999');
  });
});
