/**
 * service.* against real systemd: a Debian 12 container booted with systemd-nspawn, driven
 * from the host through the provider's command prefix (nsenter), as an agent would drive a
 * container it manages.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootContainer, type Container } from '../helpers/nspawn.js';
import { runModWatch, runState, tempDir } from '../helpers/harness.js';
import { makeRunBase, type RunBase } from '../../engine/run/context.js';
import { LocalTree } from '../../engine/tree/local.js';

const UNIT = 'tsalt-sleep';
const BROKEN = 'tsalt-broken';

const sleepUnit = (gen: number) => `[Unit]
Description=tsalt test sleeper
[Service]
Environment=GEN=${gen}
ExecStart=/bin/sleep infinity
ExecReload=/bin/sh -c 'echo reload >> /run/tsalt-sleep.reloads'
[Install]
WantedBy=multi-user.target
`;

let c: Container;
let prefix: string[];

function base(test: boolean, pre: string[] = prefix): RunBase {
  return makeRunBase({
    test,
    tree: new LocalTree(tempDir('tsalt-tree-')),
    grains: { id: 'ct', os_family: 'Debian', init: 'systemd' },
    pillar: {},
    opts: { service_command_prefix: pre },
  });
}

/** One state, in a run of its own (fresh facts, like a new `tsalt apply`). */
const run = (fun: string, args: Record<string, unknown>, test = false) => runState(fun, args, { base: base(test), test });

