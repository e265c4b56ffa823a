import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { runState, tempDir } from '../helpers/harness.js';
import { applyTree, byId, writeTree } from '../helpers/tree.js';
import { replaceBlock } from '../../engine/states/file/block.js';
import { convergeTwice } from './states-file-helpers.js';

const START = '#-- start managed zone --';
const END = '#-- end managed zone --';

function file(text: string, mode = 0o640): string {
  const p = path.join(tempDir(), 'conf');
  fs.writeFileSync(p, text, { mode });
  return p;
}
const read = (p: string) => fs.readFileSync(p, 'utf8');

describe('file.blockreplace', () => {
  it('replaces the lines between the markers, keeps the rest and the mode, writes a .bak (Salt default)', async () => {
    const before = `127.0.0.1 localhost\n${START}\nold line\nanother\n${END}\n# tail\n`;
    const p = file(before);
    const r = await convergeTwice('file.blockreplace', { name: p, content: '10.0.0.1 a\n10.0.0.2 b' });
    expect(r).toMatchObject({ comment: 'Changes were made' });
    expect(r.changes.diff).toContain('-old line\n-another\n+10.0.0.1 a\n+10.0.0.2 b');
    expect(read(p)).toBe(`127.0.0.1 localhost\n${START}\n10.0.0.1 a\n10.0.0.2 b\n${END}\n# tail\n`);
    expect(read(p + '.bak')).toBe(before);
    expect(fs.statSync(p).mode & 0o777).toBe(0o640);
  });

  it('test mode predicts the diff and leaves the file alone', async () => {
    const p = file(`${START}\nx\n${END}\n`);
    const r = await runState('file.blockreplace', { name: p, content: 'y' }, { test: true });
    expect(r).toMatchObject({ result: null, comment: 'Changes would be made' });
    expect(r.changes.diff).toContain('-x\n+y');
    expect(read(p)).toBe(`${START}\nx\n${END}\n`);
    expect(fs.existsSync(p + '.bak')).toBe(false);
  });

  it('custom markers: the whole start line is kept, text before the end marker is replaced', async () => {
    const p = file('a\n  # BEGIN ours (keep me)\nstale\nleftover# END ours\nz\n');
    await convergeTwice('file.blockreplace', { name: p, marker_start: '# BEGIN ours', marker_end: '# END ours', content: 'fresh\n', backup: false });
    expect(read(p)).toBe('a\n  # BEGIN ours (keep me)\nfresh\n# END ours\nz\n');
    expect(fs.existsSync(p + '.bak')).toBe(false);
  });

  it('append_if_not_found adds the block at the end (after a missing final newline), once', async () => {
    const p = file('line without newline');
    await convergeTwice('file.blockreplace', { name: p, content: 'managed', append_if_not_found: true, backup: false });
    expect(read(p)).toBe(`line without newline\n${START}\nmanaged\n${END}\n`);
  });

  it('prepend_if_not_found, insert_before_match and insert_after_match place the block once', async () => {
    const p = file('first\nsecond\n');
    await convergeTwice('file.blockreplace', { name: p, content: 'top', prepend_if_not_found: true, backup: false });
    expect(read(p)).toBe(`${START}\ntop\n${END}\nfirst\nsecond\n`);

    const q = file('[a]\nx=1\n[b]\ny=2\n');
    const m = { marker_start: '# <b-extra>', marker_end: '# </b-extra>', backup: false };
    await convergeTwice('file.blockreplace', { name: q, ...m, content: 'z=3', insert_before_match: '^\\[b\\]$' });
    expect(read(q)).toBe('[a]\nx=1\n# <b-extra>\nz=3\n# </b-extra>\n[b]\ny=2\n');
    const n = { marker_start: '# <a-extra>', marker_end: '# </a-extra>', backup: false };
    await convergeTwice('file.blockreplace', { name: q, ...n, content: 'w=0', insert_after_match: '^\\[a\\]' });
    expect(read(q)).toBe('[a]\n# <a-extra>\nw=0\n# </a-extra>\nx=1\n# <b-extra>\nz=3\n# </b-extra>\n[b]\ny=2\n');
  });

  it('markers missing and no placement option: Salt\'s failure, nothing written', async () => {
    const p = file('nothing here\n');
    const r = await runState('file.blockreplace', { name: p, content: 'x' });
    expect(r).toMatchObject({ result: false, changes: {}, comment: 'Encountered error managing block: Cannot edit marked block. Markers were not found in file.' });
    const t = await runState('file.blockreplace', { name: p, content: 'x', insert_after_match: 'no such line' });
    expect(t.comment).toBe('Encountered error managing block: Cannot edit marked block. Markers were not found in file.');
    expect(read(p)).toBe('nothing here\n');
    expect(fs.existsSync(p + '.bak')).toBe(false);
  });

  it('fails on an unterminated block, a missing file, a relative name and conflicting options', async () => {
    const p = file(`${START}\nx\n`);
    expect((await runState('file.blockreplace', { name: p, content: 'y' })).comment).toBe(
      'Encountered error managing block: Unterminated marked block. End of file reached before marker_end.',
    );
    expect(read(p)).toBe(`${START}\nx\n`);
    const missing = path.join(tempDir(), 'nope');
    expect(await runState('file.blockreplace', { name: missing, content: 'y', append_if_not_found: true })).toMatchObject({
      result: false,
      comment: `${missing}: file not found`,
    });
    expect(fs.existsSync(missing)).toBe(false);
    expect((await runState('file.blockreplace', { name: 'rel/x', content: 'y' })).comment).toBe('Specified file rel/x is not an absolute path');
    expect((await runState('file.blockreplace', { name: p, content: 'y', append_if_not_found: true, prepend_if_not_found: true })).comment).toBe(
      'Encountered error managing block: Only one of append_if_not_found, prepend_if_not_found, insert_before_match, and insert_after_match is permitted',
    );
  });

  it('append_newline: False runs the content into the end marker; show_changes: False hides the diff', async () => {
    const p = file(`${START}\nx\n${END}\n`);
    const r = await convergeTwice('file.blockreplace', { name: p, content: 'y', append_newline: false, show_changes: false, backup: false });
    expect(r.changes).toEqual({ diff: '<show_changes=False>' });
    expect(read(p)).toBe(`${START}\ny${END}\n`);
    // and back: the text before the end marker belongs to the block (Salt 2017.7.5+)
    await convergeTwice('file.blockreplace', { name: p, content: 'y', backup: false });
    expect(read(p)).toBe(`${START}\ny\n${END}\n`);
  });

  it('keeps CRLF line endings', () => {
    expect(replaceBlock(`a\r\n${START}\r\nold\r\n${END}\r\n`, { markerStart: START, markerEnd: END, content: 'n1\nn2', appendIfNotFound: false, prependIfNotFound: false })).toBe(
      `a\r\n${START}\r\nn1\r\nn2\r\n${END}\r\n`,
    );
  });

  it('sources are rendered with jinja (defaults/context) and added after content (joined as is, as Salt does)', async () => {
    const treeDir = writeTree({ 'blk/extra.j2': '{{ who }} from {{ grains.id }}\n', 'blk/plain': 'raw {{ x }}\n' });
    const p = file(`${START}\n${END}\n`);
    const o = { treeDir, grains: { id: 'web1' } };
    await convergeTwice('file.blockreplace', { name: p, content: 'first\n', source: 'salt://blk/extra.j2', defaults: { who: 'nobody' }, context: { who: 'ops' }, backup: false }, o);
    expect(read(p)).toBe(`${START}\nfirst\nops from web1\n${END}\n`);
    await convergeTwice('file.blockreplace', { name: p, sources: ['salt://blk/plain', 'salt://blk/extra.j2'], template: null, backup: false }, o);
    expect(read(p)).toBe(`${START}\nraw {{ x }}\n{{ who }} from {{ grains.id }}\n${END}\n`);
    expect((await runState('file.blockreplace', { name: p, source: 'salt://blk/plain', sources: ['salt://blk/plain'] }, o)).comment).toBe('source and sources are mutually exclusive');
  });

  it('works under --root: the tree path is mapped, the message shows it as written', async () => {
    const root = tempDir();
    fs.mkdirSync(path.join(root, 'etc'));
    fs.writeFileSync(path.join(root, 'etc/hosts'), `${START}\n${END}\n`);
    const r = await convergeTwice('file.blockreplace', { name: '/etc/hosts', content: '10.1.1.1 db', backup: false }, { root });
    expect(r.comment).toBe('Changes were made');
    expect(read(path.join(root, 'etc/hosts'))).toBe(`${START}\n10.1.1.1 db\n${END}\n`);
  });
});

