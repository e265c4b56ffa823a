import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { runState, tempDir } from '../helpers/harness.js';
import { pyRegex, pySubn, pyFlags } from '../../engine/states/file/regex.js';
import { convergeTwice } from './states-file-helpers.js';

function file(text: string, mode = 0o640): string {
  const d = tempDir();
  const p = path.join(d, 'conf');
  fs.writeFileSync(p, text, { mode });
  return p;
}
const read = (p: string) => fs.readFileSync(p, 'utf8');

describe('Python regex translation', () => {
  it('named groups, backreferences, \\A/\\Z, inline flags and re.sub templates', () => {
    expect(pySubn(pyRegex('(?P<k>\\w+)=(?P<v>\\d+)'), 'a=1 b=2', '\\g<v>=\\g<k>')[0]).toBe('1=a 2=b');
    expect(pySubn(pyRegex('(\\w)\\1?'), 'aab', '[\\1]')[0]).toBe('[a][b]');
    expect(pySubn(pyRegex('(?P<c>a)(?P=c)'), 'aa', 'x')).toEqual(['x', 1]);
    expect(pySubn(pyRegex('\\Afoo'), 'foo\nfoo', 'X', 0)[0]).toBe('X\nfoo');
    expect(pySubn(pyRegex('(?i)^HELLO', 8), 'hello\nHello', 'hi')[0]).toBe('hi\nhi');
    expect(pySubn(pyRegex('a', 0), 'aaa', 'b', 2)).toEqual(['bba', 2]);
    expect(pySubn(pyRegex('x', 0), 'x', 'cost: $1\\n')[0]).toBe('cost: $1\n');
    expect(pyFlags(['IGNORECASE', 'MULTILINE'], 8)).toBe(10);
    expect(() => pyFlags(['NOPE'], 8)).toThrow(/Invalid re flag/);
  });
});

describe('file.replace', () => {
  it('substitutes with Python syntax, keeps mode, writes a .bak by default (Salt)', async () => {
    const p = file('Port 22\nPermitRootLogin yes\n');
    const r = await convergeTwice('file.replace', { name: p, pattern: '^(?P<key>PermitRootLogin)\\s+\\w+$', repl: '\\g<key> no' });
    expect(r.changes.diff).toContain('-PermitRootLogin yes\n+PermitRootLogin no');
    expect(read(p)).toBe('Port 22\nPermitRootLogin no\n');
    expect(read(p + '.bak')).toBe('Port 22\nPermitRootLogin yes\n');
    expect(fs.statSync(p).mode & 0o777).toBe(0o640);
  });

  it('append_if_not_found / prepend_if_not_found add the content once', async () => {
    const p = file('a=1\n');
    await convergeTwice('file.replace', { name: p, pattern: '^b=.*$', repl: 'b=2', append_if_not_found: true, backup: false });
    expect(read(p)).toBe('a=1\nb=2\n');
    await convergeTwice('file.replace', { name: p, pattern: '^#top', repl: 'x', not_found_content: '# managed', prepend_if_not_found: true, backup: false });
    expect(read(p)).toBe('# managed\na=1\nb=2\n');
    expect(fs.existsSync(p + '.bak')).toBe(false);
  });

  it('count and flags; a missing file fails unless ignore_if_missing', async () => {
    const p = file('X x X\n');
    // count limits one run; Salt re-applies it on the next run while matches remain
    expect((await runState('file.replace', { name: p, pattern: 'x', repl: 'y', flags: ['IGNORECASE'], count: 2, backup: false })).result).toBe(true);
    expect(read(p)).toBe('y y X\n');
    await convergeTwice('file.replace', { name: p, pattern: 'x', repl: 'y', flags: 2, backup: false });
    expect(read(p)).toBe('y y y\n');
    const d = tempDir();
    expect(await runState('file.replace', { name: path.join(d, 'no'), pattern: 'a', repl: 'b' })).toMatchObject({ result: false, comment: `${path.join(d, 'no')}: file not found` });
    expect(await runState('file.replace', { name: path.join(d, 'no'), pattern: 'a', repl: 'b', ignore_if_missing: true })).toMatchObject({ result: true, changes: {} });
  });
});

