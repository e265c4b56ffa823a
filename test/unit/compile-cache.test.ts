/**
 * The on-disk compiled-template cache (engine/render/compile-cache.ts): a later process (here:
 * the same process after forgetting its in-memory templates) renders from the stored source;
 * anything that shapes the compiled source gives a new key; a damaged or foreign file is never
 * run; the directory stays bounded.
 */
import { describe, expect, it, afterEach } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import nunjucks from 'nunjucks';
import { JinjaRenderer, forgetCompiledTemplates } from '../../engine/render/jinja.js';
import { CompiledTemplateCache, CACHE_FORMAT, forgetCompilerFingerprint, templateCacheDir } from '../../engine/render/compile-cache.js';
import { makeRunBase } from '../../engine/run/context.js';
import { ParsedYamlCache, JS_YAML_VERSION } from '../../engine/render/yaml-cache.js';
import { parseYaml } from '../../engine/compile/sls-file.js';
import { renderPillar } from '../../engine/compile/pillar.js';
import { compile } from '../../engine/engine.js';
import { LocalTree } from '../../engine/tree/local.js';
import { tempDir } from '../helpers/harness.js';

const tree = new LocalTree(tempDir('tsalt-ccache-tree-'));
const T = "{% for h in hosts %}server {{ h.name }} {{ h.ip }}\n{% endfor %}{{ 'x' | upper }}";
const VARS = { hosts: [{ name: 'web1', ip: '10.0.0.1' }] };
const OUT = 'server web1 10.0.0.1\nX';

/** A renderer with its own cache object on `dir` (as a new process would have), memory forgotten. */
function fresh(dir: string, debug?: (m: string) => void, limits?: { files: number; bytes: number }) {
  forgetCompiledTemplates();
  const cache = new CompiledTemplateCache(dir, debug, limits);
  return { cache, r: new JinjaRenderer(tree, cache) };
}
const files = (dir: string) => fs.readdirSync(dir).filter((f) => f.endsWith('.js'));

afterEach(() => forgetCompiledTemplates());

