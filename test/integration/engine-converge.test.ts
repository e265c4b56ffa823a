/**
 * Whole-tree convergence on the real machine (under a temp root): a test run predicts the real
 * run exactly, the second real run changes nothing, a bad tree applies nothing.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { applyTree, writeTree } from '../helpers/tree.js';
import { tempDir } from '../helpers/harness.js';

const TREE = {
  'top.sls': "base:\n  '*':\n    - app\n",
  'app/init.sls': `{% set conf = '/etc/app' %}
include:
  - .files
app_dir:
  file.directory:
    - name: {{ conf }}
    - makedirs: True
    - mode: 750
app_conf:
  file.managed:
    - name: {{ conf }}/app.conf
    - source: salt://app/app.conf.j2
    - template: jinja
    - port: {{ pillar['app']['port'] }}
    - require:
      - file: app_dir
app_link:
  file.symlink:
    - name: {{ conf }}/current.conf
    - target: {{ conf }}/app.conf
    - require:
      - app_conf
on_conf_change:
  test.succeed_with_changes:
    - onchanges:
      - file: app_conf
`,
  'app/files.sls': `/srv/data:
  file.directory:
    - makedirs: True
/srv/data/readme:
  file.managed:
    - contents:
      - line one
      - line two
`,
  'app/app.conf.j2': 'port = {{ port }}\nbackends = {{ pillar.app.backends | join(",") }}\nhost = {{ grains.id }}\n',
};

describe('converging a whole tree', () => {
  it('test run predicts the real run; the second run changes nothing', async () => {
    const root = tempDir('tsalt-root-');
    const pillar = { app: { port: 8080, backends: ['a', 'b'] } };
    const dir = writeTree(TREE);
    const predicted = await applyTree(dir, { root, pillar, test: true });
    expect(fs.readdirSync(root)).toEqual([]); // test mode touched nothing
    const real = await applyTree(dir, { root, pillar });
    expect(real.counts.failed).toBe(0);
    const changed = (r: typeof real) => r.results.filter((x) => Object.keys(x.changes).length).map((x) => [x.id, Object.keys(x.changes).sort()]);
    expect(predicted.results.filter((x) => x.result === null).map((x) => x.id)).toEqual(changed(real).map(([id]) => id));
    expect(changed(predicted)).toEqual(changed(real));
    expect(fs.readFileSync(path.join(root, 'etc/app/app.conf'), 'utf8')).toBe('port = 8080\nbackends = a,b\nhost = host1\n');
    expect(fs.readFileSync(path.join(root, 'srv/data/readme'), 'utf8')).toBe('line one\nline two\n');
    expect(fs.statSync(path.join(root, 'etc/app')).mode & 0o777).toBe(0o750);

    const again = await applyTree(dir, { root, pillar });
    expect(again.counts).toMatchObject({ failed: 0, changed: 0 });
    const againTest = await applyTree(dir, { root, pillar, test: true });
    expect(againTest.results.every((x) => x.result === true)).toBe(true);

    // a pillar change flows through: only the config, its dependents react
    const changedPillar = await applyTree(dir, { root, pillar: { app: { port: 9090, backends: ['a', 'b'] } } });
    expect(changed(changedPillar).map(([id]) => id)).toEqual(['app_conf', 'on_conf_change']);
    expect(String((changedPillar.results.find((r) => r.id === 'app_conf')!.changes as { diff: string }).diff)).toMatch(/-port = 8080\n\+port = 9090/);
  });

  it('a tree with one bad state applies nothing at all', async () => {
    const root = tempDir('tsalt-root-');
    const dir = writeTree({ ...TREE, 'app/files.sls': '/srv/data:\n  file.directory:\n    - mode: rwx\n' });
    await expect(applyTree(dir, { root, pillar: { app: { port: 1, backends: [] } } })).rejects.toThrow(/files.sls:1, state '\/srv\/data': file.directory: argument 'mode'/);
    expect(fs.readdirSync(root)).toEqual([]);
  });
});