describe('file.line', () => {
  it('ensure after a line, with indentation, idempotent', async () => {
    const p = file('[main]\n    a = 1\n    c = 3\n');
    await convergeTwice('file.line', { name: p, content: 'b = 2', mode: 'ensure', after: 'a = 1' });
    expect(read(p)).toBe('[main]\n    a = 1\n    b = 2\n    c = 3\n');
  });

  it('ensure between before and after; fails when more than one line sits between', async () => {
    const p = file('begin\nend\n');
    await convergeTwice('file.line', { name: p, content: 'middle', mode: 'ensure', after: '^begin$', before: '^end$' });
    expect(read(p)).toBe('begin\nmiddle\nend\n');
    const q = file('begin\nx\ny\nend\n');
    const r = await runState('file.line', { name: q, content: 'middle', mode: 'ensure', after: '^begin$', before: '^end$' });
    expect(r).toMatchObject({ result: false, comment: 'Found more than one line between boundaries "before" and "after".' });
    expect(read(q)).toBe('begin\nx\ny\nend\n');
  });

  it('replace the matching line; delete a line; insert at start/end', async () => {
    const p = file('ListenAddress 0.0.0.0\nX11Forwarding yes\n');
    await convergeTwice('file.line', { name: p, content: 'ListenAddress 127.0.0.1', match: '^ListenAddress', mode: 'replace' });
    await convergeTwice('file.line', { name: p, match: 'X11Forwarding', mode: 'delete' });
    await convergeTwice('file.line', { name: p, content: '# managed by tsalt', mode: 'insert', location: 'start' });
    await convergeTwice('file.line', { name: p, content: 'UseDNS no', mode: 'insert', location: 'end' });
    expect(read(p)).toBe('# managed by tsalt\nListenAddress 127.0.0.1\nUseDNS no\n');
  });

  it('insert before a line; ambiguous anchors fail; a missing file fails unless create', async () => {
    const p = file('a\nz\n');
    await convergeTwice('file.line', { name: p, content: 'm', mode: 'insert', before: '^z$' });
    expect(read(p)).toBe('a\nm\nz\n');
    const q = file('x\nx\n');
    expect((await runState('file.line', { name: q, content: 'y', mode: 'insert', after: 'x' })).comment).toBe('Found more than expected occurrences in "after" expression');
    const d = tempDir();
    const n = path.join(d, 'new');
    expect((await runState('file.line', { name: n, content: 'y', mode: 'insert', location: 'end' })).result).toBe(false);
    await convergeTwice('file.line', { name: n, content: 'y', mode: 'insert', location: 'end', create: true, user: 'daemon', file_mode: '0600' });
    expect(read(n)).toBe('y\n');
    expect(fs.statSync(n).uid).toBe(1);
  });

  it('rejects an unknown mode', async () => {
    const p = file('a\n');
    expect((await runState('file.line', { name: p, content: 'b', mode: 'upsert' })).comment).toBe('Unknown mode: "upsert"');
  });
});

describe('file.append', () => {
  it('appends only missing lines, whitespace-insensitive, adds the missing final newline', async () => {
    const p = file('export A=1\nexport   B=2');
    const r = await convergeTwice('file.append', { name: p, text: ['export B=2', 'export C=3', 'export D=4\nexport E=5'] });
    expect(r.comment).toBe('Appended 3 lines');
    expect(read(p)).toBe('export A=1\nexport   B=2\nexport C=3\nexport D=4\nexport E=5\n');
  });

  it('creates the file when missing (makedirs)', async () => {
    const d = tempDir();
    const n = path.join(d, 'x/y');
    await convergeTwice('file.append', { name: n, text: 'hello', makedirs: true });
    expect(read(n)).toBe('hello\n');
  });
});
