import { describe, expect, it } from 'vitest';
import { applyTree, byId, compileTree } from '../helpers/tree.js';
import { CompileError } from '../../engine/compile/errors.js';

async function compileError(files: Record<string, string>, o = {}): Promise<CompileError> {
  const ran: string[] = [];
  try {
    await applyTree(files, { ...o, onResult: (r) => ran.push(r.id) });
  } catch (e) {
    expect(ran).toEqual([]); // nothing ran
    expect(e).toBeInstanceOf(CompileError);
    return e as CompileError;
  }
  throw new Error('expected a compile error');
}

describe('high data', () => {
  it('accepts both declaration forms, defaults name to the id, expands names', async () => {
    const states = await compileTree({
      'a.sls': `
dotted:
  test.nop:
    - foo: 1
split:
  test:
    - nop
    - name: other
many:
  test.nop:
    - names:
      - one
      - two:
        - bar: 2
bare: test.nop
`,
    }, { sls: ['a'] });
    expect(states.map((s) => [s.id, s.name, `${s.state}.${s.fun}`])).toEqual([
      ['dotted', 'dotted', 'test.nop'],
      ['split', 'other', 'test.nop'],
      ['many', 'one', 'test.nop'],
      ['many', 'two', 'test.nop'],
      ['bare', 'bare', 'test.nop'],
    ]);
    expect(states[3]!.args).toMatchObject({ name: 'two', bar: 2 });
  });

  it('several modules under one id', async () => {
    const states = await compileTree({ 'a.sls': 'svc:\n  test.nop: []\n  cmd.run:\n    - name: "true"\n' }, { sls: ['a'] });
    expect(states.map((s) => s.state)).toEqual(['test', 'cmd']);
  });

  it('include: absolute, relative .sub and .., included states first; extend and exclude', async () => {
    const tree = {
      'web/init.sls': 'include:\n  - .conf\n  - ..common\nweb_main:\n  test.nop: []\n',
      'web/conf.sls': 'web_conf:\n  test.nop:\n    - a: 1\n',
      'common.sls': 'include:\n  - unwanted\ncommon_state:\n  test.nop: []\n',
      'unwanted.sls': 'drop_me:\n  test.nop: []\nkeep_me:\n  test.nop: []\n',
      'site.sls': `include:
  - web
extend:
  web_conf:
    test.nop:
      - a: 2
      - require:
        - keep_me
exclude:
  - id: drop_me
`,
    };
    const states = await compileTree(tree, { sls: ['site'] });
    expect(states.map((s) => s.id)).toEqual(['keep_me', 'web_conf', 'common_state', 'web_main']);
    const conf = states.find((s) => s.id === 'web_conf')!;
    expect(conf.args).toMatchObject({ a: 2 });
    expect(conf.deps).toEqual([{ kind: 'require', target: states.find((s) => s.id === 'keep_me')!.key }]);
  });

  it("extend may name the module alone, as Salt allows ('service:' without '.running')", async () => {
    const tree = {
      'base.sls': 'svc:\n  test.nop:\n    - a: 1\nother:\n  test.nop: []\n',
      'site.sls': 'include:\n  - base\nextend:\n  svc:\n    test:\n      - a: 3\n      - require:\n        - other\n',
      'bad.sls': 'include:\n  - base\nextend:\n  svc:\n    cmd:\n      - cwd: /tmp\n',
    };
    const states = await compileTree(tree, { sls: ['site'] });
    const svc = states.find((s) => s.id === 'svc')!;
    expect([svc.state, svc.fun, svc.args.a]).toEqual(['test', 'nop', 3]);
    expect(svc.deps).toEqual([{ kind: 'require', target: states.find((s) => s.id === 'other')!.key }]);
    const e = await compileError(tree, { sls: ['bad'] });
    expect(e.message).toMatch(/cannot extend 'cmd' of ID 'svc': the ID has no 'cmd' state and the extend names no function/);
  });

  it('missing include names the including file and the chain', async () => {
    const e = await compileError({ 'a.sls': 'include:\n  - b\nx:\n  test.nop: []\n', 'b.sls': 'include:\n  - nope\n' }, { sls: ['a'] });
    expect(e.message).toMatch(/SLS 'nope' not found/);
    expect(e.message).toMatch(/a -> b -> nope/);
    expect(e.errors[0]!.file).toBe('b.sls');
  });

  it('YAML errors carry file, line and column', async () => {
    const e = await compileError({ 'a.sls': 'ok:\n  test.nop: []\nbad:\n  test.nop:\n    - name: [unclosed\n' }, { sls: ['a'] });
    expect(e.errors[0]).toMatchObject({ file: 'a.sls' });
    expect(e.errors[0]!.line).toBeGreaterThanOrEqual(5);
    expect(e.message).toMatch(/YAML error/);
  });

  it('Jinja errors carry file and line, also inside an imported file', async () => {
    const e = await compileError({ 'a.sls': 'x:\n  test.nop:\n    - v: {{ pillar.missing.key }}\n' }, { sls: ['a'] });
    expect(e.errors[0]).toMatchObject({ file: 'a.sls', line: 3 });
    const e2 = await compileError({ 'a.sls': "{% from 'map.jinja' import m %}\nx:\n  test.nop: []\n", 'map.jinja': '{% set m = 1 %}\n{{ nope.x }}\n' }, { sls: ['a'] });
    expect(e2.errors[0]).toMatchObject({ file: 'map.jinja', line: 2 });
  });

  it('unknown module, unknown function and bad arguments are compile errors naming the state', async () => {
    const e = await compileError({
      'a.sls': 'one:\n  nosuch.thing: []\ntwo:\n  test.nosuch: []\nthree:\n  test.configurable_test_state:\n    - changes: maybe\n',
    }, { sls: ['a'] });
    expect(e.errors.map((x) => [x.id, x.line])).toEqual([['one', 1], ['two', 3], ['three', 5]]);
    expect(e.message).toMatch(/unknown state module 'nosuch'/);
    expect(e.message).toMatch(/'test.nosuch' is not a state function/);
    expect(e.message).toMatch(/argument 'changes'/);
  });

  it('conflicting ids across SLS files are an error', async () => {
    const e = await compileError({ 'a.sls': 'x:\n  test.nop: []\n', 'b.sls': 'x:\n  test.nop: []\n' }, { sls: ['a', 'b'] });
    expect(e.message).toMatch(/conflicting ID 'x'/);
  });

  it('unknown keyword arguments are warnings, as in Salt', async () => {
    const r = await applyTree({ 'a.sls': 'x:\n  test.configurable_test_state:\n    - changes: False\n    - mdoe: 1\n' }, { sls: ['a'] });
    expect(r.results[0]!.warnings?.[0]).toMatch(/mdoe/);
  });
});

