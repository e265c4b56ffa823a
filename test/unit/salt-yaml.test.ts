/**
 * YAML as Salt reads it (PyYAML 1.1 + salt/utils/yamlloader.py), so a Salt tree written with
 * `yes`, `on` and `mode: 0644` converges the way it did under Salt.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { dumpSaltYaml, loadSaltYaml } from '../../engine/render/salt-yaml.js';
import { applyTree, byId, compileTree } from '../helpers/tree.js';
import { tempDir } from '../helpers/harness.js';
import { CompileError } from '../../engine/compile/errors.js';

describe('Salt YAML scalars', () => {
  it('reads YAML 1.1 booleans and nulls', () => {
    expect(loadSaltYaml('[yes, Yes, YES, on, On, true, True, no, NO, off, OFF, false, FALSE]')).toEqual([
      true, true, true, true, true, true, true, false, false, false, false, false, false,
    ]);
    expect(loadSaltYaml('{a: ~, b: null, c: NULL, d: }')).toEqual({ a: null, b: null, c: null, d: null });
    // y/n are strings in PyYAML, as are mixed-case spellings
    expect(loadSaltYaml('[y, n, yES, oN]')).toEqual(['y', 'n', 'yES', 'oN']);
  });

  it('reads integers the way Salt does: a leading zero is dropped, not octal', () => {
    expect(loadSaltYaml('{a: 0644, b: 0755, c: 00, d: 0, e: 644, f: -0644, g: 0x1f, h: 0b101, i: 1_000, j: "1:30", k: 1:30}')).toEqual({
      a: 644, b: 755, c: 0, d: 0, e: 644, f: -420, g: 31, h: 5, i: 1000, j: '1:30', k: 90,
    });
    // not integers under 1.1: 0o (a 1.2 spelling) and 09 stay strings
    expect(loadSaltYaml('[0o644, 09]')).toEqual(['0o644', '09']);
  });

  it('needs a dot for a float, and keeps dates as strings', () => {
    expect(loadSaltYaml('[1.5, 1.0e+3, 1e3, 1.0e3, .5, .inf, -.inf, 2024-01-01, 2001-12-14t21:59:43.10-05:00]')).toEqual([
      1.5, 1000, '1e3', '1.0e3', 0.5, Infinity, -Infinity, '2024-01-01', '2001-12-14t21:59:43.10-05:00',
    ]);
    expect(Number.isNaN(loadSaltYaml('.nan'))).toBe(true);
  });

  it('merges << keys and refuses a key declared twice, naming file and line', () => {
    expect(loadSaltYaml('base: &b {x: 1, y: 1}\nother:\n  <<: *b\n  y: 2\n')).toEqual({ base: { x: 1, y: 1 }, other: { x: 1, y: 2 } });
    expect(() => loadSaltYaml('a: 1\nb: 2\na: 3\n', 'web/init.sls')).toThrow(/duplicated mapping key in "web\/init.sls" \(3:1\)/);
  });

  it('dumps strings that would read back as something else with quotes', () => {
    const data = { a: 'yes', b: '0644', c: 'off', d: '~', e: '1.5', f: 'hello', g: 644, h: true, i: null, j: 1.5, k: '1e3' };
    const text = dumpSaltYaml(data);
    expect(text).toContain("a: 'yes'");
    expect(text).toContain("b: '0644'");
    expect(text).toContain('f: hello');
    expect(text).toContain('k: 1e3'); // a string under 1.1, needs no quotes
    expect(loadSaltYaml(text)).toEqual(data);
  });
});

describe('a Salt tree written with YAML 1.1 habits', () => {
  it('converges: mode 0644, makedirs: yes, replace: no, pillar `off`', async () => {
    const root = tempDir('tsalt-yaml11-');
    const tree = {
      'app.sls': `
/srv/app/conf/app.ini:
  file.managed:
    - contents: "debug = {{ pillar['debug'] }}"
    - makedirs: yes
    - mode: 0640
/srv/app/conf/keep.ini:
  file.managed:
    - contents: new
    - replace: no
    - mode: 644
/srv/app/bin:
  file.directory:
    - mode: 0750
    - makedirs: Yes
`,
    };
    fs.mkdirSync(path.join(root, 'srv/app/conf'), { recursive: true });
    fs.writeFileSync(path.join(root, 'srv/app/conf/keep.ini'), 'old\n');
    const pillar = loadSaltYaml('debug: off') as Record<string, unknown>;
    const first = byId((await applyTree(tree, { sls: ['app'], root, pillar })).results);
    expect(Object.values(first).map((r) => r.result)).toEqual([true, true, true]);
    expect(fs.readFileSync(path.join(root, 'srv/app/conf/app.ini'), 'utf8')).toBe('debug = False\n');
    expect(fs.statSync(path.join(root, 'srv/app/conf/app.ini')).mode & 0o7777).toBe(0o640);
    expect(fs.readFileSync(path.join(root, 'srv/app/conf/keep.ini'), 'utf8')).toBe('old\n');
    expect(fs.statSync(path.join(root, 'srv/app/conf/keep.ini')).mode & 0o7777).toBe(0o644);
    expect(fs.statSync(path.join(root, 'srv/app/bin')).mode & 0o7777).toBe(0o750);
    const second = (await applyTree(tree, { sls: ['app'], root, pillar })).results;
    expect(second.every((r) => r.result === true && Object.keys(r.changes).length === 0)).toBe(true);
  });

  it('reports a duplicate id in one file as a compile error with file and line', async () => {
    const err = await compileTree({ 'dup.sls': 'a:\n  test.nop: []\nb:\n  test.nop: []\na:\n  test.succeed_without_changes: []\n' }, { sls: ['dup'] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CompileError);
    expect((err as CompileError).message).toMatch(/dup\.sls.*5/s);
  });
});
