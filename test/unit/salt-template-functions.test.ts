/**
 * Issue 10's Salt functions and renderer behaviours formulas rely on: salt['log.*'],
 * pillar.get(merge=True), config.get(default=), grains.filter_by with fnmatch keys and its
 * merge/base/default semantics (salt/utils/data.py filter_by), import_yaml rendered through Jinja
 * (with context), salt.mod.fn attribute calls, render variables visible in imports without
 * context (Salt's template.globals), and the saltversioninfo / pythonversion grains.
 */
import { describe, expect, it, afterEach, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { JinjaRenderer } from '../../engine/render/jinja.js';
import { LocalTree } from '../../engine/tree/local.js';
import { saltFunctions, setTemplateLogSink, fnmatchcase } from '../../engine/render/salt-functions.js';
import { coreGrains } from '../../engine/grains/core.js';
import { tempDir } from '../helpers/harness.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function setup(files: Record<string, string>, grains: Record<string, unknown>, pillar: Record<string, unknown> = {}) {
  const dir = tempDir('tsalt-saltfn-');
  dirs.push(dir);
  for (const [p, c] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    fs.writeFileSync(path.join(dir, p), c);
  }
  const tree = new LocalTree(dir);
  const r = new JinjaRenderer(tree);
  const salt = saltFunctions(grains, pillar, { master: 'm' }, tree);
  return (t: string, extra: Record<string, unknown> = {}) => r.render(t, { salt, grains, pillar, opts: { master: 'm' }, tpldir: 'web', ...extra }, 'web/init.sls');
}

afterEach(() => setTemplateLogSink(() => {}));

