/**
 * What a no-op `tsalt local apply` loads of Node itself: every builtin module is compiled at
 * start (W54: node:fs/promises and the readline and watcher modules it pulls in, ≈ 2 ms, and a
 * thread-pool round trip per call). The check path reads files, directories and the account
 * database at once, so a run of file, directory, user, package and guarded command states
 * loads no node:fs/promises. Fails when a module on that path imports it at load or calls
 * fs.promises in a check.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, REPO } from './fleet-harness.js';

describe('tsalt local apply: Node modules a no-op run loads', () => {
  beforeAll(() => buildOnce());

  it('a no-op run of file, directory, user, package and guarded command states loads no node:fs/promises', () => {
    const tmp = fs.mkdtempSync(path.join(REPO, '.tmp-local-modules-'));
    try {
      const states = path.join(tmp, 'states');
      fs.mkdirSync(path.join(states, 'm'), { recursive: true });
      fs.writeFileSync(path.join(states, 'top.sls'), "base:\n  '*':\n    - m\n");
      fs.writeFileSync(path.join(states, 'm/conf.j2'), 'port {{ port }}\n');
      fs.writeFileSync(
        path.join(states, 'm/init.sls'),
        [
          'd:',
          '  file.directory:',
          '    - name: /srv/m',
          '    - makedirs: True',
          'conf:',
          '  file.managed:',
          '    - name: /srv/m/conf',
          '    - source: salt://m/conf.j2',
          '    - template: jinja',
          '    - context: {port: 8080}',
          '    - require: [{file: d}]',
          'root_user:',
          '  user.present:',
          '    - name: root',
          '    - createhome: False',
          'coreutils:',
          '  pkg.installed: []',
          'marker:',
          '  cmd.run:',
          `    - name: touch ${path.join(tmp, 'marker')}`,
          `    - creates: ${path.join(tmp, 'marker')}`,
          '',
        ].join('\n'),
      );
      const preload = path.join(tmp, 'modules.cjs');
      fs.writeFileSync(preload, "process.on('exit', () => require('node:fs').writeFileSync(process.env.MODULES_OUT, process.moduleLoadList.join('\\n')));\n");
      const out = path.join(tmp, 'modules.txt');
      const run = () =>
        execFileSync(
          process.execPath,
          ['--require', preload, path.join(REPO, 'bin/tsalt.js'), 'local', 'apply', '--states', states, '--pillar', path.join(tmp, 'none'), '--id', 'm1', '--root', path.join(tmp, 'root'), '--no-color'],
          { encoding: 'utf8', env: { ...process.env, MODULES_OUT: out, TMPDIR: tmp } },
        );
      expect(run()).toMatch(/Succeeded: 5 \(changed=3\)/);
      expect(run()).toMatch(/Succeeded: 5 \(changed=0\)/);
      const loaded = fs.readFileSync(out, 'utf8').split('\n');
      // the preload itself is read: the list is real
      expect(loaded).toContain('NativeModule fs');
      expect(loaded.filter((m) => /fs\/promises|readline/.test(m))).toEqual([]);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
