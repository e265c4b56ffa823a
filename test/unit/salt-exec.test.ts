/**
 * salt['mod.fun'](...) execution functions rendered through the real Jinja engine, against real
 * commands, files, users, dpkg and this machine's interfaces.
 */
import { describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { JinjaRenderer } from '../../engine/render/jinja.js';
import { LocalTree } from '../../engine/tree/local.js';
import { saltFunctions } from '../../engine/render/salt-functions.js';
import { tempDir } from '../helpers/harness.js';
import { applyTree, byId, writeTree } from '../helpers/tree.js';

const treeDir = writeTree({ 'files/motd.txt': 'hello from the tree\n', 'top.sls': '' });
const tree = new LocalTree(treeDir);
const r = new JinjaRenderer(tree);
const grains = { os_family: 'Debian', id: 'host1' };
const salt = saltFunctions(grains, {}, {}, tree);
const render = (t: string, vars: Record<string, unknown> = {}) => r.render(t, { salt, ...vars }, 't.sls');
const renderErr = (t: string, vars: Record<string, unknown> = {}): string => {
  try {
    render(t, vars);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected a render error');
};

describe('cmd.*', () => {
  it('cmd.run returns stdout with trailing whitespace stripped, through a real shell', () => {
    expect(render("[{{ salt['cmd.run']('printf \"a b\\\\n\\\\n\"; echo x | tr x y') }}]")).toBe('[a b\n\ny]');
  });

  it('cmd.run folds stderr into the output and still returns it on a non-zero exit', () => {
    expect(render("{{ salt['cmd.run']('echo out; echo err >&2; exit 3') }}")).toBe('out\nerr');
    expect(render("{{ salt['cmd.shell']('echo $((1+2))') }}")).toBe('3');
  });

  it('run_stdout / run_stderr / retcode / run_all keep the streams apart', () => {
    expect(render("{{ salt['cmd.run_stdout']('echo out; echo err >&2') }}")).toBe('out');
    expect(render("{{ salt['cmd.run_stderr']('echo out; echo err >&2') }}")).toBe('err');
    expect(render("{{ salt['cmd.retcode']('exit 7') + 1 }}")).toBe('8');
    const all = JSON.parse(render("{{ salt['cmd.run_all']('echo $$; echo e >&2; exit 2') | json }}"));
    expect(all).toMatchObject({ retcode: 2, stdout: String(all.pid), stderr: 'e' });
    expect(all.pid).toBeGreaterThan(1);
  });

  it('cwd, env, stdin, runas and a list command', () => {
    const dir = tempDir();
    expect(render("{{ salt['cmd.run']('pwd', cwd=d) }}", { d: dir })).toBe(dir);
    expect(render("{{ salt['cmd.run']('pwd') }}")).toBe(os.homedir());
    expect(render("{{ salt['cmd.run']('echo \"$FOO\"', env={'FOO': 'a b;c'}) }}")).toBe('a b;c');
    expect(render("{{ salt['cmd.run']('cat', stdin='piped') }}")).toBe('piped');
    expect(render("{{ salt['cmd.run']('id -un; echo $HOME', runas='nobody') }}")).toBe('nobody\n/nonexistent');
    // a list runs without a shell: the ; is an argument
    expect(render("{{ salt['cmd.run'](['echo', 'a;', 'echo', 'b']) }}")).toBe('a; echo b');
  });

  it('a pillar value passed as the command stays one argument (no extra shell parsing by us)', () => {
    expect(render("{{ salt['cmd.run'](['printf', '%s', v]) }}", { v: '$(id -u); x' })).toBe('$(id -u); x');
  });

  it('times out instead of hanging, and reports bad calls naming the function', () => {
    const t0 = Date.now();
    expect(renderErr("{{ salt['cmd.run']('sleep 30', timeout=1) }}")).toMatch(/cmd\.run: command timed out after 1 seconds/);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(renderErr("{{ salt['cmd.run']('true', cwd='/nonexistent-dir') }}")).toMatch(/cmd\.run: specified cwd/);
    expect(renderErr("{{ salt['cmd.run']('true', runas='no-such-user-x') }}")).toMatch(/cmd\.run: user 'no-such-user-x'/);
    expect(renderErr("{{ salt['cmd.run_all']() }}")).toMatch(/cmd\.run_all: 'cmd' must be/);
  });
});

describe('file.*', () => {
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, 'f.txt'), 'line1\nline2\n');
  fs.symlinkSync(path.join(dir, 'f.txt'), path.join(dir, 'link'));

  it('exists / is_link / read / get_hash on real files', () => {
    const v = { f: path.join(dir, 'f.txt'), d: dir, l: path.join(dir, 'link'), n: path.join(dir, 'nope') };
    expect(render("{{ salt['file.file_exists'](f) }} {{ salt['file.file_exists'](d) }} {{ salt['file.file_exists'](n) }} {{ salt['file.file_exists'](l) }}", v)).toBe('True False False True');
    expect(render("{{ salt['file.directory_exists'](d) }} {{ salt['file.directory_exists'](f) }}", v)).toBe('True False');
    expect(render("{{ salt['file.is_link'](l) }} {{ salt['file.is_link'](f) }} {{ salt['file.is_link'](n) }}", v)).toBe('True False False');
    expect(render("{{ salt['file.read'](f) }}", v)).toBe('line1\nline2\n');
    const sha = crypto.createHash('sha256').update('line1\nline2\n').digest('hex');
    const md5 = crypto.createHash('md5').update('line1\nline2\n').digest('hex');
    expect(render("{{ salt['file.get_hash'](f) }} {{ salt['file.get_hash'](f, form='md5') }}", v)).toBe(`${sha} ${md5}`);
    expect(renderErr("{{ salt['file.read'](n) }}", v)).toMatch(/file\.read: cannot read .*ENOENT/);
    expect(renderErr("{{ salt['file.get_hash'](f, 'crc99') }}", v)).toMatch(/file\.get_hash: invalid hash type 'crc99'/);
  });

  it('basename / dirname / join follow Python os.path', () => {
    expect(render("{{ salt['file.basename']('/a/b/c.conf') }}|{{ salt['file.dirname']('/a/b/c.conf') }}|{{ salt['file.dirname']('/x') }}")).toBe('c.conf|/a/b|/');
    expect(render("{{ salt['file.join']('/etc', 'nginx', 'sites') }}|{{ salt['file.join']('/etc', '/srv', 'x') }}|{{ salt['file.join']('a/', 'b') }}")).toBe('/etc/nginx/sites|/srv/x|a/b');
    expect(render("{{ salt['file.file_exists']('~/') }}")).toBe('False');
  });
});

