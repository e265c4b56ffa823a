/** Salt's user.info / group.info (useradd.py, groupadd.py) through NSS (getent), as pwd/grp do. */
import { spawnSync } from 'node:child_process';
import { getgrnamSync, getpwnamSync } from '../../run/nss.js';
import { splitGecos } from '../../providers/accounts/db.js';
import { bind, str, type Data, type SaltFns } from './args.js';


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
      const pw = getpwnamSync(name);
      if (!pw) return {};
      return {
        gid: pw.gid,
        groups: groupsOf(name),
        home: pw.home,
        name: pw.name,
        passwd: pw.passwd,
        shell: pw.shell,
        uid: pw.uid,
        ...splitGecos(pw.gecos),
      };
    },
    'group.info': (...raw): Data => {
      const name = str('group.info', bind('group.info', raw, ['name']).a, 'name');
      const f = getgrnamSync(name);
      if (!f) return {};
      return { name: f[0], passwd: f[1], gid: Number(f[2]), members: f[3] ? f[3].split(',') : [] };
    },
  };
}
