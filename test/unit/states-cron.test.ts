// cron.present / cron.absent against the real crontab of a throwaway user.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { exec, execOk } from '../../engine/run/exec.js';
import { runState } from '../helpers/harness.js';

const user = `tsc${randomBytes(3).toString('hex')}`;

async function tab(): Promise<string> {
  const r = await exec(['crontab', '-u', user, '-l']);
  return r.code === 0 ? r.stdout : '';
}

/** test run predicts, real run does it, rerun is a no-op */
async function converge(fun: string, args: Record<string, unknown>) {
  const t = await runState(fun, args, { test: true });
  expect(t.result).toBeNull();
  const r = await runState(fun, args);
  expect(r.result, r.comment).toBe(true);
  expect(Object.keys(r.changes).sort()).toEqual(Object.keys(t.changes).sort());
  const again = await runState(fun, args);
  expect(again.result).toBe(true);
  expect(again.changes).toEqual({});
  return r;
}

beforeAll(async () => {
  await execOk(['useradd', '-M', '-s', '/usr/sbin/nologin', user]);
});
afterAll(async () => {
  await exec(['crontab', '-u', user, '-r']);
  await exec(['userdel', user]);
});

describe('cron.present', () => {
  it('adds a job under Salt tag and identifier, then is a no-op', async () => {
    const r = await converge('cron.present', { name: 'date > /tmp/crontest', user, minute: 7, hour: 2 });
    expect(r.changes).toEqual({ [user]: 'date > /tmp/crontest' });
    expect(r.comment).toBe(`Cron date > /tmp/crontest added to ${user}'s crontab`);
    expect(await tab()).toBe(
      '# Lines below here are managed by Salt, do not edit\n' +
        '# SALT_CRON_IDENTIFIER:date > /tmp/crontest\n' +
        '7 2 * * * date > /tmp/crontest\n',
    );
  });

  it('updates the time of the same job in place', async () => {
    const r = await converge('cron.present', { name: 'date > /tmp/crontest', user, minute: '*/5', hour: 2 });
    expect(r.comment).toBe('Cron date > /tmp/crontest updated');
    const t = await tab();
    expect(t).toContain('*/5 2 * * * date > /tmp/crontest\n');
    expect(t.match(/^[^#].* date > \/tmp\/crontest$/gm)).toHaveLength(1);
  });

  it('an identifier keeps following the job when its command changes', async () => {
    await converge('cron.present', { name: 'echo one', user, identifier: 'SUPERCRON', minute: 1 });
    await converge('cron.present', { name: 'echo two', user, identifier: 'SUPERCRON', minute: 3, hour: 4 });
    const t = await tab();
    expect(t).not.toContain('echo one');
    expect(t).toContain('# SALT_CRON_IDENTIFIER:SUPERCRON\n3 4 * * * echo two\n');
  });

  it('special, comment and commented jobs', async () => {
    await converge('cron.present', { name: '/usr/local/bin/boot.sh', user, special: '@reboot', comment: 'at boot' });
    await converge('cron.present', { name: 'echo off', user, commented: true, comment: 'disabled for now' });
    const t = await tab();
    expect(t).toContain('# at boot SALT_CRON_IDENTIFIER:/usr/local/bin/boot.sh\n@reboot /usr/local/bin/boot.sh\n');
    expect(t).toContain('# disabled for now SALT_CRON_IDENTIFIER:echo off\n#DISABLED#* * * * * echo off\n');
    // switching from special to timed replaces the entry
    await converge('cron.present', { name: '/usr/local/bin/boot.sh', user, minute: 0, hour: 0, comment: 'at boot' });
    expect(await tab()).not.toContain('@reboot');
  });

  it('random picks a value once and keeps it', async () => {
    await converge('cron.present', { name: 'echo rnd', user, minute: 'random', hour: 3 });
    const line = (await tab()).split('\n').find((l) => l.endsWith(' echo rnd'))!;
    expect(line).toMatch(/^\d{1,2} 3 \* \* \* echo rnd$/);
  });

  it("keeps the user's own lines and adopts a crontab Salt wrote", async () => {
    const own = 'MAILTO=""\n30 1 * * * /usr/bin/own-job\n';
    const salt =
      '# Lines below here are managed by Salt, do not edit\n' +
      '# SALT_CRON_IDENTIFIER:/usr/bin/salt-job\n' +
      '15 * * * * /usr/bin/salt-job\n' +
      '0 4 * * * /usr/bin/legacy-no-id\n';
    await execOk(['crontab', '-u', user, '-'], { input: own + salt });
    const r = await runState('cron.present', { name: '/usr/bin/salt-job', user, minute: 15 });
    expect(r).toMatchObject({ result: true, changes: {} });
    // a job from before identifiers existed is matched by command and gains the marker
    await converge('cron.present', { name: '/usr/bin/legacy-no-id', user, minute: 0, hour: 4 });
    const t = await tab();
    expect(t.startsWith(own + '# Lines below here are managed by Salt, do not edit\n')).toBe(true);
    expect(t).toContain('# SALT_CRON_IDENTIFIER:/usr/bin/legacy-no-id\n0 4 * * * /usr/bin/legacy-no-id\n');
    expect(t.match(/^[^#].*legacy-no-id$/gm)).toHaveLength(1);
  });

  it('fails clearly for a user that does not exist', async () => {
    const r = await runState('cron.present', { name: 'true', user: 'no-such-user-tsalt' });
    expect(r.result).toBe(false);
    expect(r.comment).toMatch(/no-such-user-tsalt/);
  });

  it('rejects a special that is not a keyword', async () => {
    const r = await runState('cron.present', { name: 'true', user, special: 'reboot' });
    expect(r.result).toBe(false);
    expect(r.comment).toMatch(/@reboot/);
  });
});

describe('cron.absent', () => {
  it('removes a job by name or identifier, then is a no-op', async () => {
    await converge('cron.present', { name: 'echo two', user, identifier: 'SUPERCRON', minute: 3 });
    const r = await converge('cron.absent', { name: 'echo two', user, identifier: 'SUPERCRON' });
    expect(r.comment).toBe(`Cron echo two removed from ${user}'s crontab`);
    await converge('cron.absent', { name: '/usr/bin/salt-job', user });
    const t = await tab();
    expect(t).not.toContain('SUPERCRON');
    expect(t).not.toContain('salt-job');
    expect(t).toContain('/usr/bin/own-job');
  });

  it('with special removes only that special job', async () => {
    await converge('cron.present', { name: 'echo sp', user, special: '@hourly' });
    const none = await runState('cron.absent', { name: 'echo sp', user });
    expect(none).toMatchObject({ result: true, changes: {} });
    await converge('cron.absent', { name: 'echo sp', user, special: '@hourly' });
    expect(await tab()).not.toContain('echo sp');
  });
});
