/**
 * Issue 11 item 4 and issue 13's template errors: Salt renders with StrictUndefined, so using an
 * undefined value for anything but `is defined` / `default` fails the render, and the error names
 * the file, the line and the missing name. Errors inside an imported map.jinja name where they
 * are and the import chain from the SLS (issue 10).
 */
import { afterAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { JinjaRenderer, RenderError } from '../../engine/render/jinja.js';
import { LocalTree } from '../../engine/tree/local.js';
import { compile } from '../../engine/engine.js';
import { renderPillar } from '../../engine/compile/pillar.js';
import { CompileError } from '../../engine/compile/errors.js';
import { makeRunBase, templateGlobals } from '../../engine/run/context.js';
import { tempDir } from '../helpers/harness.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function treeDir(files: Record<string, string>): string {
  const dir = tempDir('tsalt-undef-');
  dirs.push(dir);
  for (const [p, c] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    fs.writeFileSync(path.join(dir, p), c);
  }
  return dir;
}

const pillar = { mysql: { user: 'app' }, list: [], n: 0 };
const dir = treeDir({});
const base = makeRunBase({ test: true, tree: new LocalTree(dir), grains: { os: 'Debian', id: 'h' }, pillar });
const r = new JinjaRenderer(new LocalTree(dir));
const render = (t: string) => r.render(t, { ...templateGlobals(base) }, 'db/init.sls');

function renderError(t: string): RenderError {
  try {
    render(t);
  } catch (e) {
    expect(e).toBeInstanceOf(RenderError);
    return e as RenderError;
  }
  throw new Error(`rendered without error: ${t}`);
}

