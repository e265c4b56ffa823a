/**
 * service.* through the sysv provider against a real init script installed on this host
 * (no systemd here: /etc/init.d + update-rc.d are the init system). The daemon is
 * `sleep infinity` behind start-stop-daemon with a pidfile; everything is removed afterwards.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runModWatch, runState } from '../helpers/harness.js';
import { exec } from '../../engine/run/exec.js';

const NAME = 'tsalt-sysv-sleeper';
const SCRIPT = `/etc/init.d/${NAME}`;
const PIDFILE = `/run/${NAME}.pid`;
const RELOADS = `/run/${NAME}.reloads`;
const grains = { id: 'host', os_family: 'Debian', init: 'sysvinit' };

const initScript = `#!/bin/sh
### BEGIN INIT INFO
# Provides:          ${NAME}
# Required-Start:    $local_fs
# Required-Stop:     $local_fs
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: tsalt sysv test daemon
### END INIT INFO
PIDFILE=${PIDFILE}
case "$1" in
  start) exec start-stop-daemon --start --quiet --background --make-pidfile --pidfile $PIDFILE --exec /bin/sleep -- 86400007 ;;
  stop) exec start-stop-daemon --stop --quiet --oknodo --retry 5 --remove-pidfile --pidfile $PIDFILE ;;
  status) exec start-stop-daemon --status --pidfile $PIDFILE ;;
  restart) "$0" stop && exec "$0" start ;;
  reload) echo reload >> ${RELOADS} ;;
  *) echo "usage: $0 start|stop|status|restart|reload" >&2; exit 3 ;;
esac
`;

const run = (fun: string, args: Record<string, unknown>, test = false) => runState(fun, args, { grains, test });

async function converges(fun: string, args: Record<string, unknown>) {
  const predicted = await run(fun, args, true);
  expect(predicted.result, predicted.comment).toBeNull();
  const applied = await run(fun, args);
  expect(applied.result, applied.comment).toBe(true);
  expect(Object.keys(applied.changes)).toEqual(Object.keys(predicted.changes));
  expect(Object.keys(applied.changes).length).toBeGreaterThan(0);
  expect(await run(fun, args)).toMatchObject({ result: true, changes: {} });
  expect(await run(fun, args, true)).toMatchObject({ result: true, changes: {} });
  return applied;
}

const pid = () => (fs.existsSync(PIDFILE) ? fs.readFileSync(PIDFILE, 'utf8').trim() : '');
const alive = async () => (await exec([SCRIPT, 'status'])).code === 0;
const startLinks = () => fs.readdirSync('/etc/rc2.d').filter((e) => /^S\d\d/.test(e) && e.slice(3) === NAME);
const killLinks = () => fs.readdirSync('/etc/rc2.d').filter((e) => /^K\d\d/.test(e) && e.slice(3) === NAME);

async function cleanup() {
  if (fs.existsSync(SCRIPT)) {
    await exec([SCRIPT, 'stop']);
    await exec(['update-rc.d', '-f', NAME, 'remove']);
  }
  fs.rmSync(SCRIPT, { force: true });
  fs.rmSync(PIDFILE, { force: true });
  fs.rmSync(RELOADS, { force: true });
}

beforeAll(async () => {
  await cleanup();
  fs.writeFileSync(SCRIPT, initScript, { mode: 0o755 });
});
afterAll(cleanup);

describe('service states on sysv (real init script on this host)', () => {
  it('running + enable starts the daemon and creates S links', async () => {
    expect(await alive()).toBe(false);
    const r = await converges('service.running', { name: NAME, enable: true });
    expect(r.comment).toBe(`Service ${NAME} has been enabled, and is running`);
    expect(await alive()).toBe(true);
    expect(startLinks()).toHaveLength(1);
  });

  it('mod_watch restarts (new pid) or reloads (same pid)', async () => {
    const p0 = pid();
    const t = await runModWatch('service.running', { name: NAME }, { grains, test: true });
    expect(t).toMatchObject({ result: null, changes: {}, comment: 'Service is set to be restarted' });
    expect(pid()).toBe(p0);
    const r = await runModWatch('service.running', { name: NAME }, { grains });
    expect(r).toMatchObject({ result: true, changes: { [NAME]: true }, comment: 'Service restarted' });
    expect(pid()).not.toBe(p0);
    const p1 = pid();
    const rl = await runModWatch('service.running', { name: NAME, reload: true }, { grains });
    expect(rl).toMatchObject({ result: true, comment: 'Service reloaded' });
    expect(pid()).toBe(p1);
    expect(fs.readFileSync(RELOADS, 'utf8')).toBe('reload\n');
  });

  it('dead + enable: False stops it and turns S links into K links', async () => {
    const r = await converges('service.dead', { name: NAME, enable: false });
    expect(r.comment).toBe(`Service ${NAME} has been disabled, and is dead`);
    expect(await alive()).toBe(false);
    expect(startLinks()).toHaveLength(0);
    expect(killLinks()).toHaveLength(1);
  });

  it('enabled / disabled', async () => {
    await converges('service.enabled', { name: NAME });
    expect(startLinks()).toHaveLength(1);
    await converges('service.disabled', { name: NAME });
    expect(startLinks()).toHaveLength(0);
    expect(await alive()).toBe(false);
  });

  it('sig: the process table decides whether it runs, not the script', async () => {
    await converges('service.running', { name: NAME, sig: 'sleep 86400007' });
    expect(await alive()).toBe(true);
    // running per the script, but nothing matches this sig: Salt calls that dead already
    expect(await run('service.dead', { name: NAME, sig: 'tsalt-no-such-process-x' })).toMatchObject({
      result: true,
      changes: {},
      comment: `The service ${NAME} is already dead`,
    });
    expect(await alive()).toBe(true);
    await converges('service.dead', { name: NAME });
  });

  it('sig: a daemon that shows in the process table a moment after its script returns has started', async () => {
    // the script forks and returns at once; the daemon is exec'd half a second later (as
    // start-stop-daemon --background does, under load): a single look right after failed it
    const late = 'tsalt-sysv-late';
    const script = `/etc/init.d/${late}`;
    const sig = 'sleep 86400009';
    fs.writeFileSync(
      script,
      // start-stop-daemon --background, as the real script; the quoting keeps the sig out of
      // the helper shells' own command lines
      `#!/bin/sh\nbg() { rm -f /run/${late}.$1.pid; start-stop-daemon --start --quiet --background --make-pidfile --pidfile /run/${late}.$1.pid --startas /bin/sh -- -c "$2"; }\ncase "$1" in\n  start) bg start 'sleep 0.5; exec sleep 8640000"9"' ;;\n  stop) bg stop 'sleep 0.5; pkill -f "sleep 8640000[9]"' ;;\n  status) pgrep -f 'sleep 8640000[9]' >/dev/null ;;\nesac\n`,
      { mode: 0o755 },
    );
    // the names are the host's: a daemon left by another run of this file (a killed one, or
    // one running beside it on the same host) would read as already running
    await exec(['pkill', '-f', sig]);
    try {
      expect(await run('service.running', { name: late, sig })).toMatchObject({ result: true, comment: `Started Service ${late}` });
      expect((await exec(['pgrep', '-f', sig])).code).toBe(0);
      // and its stop, which takes as long to show
      expect(await run('service.dead', { name: late, sig })).toMatchObject({ result: true, comment: `Service ${late} was killed` });
      expect((await exec(['pgrep', '-f', sig])).code).toBe(1);
    } finally {
      await exec(['pkill', '-f', sig]);
      for (const f of [script, `/run/${late}.start.pid`, `/run/${late}.stop.pid`]) fs.rmSync(f, { force: true });
    }
  });

  it('missing script: running fails, dead succeeds', async () => {
    expect(await run('service.running', { name: 'tsalt-sysv-nosuch' })).toMatchObject({
      result: false,
      comment: 'The named service tsalt-sysv-nosuch is not available',
    });
    expect(await run('service.dead', { name: 'tsalt-sysv-nosuch' })).toMatchObject({ result: true, changes: {} });
  });

  it('an unknown os_family is a clear failure, not a guess', async () => {
    const r = await runState('service.running', { name: NAME }, { grains: { ...grains, os_family: 'Plan9' } });
    expect(r.result).toBe(false);
    expect(r.comment).toContain("no boot-link tool known for os_family 'Plan9'");
  });
});