describe('top.sls', () => {
  const top = `base:
  '*':
    - common
  'web*':
    - web
  'roles:db':
    - match: grain
    - db
  'host1,host9':
    - match: list
    - listed
  'G@roles:web and not host2':
    - match: compound
    - compound
  'tier:front':
    - match: pillar
    - pillared
`;
  const files: Record<string, string> = { 'top.sls': top };
  for (const s of ['common', 'web', 'db', 'listed', 'compound', 'pillared']) files[`${s}.sls`] = `${s}_state:\n  test.nop: []\n`;

  it('matches glob, grain, list, compound and pillar like Salt', async () => {
    const a = await compileTree(files, { id: 'host1', grains: { roles: ['web'] }, pillar: { tier: 'front' } });
    expect(a.map((s) => s.sls)).toEqual(['common', 'listed', 'compound', 'pillared']);
    const b = await compileTree(files, { id: 'web1', grains: { roles: ['db', 'web'] } });
    expect(b.map((s) => s.sls)).toEqual(['common', 'web', 'db', 'compound']);
    const c = await compileTree(files, { id: 'host2', grains: { roles: ['web'] } });
    expect(c.map((s) => s.sls)).toEqual(['common']);
  });

  it('no match is an error, never "everything"', async () => {
    const e = await compileError({ 'top.sls': "base:\n  'web*':\n    - web\n", 'web.sls': 'x:\n  test.nop: []\n' }, { id: 'db1' });
    expect(e.message).toMatch(/no top file match for 'db1'/);
  });
});

describe('YAML as Salt trees write it', () => {
  it('merge keys, anchors, unquoted modes and dates that stay strings', async () => {
    const states = await compileTree({
      'a.sls': `base: &base
  test.configurable_test_state:
    - changes: False
    - comment: '2024-01-01'
"quoted id":
  test.nop:
    - m: 0644
    - when: 2024-01-01
`,
    }, { sls: ['a'] });
    expect(states.map((s) => [s.id, s.line])).toEqual([['base', 1], ['quoted id', 5]]);
    expect(states[1]!.args).toMatchObject({ m: 644, when: '2024-01-01' });
  });

  it('duplicate keys are an error with a line', async () => {
    await expect(compileTree({ 'a.sls': 'x:\n  test.nop: []\nx:\n  test.nop: []\n' }, { sls: ['a'] })).rejects.toThrow(/a.sls:3:\d+: YAML error: duplicated mapping key/);
  });
});
