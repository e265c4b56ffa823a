import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { harnessBase, runState, tempDir, type HarnessOptions } from '../helpers/harness.js';
import { convergeTwice } from './states-file-helpers.js';
import { loadSaltYaml } from '../../engine/render/salt-yaml.js';

/** A grains file in a temp dir (absent unless `content` is given) and harness options for it. */
function setup(content?: string, grains: Record<string, unknown> = { os_family: 'Debian', id: 'testhost' }) {
  const dir = tempDir('tsalt-grains-');
  const file = path.join(dir, 'grains');
  if (content !== undefined) fs.writeFileSync(file, content);
  const o: HarnessOptions = { opts: { grains_file: file }, grains };
  return { dir, file, o, read: () => loadSaltYaml(fs.readFileSync(file, 'utf8')) as Record<string, unknown> };
}

describe('grains.present', () => {
  it('creates the grains file with a new grain (0644) and keeps other keys when changing one', async () => {
    const { file, o, read } = setup();
    const real = await convergeTwice('grains.present', { name: 'cheese', value: 'edam' }, o);
    expect(real.changes).toEqual({ cheese: 'edam' });
    expect(real.comment).toBe('Set grain cheese to edam');
    expect(read()).toEqual({ cheese: 'edam' });
    expect(fs.statSync(file).mode & 0o7777).toBe(0o644);

    fs.writeFileSync(file, 'roles:\n  - web\ncheese: edam\nflag: "yes"\n');
    fs.chmodSync(file, 0o600);
    const predicted = await runState('grains.present', { name: 'cheese', value: 'gouda' }, { ...o, test: true });
    expect(predicted.comment).toBe('Grain cheese is set to be changed');
    expect(predicted.changes).toEqual({ cheese: 'gouda' });
    expect(read().cheese).toBe('edam'); // test mode wrote nothing
    await convergeTwice('grains.present', { name: 'cheese', value: 'gouda' }, o);
    // other keys kept, the string 'yes' stays a string, the file's mode is kept
    expect(read()).toEqual({ roles: ['web'], cheese: 'gouda', flag: 'yes' });
    expect(fs.statSync(file).mode & 0o7777).toBe(0o600);
  });

  it('a new grain is predicted as added; the run grains count as set', async () => {
    const { file, o } = setup();
    const predicted = await runState('grains.present', { name: 'cheese', value: 'edam' }, { ...o, test: true });
    expect(predicted.comment).toBe('Grain cheese is set to be added');
    // os_family comes from the run's grains (detected): equal means nothing to write
    const same = await runState('grains.present', { name: 'os_family', value: 'Debian' }, o);
    expect([same.result, same.changes, same.comment]).toEqual([true, {}, 'Grain is already set']);
    expect(fs.existsSync(file)).toBe(false);
    // a different value goes to the file, which overrides detected grains
    await convergeTwice('grains.present', { name: 'os_family', value: 'Plan9' }, o);
    expect(fs.readFileSync(file, 'utf8')).toContain('os_family: Plan9');
  });

  it('sets nested grains (":" or a custom delimiter), reporting the whole top-level grain', async () => {
    const { o, read } = setup('icinga:\n  other: kept\n');
    const value = [{ command: 'check_https' }, { params: '-H localhost -p 443 -S' }];
    const real = await convergeTwice('grains.present', { name: 'icinga:Apache SSL', value }, o);
    expect(real.changes).toEqual({ icinga: { other: 'kept', 'Apache SSL': value } });
    expect(read()).toEqual({ icinga: { other: 'kept', 'Apache SSL': value } });

    await convergeTwice('grains.present', { name: 'with,a,custom', value: 'yay', delimiter: ',' }, o);
    expect(read().with).toEqual({ a: { custom: 'yay' } });
    // a list index, as grains.get reads it, is replaced in place
    await convergeTwice('grains.present', { name: 'icinga:Apache SSL:0', value: 'first', force: true }, o);
    expect((read().icinga as Record<string, unknown>)['Apache SSL']).toEqual(['first', { params: '-H localhost -p 443 -S' }]);
  });

  it('refuses to replace lists/dicts, or a scalar with one, or a different scalar parent, without force', async () => {
    const { file, o, read } = setup('roles: [web]\nsize: small\nparent: leaf\n');
    const before = fs.readFileSync(file, 'utf8');
    for (const [args, msg] of [
      [{ name: 'roles', value: 'db' }, "The key 'roles' exists but is a dict or a list. Use 'force=True' to overwrite."],
      [{ name: 'size', value: ['a'] }, "The key 'size' exists and the given value is a dict or a list. Use 'force=True' to overwrite."],
      [{ name: 'parent:child', value: 1 }, "The key 'parent' value is 'leaf', which is different from the provided key 'child'. Use 'force=True' to overwrite."],
    ] as const) {
      for (const test of [true, false]) {
        const r = await runState('grains.present', args, { ...o, test });
        expect([r.result, r.comment]).toEqual([false, msg]);
      }
    }
    expect(fs.readFileSync(file, 'utf8')).toBe(before);
    await convergeTwice('grains.present', { name: 'roles', value: 'db', force: true }, o);
    await convergeTwice('grains.present', { name: 'parent:child', value: 1, force: true }, o);
    // a scalar equal to the key becomes the key's dict (Salt converts it)
    await convergeTwice('grains.present', { name: 'size:small', value: 's' }, o);
    expect(read()).toEqual({ roles: 'db', size: { small: 's' }, parent: { child: 1 } });
  });

  it('fails on an unreadable grains file without touching it; value is required', async () => {
    const { file, o } = setup('a: [unclosed\n');
    const r = await runState('grains.present', { name: 'x', value: 1 }, o);
    expect(r.result).toBe(false);
    expect(r.comment).toMatch(/^Unable to read existing grains file:/);
    expect(fs.readFileSync(file, 'utf8')).toBe('a: [unclosed\n');
    fs.writeFileSync(file, '- a list\n');
    expect((await runState('grains.present', { name: 'x', value: 1 }, o)).comment).toMatch(/must be a YAML mapping/);
    await expect(runState('grains.present', { name: 'x' }, o)).rejects.toThrow(/value/);
  });

  it('uses --root and /etc/tsalt/grains when no grains_file is configured', async () => {
    const root = tempDir('tsalt-grains-root-');
    await convergeTwice('grains.present', { name: 'rooted', value: true }, { root });
    expect(fs.readFileSync(path.join(root, 'etc/tsalt/grains'), 'utf8')).toBe('rooted: true\n');
  });
});