describe('file.accumulated', () => {
  const sls = (dir: string) => `
animal_file:
  file.managed:
    - name: ${dir}/animals.txt
    - source: salt://animals.txt.j2
    - template: jinja

animals_doing_things:
  file.accumulated:
    - filename: ${dir}/animals.txt
    - text: ' jumps over the lazy dog.'
    - require_in:
      - file: animal_file

hosts_block:
  file.blockreplace:
    - name: ${dir}/hosts
    - marker_start: '# START zone'
    - marker_end: '# END zone'
    - content: 'First line of content'
    - append_if_not_found: True
    - backup: False

hosts_other_block:
  file.blockreplace:
    - name: ${dir}/hosts
    - marker_start: '# START other'
    - marker_end: '# END other'
    - content: 'other block'
    - append_if_not_found: True
    - backup: False

hosts_acc_1:
  file.accumulated:
    - filename: ${dir}/hosts
    - name: my-accumulator
    - text: text 2
    - require_in:
      - file: hosts_block

hosts_acc_2:
  file.accumulated:
    - filename: ${dir}/hosts
    - name: my-accumulator
    - text:
      - text 3
      - text 4
    - require_in:
      - file: hosts_block

hosts_acc_other:
  file.accumulated:
    - filename: ${dir}/hosts
    - name: other-accumulator
    - text: only in the other block
    - watch_in:
      - file: hosts_other_block
`;
  const tree = (dir: string) => ({
    'acc.sls': sls(dir),
    'animals.txt.j2': "The quick brown fox{% for animal in accumulator['animals_doing_things'] %}{{ animal }}{% endfor %}\n",
  });

  it('file.managed templates see `accumulator`; blockreplace adds the text aimed at it; test run, real run, second run', async () => {
    const root = tempDir();
    const dir = '/srv/acc';
    fs.mkdirSync(path.join(root, dir), { recursive: true });
    fs.writeFileSync(path.join(root, dir, 'hosts'), '127.0.0.1 localhost\n');
    const files = writeTree(tree(dir));

    const predicted = byId((await applyTree(files, { sls: ['acc'], root, test: true })).results);
    expect(predicted.animals_doing_things).toMatchObject({ result: true, changes: {}, comment: `Accumulator animals_doing_things for file ${dir}/animals.txt was charged by text` });
    expect(predicted.animal_file).toMatchObject({ result: null });
    expect(predicted.hosts_block).toMatchObject({ result: null });
    expect(predicted.hosts_block!.changes.diff).toContain('+text 3');
    expect(fs.existsSync(path.join(root, dir, 'animals.txt'))).toBe(false);

    const real = byId((await applyTree(files, { sls: ['acc'], root })).results);
    for (const r of Object.values(real)) expect(r.result, `${r.id}: ${r.comment}`).toBe(true);
    expect(Object.keys(real.animal_file!.changes)).toEqual(Object.keys(predicted.animal_file!.changes));
    expect(read(path.join(root, dir, 'animals.txt'))).toBe('The quick brown fox jumps over the lazy dog.\n');
    expect(read(path.join(root, dir, 'hosts'))).toBe(
      '127.0.0.1 localhost\n# START zone\nFirst line of content\ntext 2\ntext 3\ntext 4\n# END zone\n# START other\nother block\nonly in the other block\n# END other\n',
    );

    const again = (await applyTree(files, { sls: ['acc'], root })).results;
    for (const r of again) expect(r.changes, r.id).toEqual({});
    const testAgain = (await applyTree(files, { sls: ['acc'], root, test: true })).results;
    for (const r of testAgain) expect([r.id, r.result, r.changes]).toEqual([r.id, true, {}]);
  });

  it('an accumulator without require_in/watch_in of a file state fails (Salt: orphaned)', async () => {
    const dir = tempDir();
    const r = byId(
      (
        await applyTree(
          { 'o.sls': `lonely:\n  file.accumulated:\n    - filename: ${dir}/x\n    - text: hi\n`, 'n.sls': `notext:\n  file.accumulated:\n    - filename: ${dir}/x\n    - require_in:\n      - file: f\nf:\n  file.managed:\n    - name: ${dir}/x\n` },
          { sls: ['o', 'n'] },
        )
      ).results,
    );
    expect(r.lonely).toMatchObject({ result: false, comment: 'Orphaned accumulator lonely in o:lonely' });
    expect(r.notext).toMatchObject({ result: false, comment: 'No text supplied for accumulator' });
  });
});
