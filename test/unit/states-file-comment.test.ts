import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { runState, tempDir } from '../helpers/harness.js';
import { writeTree } from '../helpers/tree.js';
import { setKeyValues } from '../../engine/states/file/keyvalue.js';
import { convergeTwice } from './states-file-helpers.js';

function file(text: string, mode = 0o640): string {
  const p = path.join(tempDir(), 'conf');
  fs.writeFileSync(p, text, { mode });
  return p;
}
const read = (p: string) => fs.readFileSync(p, 'utf8');

describe('file.comment', () => {
  it('comments matching lines once, keeps the mode, backs up to .bak', async () => {
    const before = 'bind 127.0.0.1\nport 6379\nbind ::1\n';
    const p = file(before);
    const r = await convergeTwice('file.comment', { name: p, regex: '^bind' });
    expect(r.comment).toBe('Commented lines successfully');
    expect(r.changes.diff).toContain('-bind 127.0.0.1\n+#bind 127.0.0.1');
    expect(read(p)).toBe('#bind 127.0.0.1\nport 6379\n#bind ::1\n');
    expect(read(p + '.bak')).toBe(before);
    expect(fs.statSync(p).mode & 0o777).toBe(0o640);
    expect(await runState('file.comment', { name: p, regex: '^bind' })).toMatchObject({ result: true, changes: {}, comment: 'Pattern already commented' });
  });

  it('test mode predicts the diff without writing', async () => {
    const p = file('a=1\n');
    const r = await runState('file.comment', { name: p, regex: '^a=1$', char: '//' }, { test: true });
    expect(r).toMatchObject({ result: null, comment: `File ${p} is set to be updated` });
    expect(r.changes.diff).toContain('+//a=1');
    expect(read(p)).toBe('a=1\n');
  });

  it('other comment characters, a trailing $ and backup: False', async () => {
    const p = file('a=1\na=10\n');
    await convergeTwice('file.comment', { name: p, regex: '^a=1$', char: ';', backup: false });
    expect(read(p)).toBe(';a=1\na=10\n');
    expect(fs.existsSync(p + '.bak')).toBe(false);
  });

  it('no match at all fails with Salt\'s message unless ignore_missing; an indented match is not commented', async () => {
    const p = file('x\n');
    expect(await runState('file.comment', { name: p, regex: '^nothing$' })).toMatchObject({ result: false, comment: 'nothing: Pattern not found' });
    expect(await runState('file.comment', { name: p, regex: '^nothing', ignore_missing: true })).toMatchObject({
      result: true,
      changes: {},
      comment: 'Pattern not found and ignore_missing set to True',
    });
    const q = file('  foo\n');
    expect(await runState('file.comment', { name: q, regex: 'foo' })).toMatchObject({ result: false, comment: 'Expected commented lines not found' });
    expect(read(q)).toBe('  foo\n');
    const missing = path.join(tempDir(), 'none');
    expect(await runState('file.comment', { name: missing, regex: 'x' })).toMatchObject({ result: false, comment: `${missing}: file not found` });
  });
});

describe('file.uncomment', () => {
  it('uncomments matching lines (the space after the comment character stays, as Salt)', async () => {
    const p = file('#EXTRA_GROUPS="dialout"\n# ADD_EXTRA_GROUPS=1\nother\n');
    const r = await convergeTwice('file.uncomment', { name: p, regex: 'EXTRA_GROUPS', backup: false });
    expect(r.comment).toBe('Uncommented lines successfully');
    expect(read(p)).toBe('EXTRA_GROUPS="dialout"\n# ADD_EXTRA_GROUPS=1\nother\n');
    await convergeTwice('file.uncomment', { name: p, regex: '^ADD_EXTRA', backup: false });
    expect(read(p)).toBe('EXTRA_GROUPS="dialout"\n ADD_EXTRA_GROUPS=1\nother\n');
    // the comment characters are a set, all of them stripped (Python's lstrip)
    const q = file('// debug = true\n');
    await convergeTwice('file.uncomment', { name: q, regex: 'debug', char: '//', backup: false });
    expect(read(q)).toBe(' debug = true\n');
  });

  it('a no-op when only uncommented matches exist; fails when nothing matches', async () => {
    const p = file('foo=1\n');
    expect(await runState('file.uncomment', { name: p, regex: '^foo' })).toMatchObject({ result: true, changes: {}, comment: 'Pattern already uncommented' });
    expect(await runState('file.uncomment', { name: p, regex: '^bar' })).toMatchObject({ result: false, comment: '^bar: Pattern not found' });
    expect(read(p)).toBe('foo=1\n');
    expect(fs.existsSync(p + '.bak')).toBe(false);
  });
});