describe('grains.absent', () => {
  it('sets the value to None, or deletes the key with destructive', async () => {
    const { o, read } = setup('cheese: edam\nother: 1\nempty: null\n');
    const predicted = await runState('grains.absent', { name: 'cheese' }, { ...o, test: true });
    expect(predicted.comment).toBe('Value for grain cheese is set to be deleted (None)');
    const real = await convergeTwice('grains.absent', { name: 'cheese' }, o);
    expect(real.changes).toEqual({ grain: 'cheese', value: null });
    expect(real.comment).toBe('Value for grain cheese was set to None');
    expect(read()).toEqual({ cheese: null, other: 1, empty: null });

    const del = await convergeTwice('grains.absent', { name: 'cheese', destructive: true }, o);
    expect(del.changes).toEqual({ deleted: 'cheese' });
    expect(del.comment).toBe('Grain cheese was deleted');
    await convergeTwice('grains.absent', { name: 'other', destructive: 'True' }, o);
    expect(read()).toEqual({ empty: null });

    const missing = await runState('grains.absent', { name: 'nope', destructive: true }, o);
    expect([missing.result, missing.changes, missing.comment]).toEqual([true, {}, 'Grain nope does not exist']);
  });

  it('nested keys; lists and dicts only with force', async () => {
    const { o, read } = setup('app:\n  db: pg\n  web: nginx\nroles: [a, b]\n');
    const r = await runState('grains.absent', { name: 'roles', destructive: true }, o);
    expect([r.result, r.comment]).toEqual([false, "The key 'roles' exists but is a dict or a list. Use 'force=True' to overwrite."]);
    await convergeTwice('grains.absent', { name: 'roles', destructive: true, force: true }, o);
    const nested = await convergeTwice('grains.absent', { name: 'app:db', destructive: true }, o);
    expect(nested.changes).toEqual({ deleted: 'app:db' });
    await convergeTwice('grains.absent', { name: 'app:web' }, o);
    expect(read()).toEqual({ app: { web: null } });
  });

  it('a grain that only comes from the run grains cannot be deleted from the file', async () => {
    const { file, o } = setup(undefined, { os_family: 'Debian' });
    const r = await runState('grains.absent', { name: 'os_family', destructive: true }, o);
    expect([r.result, r.changes]).toEqual([true, {}]);
    expect(r.comment).toMatch(/not set in the grains file/);
    expect(fs.existsSync(file)).toBe(false);
  });

  it('later states of the run see the file, not the stale run grains', async () => {
    // the run started with color: red from the file; a state deletes it, a later one sets it back
    const { o, read } = setup('color: red\n', { color: 'red' });
    const base = harnessBase(o);
    await runState('grains.absent', { name: 'color', destructive: true }, { base });
    expect(read()).toEqual({});
    const again = await runState('grains.present', { name: 'color', value: 'red' }, { base });
    expect(again.changes).toEqual({ color: 'red' });
    expect(read()).toEqual({ color: 'red' });
  });
});

