/**
 * service.masked / service.unmasked against real systemd: a Debian 12 container booted with
 * systemd-nspawn (test/helpers/nspawn.ts), driven through the provider's command prefix, as in
 * service-systemd.test.ts. Vendor units live in /usr/lib/systemd/system: systemd refuses to mask
 * a unit whose file is in /etc/systemd/system (the mask link would replace it).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootContainer, type Container } from '../helpers/nspawn.js';
import { runModWatch, runState, tempDir } from '../helpers/harness.js';
import { makeRunBase, type RunBase } from '../../engine/run/context.js';
import { LocalTree } from '../../engine/tree/local.js';

const VENDOR = 'tsalt-maskme';
const LOCAL = 'tsalt-localunit';
const unitText = '[Unit]\nDescription=tsalt mask test\n[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n';

let c: Container;

function base(test: boolean): RunBase {
  return makeRunBase({
    test,
    tree: new LocalTree(tempDir('tsalt-tree-')),
    grains: { id: 'ct', os_family: 'Debian', init: 'systemd' },
    pillar: {},
    opts: { service_command_prefix: c.prefix },
  });
}

/** One state in a run of its own (fresh `systemctl show` snapshot, like a new `tsalt apply`). */
const run = (fun: string, args: Record<string, unknown>, test = false) => runState(fun, args, { base: base(test), test });

async function unitFileState(name: string): Promise<string> {
  const r = await c.exec(['systemctl', 'show', '-p', 'UnitFileState', '--value', `${name}.service`]);
  return r.stdout.trim();
}

/** Target of the mask link in `dir`, '' when there is none. */
async function link(dir: '/etc' | '/run', name: string): Promise<string> {
  return (await c.exec(['readlink', `${dir}/systemd/system/${name}.service`])).stdout.trim();
}

/** Test run predicts (and changes nothing), real run applies, a rerun and a test rerun are no-ops. */
async function converges(fun: string, args: Record<string, unknown>) {
  const before = await unitFileState(String(args.name));
  const predicted = await run(fun, args, true);
  expect(predicted.result, predicted.comment).toBeNull();
  expect(await unitFileState(String(args.name))).toBe(before);
  const applied = await run(fun, args);
  expect(applied.result, applied.comment).toBe(true);
  expect(applied.changes).toEqual(predicted.changes);
  expect(Object.keys(applied.changes).length).toBeGreaterThan(0);
  const again = await run(fun, args);
  expect(again, again.comment).toMatchObject({ result: true, changes: {} });
  expect(await run(fun, args, true)).toMatchObject({ result: true, changes: {} });
  return { predicted, applied, again };
}

beforeAll(async () => {
  c = await bootContainer();
  c.write(`/usr/lib/systemd/system/${VENDOR}.service`, unitText);
  c.write(`/etc/systemd/system/${LOCAL}.service`, unitText);
  await c.exec(['systemctl', 'daemon-reload']);
});

afterAll(async () => {
  await c?.stop();
});

