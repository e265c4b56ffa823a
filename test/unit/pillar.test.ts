import { describe, expect, it } from 'vitest';
import { renderPillar } from '../../engine/compile/pillar.js';
import { LocalTree } from '../../engine/tree/local.js';
import { CompileError } from '../../engine/compile/errors.js';
import { writeTree } from '../helpers/tree.js';

describe('pillar', () => {
  const dir = writeTree({
    'top.sls': "base:\n  '*':\n    - common\n  'db*':\n    - db\n  'roles:web':\n    - match: grain\n    - web\n",
    'common.sls': 'ntp:\n  servers: [a, b]\nusers:\n  admin: {shell: /bin/bash}\n',
    'db.sls': 'include:\n  - .secrets\nmysql:\n  port: 3306\n',
    'secrets.sls': "mysql:\n  root_password: 's3cret'\n",
    'web.sls': "users:\n  admin: {uid: 1000}\nweb:\n  name: {{ grains['id'] }}\n  literal: '{{ '{{7*7}}' }}'\n",
  });

  it('gives each host only what top.sls gives it, merged recursively in order', async () => {
    const tree = new LocalTree(dir);
    const db = await renderPillar(tree, 'db1', { roles: ['db'] });
    expect(db).toEqual({ ntp: { servers: ['a', 'b'] }, users: { admin: { shell: '/bin/bash' } }, mysql: { port: 3306, root_password: 's3cret' } });
    const web = await renderPillar(tree, 'web1', { roles: ['web'] });
    expect(web).toEqual({
      ntp: { servers: ['a', 'b'] },
      users: { admin: { shell: '/bin/bash', uid: 1000 } },
      web: { name: 'web1', literal: '{{7*7}}' },
    });
    expect(JSON.stringify(web)).not.toContain('s3cret');
  });

  it('a broken pillar file is an error naming it', async () => {
    const bad = writeTree({ 'top.sls': "base:\n  '*':\n    - x\n", 'x.sls': 'a: [1,\n' });
    await expect(renderPillar(new LocalTree(bad), 'h', {})).rejects.toBeInstanceOf(CompileError);
    await expect(renderPillar(new LocalTree(bad), 'h', {})).rejects.toThrow(/x.sls:\d+/);
  });
});