async function unit(name = UNIT): Promise<Record<string, string>> {
  const r = await c.exec(['systemctl', 'show', '-p', 'ActiveState,UnitFileState,MainPID,Environment,NeedDaemonReload', `${name}.service`]);
  return Object.fromEntries(r.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

/** The contract every state test checks: test predicts, real applies, a rerun changes nothing. */
async function converges(fun: string, args: Record<string, unknown>) {
  const predicted = await run(fun, args, true);
  expect(predicted.result, predicted.comment).toBeNull();
  const applied = await run(fun, args);
  expect(applied.result, applied.comment).toBe(true);
  expect(Object.keys(applied.changes).length).toBeGreaterThan(0);
  expect(Object.keys(applied.changes)).toEqual(Object.keys(predicted.changes));
  const again = await run(fun, args);
  expect(again, again.comment).toMatchObject({ result: true, changes: {} });
  const againTest = await run(fun, args, true);
  expect(againTest).toMatchObject({ result: true, changes: {} });
  return applied;
}

beforeAll(async () => {
  c = await bootContainer();
  prefix = c.prefix;
  c.write(`/etc/systemd/system/${UNIT}.service`, sleepUnit(1));
  c.write(
    `/etc/systemd/system/${BROKEN}.service`,
    '[Service]\nType=oneshot\nExecStart=/bin/sh -c "echo tsalt-broken cannot start >&2; exit 3"\n[Install]\nWantedBy=multi-user.target\n',
  );
  await c.exec(['systemctl', 'daemon-reload']);
});

afterAll(async () => {
  await c?.stop();
});

describe('service states on systemd (nspawn container)', () => {
  it('running + enable starts and enables a stopped, disabled unit', async () => {
    expect(await unit()).toMatchObject({ ActiveState: 'inactive', UnitFileState: 'disabled' });
    const r = await converges('service.running', { name: UNIT, enable: true });
    expect(r.changes).toEqual({ [UNIT]: true });
    expect(r.comment).toBe(`Service ${UNIT} has been enabled, and is running`);
    expect(await unit()).toMatchObject({ ActiveState: 'active', UnitFileState: 'enabled' });
  });

  it('running + enable: False disables but leaves it running', async () => {
    const r = await converges('service.running', { name: UNIT, enable: 'False' });
    expect(r.comment).toBe(`Service ${UNIT} has been disabled, and is in the desired state`);
    expect(await unit()).toMatchObject({ ActiveState: 'active', UnitFileState: 'disabled' });
  });

  it('enabled / disabled touch boot links only', async () => {
    await converges('service.enabled', { name: UNIT });
    expect(await unit()).toMatchObject({ ActiveState: 'active', UnitFileState: 'enabled' });
    await converges('service.disabled', { name: UNIT });
    expect(await unit()).toMatchObject({ ActiveState: 'active', UnitFileState: 'disabled' });
  });

  it('dead stops the unit; dead + enable: True enables it while dead', async () => {
    const r = await converges('service.dead', { name: UNIT });
    expect(r.comment).toBe(`Service ${UNIT} was killed`);
    expect((await unit()).ActiveState).toBe('inactive');
    const e = await converges('service.dead', { name: UNIT, enable: true });
    expect(e.comment).toBe(`Service ${UNIT} has been enabled, and is in the desired state`);
    expect(await unit()).toMatchObject({ ActiveState: 'inactive', UnitFileState: 'enabled' });
    await converges('service.disabled', { name: UNIT });
  });

  it('mod_watch on a stopped service starts it; test mode only reports', async () => {
    const t = await runModWatch('service.running', { name: UNIT }, { base: base(true) });
    expect(t).toMatchObject({ result: null, changes: {}, comment: 'Service is set to be started' });
    expect((await unit()).ActiveState).toBe('inactive');
    const r = await runModWatch('service.running', { name: UNIT }, { base: base(false) });
    expect(r).toMatchObject({ result: true, changes: { [UNIT]: true }, comment: 'Service started' });
    expect((await unit()).ActiveState).toBe('active');
  });

  it('mod_watch restarts a running service (new PID), or reloads it with reload: True', async () => {
    const pid0 = (await unit()).MainPID;
    const t = await runModWatch('service.running', { name: UNIT }, { base: base(true) });
    expect(t).toMatchObject({ result: null, comment: 'Service is set to be restarted' });
    expect((await unit()).MainPID).toBe(pid0);

    const r = await runModWatch('service.running', { name: UNIT }, { base: base(false) });
    expect(r).toMatchObject({ result: true, changes: { [UNIT]: true }, comment: 'Service restarted' });
    const pid1 = (await unit()).MainPID;
    expect(pid1).not.toBe(pid0);
    expect(Number(pid1)).toBeGreaterThan(0);

    const rl = await runModWatch('service.running', { name: UNIT, reload: true }, { base: base(false) });
    expect(rl).toMatchObject({ result: true, comment: 'Service reloaded' });
    expect((await unit()).MainPID).toBe(pid1);
    // /run is the container's tmpfs: read it from inside
    expect((await c.exec(['cat', '/run/tsalt-sleep.reloads'])).stdout).toBe('reload\n');
  });

  it('daemon-reload happens before acting when the unit file changed on disk', async () => {
    c.write(`/etc/systemd/system/${UNIT}.service`, sleepUnit(2));
    expect((await unit()).NeedDaemonReload).toBe('yes');
    const r = await runModWatch('service.running', { name: UNIT }, { base: base(false) });
    expect(r?.result, r?.comment).toBe(true);
    expect(await unit()).toMatchObject({ NeedDaemonReload: 'no', Environment: 'GEN=2', ActiveState: 'active' });
  });

  it('reads every loaded unit with one systemctl show per run', async () => {
    const log = path.join(tempDir('tsalt-count-'), 'calls');
    const wrapper = path.join(path.dirname(log), 'wrap.sh');
    fs.writeFileSync(wrapper, `#!/bin/sh\necho "$*" >> ${log}\nexec "$@"\n`, { mode: 0o755 });
    await run('service.dead', { name: UNIT });
    const b = base(false, [wrapper, ...prefix]);
    // acting on UNIT must not cost a new snapshot for the states after it
    for (const [name, changed] of [['dbus', false], [UNIT, true], ['systemd-journald', false], [UNIT, false]] as const) {
      const r = await runState('service.running', { name }, { base: b });
      expect(r, r.comment).toMatchObject({ result: true, changes: changed ? { [name]: true } : {} });
    }
    const calls = fs.readFileSync(log, 'utf8').trim().split('\n');
    expect(calls.filter((l) => / show .* -- \*$/.test(l))).toHaveLength(1);
    // the started unit is asked alone: before acting (NeedDaemonReload) and after (did it start?)
    expect(calls.filter((l) => / show .* -- tsalt-sleep.service$/.test(l)).length).toBeGreaterThanOrEqual(2);
  });

  it('a unit file written earlier in the same run (after the snapshot) is found and started', async () => {
    const b = base(false);
    expect(await runState('service.running', { name: 'dbus' }, { base: b })).toMatchObject({ result: true, changes: {} });
    expect(await runState('service.running', { name: 'tsalt-late' }, { base: b })).toMatchObject({ result: false });
    c.write('/etc/systemd/system/tsalt-late.service', '[Service]\nExecStart=/bin/sleep infinity\n'); // as file.managed would
    const r = await runState('service.running', { name: 'tsalt-late' }, { base: b });
    expect(r, r.comment).toMatchObject({ result: true, changes: { 'tsalt-late': true } });
    expect((await unit('tsalt-late')).ActiveState).toBe('active');
  });

  it('a missing unit: running fails clearly (test mode: would start if created), dead is fine', async () => {
    const r = await run('service.running', { name: 'tsalt-nosuch' });
    expect(r).toMatchObject({ result: false, changes: {}, comment: 'The named service tsalt-nosuch is not available' });
    const t = await run('service.running', { name: 'tsalt-nosuch' }, true);
    expect(t.result).toBeNull();
    expect(t.comment).toContain('not present; if created in this state run');
    expect(await run('service.dead', { name: 'tsalt-nosuch' })).toMatchObject({ result: true, changes: {} });
    expect(await run('service.enabled', { name: 'tsalt-nosuch' })).toMatchObject({ result: false });
  });

  it('a unit that will not start: result false with systemd\'s reason, and it is not enabled either', async () => {
    const r = await run('service.running', { name: BROKEN, enable: true });
    expect(r.result).toBe(false);
    expect(r.comment).toContain(`Service ${BROKEN} failed to start`);
    expect(r.comment).toContain('tsalt-broken cannot start'); // the journal tail names the cause
    expect(r.changes).toEqual({});
    expect((await unit(BROKEN)).UnitFileState).toBe('disabled');
  });

  it('init_delay waits after starting and says so', async () => {
    await run('service.dead', { name: UNIT });
    const t0 = Date.now();
    const r = await run('service.running', { name: UNIT, init_delay: 0.5 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(500);
    expect(r).toMatchObject({ result: true, comment: `Started Service ${UNIT}\nDelayed return for 0.5 seconds` });
  });

  it('timeout: a start that takes too long fails instead of hanging the run', async () => {
    c.write('/etc/systemd/system/tsalt-slow.service', '[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sleep 30\n');
    const r = await run('service.running', { name: 'tsalt-slow', timeout: 1 });
    expect(r.result).toBe(false);
    expect(r.comment).toContain('did not finish within 1s');
    await c.exec(['systemctl', 'stop', 'tsalt-slow.service']); // cancels the queued start job
  });

  it('watching service.enabled fails as in Salt (mod_watch knows running and dead only)', async () => {
    const r = await runModWatch('service.enabled', { name: UNIT }, { base: base(false) });
    expect(r).toMatchObject({ result: false, comment: 'Unable to trigger watch for service.enabled' });
  });

  it('the "enabled" typo gets Salt\'s explanation', async () => {
    const r = await run('service.running', { name: UNIT, enabled: true });
    expect(r.result).toBe(false);
    expect(r.comment).toContain('Perhaps "enable" option was intended?');
  });
});