describe('compiled-template cache on disk', () => {
  it('stores the compiled source once and renders from it in a later run', () => {
    const dir = path.join(tempDir('tsalt-ccache-'), 'jinja');
    const a = fresh(dir);
    expect(a.r.render(T, VARS, 'conf.j2')).toBe(OUT);
    expect(a.cache.stats).toEqual({ hits: 0, misses: 1 });
    expect(files(dir)).toHaveLength(1);
    const text = fs.readFileSync(path.join(dir, files(dir)[0]!), 'utf8');
    expect(text.startsWith(`// ${CACHE_FORMAT} key=`)).toBe(true);
    expect(text).toContain('function root(env, context, frame, runtime, cb)'); // compiled code, not output
    expect(text).not.toContain('10.0.0.1');
    expect((fs.statSync(dir).mode & 0o777).toString(8)).toBe('700');

    const b = fresh(dir);
    expect(b.r.render(T, { hosts: [{ name: 'db', ip: '10.0.0.9' }] }, 'conf.j2')).toBe('server db 10.0.0.9\nX');
    expect(b.cache.stats).toEqual({ hits: 1, misses: 0 });
  });

  it('compiles again when the template text or its path changes', () => {
    const dir = path.join(tempDir('tsalt-ccache-'), 'jinja');
    fresh(dir).r.render(T, VARS, 'conf.j2');
    const b = fresh(dir);
    expect(b.r.render(T + '!', VARS, 'conf.j2')).toBe(OUT + '!');
    expect(b.r.render(T, VARS, 'other.j2')).toBe(OUT);
    expect(b.cache.stats).toEqual({ hits: 0, misses: 2 });
    expect(files(dir)).toHaveLength(3);
  });

  it('uses the filters of the current run (they are looked up at render time, not stored)', () => {
    const dir = path.join(tempDir('tsalt-ccache-'), 'jinja');
    fresh(dir).r.render(T, VARS, 'conf.j2');
    const b = fresh(dir);
    (b.r as unknown as { env: nunjucks.Environment }).env.addFilter('upper', (s: string) => `<${s}>`);
    expect(b.r.render(T, VARS, 'conf.j2')).toBe('server web1 10.0.0.1\n<x>');
    expect(b.cache.stats.hits).toBe(1);
  });

  it('compiles again when a compiler, parser or sandbox function changes', () => {
    const dir = path.join(tempDir('tsalt-ccache-'), 'jinja');
    fresh(dir).r.render(T, VARS, 'conf.j2');
    const C = (nunjucks as unknown as { compiler: { Compiler: { prototype: Record<string, unknown> } } }).compiler.Compiler.prototype;
    const orig = C.compileLookupVal as (...a: unknown[]) => unknown;
    // the same behaviour, other source text: as an edit of nunjucks-patch.ts would be
    C.compileLookupVal = function (this: unknown, ...a: unknown[]) {
      return orig.apply(this, a); // changed
    };
    forgetCompilerFingerprint();
    try {
      const b = fresh(dir);
      expect(b.r.render(T, VARS, 'conf.j2')).toBe(OUT);
      expect(b.cache.stats).toEqual({ hits: 0, misses: 1 });
    } finally {
      C.compileLookupVal = orig;
      forgetCompilerFingerprint();
    }
    const c = fresh(dir);
    c.r.render(T, VARS, 'conf.j2');
    expect(c.cache.stats.hits).toBe(1); // back to the first key
  });

  it('ignores a damaged or tampered file with a debug message, and replaces it', () => {
    const dir = path.join(tempDir('tsalt-ccache-'), 'jinja');
    fresh(dir).r.render(T, VARS, 'conf.j2');
    const file = path.join(dir, files(dir)[0]!);
    const good = fs.readFileSync(file, 'utf8');
    const damages: [string, string, RegExp][] = [
      ['truncated', good.slice(0, good.length - 40), /its content does not match its checksum/],
      ['code swapped', good.replace(/\n[\s\S]*$/, '\nreturn { root: function (e, c, f, r, cb) { cb(null, "evil"); } };'), /its content does not match its checksum/],
      ['garbage', '\0\0not a cache file', /no valid header/],
      ['empty', '', /no valid header/],
      ['other key', good.replace(/key=[0-9a-f]{64}/, `key=${'0'.repeat(64)}`), /it holds another key/],
      ['other format', good.replace(CACHE_FORMAT, 'tsalt-jinja-0'), /format tsalt-jinja-0/],
    ];
    for (const [what, text, why] of damages) {
      fs.writeFileSync(file, text);
      const msgs: string[] = [];
      const b = fresh(dir, (m) => msgs.push(m));
      expect(b.r.render(T, VARS, 'conf.j2'), what).toBe(OUT);
      expect(b.cache.stats, what).toEqual({ hits: 0, misses: 1 });
      expect(msgs.join('\n'), what).toMatch(new RegExp(`ignoring compiled-template cache file ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ${why.source}`));
      expect(fs.readFileSync(file, 'utf8'), what).toBe(good); // stored again, whole
    }
  });

  it('is not used in a directory others can write, or that is not ours', () => {
    const parent = tempDir('tsalt-ccache-');
    const dir = path.join(parent, 'jinja');
    fs.mkdirSync(dir, { mode: 0o700 });
    fs.chmodSync(dir, 0o777);
    const msgs: string[] = [];
    const a = fresh(dir, (m) => msgs.push(m));
    expect(a.r.render(T, VARS, 'conf.j2')).toBe(OUT);
    expect(files(dir)).toHaveLength(0);
    expect(msgs.join('\n')).toContain(`compiled-template cache ${dir} is not a private directory of this user: not used`);
    fs.chmodSync(dir, 0o700);
    fs.chownSync(dir, 65534, 65534);
    const b = fresh(dir, (m) => msgs.push(m));
    expect(b.r.render(T, VARS, 'conf.j2')).toBe(OUT);
    expect(files(dir)).toHaveLength(0);
    const link = path.join(parent, 'link');
    fs.symlinkSync(tempDir('tsalt-ccache-'), link);
    const c = fresh(link, (m) => msgs.push(m));
    expect(c.r.render(T, VARS, 'conf.j2')).toBe(OUT);
    expect(msgs.join('\n')).toContain(`compiled-template cache ${link} is not a private directory`);
  });

  it('keeps the directory within its file and byte limits, newest kept', () => {
    const dir = path.join(tempDir('tsalt-ccache-'), 'jinja');
    const { r } = fresh(dir, undefined, { files: 3, bytes: 1 << 20 });
    for (let i = 0; i < 6; i++) r.render(`{{ ${i} }}`, {}, `t${i}.j2`);
    expect(files(dir)).toHaveLength(3);
    const tight = fresh(dir, undefined, { files: 100, bytes: 2 * fs.statSync(path.join(dir, files(dir)[0]!)).size });
    tight.r.render('{{ 99 }}', {}, 't99.j2');
    expect(files(dir).length).toBeLessThanOrEqual(2);
    const last = fresh(dir);
    last.r.render('{{ 99 }}', {}, 't99.j2');
    expect(last.cache.stats.hits).toBe(1); // the newest survived
  });

  it('is used by state runs (in <cachedir>/jinja), not by the renderer alone', () => {
    const cachedir = tempDir('tsalt-ccache-');
    const base = makeRunBase({ test: true, tree, grains: {}, pillar: {}, opts: { cachedir } });
    forgetCompiledTemplates();
    expect(base.renderer.render('{{ 1 + 1 }}', {}, 'x.sls')).toBe('2');
    expect(files(templateCacheDir(cachedir))).toHaveLength(1);
    expect(templateCacheDir(cachedir)).toBe(path.join(cachedir, 'jinja'));
  });
});

