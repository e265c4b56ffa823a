import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runModWatch, runState, tempDir } from '../helpers/harness.js';
import { reinterpret, shlexSplit } from '../../engine/states/cmd/stateful.js';

const USER = 'tsalt_t_cmd';
const GROUP = 'tsalt_t_cmdgrp';
let dir: string;
let home: string;
let uid: number;

beforeAll(() => {
  dir = tempDir('tsalt-cmd-');
  home = path.join(dir, 'home');
  execFileSync('groupadd', [GROUP]);
  execFileSync('useradd', ['-m', '-d', home, '-N', '-G', GROUP, '-s', '/bin/sh', USER]);
  uid = Number(execFileSync('id', ['-u', USER]).toString().trim());
  fs.chmodSync(dir, 0o755);
});

afterAll(() => {
  execFileSync('userdel', ['-r', USER], { stdio: 'ignore' });
  execFileSync('groupdel', [GROUP], { stdio: 'ignore' });
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('cmd.run', () => {
  it('test mode predicts the command without running it; the real run runs it', async () => {
    const marker = path.join(dir, 'ran');
    const name = `echo out; echo err >&2; touch ${marker}`;
    const t = await runState('cmd.run', { name }, { test: true });
    expect(t).toMatchObject({ result: null, changes: { cmd: name }, comment: `Command "${name}" would have been executed` });
    expect(fs.existsSync(marker)).toBe(false);

    const r = await runState('cmd.run', { name });
    expect(r.result).toBe(true);
    expect(r.comment).toBe(`Command "${name}" run`);
    expect(r.changes).toMatchObject({ retcode: 0, stdout: 'out', stderr: 'err' });
    expect(r.changes.pid).toBeGreaterThan(1);
    expect(fs.existsSync(marker)).toBe(true);
  });

  it('reports pid of the shell that ran the command', async () => {
    const r = await runState('cmd.run', { name: 'echo $$' });
    expect(String(r.changes.pid)).toBe(r.changes.stdout);
  });

  it('a non-zero exit fails the state and still reports the changes', async () => {
    const r = await runState('cmd.run', { name: 'echo boom >&2; exit 3' });
    expect(r.result).toBe(false);
    expect(r.changes).toMatchObject({ retcode: 3, stderr: 'boom' });
  });

  it('success_retcodes turn an exit code into success (retcode 0, as Salt)', async () => {
    const r = await runState('cmd.run', { name: 'exit 3', success_retcodes: [2, 3] });
    expect(r.result).toBe(true);
    expect(r.changes.retcode).toBe(0);
    const one = await runState('cmd.run', { name: 'exit 3', success_retcodes: 3 });
    expect(one.result).toBe(true);
  });

  it('passes the command as one argv element to /bin/sh -c', async () => {
    const r = await runState('cmd.run', { name: `printf '%s|' "a  b" 'c;d' $((1+2))` });
    expect(r.changes.stdout).toBe('a  b|c;d|3|');
  });

  it('runs as runas: its uid, gid, supplementary groups, HOME/USER/LOGNAME, cwd = its home', async () => {
    const r = await runState('cmd.run', { name: 'id -u; id -nG; echo "$HOME $USER $LOGNAME"; pwd', runas: USER });
    expect(r.result).toBe(true);
    const [u, groups, envLine, cwd] = String(r.changes.stdout).split('\n');
    expect(Number(u)).toBe(uid);
    expect(groups!.split(' ')).toContain(GROUP);
    expect(envLine).toBe(`${home} ${USER} ${USER}`);
    expect(cwd).toBe(home);
  });

  it('an unknown runas user fails clearly', async () => {
    const r = await runState('cmd.run', { name: 'true', runas: 'tsalt_t_nosuch' });
    expect(r).toMatchObject({ result: false, comment: "User 'tsalt_t_nosuch' is not available" });
  });

  it('passes env as a dict or a list of dicts; YAML booleans become True/False', async () => {
    const r = await runState('cmd.run', { name: 'echo "$A|$B|$C"', env: { A: 'x y', B: true, C: 5 } });
    expect(r.changes.stdout).toBe('x y|True|5');
    const l = await runState('cmd.run', { name: 'echo "$A|$B"', env: [{ A: '1' }, { B: '2' }] });
    expect(l.changes.stdout).toBe('1|2');
    const bad = await runState('cmd.run', { name: 'true', env: 'A=1' }).catch((e: Error) => e);
    expect(bad).toBeInstanceOf(Error);
  });

  it('cwd: runs there; a missing directory fails without running', async () => {
    const r = await runState('cmd.run', { name: 'pwd', cwd: dir });
    expect(r.changes.stdout).toBe(dir);
    const d = await runState('cmd.run', { name: 'true', cwd: path.join(dir, 'missing') });
    expect(d).toMatchObject({ result: false, changes: {} });
    expect(d.comment).toBe(`Desired working directory "${path.join(dir, 'missing')}" is not available`);
  });

  it('shell: uses the given shell', async () => {
    const r = await runState('cmd.run', { name: 'echo ${BASH_VERSION:+bash}', shell: '/bin/bash' });
    expect(r.changes.stdout).toBe('bash');
  });

  it('timeout: kills the whole command (grandchildren too) and fails like Salt', async () => {
    const t0 = Date.now();
    const r = await runState('cmd.run', { name: 'sleep 30 & sleep 30; wait', timeout: 1 });
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(r).toMatchObject({ result: false, changes: { retcode: 1, stdout: 'Timed out after 1 seconds' } });
    const ok = await runState('cmd.run', { name: 'sleep 5', timeout: 1, ignore_timeout: true });
    expect(ok).toMatchObject({ result: true, changes: { retcode: 0 } });
  });

  it('hide_output drops stdout/stderr from the result', async () => {
    const r = await runState('cmd.run', { name: 'echo secret; echo s2 >&2', hide_output: true });
    expect(r.changes).toMatchObject({ stdout: '', stderr: '' });
  });

  it('umask applies to files the command creates', async () => {
    const f = path.join(dir, 'umasked');
    await runState('cmd.run', { name: `touch ${f}`, umask: '077' });
    expect(fs.statSync(f).mode & 0o777).toBe(0o600);
  });
});

describe('cmd.run stateful', () => {
  it('parses the last line as key=value pairs', async () => {
    const r = await runState('cmd.run', {
      name: `echo working; echo; echo "changed=yes comment='something changed' whatever=123"`,
      stateful: true,
    });
    expect(r.result).toBe(true);
    expect(r.comment).toBe('something changed');
    expect(r.changes).toMatchObject({ changed: 'yes', whatever: '123', retcode: 0, stdout: 'working\n' });
    expect(r.changes).not.toHaveProperty('comment');
  });

  it('changed=no: no changes, comment kept', async () => {
    const r = await runState('cmd.run', { name: `echo "changed=no comment='all good'"`, stateful: true });
    expect(r).toMatchObject({ result: true, changes: {}, comment: 'all good' });
  });

  it('JSON output', async () => {
    const r = await runState('cmd.run', { name: `echo '{"changed": true, "comment": "json", "n": 1}'`, stateful: true });
    expect(r).toMatchObject({ result: true, comment: 'json', changes: { changed: true, n: 1, stdout: '' } });
    const arr = await runState('cmd.run', { name: `echo '[1]'`, stateful: true });
    expect(arr).toMatchObject({ result: false, comment: 'script JSON output must be a JSON object (e.g., {})!' });
  });

  it('no stdout means no changes; unparsable output fails', async () => {
    expect(await runState('cmd.run', { name: 'true', stateful: true })).toMatchObject({ result: true, changes: {} });
    const bad = await runState('cmd.run', { name: 'echo "not a state line"', stateful: true });
    expect(bad.result).toBe(false);
    expect(bad.comment).toMatch(/Stdout must be JSON or a line of name=value pairs/);
  });

  it('a failing stateful command still fails', async () => {
    const r = await runState('cmd.run', { name: 'echo changed=yes; exit 2', stateful: true });
    expect(r.result).toBe(false);
    expect(r.changes.retcode).toBe(2);
  });

  it('test_name predicts the changes in test mode', async () => {
    const marker = path.join(dir, 'stateful-real');
    const args = {
      name: `touch ${marker}; echo changed=yes`,
      stateful: [{ test_name: `echo "changed=yes comment='would do it'"` }],
    };
    const t = await runState('cmd.run', args, { test: true });
    expect(t).toMatchObject({ result: null, comment: 'would do it', changes: { changed: 'yes' } });
    expect(fs.existsSync(marker)).toBe(false);
    const r = await runState('cmd.run', args);
    expect(r.result).toBe(true);
    expect(Object.keys(r.changes).sort()).toEqual(Object.keys(t.changes).sort());
    expect(fs.existsSync(marker)).toBe(true);
  });

  it('shlex splitting follows Python', () => {
    expect(shlexSplit(`a=1 b='x y' c="q \\"z\\"" d=e\\ f`)).toEqual(['a=1', 'b=x y', 'c=q "z"', 'd=e f']);
    expect(() => shlexSplit(`a='x`)).toThrow();
    expect(reinterpret({ pid: 1, retcode: 0, stdout: '', stderr: 'warn' })).toEqual({ changes: {}, comment: 'warn' });
  });
});

describe('cmd.wait and mod_watch', () => {
  it('cmd.wait does nothing by itself; its mod_watch runs the command', async () => {
    const marker = path.join(dir, 'waited');
    const args = { name: `touch ${marker}` };
    expect(await runState('cmd.wait', args)).toMatchObject({ result: true, changes: {} });
    expect(fs.existsSync(marker)).toBe(false);
    const t = await runModWatch('cmd.wait', args, { test: true });
    expect(t).toMatchObject({ result: null, changes: { cmd: args.name } });
    expect(fs.existsSync(marker)).toBe(false);
    const w = await runModWatch('cmd.wait', args);
    expect(w).toMatchObject({ result: true, changes: { retcode: 0 } });
    expect(fs.existsSync(marker)).toBe(true);
  });

  it('cmd.run mod_watch runs again and fails on a non-zero exit', async () => {
    const w = await runModWatch('cmd.run', { name: 'exit 4' });
    expect(w).toMatchObject({ result: false, changes: { retcode: 4 } });
  });
});

describe('cmd.script', () => {
  it('runs a script from the tree with arguments, rendered with Jinja, as runas', async () => {
    const tree = tempDir('tsalt-cmdtree-');
    fs.mkdirSync(path.join(tree, 'scripts'));
    fs.writeFileSync(path.join(tree, 'scripts', 'hello.sh'), '#!/bin/sh\necho "{{ greeting }} $1 $(id -u)"\n');
    const args = { name: 'salt://scripts/hello.sh world', template: 'jinja', context: { greeting: 'hi' }, runas: USER };
    const t = await runState('cmd.script', args, { test: true, treeDir: tree });
    expect(t).toMatchObject({ result: null, changes: { cmd: args.name } });
    const r = await runState('cmd.script', args, { treeDir: tree });
    expect(r.result).toBe(true);
    expect(r.changes.stdout).toBe(`hi world ${uid}`);
    expect(r.comment).toBe(`Command '${args.name}' run`);
    const missing = await runState('cmd.script', { name: 'salt://scripts/none.sh' }, { treeDir: tree });
    expect(missing.result).toBe(false);
    expect(missing.comment).toMatch(/Unable to cache script salt:\/\/scripts\/none.sh/);
    fs.rmSync(tree, { recursive: true, force: true });
  });
});
