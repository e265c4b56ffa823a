/**
 * Inspect and call from the master, through the real CLI against a real master and agents on
 * loopback: tsalt grains, pillar (never logged), show (each agent compiles with its own grains
 * and pillar at the desired revision, nothing applied), ping (round-trip times, offline agents),
 * call (Salt's names, arguments and return shapes; unknown functions listed). On a pair of
 * masters (npm run test:fleet-pair) the agents are on the second master and the CLI talks to the
 * first: every call goes through the store and the bus (master/calls-route.ts).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Fleet, waitFor, type Proc } from './fleet-harness.js';

const marker = `/tmp/tsalt-show-must-not-exist-${process.pid}`;
const states = {
  'top.sls': "base:\n  '*':\n    - common\n  'roles:web':\n    - match: grain\n    - web\n",
  'common.sls': [
    'motd_{{ grains["id"] }}:',
    '  file.managed:',
    `    - name: ${marker}`,
    "    - contents: {{ pillar.get('secret', 'none') }}",
    'after_motd:',
    '  test.succeed_without_changes:',
    '    - require:',
    '      - file: motd_{{ grains["id"] }}',
  ].join('\n') + '\n',
  'web.sls': 'web_thing:\n  test.succeed_with_changes: []\n',
};
const pillar = {
  'top.sls': "base:\n  'a1':\n    - a1\n  'b1':\n    - b1\n",
  'a1.sls': 'secret: alpha-pillar-value\nmysql:\n  port: 3306\n',
  'b1.sls': 'secret: bravo-pillar-value\n',
};

interface CallJson {
  fun: string;
  returns: Record<string, { status: string; return?: unknown; error?: string; rtt_ms?: number }>;
}

describe('fleet: grains, pillar, show, ping, call', () => {
  let fleet: Fleet;
  let c1: Proc;
  const initScript = `/etc/init.d/tsalt-calltest-${process.pid}`;
  const svcState = path.join(os.tmpdir(), `tsalt-calltest-${process.pid}.log`);
  const deb = path.join(os.tmpdir(), `tsalt-call-dummy-${process.pid}.deb`);

  beforeAll(async () => {
    buildOnce();
    fleet = new Fleet({ states, pillar });
    await fleet.startMaster();
    fleet.startAgents([fleet.agentConfig('a1', { grains: { roles: ['web'], init: 'sysvinit' } }), fleet.agentConfig('b1', { grains: { roles: ['db'], init: 'sysvinit' } })]);
    c1 = fleet.startAgent('c1', { grains: { roles: ['cache'] } });
    await fleet.acceptAll(['a1', 'b1', 'c1']);
    await c1.kill('SIGKILL');
    // a SysV service whose actions are recorded
    fs.writeFileSync(
      initScript,
      `#!/bin/sh\ncase "$1" in\n  start|stop|restart|reload) echo "$1" >> ${svcState} ;;\n  status) [ -f ${svcState} ] ;;\n  *) exit 3 ;;\nesac\n`,
      { mode: 0o755 },
    );
    // a package built here, installed from its file (no repository needed)
    const pkgDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsalt-deb-'));
    fs.mkdirSync(path.join(pkgDir, 'DEBIAN'));
    fs.writeFileSync(path.join(pkgDir, 'DEBIAN/control'), 'Package: tsalt-call-dummy\nVersion: 1.0-1\nArchitecture: all\nMaintainer: t <t@t.invalid>\nDescription: test\n');
    expect(spawnSync('dpkg-deb', ['--build', pkgDir, deb]).status).toBe(0);
    fs.rmSync(pkgDir, { recursive: true, force: true });
  });
  afterAll(async () => {
    await fleet?.stop();
    spawnSync('dpkg', ['--purge', 'tsalt-call-dummy']);
    for (const f of [initScript, svcState, deb, marker]) fs.rmSync(f, { force: true });
  });

  it('tsalt grains: every grain, one grain (a:b path), json; offline agents too', async () => {
    const all = await fleet.cli(['grains', 'a1']);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout).toMatch(/^a1:\n    ----------\n/);
    expect(all.stdout).toMatch(/^    roles:\n        - web$/m);
    expect(all.stdout).toMatch(/^    id:\n        a1$/m);
    const roles = await fleet.json<Record<string, unknown>>(['grains', '*', 'roles']);
    expect(roles).toEqual({ a1: ['web'], b1: ['db'], c1: ['cache'] });
    expect(await fleet.json(['grains', 'a1', 'roles:0'])).toEqual({ a1: 'web' });
    expect(await fleet.json(['grains', 'a1', 'no_such_grain'])).toEqual({ a1: '' });
    const yaml = await fleet.cli(['grains', '-G', 'roles:db', 'roles', '--out', 'yaml']);
    expect(yaml.stdout).toBe('b1:\n  - db\n');
    const bad = await fleet.cli(['grains', 'nobody']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^tsalt grains: target "nobody" \(glob\) matched no accepted agent$/m);
  });

  it('tsalt pillar: each agent its own; the values are never in the master or agent logs', async () => {
    const p = await fleet.json<Record<string, Record<string, unknown>>>(['pillar', '*']);
    expect(p.a1).toEqual({ secret: 'alpha-pillar-value', mysql: { port: 3306 } });
    expect(p.b1).toEqual({ secret: 'bravo-pillar-value' });
    expect(p.c1).toEqual({});
    const one = await fleet.cli(['pillar', 'a1', 'mysql:port']);
    expect(one.stdout).toBe('a1:\n    3306\n');
    // pillar.get through a call travels to that agent only
    const call = await fleet.json<CallJson>(['call', 'a1,b1', '-L', 'pillar.get', 'secret']);
    expect(call.returns.a1).toMatchObject({ status: 'ok', return: 'alpha-pillar-value' });
    expect(call.returns.b1).toMatchObject({ status: 'ok', return: 'bravo-pillar-value' });
    // on a pair: the second master, which rendered the pillar and sent the calls, too
    for (const proc of [fleet.master!, ...(fleet.master2 ? [fleet.master2] : []), ...fleet.agents]) {
      expect(proc.out).not.toContain('alpha-pillar-value');
      expect(proc.out).not.toContain('bravo-pillar-value');
    }
  });

  it('tsalt show: compiled per agent with its grains and pillar, requisites and order, nothing applied', async () => {
    const r = await fleet.json<CallJson>(['show', 'a1,b1', '-L']);
    expect(r.fun).toBe('state.show_highstate');
    const a1 = r.returns.a1!.return as Record<string, Record<string, unknown>>;
    expect(Object.keys(a1).sort()).toEqual(['after_motd', 'motd_a1', 'web_thing']);
    expect(a1.motd_a1).toEqual({ __sls__: 'common', __env__: 'base', file: ['managed', { name: marker }, { contents: 'alpha-pillar-value' }] });
    expect(a1.after_motd!.test).toEqual(['succeed_without_changes', { require: [{ file: 'motd_a1' }] }]);
    const b1 = r.returns.b1!.return as Record<string, Record<string, unknown>>;
    expect(Object.keys(b1).sort()).toEqual(['after_motd', 'motd_b1']);
    expect((b1.motd_b1!.file as unknown[])[2]).toEqual({ contents: 'bravo-pillar-value' });
    expect(fs.existsSync(marker)).toBe(false);
    expect(fs.existsSync(path.join(fleet.dir, 'agents/a1/root', marker))).toBe(false);
    // one SLS, low chunks, nested text
    const sls = await fleet.json<CallJson>(['show', 'a1', 'web']);
    expect(Object.keys(sls.returns.a1!.return as object)).toEqual(['web_thing']);
    const low = await fleet.json<CallJson>(['show', 'b1', '--low']);
    expect((low.returns.b1!.return as { __id__: string; state: string; fun: string }[]).map((c) => `${c.state}.${c.fun} ${c.__id__}`)).toEqual([
      'file.managed motd_b1',
      'test.succeed_without_changes after_motd',
    ]);
    const text = await fleet.cli(['show', 'a1', 'web']);
    expect(text.stdout).toBe('a1:\n    ----------\n    web_thing:\n        ----------\n        __env__:\n            base\n        __sls__:\n            web\n        test:\n            - succeed_with_changes\n');
    // an SLS that does not exist: that agent's error, exit 2
    const missing = await fleet.cli(['show', 'a1', 'nosuch']);
    expect(missing.code).toBe(2);
    expect(missing.stdout).toMatch(/^a1:\n    ERROR: .*nosuch/);
  });

  it('tsalt show --revision: the tree as it was', async () => {
    const before = spawnSync('git', ['-C', path.join(fleet.dir, 'states'), 'rev-parse', 'HEAD'], { encoding: 'utf8' }).stdout.trim();
    fleet.writeTree('states', { 'web.sls': 'web_thing_v2:\n  test.succeed_with_changes: []\n' });
    fleet.commit('v2');
    const now = await fleet.json<CallJson>(['show', 'a1', 'web']);
    expect(Object.keys(now.returns.a1!.return as object)).toEqual(['web_thing_v2']);
    const old = await fleet.json<CallJson>(['show', 'a1', 'web', '--revision', before]);
    expect(Object.keys(old.returns.a1!.return as object)).toEqual(['web_thing']);
  });

  it('tsalt ping: True and a round-trip time per agent; an offline agent did not return (exit 3)', async () => {
    const r = await fleet.cli(['ping', '*']);
    expect(r.code).toBe(3);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ID\s+PING\s+TIME$/);
    expect(lines.find((l) => l.startsWith('a1'))).toMatch(/^a1\s+True\s+\d+\.\d ms$/);
    expect(lines.find((l) => l.startsWith('b1'))).toMatch(/^b1\s+True\s+\d+\.\d ms$/);
    expect(lines.find((l) => l.startsWith('c1'))).toMatch(/^c1\s+-\s+Minion did not return\. \[Not connected\]$/);
    const j = await fleet.json<CallJson>(['ping', 'a1']);
    expect(j.returns.a1!.status).toBe('ok');
    expect(j.returns.a1!.rtt_ms).toBeGreaterThan(0);
    expect((await fleet.cli(['ping', 'a1'])).code).toBe(0);
  });

  it("tsalt call: Salt's read-only functions with Salt's arguments and return shapes", async () => {
    const ret = async (...args: string[]) => {
      const r = await fleet.json<CallJson>(['call', 'a1', ...args]);
      expect(r.returns.a1!.status, `${args.join(' ')}: ${r.returns.a1!.error}`).toBe('ok');
      return r.returns.a1!.return;
    };
    expect(await ret('test.ping')).toBe(true);
    expect(await ret('cmd.run', 'echo a: b; echo err >&2')).toBe('a: b\nerr');
    expect(await ret('cmd.run', 'pwd', 'cwd=/tmp')).toBe('/tmp');
    expect(await ret('cmd.run_all', 'echo out; echo err >&2; exit 3')).toMatchObject({ retcode: 3, stdout: 'out', stderr: 'err', pid: expect.any(Number) });
    const bash = spawnSync('dpkg-query', ['-W', '-f=${Version}', 'bash'], { encoding: 'utf8' }).stdout;
    expect(await ret('pkg.version', 'bash')).toBe(bash);
    expect(await ret('pkg.version', 'bash', 'no-such-package-x')).toEqual({ bash, 'no-such-package-x': '' });
    expect((await ret('pkg.list_pkgs')) as Record<string, string>).toMatchObject({ bash });
    expect(await ret('file.file_exists', '/etc/hostname')).toBe(true);
    expect(await ret('file.file_exists', '/nonexistent')).toBe(false);
    expect(await ret('file.read', '/etc/hostname')).toBe(fs.readFileSync('/etc/hostname', 'utf8'));
    expect(Array.isArray(await ret('network.ip_addrs'))).toBe(true);
    expect(await ret('grains.get', 'roles')).toEqual(['web']);
    expect(await ret('grains.get', 'nope', 'fallback')).toBe('fallback');
    expect((await ret('grains.items')) as Record<string, unknown>).toMatchObject({ id: 'a1', roles: ['web'] });
    expect(await ret('pillar.get', 'mysql:port')).toBe(3306);
    expect(await ret('pillar.get', 'nope', 'default=7')).toBe(7);
    expect(await ret('user.info', 'root')).toMatchObject({ name: 'root', uid: 0, gid: 0, home: '/root' });
    // nested text, Salt's way
    const text = await fleet.cli(['call', 'a1', 'grains.get', 'roles']);
    expect(text.stdout).toBe('a1:\n    - web\n');
  });

  it('a long cmd.run does not stop the agent from answering (the command runs asynchronously)', async () => {
    const started = path.join(fleet.dir, 'cmd-started');
    const release = path.join(fleet.dir, 'cmd-release');
    const long = fleet.json<CallJson>(['call', 'a1', 'cmd.run', `touch ${started}; while [ ! -f ${release} ]; do sleep 0.1; done; echo released`]);
    await waitFor('the command to start', () => fs.existsSync(started) || undefined);
    // the agent answers a ping while its command is still waiting
    const ping = await fleet.json<CallJson>(['ping', 'a1', '--timeout', '20']);
    expect(ping.returns.a1!.status).toBe('ok');
    expect(fs.existsSync(release)).toBe(false);
    fs.writeFileSync(release, '');
    expect((await long).returns.a1).toMatchObject({ status: 'ok', return: 'released' });
  });

  it('unknown functions are an error listing the known ones; a failing function is exit 2', async () => {
    const r = await fleet.cli(['call', 'a1', 'pkg.frobnicate']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^tsalt call: 'pkg\.frobnicate' is not a function tsalt can call; known: test\.ping, cmd\.run, .*state\.sls$/m);
    const f = await fleet.cli(['call', 'a1', 'file.read', '/nonexistent/file']);
    expect(f.code).toBe(2);
    expect(f.stdout).toMatch(/^a1:\n    ERROR: .*nonexistent/);
  });

  it('saltutil.sync_grains re-reads the grains file; the master sees the new grain', async () => {
    fs.writeFileSync(path.join(fleet.dir, 'agents/a1/grains'), 'synced_grain: yes-it-is\n');
    expect((await fleet.json<CallJson>(['call', 'a1', 'saltutil.sync_grains'])).returns.a1!.return).toEqual([]);
    expect(await fleet.json(['grains', 'a1', 'synced_grain'])).toEqual({ a1: 'yes-it-is' });
  });

  it('service.status / restart / reload through the init system', async () => {
    const name = path.basename(initScript);
    const call = (fun: string) => fleet.json<CallJson>(['call', 'a1', fun, name]);
    expect((await call('service.status')).returns.a1).toMatchObject({ status: 'ok', return: false });
    expect((await call('service.restart')).returns.a1).toMatchObject({ status: 'ok', return: true });
    expect(fs.readFileSync(svcState, 'utf8')).toBe('start\n'); // stopped: mod_watch starts it
    expect((await call('service.status')).returns.a1).toMatchObject({ status: 'ok', return: true });
    expect((await call('service.restart')).returns.a1).toMatchObject({ status: 'ok', return: true });
    expect((await call('service.reload')).returns.a1).toMatchObject({ status: 'ok', return: true });
    expect(fs.readFileSync(svcState, 'utf8')).toBe('start\nrestart\nreload\n');
    const missing = await fleet.json<CallJson>(['call', 'a1', 'service.restart', 'no-such-service-x']);
    expect(missing.returns.a1!.status).toBe('error');
  });

  it('pkg.install / pkg.remove return the changes, as Salt does', async () => {
    const inst = await fleet.json<CallJson>(['call', 'a1', 'pkg.install', 'tsalt-call-dummy', `sources=[{"tsalt-call-dummy": "${deb}"}]`, 'refresh=False']);
    expect(inst.returns.a1, inst.returns.a1!.error).toMatchObject({ status: 'ok', return: { 'tsalt-call-dummy': { old: '', new: '1.0-1' } } });
    expect((await fleet.json<CallJson>(['call', 'a1', 'pkg.version', 'tsalt-call-dummy'])).returns.a1!.return).toBe('1.0-1');
    const again = await fleet.json<CallJson>(['call', 'a1', 'pkg.install', 'tsalt-call-dummy', `sources=[{"tsalt-call-dummy": "${deb}"}]`, 'refresh=False']);
    expect(again.returns.a1).toMatchObject({ status: 'ok', return: {} });
    const rm = await fleet.json<CallJson>(['call', 'a1', 'pkg.remove', 'tsalt-call-dummy']);
    expect(rm.returns.a1).toMatchObject({ status: 'ok', return: { 'tsalt-call-dummy': { old: '1.0-1', new: '' } } });
  });

  it('state.apply / state.sls / state.highstate run as jobs and answer in Salt\'s shape', async () => {
    const r = await fleet.json<CallJson>(['call', 'a1', 'state.sls', 'web', 'test=True']);
    const ret = r.returns.a1!.return as Record<string, { result: unknown; __id__: string; __sls__: string }>;
    expect(Object.keys(ret)).toEqual(['test_|-web_thing_v2_|-web_thing_v2_|-succeed_with_changes']);
    expect(ret['test_|-web_thing_v2_|-web_thing_v2_|-succeed_with_changes']).toMatchObject({ result: null, __id__: 'web_thing_v2', __sls__: 'web' });
    const jobs = await fleet.json<{ jid: string; kind: string }[]>(['jobs']);
    expect(jobs[0]!.kind).toBe('apply');
    const bad = await fleet.cli(['call', 'a1', 'state.sls']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/state\.sls: name the SLS/);
  });
});