describe('network.*', () => {
  const ifs = os.networkInterfaces();
  const v4 = Object.values(ifs).flat().filter((i) => i!.family === 'IPv4').map((i) => i!.address);
  const v6 = Object.values(ifs).flat().filter((i) => i!.family === 'IPv6').map((i) => i!.address);

  it('ip_addrs leaves loopback out unless asked, and filters by interface/cidr/type', () => {
    const got = JSON.parse(render("{{ salt['network.ip_addrs']() | json }}")) as string[];
    expect(got).toEqual([...new Set(v4.filter((a) => !a.startsWith('127.')))].sort((a, b) => ipNum(a) - ipNum(b)));
    expect(JSON.parse(render("{{ salt['network.ip_addrs'](include_loopback=True) | json }}"))).toContain('127.0.0.1');
    expect(render("{{ salt['network.ip_addrs']('lo', include_loopback=True) }}")).toBe("['127.0.0.1']");
    expect(render("{{ salt['network.ip_addrs']('lo') }}")).toBe('[]');
    expect(render("{{ salt['network.ip_addrs'](include_loopback=True, cidr='127.0.0.0/8') }}")).toBe("['127.0.0.1']");
    expect(render("{{ salt['network.ip_addrs'](include_loopback=True, type='public') }}")).not.toContain('127.0.0.1');
    expect(render("{{ salt['network.ip_addrs'](include_loopback=True, type='private') }}")).toContain('127.0.0.1');
    expect(render("{{ salt['network.ip_addrs']('no-such-if0') }}")).toBe('[]');
  });

  it('ip_addrs6 and interface_ip', () => {
    const got = JSON.parse(render("{{ salt['network.ip_addrs6'](include_loopback=True) | json }}")) as string[];
    expect([...got].sort()).toEqual([...new Set(v6)].sort());
    expect(got).toContain('::1');
    expect(render("{{ salt['network.ip_addrs6']() }}")).not.toContain("'::1'");
    expect(render("{{ salt['network.interface_ip']('lo') }}")).toBe('127.0.0.1');
    expect(renderErr("{{ salt['network.interface_ip']('no-such-if0') }}")).toMatch(/network\.interface_ip: interface "no-such-if0" not in available interfaces/);
  });

  it('hostname, fqdn and in_subnet', () => {
    expect(render("{{ salt['network.get_hostname']() }}")).toBe(os.hostname());
    expect(render("{{ salt['network.get_fqdn']() }}")).toMatch(new RegExp(`^${os.hostname().split('.')[0]}`));
    const mine = v4.find((a) => !a.startsWith('127.'));
    if (mine) expect(render("{{ salt['network.in_subnet'](c) }}", { c: `${mine}/32` })).toBe('True');
    expect(render("{{ salt['network.in_subnet']('127.0.0.0/8') }}")).toBe('False'); // loopback not counted, as in Salt
    expect(render("{{ salt['network.in_subnet']('203.0.113.0/24') }}")).toBe('False');
    expect(renderErr("{{ salt['network.in_subnet']('10.0.0.0/99') }}")).toMatch(/network\.in_subnet: invalid network/);
  });
});