describe('parsed-YAML cache on disk', () => {
  const SLS = [
    "__proto__: {constructor: 1}",
    'web: &w',
    '  pkg.installed: [{name: nginx}, {version: 1.10}]',
    'web2: *w',
    'nums: [0644, 0x1f, 1:30, .nan, -.inf, -0.0, 1e3, 010, yes, Off, ~, "s"]',
    "merged: {<<: {a: 1}, b: 2}",
    '',
  ].join('\n');

  it('gives back exactly what js-yaml parsed, in a later run, and only for the same text', () => {
    const dir = path.join(tempDir('tsalt-ycache-'), 'yaml');
    const fresh = parseYaml(SLS, 'a.sls').data as Record<string, unknown>;
    const a = new ParsedYamlCache(dir);
    expect(parseYaml(SLS, 'a.sls', a).data).toStrictEqual(fresh);
    expect(a.stats).toEqual({ hits: 0, misses: 1 });
    const b = new ParsedYamlCache(dir);
    const got = parseYaml(SLS, 'a.sls', b).data as Record<string, unknown>;
    expect(b.stats).toEqual({ hits: 1, misses: 0 });
    expect(got).toStrictEqual(fresh);
    expect(Object.getPrototypeOf(got)).toBe(Object.prototype);
    expect(Object.getOwnPropertyNames(got)).toEqual(Object.getOwnPropertyNames(fresh));
    expect(Object.getOwnPropertyDescriptor(got, '__proto__')?.value).toEqual({ constructor: 1 }); // own key, not the prototype
    expect(got.web2).toBe(got.web); // aliases stay one object, as js-yaml gives them
    expect(Object.is((got.nums as unknown[])[5], -0)).toBe(true);
    // another text: parsed, not served
    const c = new ParsedYamlCache(dir);
    expect(parseYaml(SLS.replace('nginx', 'apache2'), 'a.sls', c).data).toMatchObject({ web: { 'pkg.installed': [{ name: 'apache2' }, { version: 1.1 }] } });
    expect(c.stats).toEqual({ hits: 0, misses: 1 });
  });

  it('stores nothing for text that does not parse, and reports it as before', () => {
    const dir = path.join(tempDir('tsalt-ycache-'), 'yaml');
    const a = new ParsedYamlCache(dir);
    for (let i = 0; i < 2; i++) expect(() => parseYaml('a: 1\na: 2\n', 'bad.sls', a)).toThrow(/bad\.sls|duplicated mapping key/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('ignores a damaged file with a debug message', () => {
    const dir = path.join(tempDir('tsalt-ycache-'), 'yaml');
    parseYaml(SLS, 'a.sls', new ParsedYamlCache(dir));
    const file = path.join(dir, fs.readdirSync(dir)[0]!);
    const good = fs.readFileSync(file);
    const bad = Buffer.from(good);
    bad[bad.length - 3] = bad[bad.length - 3]! ^ 0xff;
    fs.writeFileSync(file, bad);
    const msgs: string[] = [];
    const b = new ParsedYamlCache(dir, (m) => msgs.push(m));
    expect(parseYaml(SLS, 'a.sls', b).data).toStrictEqual(parseYaml(SLS, 'a.sls').data);
    expect(b.stats).toEqual({ hits: 0, misses: 1 });
    expect(msgs.join('\n')).toContain(`ignoring parsed-YAML cache file ${file}: its content does not match its checksum`);
    expect(fs.readFileSync(file).equals(good)).toBe(true);
  });

  it('serves `tsalt local` state runs from <cachedir>/yaml; never agent runs (pillar from a master) nor pillar', async () => {
    const cachedir = tempDir('tsalt-ycache-');
    const t = tempDir('tsalt-ycache-tree-');
    fs.writeFileSync(path.join(t, 'top.sls'), "base:\n  '*':\n    - s\n");
    fs.writeFileSync(path.join(t, 's.sls'), "{% set n = 'x' %}\nid_{{ n }}:\n  test.nop: []\n");
    // an agent's job: the pillar came from the master, so no rendered data goes to disk
    const agentRun = { tree: new LocalTree(t), id: 'h', grains: { id: 'h' }, pillar: { secret: 'hunter2' }, test: true, opts: { cachedir } };
    expect(JSON.stringify(await compile(agentRun))).toContain('id_x');
    expect(fs.existsSync(path.join(cachedir, 'yaml'))).toBe(false);
    expect(fs.readdirSync(path.join(cachedir, 'jinja')).length).toBeGreaterThan(0); // templates (code) are kept
    for (let i = 0; i < 2; i++) expect(JSON.stringify(await compile({ ...agentRun, parsedYamlCache: true }))).toContain('id_x');
    expect(fs.readdirSync(path.join(cachedir, 'yaml')).length).toBeGreaterThan(0);
    const p = tempDir('tsalt-ycache-pillar-');
    fs.writeFileSync(path.join(p, 'top.sls'), "base:\n  '*':\n    - p\n");
    fs.writeFileSync(path.join(p, 'p.sls'), 'secret: hunter2\n');
    // the default cache place (no cachedir) is under $TMPDIR: point it at an empty directory
    const tmp = tempDir('tsalt-ycache-tmp-');
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = tmp;
    try {
      expect(await renderPillar(new LocalTree(p), 'h', { id: 'h' })).toEqual({ secret: 'hunter2' });
      expect(await renderPillar(new LocalTree(p), 'h', { id: 'h' }, { cachedir })).toEqual({ secret: 'hunter2' });
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
    expect(fs.readdirSync(tmp)).toEqual([]);
    for (const sub of ['yaml', 'jinja']) {
      for (const f of fs.readdirSync(path.join(cachedir, sub))) expect(fs.readFileSync(path.join(cachedir, sub, f)).includes('hunter2')).toBe(false);
    }
  });

  it('names the js-yaml version package.json pins', () => {
    const pkg = JSON.parse(fs.readFileSync('package.json', 'utf8')) as { dependencies: Record<string, string> };
    expect(pkg.dependencies['js-yaml']).toBe(JS_YAML_VERSION);
  });
});
