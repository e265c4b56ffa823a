import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluateGuards, guardKeys, guardOptions } from '../../engine/run/guards.js';
import { tempDir } from '../helpers/harness.js';

const USER = 'tsalt_t_guard';
let dir: string;
let uid: number;

beforeAll(() => {
  dir = tempDir('tsalt-guards-');
  execFileSync('useradd', ['-M', '-N', '-d', '/nonexistent', '-s', '/bin/sh', USER]);
  uid = Number(execFileSync('id', ['-u', USER]).toString().trim());
});

afterAll(() => {
  execFileSync('userdel', [USER], { stdio: 'ignore' });
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('onlyif', () => {
  it('runs only when every command succeeds', async () => {
    expect(await evaluateGuards({ onlyif: 'true' })).toEqual({ run: true });
    expect(await evaluateGuards({ onlyif: ['true', 'exit 0'] })).toEqual({ run: true });
    expect(await evaluateGuards({ onlyif: 'false' })).toEqual({ run: false, comment: 'onlyif condition is false' });
    expect(await evaluateGuards({ onlyif: ['true', 'false'] })).toEqual({ run: false, comment: 'onlyif condition is false' });
  });

  it('stops at the first failing command', async () => {
    const marker = path.join(dir, 'onlyif-marker');
    await evaluateGuards({ onlyif: ['false', `touch ${marker}`] });
    expect(fs.existsSync(marker)).toBe(false);
  });
});

describe('unless', () => {
  it('skips only when every command succeeds (Salt list semantics)', async () => {
    expect(await evaluateGuards({ unless: 'true' })).toEqual({ run: false, comment: 'unless condition is true' });
    expect(await evaluateGuards({ unless: ['true', 'true'] })).toEqual({ run: false, comment: 'unless condition is true' });
    // one failing command is enough to run
    expect(await evaluateGuards({ unless: ['true', 'false'] })).toEqual({ run: true });
    expect(await evaluateGuards({ unless: ['false', 'true'] })).toEqual({ run: true });
    expect(await evaluateGuards({ unless: 'exit 3' })).toEqual({ run: true });
  });

  it('stops at the first failing command', async () => {
    const marker = path.join(dir, 'unless-marker');
    await evaluateGuards({ unless: ['false', `touch ${marker}`] });
    expect(fs.existsSync(marker)).toBe(false);
  });
});

describe('creates', () => {
  it('skips when the path / all paths exist', async () => {
    const a = path.join(dir, 'a');
    const b = path.join(dir, 'b');
    fs.writeFileSync(a, '');
    expect(await evaluateGuards({ creates: a })).toEqual({ run: false, comment: `${a} exists` });
    expect(await evaluateGuards({ creates: [a, b] })).toEqual({ run: true });
    fs.writeFileSync(b, '');
    expect(await evaluateGuards({ creates: [a, b] })).toEqual({ run: false, comment: 'All files in creates exist' });
    expect(await evaluateGuards({ creates: path.join(dir, 'nope') })).toEqual({ run: true });
  });

  it('rejects a malformed value', async () => {
    const g = await evaluateGuards({ creates: 42 });
    expect(g).toMatchObject({ run: false, error: true });
  });
});

describe('combined guards', () => {
  it('evaluates all and lists each verdict', async () => {
    expect(await evaluateGuards({ onlyif: 'true', unless: 'true' })).toEqual({
      run: false,
      comment: 'onlyif condition is true\nunless condition is true',
    });
    expect(await evaluateGuards({ onlyif: 'true', unless: 'false' })).toEqual({ run: true });
    expect(await evaluateGuards({ onlyif: 'false', unless: 'false' })).toEqual({
      run: false,
      comment: 'onlyif condition is false\nunless condition is false',
    });
  });
});

describe('command options', () => {
  it('runs as runas, with env and cwd', async () => {
    expect(await evaluateGuards({ onlyif: `test "$(id -u)" = ${uid}` }, { runas: USER })).toEqual({ run: true });
    expect(await evaluateGuards({ onlyif: `test "$(id -u)" = ${uid}` })).toMatchObject({ run: false });
    expect(await evaluateGuards({ onlyif: 'test "$FOO" = "bar baz"' }, { env: { FOO: 'bar baz' } })).toEqual({ run: true });
    expect(await evaluateGuards({ onlyif: 'test "$FOO" = x' }, { env: [{ FOO: 'x' }] })).toEqual({ run: true });
    expect(await evaluateGuards({ onlyif: `test "$(pwd)" = ${dir}` }, { cwd: dir })).toEqual({ run: true });
  });

  it('an unknown runas user counts as failed for onlyif and succeeded for unless (both skip)', async () => {
    expect(await evaluateGuards({ onlyif: 'true' }, { runas: 'tsalt_t_nosuchuser' })).toEqual({
      run: false,
      comment: 'onlyif condition is false',
    });
    expect(await evaluateGuards({ unless: 'false' }, { runas: 'tsalt_t_nosuchuser' })).toEqual({
      run: false,
      comment: 'unless condition is true',
    });
  });

  it('guardOptions picks the cmd arguments and ignores a nologin shell', async () => {
    const o = guardOptions({ name: 'x', shell: '/usr/sbin/nologin', runas: USER, home: '/h', cwd: dir });
    expect(o).toEqual({ shell: '/usr/sbin/nologin', runas: USER, cwd: dir });
    // a user.present shell of /usr/sbin/nologin must not make every guard fail
    expect(await evaluateGuards({ onlyif: 'true' }, o)).toEqual({ run: true });
    expect(await evaluateGuards({ onlyif: 'test -n "$BASH_VERSION"' }, { shell: '/bin/bash' })).toEqual({ run: true });
  });

  it('passes the command as one argv element (no re-splitting, no injection)', async () => {
    expect(await evaluateGuards({ onlyif: `printf '%s' "a  b" | grep -qx 'a  b'` })).toEqual({ run: true });
  });
});

describe('dict form', () => {
  it('supports file.file_exists / file.directory_exists', async () => {
    const f = path.join(dir, 'dictfile');
    fs.writeFileSync(f, '');
    expect(await evaluateGuards({ onlyif: [{ fun: 'file.file_exists', path: f }] })).toEqual({ run: true });
    expect(await evaluateGuards({ onlyif: [{ fun: 'file.directory_exists', path: f }] })).toMatchObject({ run: false });
    expect(await evaluateGuards({ unless: [{ fun: 'file.directory_exists', args: [dir] }] })).toEqual({
      run: false,
      comment: 'unless condition is true',
    });
    expect(await evaluateGuards({ unless: [{ fun: 'file.file_exists', path: path.join(dir, 'none') }] })).toEqual({ run: true });
  });

  it('reports unsupported functions clearly', async () => {
    const g = await evaluateGuards({ onlyif: [{ fun: 'pkg.version', name: 'x' }] });
    expect(g).toMatchObject({ run: false, error: true });
    expect((g as { comment: string }).comment).toMatch(/pkg\.version.*not supported/);
    expect(await evaluateGuards({ unless: [{ path: '/x' }] })).toMatchObject({ run: false, error: true });
  });
});

it('exports the guard keys for the compiler', () => {
  expect([...guardKeys]).toEqual(['unless', 'onlyif', 'creates']);
});