describe('service.masked / service.unmasked on systemd (nspawn container)', () => {
  it('masked: links the unit to /dev/null in /etc, with Salt comments and changes', async () => {
    expect(await unitFileState(VENDOR)).toBe('disabled');
    const { predicted, applied, again } = await converges('service.masked', { name: VENDOR });
    expect(predicted.comment).toBe(`Service ${VENDOR} would be masked`);
    expect(applied).toMatchObject({ changes: { masked: { old: false, new: true } }, comment: `Service ${VENDOR} was masked` });
    expect(again.comment).toBe(`Service ${VENDOR} is already masked`);
    expect(await unitFileState(VENDOR)).toBe('masked');
    expect(await link('/etc', VENDOR)).toBe('/dev/null');
    // a masked unit cannot be started
    expect((await c.exec(['systemctl', 'start', `${VENDOR}.service`])).code).not.toBe(0);
  });

  it('unmasked: removes the mask again', async () => {
    const { predicted, applied, again } = await converges('service.unmasked', { name: VENDOR });
    expect(predicted.comment).toBe(`Service ${VENDOR} would be unmasked`);
    expect(applied).toMatchObject({ changes: { masked: { old: true, new: false } }, comment: `Service ${VENDOR} was unmasked` });
    expect(again.comment).toBe(`Service ${VENDOR} was already unmasked`);
    expect(await unitFileState(VENDOR)).toBe('disabled');
    expect(await link('/etc', VENDOR)).toBe('');
  });

  it('runtime: True manages the /run mask; the indefinite-mask states leave it alone', async () => {
    const { applied } = await converges('service.masked', { name: VENDOR, runtime: true });
    expect(applied).toMatchObject({
      changes: { 'runtime masked': { old: false, new: true } },
      comment: `Service ${VENDOR} was runtime masked`,
    });
    expect(await unitFileState(VENDOR)).toBe('masked-runtime');
    expect(await link('/run', VENDOR)).toBe('/dev/null');
    expect(await link('/etc', VENDOR)).toBe('');

    // no indefinite mask here, so unmasked (runtime: False) has nothing to do
    const u = await run('service.unmasked', { name: VENDOR });
    expect(u).toMatchObject({ result: true, changes: {}, comment: `Service ${VENDOR} was already unmasked` });
    expect(await unitFileState(VENDOR)).toBe('masked-runtime');

    const { applied: un } = await converges('service.unmasked', { name: VENDOR, runtime: 'True' });
    expect(un).toMatchObject({
      changes: { 'runtime masked': { old: true, new: false } },
      comment: `Service ${VENDOR} was runtime unmasked`,
    });
    expect(await unitFileState(VENDOR)).toBe('disabled');
  });

  it('both masks at once are managed independently (systemd shows only "masked" for the pair)', async () => {
    await converges('service.masked', { name: VENDOR });
    // the indefinite mask hides the runtime one in UnitFileState: the link itself must decide
    const { applied } = await converges('service.masked', { name: VENDOR, runtime: true });
    expect(applied.changes).toEqual({ 'runtime masked': { old: false, new: true } });
    expect(await unitFileState(VENDOR)).toBe('masked');
    expect(await link('/run', VENDOR)).toBe('/dev/null');

    await converges('service.unmasked', { name: VENDOR });
    expect(await unitFileState(VENDOR)).toBe('masked-runtime');
    expect(await link('/run', VENDOR)).toBe('/dev/null');
    await converges('service.unmasked', { name: VENDOR, runtime: true });
    expect(await unitFileState(VENDOR)).toBe('disabled');
  });

  it('a unit systemd does not know can be masked in advance, as systemctl allows', async () => {
    const name = 'tsalt-notinstalled';
    const { applied } = await converges('service.masked', { name });
    expect(applied.comment).toBe(`Service ${name} was masked`);
    expect(await link('/etc', name)).toBe('/dev/null');
    await converges('service.unmasked', { name });
    expect(await link('/etc', name)).toBe('');
  });

  it('a unit file in /etc cannot be masked: result False with systemctl\'s reason, nothing changed', async () => {
    const r = await run('service.masked', { name: LOCAL });
    expect(r.result).toBe(false);
    expect(r.changes).toEqual({});
    expect(r.comment).toContain(`Failed to mask service ${LOCAL}`);
    expect(r.comment).toContain('already exists');
    expect(await unitFileState(LOCAL)).toBe('disabled');
    // in test mode the state only predicts
    expect(await run('service.masked', { name: LOCAL }, true)).toMatchObject({ result: null });
  });

  it('bad input and watch requisites fail clearly', async () => {
    await expect(run('service.masked', { name: '-evil' })).rejects.toThrow(/service names/);
    const w = await runModWatch('service.masked', { name: VENDOR }, { base: base(false) });
    expect(w).toMatchObject({ result: false, comment: 'Unable to trigger watch for service.masked' });
  });
});

describe('service.masked on sysv', () => {
  it('fails with Salt\'s message: masks are a systemd feature', async () => {
    const grains = { id: 'host', os_family: 'Debian', init: 'sysvinit' };
    for (const fun of ['service.masked', 'service.unmasked']) {
      const r = await runState(fun, { name: 'cron' }, { grains });
      expect(r.result).toBe(false);
      expect(r.comment).toContain('Service masking not available on this minion');
      expect(r.comment).toContain('sysv');
      expect((await runState(fun, { name: 'cron' }, { grains, test: true })).result).toBe(false);
    }
  });
});
