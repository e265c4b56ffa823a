/**
 * Issue 11 item 3: the template sandbox. Each attempt tries to reach JavaScript's Function
 * constructor (and so `process`) by a different route: attribute and item lookups with every
 * key type, dict methods, filter attribute lookups, format fields, helpers, macros, loop and
 * context names. Each payload would write a marker file; every attempt must fail to run it,
 * on agent rendering (SLS compile and file templates), on the master's pillar rendering, and
 * through `tsalt local show`.
 */
import { describe, expect, it, afterAll, beforeEach } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { JinjaRenderer, forgetCompiledTemplates } from '../../engine/render/jinja.js';
import { CompiledTemplateCache } from '../../engine/render/compile-cache.js';
import { LocalTree } from '../../engine/tree/local.js';
import { compile } from '../../engine/engine.js';
import { renderPillar } from '../../engine/compile/pillar.js';
import { makeRunBase, templateGlobals } from '../../engine/run/context.js';
import { tempDir } from '../helpers/harness.js';

const work = tempDir('tsalt-sandbox-');
const MARK = path.join(work, 'pwned');
const made: string[] = [];
afterAll(() => [work, ...made].forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
beforeEach(() => fs.rmSync(MARK, { force: true }));

/** JavaScript that writes the marker file if it ever runs, as a Jinja string literal. */
const F = `"return process.getBuiltinModule('fs').writeFileSync('${MARK}', 'x')"`;

/** Each route to a function constructor, called with the payload. */
export const ATTEMPTS: Record<string, string> = {
  // the three quoted in the issue
  'array key': `{{ range[["constructor"]](${F})() }}`,
  'dict.get then Object reflection': `{% set O = {}.get('constructor') %}{{ O.getOwnPropertyDescriptor(O.getPrototypeOf(range), 'constructor').value(${F})() }}`,
  'map(attribute=constructor)': `{% set O = [{}] | map(attribute='constructor') | first %}{{ O.constructor(${F})() }}`,
  // key types
  'nested array key': `{{ range[[["constructor"]]](${F})() }}`,
  'dict key with toString': `{{ range[{'toString': joiner}](${F})() }}`,
  'namespace as key': `{{ range[namespace()](${F})() }}`,
  'tuple key': `{{ range[('constructor',)](${F})() }}`,
  // attribute / item lookups on every kind of value
  'function attribute': `{{ range.constructor(${F})() }}`,
  'function item': `{{ range['constructor'](${F})() }}`,
  'string constructor': `{{ ''.constructor.constructor(${F})() }}`,
  'string item constructor': `{{ ''['constructor']['constructor'](${F})() }}`,
  'list constructor': `{{ [].constructor.constructor(${F})() }}`,
  'dict constructor': `{{ {}.constructor.constructor(${F})() }}`,
  'number constructor': `{{ (1).constructor.constructor(${F})() }}`,
  'proto chain': `{{ cycler.__proto__.constructor(${F})() }}`,
  'dict __proto__': `{{ {}.__proto__.constructor.constructor(${F})() }}`,
  'python dunder': `{{ ''.__class__.__mro__[1].__subclasses__() }}{{ range.__globals__ }}`,
  'joiner result': `{{ joiner().constructor(${F})() }}`,
  'cycler method': `{{ cycler(1).next.constructor(${F})() }}`,
  'lipsum bind': `{{ lipsum.bind.constructor(${F})() }}`,
  'apply/call': `{{ range.apply.constructor(${F})() }}{{ range.call(none, 1) }}`,
  'namespace member': `{{ namespace(a=range).a.constructor(${F})() }}`,
  'namespace proto': `{{ namespace().constructor.constructor(${F})() }}`,
  // Python methods of data: the bound helpers have no members
  'str method': `{{ ''.format.constructor(${F})() }}`,
  'dict method': `{{ {}.items.constructor(${F})() }}`,
  'list method': `{{ [].append.constructor(${F})() }}`,
  'dict.pop default': `{{ {}.pop('constructor', none).constructor(${F})() }}`,
  'dict.setdefault': `{% set d = {} %}{{ d.setdefault('constructor').constructor(${F})() }}`,
  'dict.update __proto__': `{% set d = {} %}{% do d.update({'__proto__': range}) %}{{ d.constructor(${F})() }}`,
  'dict literal __proto__': `{% set d = {'__proto__': range} %}{{ d.constructor(${F})() }}`,
  // salt functions
  'salt function': `{{ salt['test.ping'].constructor(${F})() }}`,
  'salt attribute': `{{ salt.test.ping.constructor(${F})() }}`,
  'salt module proto': `{{ salt.test.constructor.constructor(${F})() }}`,
  'salt object': `{{ salt.constructor.constructor(${F})() }}{{ salt['constructor'] }}`,
  'pillar.get': `{{ pillar.get.constructor(${F})() }}`,
  'pillar proto': `{{ pillar.__proto__.constructor.constructor(${F})() }}`,
  'grains get constructor': `{{ salt['grains.get']('constructor').constructor(${F})() }}`,
  // filters with attribute lookups
  'map attribute on function': `{{ ([range] | map(attribute='constructor') | first)(${F})() }}`,
  'map attr filter': `{{ ([range] | map('attr', 'constructor') | first)(${F})() }}`,
  'attr filter': `{{ (range | attr('constructor'))(${F})() }}`,
  'map dotted attribute': `{{ ([{}] | map(attribute='__proto__.constructor') | first).constructor(${F})() }}`,
  'map nested attribute': `{{ ([{'a': range}] | map(attribute='a.constructor') | first)(${F})() }}`,
  'groupby grouper': `{{ (([range] | groupby('constructor') | first).grouper)(${F})() }}`,
  'groupby first': `{{ (([range] | groupby('constructor') | first) | first)(${F})() }}`,
  'sum attribute': `{{ ([range] | sum(attribute='constructor', start=none))(${F})() }}`,
  'sort attribute': `{{ ([range, cycler] | sort(attribute='constructor') | first).constructor(${F})() }}`,
  'unique attribute': `{{ ([range] | unique(attribute='constructor') | first).constructor(${F})() }}`,
  'max attribute': `{{ ([range] | max(attribute='constructor')).constructor(${F})() }}`,
  'selectattr': `{{ ([range] | selectattr('constructor') | first).constructor(${F})() }}`,
  'join attribute': `{{ [range] | join(',', attribute='constructor') }}`,
  'dictsort': `{{ ({'a': range} | dictsort | first | last).constructor(${F})() }}`,
  // format fields reach attributes too
  'format field': `{{ '{0.constructor}'.format(range) }}{{ '{0[constructor]}'.format({}) }}`,
  // macros, caller, loop
  'macro': `{% macro m() %}{% endmacro %}{{ m.constructor(${F})() }}`,
  'caller': `{% macro m() %}{{ caller.constructor(${F})() }}{% endmacro %}{% call m() %}{% endcall %}`,
  'loop': `{% for x in [1] %}{{ loop.constructor.constructor(${F})() }}{% endfor %}`,
  // objects the Jinja2 features add: loop, namespace attributes, floats, tuples
  'loop helpers': `{% for x in [1] %}{{ loop.cycle.constructor(${F})() }}{{ loop.changed.constructor }}{% endfor %}`,
  'recursive loop call': `{% for x in [1] recursive %}{{ loop.constructor(${F})() }}{% endfor %}`,
  'namespace set proto': `{% set ns = namespace() %}{% set ns.__proto__ = range %}{% set ns.constructor = range %}{{ ns.constructor.constructor(${F})() }}`,
  'set attribute on dict': `{% set d = {} %}{% set d.constructor = range %}{{ d.constructor(${F})() }}`,
  'float object': `{{ (2.0).constructor.constructor(${F})() }}{{ (4 / 2).value }}`,
  'tuple members': `{{ (1, 2).constructor.constructor(${F})() }}`,
  'groupby named tuple': `{{ ([{'a': 1}] | groupby('a') | first).constructor.constructor(${F})() }}`,
  'format conversion': `{{ '{0.__class__}'.format(range) }}{{ '{0!r}'.format(range) }}`,
  'with block': `{% with f = range %}{{ f.constructor(${F})() }}{% endwith %}`,
  'keyword argument __proto__': `{% macro m(call=none, apply=none) %}{{ call.constructor(${F})() }}{{ apply }}{% endmacro %}{{ m(__proto__=range) }}{{ dict(__proto__=range).constructor(${F})() }}`,
  // names resolved in the context
  'context constructor': `{{ constructor(${F})() }}`,
  'context proto': `{{ __proto__.constructor(${F})() }}`,
  'context toString': `{{ toString.constructor(${F})() }}{{ valueOf }}{{ hasOwnProperty }}`,
  'JS globals': `{{ process }}{{ require }}{{ globalThis }}{{ Function(${F})() }}`,
  'set __proto__': `{% set __proto__ = range %}{{ constructor(${F})() }}`,
  'set constructor': `{% set x = {} %}{% set constructor = range %}{{ x.constructor(${F})() }}`,
  // YAML data loaded by the template
  'load_yaml __proto__': `{% load_yaml as d %}__proto__: {constructor: 1}\n{% endload %}{{ d.constructor.constructor(${F})() }}`,
};

/** Attempts that Jinja2 itself renders to text without error (they reach nothing). */
function checkNotRun(): void {
  expect(fs.existsSync(MARK), 'the payload ran').toBe(false);
}

function tree(files: Record<string, string>): string {
  const dir = tempDir('tsalt-sandbox-tree-');
  made.push(dir);
  for (const [p, c] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    fs.writeFileSync(path.join(dir, p), c);
  }
  return dir;
}

function slsName(name: string): string {
  return 'a_' + name.replace(/[^a-z0-9]+/gi, '_');
}

describe('the template sandbox', () => {
  it('renders each attempt without running its payload (direct render with Salt globals)', () => {
    const dir = tree({});
    const base = makeRunBase({ test: true, tree: new LocalTree(dir), grains: { os: 'Debian', id: 'h' }, pillar: { a: 1 } });
    const r = new JinjaRenderer(new LocalTree(dir));
    for (const [name, t] of Object.entries(ATTEMPTS)) {
      let out = '';
      try {
        out = r.render(t, { ...templateGlobals(base) }, `${name}.sls`);
      } catch (e) {
        out = String((e as Error).message);
      }
      checkNotRun();
      expect(out, name).not.toMatch(/\[native code\]|function \w*\(|=>/);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('holds with the compiled-template cache warm (each attempt rendered from the stored code)', () => {
    const dir = tree({});
    const cacheDir = path.join(tree({}), 'jinja');
    const base = makeRunBase({ test: true, tree: new LocalTree(dir), grains: { os: 'Debian', id: 'h' }, pillar: { a: 1 } });
    const renderAll = () => {
      // a later process: nothing compiled in memory, a cache object of its own on the same directory
      forgetCompiledTemplates();
      const cache = new CompiledTemplateCache(cacheDir);
      const r = new JinjaRenderer(new LocalTree(dir), cache);
      for (const [name, t] of Object.entries(ATTEMPTS)) {
        let out = '';
        try {
          out = r.render(t, { ...templateGlobals(base) }, `${name}.sls`);
        } catch (e) {
          out = String((e as Error).message);
        }
        checkNotRun();
        expect(out, name).not.toMatch(/\[native code\]|function \w*\(|=>/);
      }
      return cache.stats;
    };
    renderAll();
    const stored = fs.readdirSync(cacheDir).length;
    expect(stored).toBeGreaterThan(Object.keys(ATTEMPTS).length / 2); // the ones that compile
    expect(renderAll()).toEqual({ hits: stored, misses: Object.keys(ATTEMPTS).length - stored });
  });

  it('reaches no getter, function or class instance handed in as data', () => {
    const r = new JinjaRenderer(new LocalTree(tree({})));
    let ran = 0;
    const data = {
      o: {
        get g() {
          ran++;
          return 'secret';
        },
        f: () => {
          ran++;
          return 'called';
        },
        d: new Date(0),
        m: new Map([['k', 'v']]),
      },
    };
    expect(() => r.render('{{ o.g }}', data, 't')).toThrow(/undefined/);
    expect(() => r.render('{{ o.f() }}', data, 't')).toThrow();
    expect(() => r.render("{{ o['f'] }}", data, 't')).toThrow(/undefined/);
    expect(() => r.render('{{ o.d.getTime() }}', data, 't')).toThrow();
    expect(() => r.render("{{ o.m.get('k') }}", data, 't')).toThrow();
    expect(() => r.render("{{ [o] | map(attribute='g') | first }}", data, 't')).toThrow(/undefined/);
    expect(() => r.render("{{ [o] | map(attribute='f') | first }}", data, 't')).toThrow(/undefined/);
    expect(ran).toBe(0);
    // plain data stays reachable, including keys that name Object.prototype members
    const plain = { p: { constructor: 'c', toString: 's', __proto__x: 1, bind: 'b', items: [1] } };
    expect(r.render("{{ p['constructor'] }} {{ p.toString }} {{ p.bind }} {{ p['items'] }}", plain, 't')).toBe('c s b [1]');
  });

  it('holds when the templates are SLS files compiled for an agent', async () => {
    const files: Record<string, string> = {};
    for (const [name, t] of Object.entries(ATTEMPTS)) files[`${slsName(name)}.sls`] = `x:\n  test.nop: []\n${t.replace(/\n/g, ' ')}\n`;
    const dir = tree(files);
    for (const name of Object.keys(ATTEMPTS)) {
      try {
        await compile({ tree: new LocalTree(dir), id: 'h', grains: { os: 'Debian', os_family: 'Debian', id: 'h' }, pillar: {}, sls: [slsName(name)], test: true });
      } catch {
        // a compile error is a fine outcome; running the payload is not
      }
      checkNotRun();
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('holds in pillar rendering on the master', async () => {
    for (const [name, t] of Object.entries(ATTEMPTS)) {
      const dir = tree({ 'top.sls': "base:\n  '*':\n    - p\n", 'p.sls': `k: 1\n${t.replace(/\n/g, ' ')}\n` });
      try {
        await renderPillar(new LocalTree(dir), 'h', { os: 'Debian', id: 'h' });
      } catch {
        // an error naming the file is fine
      }
      checkNotRun();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('`tsalt local show` runs no code from the tree (states and pillar)', () => {
    const bin = path.resolve('bin/tsalt.js');
    for (const name of ['array key', 'dict.get then Object reflection', 'map(attribute=constructor)', 'groupby grouper', 'format field']) {
      const t = ATTEMPTS[name]!;
      const states = tree({ 'top.sls': "base:\n  '*':\n    - s\n", 's.sls': `x:\n  test.nop: []\n${t}\n` });
      const pillar = tree({ 'top.sls': "base:\n  '*':\n    - p\n", 'p.sls': `k: 1\n${t}\n` });
      for (const args of [
        ['local', 'show', '--states', states, '--id', 'h', '--grains-file', path.join(work, 'none'), '--pillar', path.join(work, 'none')],
        ['local', 'show', '--states', states, '--id', 'h', '--grains-file', path.join(work, 'none'), '--pillar', pillar],
      ]) {
        try {
          execFileSync(process.execPath, [bin, ...args], { stdio: 'pipe', timeout: 60_000 });
        } catch {
          // exit 1 (tree did not compile) is expected for most
        }
        checkNotRun();
      }
      fs.rmSync(states, { recursive: true, force: true });
      fs.rmSync(pillar, { recursive: true, force: true });
    }
  });

  it('the marker payload itself works when run as JavaScript (the test can fail)', () => {
    const code = JSON.parse(F) as string;
    new Function(code)();
    expect(fs.existsSync(MARK)).toBe(true);
    fs.rmSync(MARK);
  });
});