describe('salt functions formulas call', () => {
  it("salt['log.*'] log the message at their level and return None", () => {
    const seen: string[] = [];
    setTemplateLogSink((level, msg) => seen.push(`${level} ${msg}`));
    const render = setup({}, { os: 'Debian' });
    const out = render("{%- do salt['log.debug']('map: ' ~ grains.os) %}{{ salt['log.info']('x %s y', 1) }}{% do salt.log.warning('w') %}{% do salt['log.error']('e') %}");
    expect(out).toBe('None');
    expect(seen).toEqual(['debug template: map: Debian', 'info template: x 1 y', 'warn template: w', 'error template: e']);
  });

  it('pillar.get(key, default, merge=True) merges dicts and lists as Salt does', () => {
    const render = setup({}, {}, { nginx: { port: 81, extra: { a: 1 } }, pkgs: ['b', 'c'], s: 'x' });
    expect(render("{{ salt['pillar.get']('nginx', {'port': 80, 'user': 'www', 'extra': {'b': 2}}, merge=True) }}")).toBe("{'port': 81, 'user': 'www', 'extra': {'b': 2, 'a': 1}}");
    expect(render("{{ salt['pillar.get']('nginx', {'port': 80}) }}")).toBe("{'port': 81, 'extra': {'a': 1}}");
    expect(render("{{ salt['pillar.get']('pkgs', ['a', 'b'], merge=True) }}")).toBe("['a', 'b', 'c']");
    expect(render("{{ salt['pillar.get']('nope', {'d': 1}, merge=True) }}")).toBe("{'d': 1}");
    expect(render("{{ salt['pillar.get']('s', {'d': 1}, merge=True) }}")).toBe('x'); // Salt logs that the merge is skipped and returns the value
    expect(render("[{{ salt['pillar.get']('nope') }}] {{ salt['pillar.get']('nope', default='dflt') }}")).toBe('[] dflt');
  });

  it('config.get takes default as a keyword and looks in opts, grains, pillar', () => {
    const render = setup({}, { os: 'Debian' }, { p: { q: 1 } });
    expect(render("{{ salt['config.get']('nokey', default='X') }} {{ salt['config.get']('nokey', 'Y') }} [{{ salt['config.get']('nokey') }}] {{ salt['config.get']('master') }} {{ salt['config.get']('os') }} {{ salt['config.get']('p:q') }}")).toBe('X Y [] m Debian 1');
  });

  it('grains.filter_by: fnmatch keys, first match, list grains, default, base and merge', () => {
    const render = setup({}, { os_family: 'Debian', osfinger: 'Debian-12', roles: ['web', 'db'] });
    const lookup = "{'Debian-1*': {'v': 'new'}, 'Debian-*': {'v': 'any'}, 'RedHat': {'v': 'rh'}, 'default': {'v': 'dflt'}}";
    expect(render(`{{ salt['grains.filter_by'](${lookup}, grain='osfinger') }}`)).toBe("{'v': 'new'}");
    expect(render(`{{ salt['grains.filter_by'](${lookup}, grain='nosuch') }}`)).toBe("{'v': 'dflt'}");
    expect(render(`{{ salt['grains.filter_by']({'db': 1, 'web': 2}, grain='roles') }}`)).toBe('2');
    expect(render("{{ salt['grains.filter_by']({'Deb?an': {'a': 1}, 'other': {'a': 9}}, default='other') }}")).toBe("{'a': 1}");
    expect(render("{{ salt['grains.filter_by']({'RedHat': {'a': 1}, 'fallback': {'a': 9}}, default='fallback') }}")).toBe("{'a': 9}");
    expect(render("{{ salt['grains.filter_by']({'common': {'a': 1, 'b': {'x': 1}}, 'Debian': {'b': {'y': 2}}}, base='common') }}")).toBe("{'a': 1, 'b': {'x': 1, 'y': 2}}");
    expect(render("{{ salt['grains.filter_by']({'Debian': {'a': 1}}, merge={'a': 2, 'c': 3}) }}")).toBe("{'a': 2, 'c': 3}");
    expect(render("{{ salt['grains.filter_by']({'RedHat': {'a': 1}}) }}")).toBe('None');
    // merge with a falsy value (pillar.get's '' for a missing key) is skipped, as Salt's `if merge:`
    expect(render("{{ salt['grains.filter_by']({'Debian': {'a': 1}}, merge=salt['pillar.get']('nope')) }}")).toBe("{'a': 1}");
    expect(fnmatchcase('Debian-12', 'Debian-1[0-9]')).toBe(true);
    expect(fnmatchcase('Debian-12', 'debian-*')).toBe(false);
  });

  it('import_yaml renders the file through Jinja first, with the importer variables when asked', () => {
    const render = setup(
      {
        'web/defaults.yaml': "pkg: {{ 'nginx' if grains.os_family == 'Debian' else 'nginx-core' }}\nport: {{ 40 * 2 }}\n",
        'web/ctx.yaml': 'name: {{ local_name }}\n',
      },
      { os_family: 'Debian' },
    );
    expect(render("{% import_yaml 'web/defaults.yaml' as d %}{{ d }}")).toBe("{'pkg': 'nginx', 'port': 80}");
    expect(render("{% set local_name = 'n1' %}{% import_yaml 'web/ctx.yaml' as c with context %}{{ c.name }}")).toBe('n1');
    expect(() => render("{% set local_name = 'n1' %}{% import_yaml 'web/ctx.yaml' as c %}{{ c.name }}")).toThrow(/local_name/);
  });

  it('a map.jinja imported without context sees salt, grains, pillar and tpldir (Salt template globals)', () => {
    const render = setup({ 'web/map.jinja': "{% set web = salt['grains.filter_by']({'Debian': {'pkg': 'nginx'}}) %}{% do web.update({'dir': tpldir, 'os': grains.os_family}) %}" }, { os_family: 'Debian' });
    expect(render("{% from 'web/map.jinja' import web %}{{ web }}")).toBe("{'pkg': 'nginx', 'dir': 'web', 'os': 'Debian'}");
  });

  it('salt.mod.fn calls work as salt[\'mod.fn\']', () => {
    const render = setup({}, { os_family: 'Debian' });
    expect(render("{{ salt.user.info('root').uid }} {{ salt['user.info']('root').home }} {{ salt.test.ping() }}")).toBe('0 /root True');
    expect(() => render('{{ salt.user.nosuch() }}')).toThrow(/undefined/);
  });

  it("Salt's traverse filter and raise global", () => {
    const render = setup({}, { os: 'Debian' }, { a: { b: [{ c: 1 }] } });
    expect(render("{{ pillar | traverse('a:b:0:c') }} {{ pillar | traverse('a:x', 'dflt') }} {{ pillar | traverse('a/b', 'd', '/') }}")).toBe("1 dflt [{'c': 1}]");
    expect(() => render("{{ raise('unsupported OS: ' ~ grains.os) }}")).toThrow(/unsupported OS: Debian/);
  });

  it('grains report the Salt release tsalt follows and a Python version', () => {
    const g = coreGrains();
    expect(g.saltversion).toBe('3006.9');
    expect(g.saltversioninfo).toEqual([3006, 9]);
    expect((g.pythonversion as unknown[])[0]).toBe(3);
    const render = setup({}, g);
    expect(render("{{ grains.saltversioninfo >= [3005] }} {{ grains.pythonversion[0] == 3 }}")).toBe('True True');
  });
});