function ipNum(a: string): number {
  return a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

describe('pkg.version / user.info / group.info', () => {
  it('pkg.version asks dpkg: a version, "" when absent, a dict for several names', () => {
    const bash = render("{{ salt['pkg.version']('bash') }}");
    expect(bash).toMatch(/^\d[\w.+:~-]*$/);
    expect(render("{{ salt['pkg.version']('no-such-package-tsalt') }}")).toBe('');
    expect(JSON.parse(render("{{ salt['pkg.version']('bash', 'no-such-package-tsalt') | json }}"))).toEqual({ bash, 'no-such-package-tsalt': '' });
    expect(renderErr("{{ salt['pkg.version']() }}")).toMatch(/pkg\.version: must pass at least one package name/);
    expect(renderErr("{{ salt['pkg.version']('--admindir=/tmp') }}")).toMatch(/pkg\.version: invalid package name/);
    const other = saltFunctions({ os_family: 'Arch' }, {}, {});
    expect(() => other['pkg.version']!('bash')).toThrow(/pkg\.version: not supported on os_family 'Arch'/);
  });

  it("user.info returns Salt's dict, {} for an unknown user", () => {
    const root = JSON.parse(render("{{ salt['user.info']('root') | json }}"));
    expect(root).toMatchObject({ name: 'root', uid: 0, gid: 0, home: '/root', passwd: 'x', groups: ['root'], fullname: 'root', roomnumber: '', other: '' });
    expect(root.shell).toMatch(/^\//);
    expect(render("{{ salt['user.info']('no-such-user-x') }}")).toBe('{}');
    expect(render("{{ salt['user.info']('0') }}")).toBe('{}'); // names only, like pwd.getpwnam
    expect(JSON.parse(render("{{ salt['group.info']('root') | json }}"))).toEqual({ name: 'root', passwd: 'x', gid: 0, members: [] });
    expect(render("{{ salt['group.info']('no-such-group-x') }}")).toBe('{}');
  });
});

describe('defaults / slsutil / hashutil / random', () => {
  it('defaults.merge merges in place, recursively; merge_lists extends', () => {
    const out = render(
      "{% set d = {'a': {'x': 1, 'l': [1]}, 'b': 2} %}{% do salt['defaults.merge'](d, u, merge_lists=True) %}{{ d | json }}",
      { u: JSON.parse('{"a": {"y": 2, "l": [1, 3]}, "__proto__": {"p": 1}}') },
    );
    expect(JSON.parse(out)).toEqual({ a: { x: 1, l: [1, 3], y: 2 }, b: 2 });
    expect(({} as Record<string, unknown>).p).toBeUndefined();
    const copy = render("{% set d = {'a': 1} %}{% set m = salt['defaults.merge'](d, {'b': 2}, in_place=False) %}{{ d | json }} {{ m | json }}");
    expect(copy).toBe('{"a": 1} {"a": 1, "b": 2}'); // Salt's json filter: json.dumps separators, sorted keys
  });

  it('slsutil.merge strategies', () => {
    const v = { a: { k: { x: 1, y: 1 }, l: [1] }, b: { k: { x: 2 }, l: [2], n: 1 } };
    expect(JSON.parse(render("{{ salt['slsutil.merge'](a, b) | json }}", v))).toEqual({ k: { x: 2, y: 1 }, l: [2], n: 1 });
    expect(JSON.parse(render("{{ salt['slsutil.merge'](a, b, merge_lists=True) | json }}", v))).toEqual({ k: { x: 2, y: 1 }, l: [1, 2], n: 1 });
    expect(JSON.parse(render("{{ salt['slsutil.merge'](a, b, 'overwrite') | json }}", v))).toEqual({ k: { x: 2 }, l: [2], n: 1 });
    expect(JSON.parse(render("{{ salt['slsutil.merge'](a, b, strategy='list') | json }}", v))).toEqual({ k: [{ x: 1, y: 1 }, { x: 2 }], l: [[1], [2]] });
    expect(v.a).toEqual({ k: { x: 1, y: 1 }, l: [1] }); // obj_a untouched
    expect(renderErr("{{ salt['slsutil.merge'](a, b, 'bogus') }}", v)).toMatch(/slsutil\.merge: unknown merging strategy 'bogus'/);
    expect(renderErr("{{ salt['slsutil.merge'](a, 3) }}", v)).toMatch(/slsutil\.merge: 'obj_b' must be a dict/);
  });

  it('hashutil digests and base64', () => {
    const h = (alg: string) => crypto.createHash(alg).update('get salted').digest('hex');
    expect(render("{{ salt['hashutil.digest']('get salted') }}")).toBe(h('md5'));
    expect(render("{{ salt['hashutil.digest']('get salted', 'sha512') }}")).toBe(h('sha512'));
    expect(render("{{ salt['hashutil.sha256_digest']('get salted') }} {{ salt['hashutil.md5_digest']('get salted') }}")).toBe(`${h('sha256')} ${h('md5')}`);
    expect(render("{{ salt['hashutil.base64_b64encode']('get salted') }}")).toBe('Z2V0IHNhbHRlZA==');
    expect(render("{{ salt['hashutil.base64_b64decode']('Z2V0IHNhbHRlZA==') }}")).toBe('get salted');
    expect(renderErr("{{ salt['hashutil.digest']('x', 'crc32') }}")).toMatch(/hashutil\.digest: hash func 'crc32' is not supported/);
    expect(renderErr("{{ salt['hashutil.base64_b64decode']('not base64!') }}")).toMatch(/hashutil\.base64_b64decode: invalid base64/);
  });

  it('random.get_str: length, character set, randomness', () => {
    const a = render("{{ salt['random.get_str']() }}");
    expect(a).toHaveLength(20);
    expect(a).not.toBe(render("{{ salt['random.get_str']() }}"));
    expect(render("{{ salt['random.get_str'](64, punctuation=False) }}")).toMatch(/^[A-Za-z0-9]{64}$/);
    expect(render("{{ salt['random.get_str'](30, chars='ab') }}")).toMatch(/^[ab]{30}$/);
    expect(renderErr("{{ salt['random.get_str'](-1) }}")).toMatch(/random\.get_str: length/);
  });
});

describe('cp.get_file_str and engine wiring', () => {
  it('reads salt:// files from the tree, False when missing, refuses to leave the tree', () => {
    expect(render("{{ salt['cp.get_file_str']('salt://files/motd.txt') }}")).toBe('hello from the tree\n');
    expect(render("{{ salt['cp.get_file_str']('salt://files/nope.txt') }}")).toBe('False');
    expect(renderErr("{{ salt['cp.get_file_str']('salt://../etc/passwd') }}")).toMatch(/cp\.get_file_str: .*leaves the state tree/);
    expect(renderErr("{{ salt['cp.get_file_str']('/etc/passwd') }}")).toMatch(/cp\.get_file_str: only salt:\/\/ paths/);
  });

  it('a real SLS uses them through the engine; test mode predicts, a second run is a no-op', async () => {
    const dir = tempDir();
    const target = path.join(dir, 'out.txt');
    const files = {
      'top.sls': "base:\n  '*':\n    - app\n",
      'app/init.sls': `${target}:\n  file.managed:\n    - contents: "{{ salt['cmd.run']('echo hi') }} {{ salt['file.basename'](sls) }} {{ salt['cp.get_file_str']('salt://app/v.txt') | trim }}"\n`,
      'app/v.txt': 'v1\n',
    };
    const treeRoot = writeTree(files);
    const t = await applyTree(treeRoot, { test: true });
    expect(byId(t.results)[target]).toMatchObject({ result: null });
    expect(fs.existsSync(target)).toBe(false);
    const first = await applyTree(treeRoot);
    expect(byId(first.results)[target]).toMatchObject({ result: true });
    expect(fs.readFileSync(target, 'utf8')).toBe('hi app v1\n');
    const second = await applyTree(treeRoot);
    expect(byId(second.results)[target]).toMatchObject({ result: true, changes: {} });
  });

  it('an error inside a salt function names the function, file and line', async () => {
    const out = await applyTree({ 'top.sls': "base:\n  '*':\n    - bad\n", 'bad.sls': "x:\n  test.nop:\n    - name: {{ salt['file.read']('/nonexistent/x') }}\n" }).catch((e: Error) => e);
    const text = JSON.stringify(out instanceof Error ? out.message : out);
    expect(text).toMatch(/file\.read: cannot read \/nonexistent\/x/);
    expect(text).toMatch(/bad\.sls/);
  });
});
