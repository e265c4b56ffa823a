import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { loadSaltYaml } from '../../core/salt-yaml.js';
import { JinjaRenderer } from '../../engine/render/jinja.js';
import { LocalTree } from '../../engine/tree/local.js';
import { saltFunctions } from '../../engine/render/salt-functions.js';
import { tempDir } from '../helpers/harness.js';

function renderer(files: Record<string, string> = {}) {
  const dir = tempDir();
  for (const [p, c] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    fs.writeFileSync(path.join(dir, p), c);
  }
  return new JinjaRenderer(new LocalTree(dir));
}

describe('Salt-compatible Jinja', () => {
  const r = renderer({ 'map.jinja': "{% set web = {'port': 8080} %}", 'sub/a.jinja': "{% from './b.jinja' import x %}{{ x }}", 'sub/b.jinja': '{% set x = 42 %}' });

  it('prints lists and dicts as YAML flow collections that YAML reads back', () => {
    const out = r.render('backends: {{ b }}\nopts: {{ o }}\n', { b: [{ hostname: 'web1', ip: '10.0.0.1' }, "it's"], o: { a: true, b: null } }, 't.sls');
    expect(out).toBe(`backends: [{'hostname': 'web1', 'ip': '10.0.0.1'}, "it's"]\nopts: {'a': True, 'b': None}\n`);
    expect(loadSaltYaml(out)).toEqual({ backends: [{ hostname: 'web1', ip: '10.0.0.1' }, "it's"], opts: { a: true, b: 'None' } }); // Salt's quirk: YAML reads None back as a string
  });

  it('keeps the final newline and supports whitespace control', () => {
    expect(r.render('a\n{%- if true %}\nb\n{%- endif %}\n', {}, 't')).toBe('a\nb\n');
  });

  it('offers Python dict/list/string methods', () => {
    const out = r.render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{{ d.get('zz', 'dflt') }} {{ 'a,b'.split(',') }} {{ '{0}-{1}'.format('x', 2) }} {{ ' y '.strip() }}", { d: { a: 1 } }, 't');
    expect(out).toBe("a=1;dflt ['a', 'b'] x-2 y");
  });

  it('has salt pillar.get / grains.get with a:b paths and defaults', () => {
    const pillar = { mysql: { server: { port: 3306 } } };
    const grains = { os_family: 'RedHat' };
    const salt = saltFunctions(grains, pillar, {});
    const out = r.render("{{ salt['pillar.get']('mysql:server:port') }} {{ salt['pillar.get']('mysql:nope', 'd') }} {{ salt['grains.get']('os_family') }}", { salt, pillar, grains }, 't');
    expect(out).toBe('3306 d RedHat');
  });

  it('filters: yaml, json, default, join, selectattr, map', () => {
    const out = r.render("{{ l | selectattr('on') | map(attribute='n') | join(',') }} {{ x | default('z') }} {{ {'a': 1} | json }} {{ [1,2] | yaml }}", { l: [{ n: 'a', on: true }, { n: 'b', on: false }] }, 't');
    expect(out).toBe('a z {"a": 1} [1, 2]'); // Salt's json filter: json.dumps separators
    expect(r.render("{{ l | selectattr('n', 'equalto', 'b') | map(attribute='n') | list }}", { l: [{ n: 'a' }, { n: 'b' }] }, 't')).toBe("['b']");
  });

  it('imports from the tree, relative paths included', () => {
    expect(r.render("{% from 'map.jinja' import web %}{{ web.port }}", {}, 'x.sls')).toBe('8080');
    expect(r.render("{% include 'sub/a.jinja' %}", {}, 'x.sls')).toBe('42');
  });

  it('cannot reach process, require or constructors', () => {
    for (const t of [
      "{{ range.constructor('return process')().pid }}",
      "{{ ''.constructor.constructor('return process')() }}",
      "{{ cycler.__proto__ }}",
      "{{ constructor('x') }}",
      "{{ joiner['constructor']['constructor']('return 1')() }}",
    ]) {
      let out: string | undefined;
      try {
        out = r.render(t, {}, 't');
      } catch {
        out = undefined;
      }
      expect(out ?? '').not.toMatch(/\d{2,}|function|process/);
    }
  });

  it('treats data as data: template syntax inside a value stays literal', () => {
    expect(r.render('{{ v }}', { v: '{{7*7}}' }, 't')).toBe('{{7*7}}');
  });

  it('undefined values are errors with file, line and column', () => {
    try {
      r.render('a\nb {{ pillar.nope }}\n', { pillar: {} }, 'web/init.sls');
      expect.unreachable();
    } catch (e: any) {
      expect(e.name).toBe('RenderError');
      expect(e.file).toBe('web/init.sls');
      expect(e.line).toBe(2);
      expect(e.message).toMatch(/undefined/);
    }
  });
});

describe('Jinja syntax Salt trees use', () => {
  it('accepts trailing commas in dict and list literals (map.jinja style)', () => {
    const r = renderer();
    expect(r.render("{% set m = {\n  'a': {'x': 1,},\n  'b': [1, 2,],\n} %}{{ m.a.x }} {{ m.b }}", {}, 'map.jinja')).toBe('1 [1, 2]');
  });
});

describe('more Jinja Salt trees use', () => {
  it('{% do %} evaluates for side effects', () => {
    const r = renderer();
    expect(r.render("{% set l = [] %}{% do l.append(1) %}{% do l.append(2) %}{{ l }}", {}, 't')).toBe('[1, 2]');
  });
  it('data keys named bind/call/apply are plain data; functions keep them closed', () => {
    const r = renderer();
    expect(r.render('{{ p.frontend.bind }} {{ p.call }}', { p: { frontend: { bind: '*:80' }, call: 'x' } }, 't')).toBe('*:80 x');
    expect(r.render("{{ range.bind is defined }}|{{ range.call is defined }}|{{ range is defined }}", {}, "t")).toBe("False|False|True");
  });
});

describe('Salt data tags', () => {
  const r = renderer({
    'web/defaults.yaml': 'web:\n  port: 80\n  names: [a, b]\n',
    'web/extra.json': '{"x": 1}',
    'web/map.jinja': "{% import_yaml './defaults.yaml' as defaults %}{% set port = defaults.web.port %}",
  });
  it('import_yaml / import_json read data from the tree', () => {
    expect(r.render("{% import_yaml 'web/defaults.yaml' as d %}{{ d.web.port }} {{ d.web.names }}", {}, 't.sls')).toBe("80 ['a', 'b']");
    expect(r.render("{% import_json 'web/extra.json' as j %}{{ j.x }}", {}, 't.sls')).toBe('1');
    expect(r.render("{% import_yaml './defaults.yaml' as d %}{{ d.web.port }}", { tplpath: 'web/init.sls' }, 'web/init.sls')).toBe('80');
  });
  it('load_yaml / load_json parse an inline block', () => {
    expect(r.render("{% load_yaml as m %}\na: {{ 1 + 1 }}\nb: [x]\n{% endload %}{{ m.a }} {{ m.b }}", {}, 't')).toBe("2 ['x']");
    expect(r.render('{% load_json as j %}{"k": "v"}{% endload %}{{ j.k }}', {}, 't')).toBe('v');
  });
  it('cannot read outside the tree, and a bad file is an error naming it', () => {
    expect(() => r.render("{% import_yaml '../../etc/passwd' as p %}", {}, 't')).toThrow(/leaves the state tree/);
    expect(() => r.render("{% load_yaml as m %}a: [1,{% endload %}", {}, 'x.sls')).toThrow(/load_yaml/);
  });
});
