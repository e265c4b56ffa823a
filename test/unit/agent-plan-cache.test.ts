/**
 * The compiled plan of a state run is reused by the runs of one process whose SLS render to the
 * same text (issue 14: 200 agents in one process compiled the same tree 200 times per job), and
 * that reuse never lets one run's grains, pillar or arguments reach another's, nor hides what is
 * on disk: the states still check the machine on every run.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BundleCache } from '../../engine/tree/bundle.js';
import { tempDir } from '../helpers/harness.js';
import { bundleMessage } from '../helpers/tree.js';
import { apply, compile } from '../../engine/engine.js';
import { copyData, planStats } from '../../engine/compile/compile.js';

function tree(files: Record<string, string>) {
  const b = bundleMessage(files);
  const cache = new BundleCache(tempDir('tsalt-plan-b-'));
  cache.store(b, b.hash);
  return cache.open(b.hash, 'r1');
}

const FILES = {
  'top.sls': "base:\n  '*':\n    - web\n",
  // what each agent gets depends on its grains and pillar; a state of fixed arguments too
  'web.sls': [
    'conf:',
    '  file.managed:',
    '    - name: /etc/app.conf',
    '    - makedirs: True',
    "    - contents: \"role={{ grains['role'] }} port={{ pillar['port'] }}\"",
    'data_dir:',
    '  file.directory:',
    '    - name: /srv/data',
    '    - makedirs: True',
    '    - require:',
    '      - file: conf',
    '',
  ].join('\n'),
};

describe("a state run's compiled plan", () => {
  it('is reused for runs that render the same text, and each agent of the process gets its own grains and pillar', async () => {
    const t = tree(FILES);
    const run = (id: string, role: string, port: number, root: string) =>
      apply({ tree: t, id, grains: { id, role }, pillar: { port }, test: false, root, opts: { cachedir: root } });
    const [ra, rb] = [tempDir('tsalt-plan-a-'), tempDir('tsalt-plan-b-')];
    const before = { ...planStats };
    const [a1, b1] = await Promise.all([run('a', 'web', 80, ra), run('b', 'db', 3306, rb)]);
    expect(a1.counts.failed).toBe(0);
    expect(b1.counts.failed).toBe(0);
    expect(fs.readFileSync(path.join(ra, 'etc/app.conf'), 'utf8')).toBe('role=web port=80\n');
    expect(fs.readFileSync(path.join(rb, 'etc/app.conf'), 'utf8')).toBe('role=db port=3306\n');
    // a third agent rendering as `a` does: a's plan, no compile
    const rc = tempDir('tsalt-plan-c-');
    const compiled = planStats.compiled;
    const c1 = await run('c', 'web', 80, rc);
    expect(planStats.compiled).toBe(compiled);
    expect(planStats.reused).toBeGreaterThan(before.reused);
    expect(c1.counts.changed).toBe(2);
    expect(fs.readFileSync(path.join(rc, 'etc/app.conf'), 'utf8')).toBe('role=web port=80\n');
    // and b with other pillar: a render of its own, a plan of its own
    const b2 = await run('b', 'db', 5432, rb);
    expect(b2.results.find((r) => r.id === 'conf')!.changes).toHaveProperty('diff');
    expect(fs.readFileSync(path.join(rb, 'etc/app.conf'), 'utf8')).toBe('role=db port=5432\n');
  });

  it('reused, still sees what changed on disk since the last run', async () => {
    const t = tree(FILES);
    const root = tempDir('tsalt-plan-d-');
    const run = () => apply({ tree: t, id: 'd', grains: { id: 'd', role: 'web' }, pillar: { port: 80 }, test: false, root, opts: { cachedir: root } });
    expect((await run()).counts.changed).toBe(2);
    expect((await run()).counts.changed).toBe(0);
    const reused = planStats.reused;
    fs.writeFileSync(path.join(root, 'etc/app.conf'), 'edited by hand');
    fs.rmSync(path.join(root, 'srv/data'), { recursive: true });
    const third = await run();
    expect(planStats.reused).toBe(reused + 1);
    expect(third.counts.changed).toBe(2);
    expect(fs.readFileSync(path.join(root, 'etc/app.conf'), 'utf8')).toBe('role=web port=80\n');
    expect(fs.statSync(path.join(root, 'srv/data')).isDirectory()).toBe(true);
  });

  it('is never shared between trees whose files differ under the same names', async () => {
    const one = tree({ 'top.sls': "base:\n  '*':\n    - a\n", 'a.sls': 'first:\n  test.nop: []\n' });
    const two = tree({ 'top.sls': "base:\n  '*':\n    - a\n", 'a.sls': 'second:\n  test.nop: []\n' });
    const ids = async (t: typeof one) => (await compile({ tree: t, id: 'h', grains: { id: 'h' }, pillar: {}, test: true })).map((s) => s.id);
    expect(await ids(one)).toEqual(['first']);
    expect(await ids(two)).toEqual(['second']);
    expect(await ids(one)).toEqual(['first']);
  });

  it('hands each run arguments of its own: a state changing what it was given changes no other run', async () => {
    const t = tree({ 'top.sls': "base:\n  '*':\n    - a\n", 'a.sls': 'x:\n  test.nop:\n    - things: [1, 2]\n    - deep: {a: {b: 1}}\n' });
    const plan = () => compile({ tree: t, id: 'h', grains: { id: 'h' }, pillar: {}, test: true });
    const first = await plan();
    const args = first[0]!.runArgs as { things: number[]; deep: { a: { b: number } } };
    args.things.push(3);
    args.deep.a.b = 2;
    first[0]!.extra.added = true;
    first[0]!.deps.push({ kind: 'require', target: 'nothing' });
    const second = await plan();
    expect(second[0]!.runArgs).toMatchObject({ things: [1, 2], deep: { a: { b: 1 } } });
    expect(second[0]!.extra).not.toHaveProperty('added');
    expect(second[0]!.deps).toEqual([]);
    expect(second[0]!.def).toBe(first[0]!.def);
  });

  it('renders each SLS of a run once (a template may call salt functions), includes and errors as before', async () => {
    const t = tree({
      'top.sls': "base:\n  '*':\n    - a\n",
      'a.sls': 'include:\n  - .b\nfrom_a:\n  test.nop: []\n',
      'b.sls': "include:\n  - a\n  - {{ pillar['more'] }}\nfrom_b:\n  test.nop: []\n",
      'c.sls': 'from_c:\n  test.nop: []\n',
      'bad.sls': 'x: {{ nope( }}\n',
    });
    const reads = new Map<string, number>();
    const counted = {
      label: t.label,
      read: (p: string) => t.read(p),
      exists: (p: string) => t.exists(p),
      existsSync: (p: string) => t.existsSync(p),
      list: (d: string) => t.list(d),
      readSync: (p: string) => {
        reads.set(p, (reads.get(p) ?? 0) + 1);
        return t.readSync(p);
      },
    };
    const ids = async (more: string) => (await compile({ tree: counted, id: 'h', grains: { id: 'h' }, pillar: { more }, test: true })).map((s) => s.id);
    for (let i = 0; i < 2; i++) {
      reads.clear();
      expect(await ids('c')).toEqual(['from_c', 'from_b', 'from_a']);
      expect(Object.fromEntries(reads)).toEqual({ 'top.sls': 1, 'a.sls': 1, 'b.sls': 1, 'c.sls': 1 });
    }
    reads.clear();
    await expect(ids('bad')).rejects.toThrow(/bad\.sls:1.*Jinja error/s);
    expect(reads.get('bad.sls')).toBe(1);
    await expect(ids('nothere')).rejects.toThrow(/SLS 'nothere' not found/);
  });

  it('renders a text with no Jinja in it once per renderer, any other text with each run\'s variables', async () => {
    const { JinjaRenderer } = await import('../../engine/render/jinja.js');
    const t = tree({ 'top.sls': 'x\n' });
    const r = new JinjaRenderer(t);
    const plain = "base:\n  '*':\n    - web   # a comment\n";
    expect(r.renderPlain(plain, 'top.sls')).toBe(r.render(plain, { grains: { a: 1 } }, 'top.sls'));
    expect(r.renderPlain(plain, 'top.sls')).toBe(plain);
    expect(r.renderPlain('a: {{ grains.a }}\n', 'a.sls')).toBeUndefined();
    expect(r.renderPlain('a: {b: 1}\n', 'a.sls')).toBeUndefined(); // a `{` of YAML: rendered as any other text
    const ids = async (a: string) => (await compile({ tree: tree({ 'top.sls': "base:\n  '*':\n    - a\n", 'a.sls': 's_{{ grains.a }}:\n  test.nop: []\n' }), id: 'h', grains: { id: 'h', a }, pillar: {}, test: true })).map((s) => s.id);
    expect(await ids('one')).toEqual(['s_one']);
    expect(await ids('two')).toEqual(['s_two']);
  });

  it('copies data deeply, keeping Buffers, Dates, Maps and Sets what they are', () => {
    const v = { b: Buffer.from('x'), d: new Date(5), m: new Map([['k', [1]]]), s: new Set([1]), n: Object.assign(Object.create(null), { a: [{ z: 1 }] }) };
    const c = copyData(v);
    expect(c).toEqual(v);
    expect(Buffer.isBuffer(c.b)).toBe(true);
    expect(c.b).not.toBe(v.b);
    expect(c.d).not.toBe(v.d);
    expect(c.m.get('k')).not.toBe(v.m.get('k'));
    expect(c.n.a[0]).not.toBe(v.n.a[0]);
    expect(Object.getPrototypeOf(c.n)).toBe(null);
  });
});