describe('grains.list_present / grains.list_absent', () => {
  it('creates a list grain, then appends only the missing items', async () => {
    const { o, read } = setup('other: x\n');
    const predicted = await runState('grains.list_present', { name: 'roles', value: 'web' }, { ...o, test: true });
    expect(predicted.comment).toBe('Grain roles is set to be added');
    const real = await convergeTwice('grains.list_present', { name: 'roles', value: 'web' }, o);
    expect(real.changes).toEqual({ new: { roles: ['web'] } });
    expect(real.comment).toBe('Append value web to grain roles');
    const more = await runState('grains.list_present', { name: 'roles', value: ['web', 'dev'] }, { ...o, test: true });
    expect(more.comment).toBe("Value ['web', 'dev'] is set to be appended to grain roles");
    const two = await convergeTwice('grains.list_present', { name: 'roles', value: ['web', 'dev'] }, o);
    expect(two.changes).toEqual({ new: { roles: ['web', 'dev'] } });
    expect(read()).toEqual({ other: 'x', roles: ['web', 'dev'] });
    const same = await runState('grains.list_present', { name: 'roles', value: ['dev'] }, o);
    expect(same.comment).toBe("Value ['dev'] is already in grain roles");
    // nested
    await convergeTwice('grains.list_present', { name: 'app:roles', value: 'db' }, o);
    expect(read().app).toEqual({ roles: ['db'] });
  });

  it('list_present and list_absent fail on a grain that is not a list', async () => {
    const { o } = setup('size: small\n');
    for (const fun of ['grains.list_present', 'grains.list_absent']) {
      const r = await runState(fun, { name: 'size', value: 'x' }, o);
      expect([r.result, r.comment]).toEqual([false, 'Grain size is not a valid list']);
    }
  });

  it('list_absent removes values (every copy) and reports them', async () => {
    const { o, read } = setup('roles: [web, db, web, dev]\n');
    const predicted = await runState('grains.list_absent', { name: 'roles', value: ['web', 'mail'] }, { ...o, test: true });
    expect(predicted.comment).toBe('Value web in grain roles is set to be deleted\nValue mail is absent from grain roles');
    const real = await convergeTwice('grains.list_absent', { name: 'roles', value: ['web', 'mail'] }, o);
    expect(real.changes).toEqual({ deleted: ['web'] });
    expect(real.comment).toBe('Value web was deleted from grain roles\nValue mail is absent from grain roles');
    await convergeTwice('grains.list_absent', { name: 'roles', value: 'db' }, o);
    expect(read()).toEqual({ roles: ['dev'] });
    const none = await runState('grains.list_absent', { name: 'nope', value: 'x' }, o);
    expect([none.result, none.changes, none.comment]).toEqual([true, {}, 'Grain nope does not exist']);
  });
});

describe('grains.append', () => {
  it('appends to an existing list grain', async () => {
    const { o, read } = setup('roles: [web]\nnested:\n  list: []\n');
    const predicted = await runState('grains.append', { name: 'roles', value: 'db' }, { ...o, test: true });
    expect(predicted.comment).toBe('Value db in grain roles is set to be added');
    const real = await convergeTwice('grains.append', { name: 'roles', value: 'db' }, o);
    expect(real.changes).toEqual({ added: 'db' });
    expect(real.comment).toBe('Value db was added to grain roles');
    const again = await runState('grains.append', { name: 'roles', value: 'db' }, o);
    expect(again.comment).toBe('Value db is already in the list for grain roles');
    await convergeTwice('grains.append', { name: 'nested:list', value: 3 }, o);
    expect(read()).toEqual({ roles: ['web', 'db'], nested: { list: [3] } });
  });

  it('the grain must exist; a non-list needs convert', async () => {
    const { file, o, read } = setup('size: small\nunset: null\n');
    const before = fs.readFileSync(file, 'utf8');
    const missing = await runState('grains.append', { name: 'nope', value: 'x' }, o);
    expect([missing.result, missing.comment]).toEqual([false, 'Grain nope does not exist']);
    const scalar = await runState('grains.append', { name: 'size', value: 'big' }, { ...o, test: true });
    expect([scalar.result, scalar.comment]).toEqual([false, 'Grain size is not a valid list']);
    expect(fs.readFileSync(file, 'utf8')).toBe(before);

    const predicted = await runState('grains.append', { name: 'size', value: 'big', convert: true }, { ...o, test: true });
    expect(predicted.comment).toBe('Grain size is set to be converted to list and value big will be added');
    await convergeTwice('grains.append', { name: 'size', value: 'big', convert: true }, o);
    await convergeTwice('grains.append', { name: 'unset', value: 'first', convert: true }, o);
    expect(read()).toEqual({ size: ['small', 'big'], unset: ['first'] });
  });
});