describe('file.prepend', () => {
  it('puts missing text at the top, skips what the file already has, creates the file (makedirs)', async () => {
    const p = file('body\n# managed by salt\n');
    const r = await convergeTwice('file.prepend', { name: p, text: ['#!/bin/sh', '# managed   by salt', 'set -e\nset -u'] });
    expect(r.comment).toBe('Prepended 3 lines');
    expect(read(p)).toBe('#!/bin/sh\nset -e\nset -u\nbody\n# managed by salt\n');
    expect(fs.statSync(p).mode & 0o777).toBe(0o640);
    const n = path.join(tempDir(), 'a/b/motd');
    await convergeTwice('file.prepend', { name: n, text: 'hello', makedirs: true });
    expect(read(n)).toBe('hello\n');
  });

  it('header: True wants the lines as the first lines, verbatim', async () => {
    const p = file('x\nfirst\nsecond\n');
    await convergeTwice('file.prepend', { name: p, header: true, text: ['first', 'second'] });
    expect(read(p)).toBe('first\nsecond\nx\nfirst\nsecond\n');
  });

  it('sources rendered with jinja replace text; nothing to prepend fails', async () => {
    const treeDir = writeTree({ 'motd/head.j2': 'Welcome to {{ grains.id }} ({{ team }})\n' });
    const p = file('old motd\n');
    await convergeTwice('file.prepend', { name: p, source: 'salt://motd/head.j2', context: { team: 'ops' } }, { treeDir, grains: { id: 'web1' } });
    expect(read(p)).toBe('Welcome to web1 (ops)\nold motd\n');
    expect(await runState('file.prepend', { name: p })).toMatchObject({ result: false, comment: 'Nothing to prepend: give text, source or sources' });
  });
});

describe('file.keyvalue', () => {
  const sshd = '#Port 22\n# PermitRootLogin prohibit-password\nLoginGraceTime 2m\nPermitRootLogin yes\n';

  it('sets values, uncommenting the first occurrence and dropping later ones, appends the missing (Salt example)', async () => {
    const p = file(sshd);
    const r = await convergeTwice('file.keyvalue', {
      name: p,
      key_values: { permitrootlogin: 'without-password', LoginGraceTime: '1m', DisableForwarding: 'yes' },
      separator: ' ',
      uncomment: '# ',
      key_ignore_case: true,
      append_if_not_found: true,
    });
    expect(r.comment).toBe('Changed 4 lines');
    expect(r.changes.diff).toContain('+PermitRootLogin without-password');
    expect(read(p)).toBe('#Port 22\nPermitRootLogin without-password\nLoginGraceTime 1m\nDisableForwarding yes\n');
    expect(fs.statSync(p).mode & 0o777).toBe(0o640);
  });

  it('test mode reports the line count; key/value shorthand; value_ignore_case', async () => {
    const p = file('a=Yes\nb=2');
    const t = await runState('file.keyvalue', { name: p, key: 'b', value: 3 }, { test: true });
    expect(t).toMatchObject({ result: null, comment: `File ${p} is set to be changed (1 lines)` });
    expect(read(p)).toBe('a=Yes\nb=2');
    await convergeTwice('file.keyvalue', { name: p, key: 'b', value: 3 });
    expect(read(p)).toBe('a=Yes\nb=3\n');
    expect(await runState('file.keyvalue', { name: p, key: 'a', value: 'yes', value_ignore_case: true })).toMatchObject({ result: true, changes: {} });
    // without uncomment, commented lines are left alone and the key is appended
    await convergeTwice('file.keyvalue', { name: p, key_values: { c: true }, append_if_not_found: true });
    expect(read(p)).toBe('a=Yes\nb=3\nc=True\n');
  });

  it('missing file, bad combinations and unsupported options fail clearly', async () => {
    const missing = path.join(tempDir(), 'nope');
    expect(await runState('file.keyvalue', { name: missing, key: 'a', value: 1 })).toMatchObject({ result: false, comment: `unable to open ${missing}` });
    expect(await runState('file.keyvalue', { name: missing, key: 'a', value: 1, ignore_if_missing: true })).toMatchObject({ result: true, changes: {} });
    const p = file('a=1\n');
    expect((await runState('file.keyvalue', { name: p, key: 'a', value: 1, key_values: { b: 2 } })).comment).toBe('file.keyvalue can not combine key_values with key and value');
    expect((await runState('file.keyvalue', { name: p })).comment).toBe('file.keyvalue key and value not supplied and key_values is empty');
    expect((await runState('file.keyvalue', { name: p, key: 'a', value: 2, count: -1 })).comment).toBe('file.keyvalue: count=-1 is not supported (only the default, 1)');
    expect((await runState('file.keyvalue', { name: p, key: 'a', value: 2, prepend_if_not_found: true })).result).toBe(false);
    expect(read(p)).toBe('a=1\n');
  });

  it('keys match exactly up to the separator; indented lines count as uncommented (Salt strips whitespace)', () => {
    const o = { separator: '=', appendIfNotFound: false, keyIgnoreCase: false, valueIgnoreCase: false };
    expect(setKeyValues('ab=1\na =2\n', [['a', '9']], o)).toEqual({ text: 'ab=1\na =2\n', changed: 0 });
    expect(setKeyValues('  a=1\na=1\n', [['a', '1']], o)).toEqual({ text: 'a=1\n', changed: 2 });
  });
});