describe('StrictUndefined', () => {
  it('fails every use of an undefined value, naming the file, line and missing name', () => {
    const cases: [string, string][] = [
      ["{{ pillar.db_pass ~ '' }}", 'pillar.db_pass'],
      ["{{ 'pw-' ~ pillar.mysql.root_pw }}", 'pillar.mysql.root_pw'],
      ["{{ 'pw-' ~ pillar['mysql']['root_pw'] }}", "pillar['mysql']['root_pw']"],
      ['{{ pillar.db_pass | string }}', 'pillar.db_pass'],
      ['{{ pillar.db_pass | sha256 }}', 'pillar.db_pass'],
      ['{{ pillar.db_pass | upper }}', 'pillar.db_pass'],
      ['{{ pillar.db_pass | length }}', 'pillar.db_pass'],
      ['{{ pillar.db_pass | join(",") }}', 'pillar.db_pass'],
      ['{{ pillar.db_pass + 1 }}', 'pillar.db_pass'],
      ['{{ 1 + pillar.db_pass }}', 'pillar.db_pass'],
      ['{{ pillar.db_pass * 2 }}', 'pillar.db_pass'],
      ['{{ -pillar.db_pass }}', 'pillar.db_pass'],
      ['{{ pillar.db_pass == "x" }}', 'pillar.db_pass'],
      ['{{ "x" in pillar.db_pass }}', 'pillar.db_pass'],
      ['{{ not pillar.db_pass }}', 'pillar.db_pass'],
      ['{{ pillar.db_pass and 1 }}', 'pillar.db_pass'],
      ['{{ pillar.db_pass or 1 }}', 'pillar.db_pass'],
      ['{{ pillar.db_pass }}', 'pillar.db_pass'],
      ['{{ pillar.db_pass.inner }}', 'pillar.db_pass'],
      ['{{ pillar.db_pass[0] }}', 'pillar.db_pass'],
      ['{{ pillar.db_pass[1:] }}', 'pillar.db_pass'],
      ['{% if pillar.db_pass %}x{% endif %}', 'pillar.db_pass'],
      ['{% for x in pillar.db_pass %}{% endfor %}', 'pillar.db_pass'],
      ['{{ 1 if pillar.db_pass else 2 }}', 'pillar.db_pass'],
      ['{{ "%s" % pillar.db_pass }}', 'pillar.db_pass'],
      ['{{ password }}', 'password'],
      ["{{ salt['pillar.get']('nokey', undefined_name) }}", "salt['pillar.get']()"],
    ];
    for (const [t, missing] of cases) {
      const e = renderError(`line one\n${t}\n`);
      expect(e.message, t).toContain(`'${missing}' is undefined`);
      expect(e.file, t).toBe('db/init.sls');
      expect(e.line, t).toBe(2);
    }
  });

  it('keeps what Salt allows: is defined, default, assignment, pillar.get without default', () => {
    expect(render("{{ pillar.db_pass is defined }} {{ pillar.db_pass is undefined }} {{ pillar.db_pass | default('d') }} {{ pillar.db_pass | d('e') }}")).toBe('False True d e');
    expect(render('{% set x = pillar.db_pass %}{{ x is defined }}')).toBe('False');
    expect(render("{{ pillar.get('nokey') }} {{ grains.get('nokey') }} {{ pillar.get('nokey') is none }}")).toBe('None None True');
    expect(render("[{{ salt['pillar.get']('nokey') }}] {{ salt['pillar.get']('nokey', 'dflt') }}")).toBe('[] dflt');
    // falsy data is data, not undefined
    expect(render('{{ pillar.list | length }} {{ pillar.n + 1 }} {% if not pillar.list %}empty{% endif %}')).toBe('0 1 empty');
  });

  it('an SLS with an undefined value does not compile; the error names file, line and name', async () => {
    const d = treeDir({ 'db/init.sls': "#!jinja|yaml\nmysql:\n  pkg.installed:\n    - name: {{ 'pw-' ~ pillar.mysql.root_pw }}\n" });
    const err = await compile({ tree: new LocalTree(d), id: 'h', grains: { id: 'h' }, pillar, sls: ['db'], test: true }).catch((e) => e);
    expect(err).toBeInstanceOf(CompileError);
    expect(String(err.message)).toMatch(/db\/init\.sls:4:\d+: .*'pillar\.mysql\.root_pw' is undefined/);
  });

  it('an error in an imported map.jinja names that file and line and the chain from the SLS', async () => {
    const d = treeDir({
      'web/init.sls': "# web\n{% from 'web/map.jinja' import web with context %}\nnginx:\n  pkg.installed:\n    - name: {{ web.pkg }}\n",
      'web/map.jinja': "{% import_yaml 'web/defaults.yaml' as defaults %}\n{% set web = defaults %}\n{% do web.update({'pkg': pillar.web.pkg ~ '-x'}) %}\n",
      'web/defaults.yaml': 'pkg: nginx\n',
    });
    const err = await compile({ tree: new LocalTree(d), id: 'h', grains: { id: 'h' }, pillar: { web: {} }, sls: ['web'], test: true }).catch((e) => e);
    expect(err).toBeInstanceOf(CompileError);
    const msg = String(err.message);
    expect(msg).toMatch(/^web\/map\.jinja:3:\d+: Jinja error: 'pillar\.web\.pkg' is undefined/);
    expect(msg).toContain('import chain: web/init.sls:2 -> web/map.jinja:3');
  });

  it('an error after an import or include is the importing file\'s, at its own line', async () => {
    const d = treeDir({
      'web/init.sls': "{% from 'web/map.jinja' import web %}\n{% include 'web/inc.jinja' %}\nnginx:\n  pkg.installed:\n    - name: {{ web.nosuch }}\n",
      'web/map.jinja': "{% set web = {'pkg': 'nginx'} %}",
      'web/inc.jinja': '# included\n',
    });
    const err = await compile({ tree: new LocalTree(d), id: 'h', grains: { id: 'h' }, pillar: {}, sls: ['web'], test: true }).catch((e) => e);
    expect(String(err.message)).toMatch(/^web\/init\.sls:5:\d+: Jinja error: 'web\.nosuch' is undefined/);
    expect(String(err.message)).not.toContain('import chain');
  });

  it('pillar rendering on the master fails the same way, naming the pillar file', async () => {
    const d = treeDir({ 'top.sls': "base:\n  '*':\n    - db\n", 'db.sls': "db:\n  password: {{ 'pw-' ~ grains.nosuch }}\n" });
    const err = await renderPillar(new LocalTree(d), 'h', { id: 'h' }).catch((e) => e);
    expect(err).toBeInstanceOf(CompileError);
    expect(String(err.message)).toMatch(/db\.sls:2:\d+: .*'grains\.nosuch' is undefined/);
  });
});
