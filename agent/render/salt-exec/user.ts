/** Salt's user.info / group.info (useradd.py, groupadd.py) through NSS (getent), as pwd/grp do. */
import { spawnSync } from 'node:child_process';
import { splitGecos } from '../../providers/accounts/db.js';
import { bind, str, type Data, type SaltFns } from './args.js';

function getent(db: 'passwd' | 'group', name: string): string[] | undefined {
  const r = spawnSync('getent', [db, '--', name], { encoding: 'utf8', timeout: 30_000 });
  const f = r.status === 0 ? r.stdout.split('\n')[0]?.split(':') : undefined;
  // getent also answers numeric ids; Salt's getpwnam/getgrnam look up names only
  return f && f[0] === name ? f : undefined;
}

/** Salt's list_groups: every group the user is in (primary included), sorted. */
function groupsOf(name: string): string[] {
  const r = spawnSync('id', ['-Gn', '--', name], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) return [];
  return [...new Set(r.stdout.trim().split(/\s+/).filter(Boolean))].sort();
}

export function userFunctions(): SaltFns {
  return {
    'user.info': (...raw): Data => {
      const name = str('user.info', bind('user.info', raw, ['name']).a, 'name');
      const f = getent('passwd', name);
      if (!f || f.length < 7) return {};
      return {
        gid: Number(f[3]),
        groups: groupsOf(name),
        home: f[5],
        name: f[0],
        passwd: f[1],
        shell: f[6],
        uid: Number(f[2]),
        ...splitGecos(f[4] ?? ''),
      };
    },
    'group.info': (...raw): Data => {
      const name = str('group.info', bind('group.info', raw, ['name']).a, 'name');
      const f = getent('group', name);
      if (!f || f.length < 4) return {};
      return { name: f[0], passwd: f[1], gid: Number(f[2]), members: f[3] ? f[3].split(',') : [] };
    },
  };
}
