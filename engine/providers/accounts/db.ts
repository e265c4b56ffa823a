/**
 * Local account database: /etc/passwd, /etc/group, /etc/shadow (+ gshadow-free), read once per
 * run through the FactCache. useradd/groupadd and friends only manage these local files, so the
 * states compare against exactly what those tools write (NSS users from LDAP are not ours to
 * manage). Call `invalidateAccounts` after changing anything.
 */
import fs from 'node:fs';
import type { FactCache } from '../../run/facts.js';

export interface UserEntry {
  name: string;
  uid: number;
  gid: number;
  /** GECOS split as Salt does: fullname, roomnumber, workphone, homephone, other */
  fullname: string;
  roomnumber: string;
  workphone: string;
  homephone: string;
  other: string;
  home: string;
  shell: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  /** explicit members (4th field); users whose primary group this is are not listed */
  members: string[];
}

export interface AccountsDb {
  users: Map<string, UserEntry>;
  groups: Map<string, GroupEntry>;
  groupsByGid: Map<number, GroupEntry>;
  /** name -> encrypted password field of /etc/shadow */
  shadow: Map<string, string>;
  /** /etc/login.defs settings we act on */
  usergroupsEnab: boolean;
}

const KEY = 'accounts:db';

// read at once: four small local files, where the promise API would load node:fs/promises and
// make a thread-pool round trip each, for every run that has a user or group state
function readOptional(p: string): string {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw e;
  }
}

function lines(text: string): string[][] {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#') && !l.startsWith('+') && !l.startsWith('-'))
    .map((l) => l.split(':'));
}

export function splitGecos(gecos: string): Pick<UserEntry, 'fullname' | 'roomnumber' | 'workphone' | 'homephone' | 'other'> {
  const f = gecos.split(',');
  return {
    fullname: f[0] ?? '',
    roomnumber: f[1] ?? '',
    workphone: f[2] ?? '',
    homephone: f[3] ?? '',
    other: f.slice(4).join(','),
  };
}

/** Salt's _build_gecos: the five fields joined, trailing empty ones dropped. */
export function buildGecos(g: Pick<UserEntry, 'fullname' | 'roomnumber' | 'workphone' | 'homephone' | 'other'>): string {
  return [g.fullname, g.roomnumber, g.workphone, g.homephone, g.other].join(',').replace(/,+$/, '');
}

export async function readAccounts(root = '/'): Promise<AccountsDb> {
  const [passwd, group, shadow, defs] = [`${root}etc/passwd`, `${root}etc/group`, `${root}etc/shadow`, `${root}etc/login.defs`].map(readOptional) as [string, string, string, string];
  const users = new Map<string, UserEntry>();
  for (const f of lines(passwd)) {
    if (f.length < 7) continue;
    users.set(f[0]!, {
      name: f[0]!,
      uid: Number(f[2]),
      gid: Number(f[3]),
      ...splitGecos(f[4] ?? ''),
      home: f[5]!,
      shell: f[6]!,
    });
  }
  const groups = new Map<string, GroupEntry>();
  const groupsByGid = new Map<number, GroupEntry>();
  for (const f of lines(group)) {
    if (f.length < 4) continue;
    const g: GroupEntry = { name: f[0]!, gid: Number(f[2]), members: f[3]! ? f[3]!.split(',').filter(Boolean) : [] };
    groups.set(g.name, g);
    if (!groupsByGid.has(g.gid)) groupsByGid.set(g.gid, g);
  }
  const sh = new Map<string, string>();
  for (const f of lines(shadow)) if (f.length >= 2) sh.set(f[0]!, f[1]!);
  const m = /^\s*USERGROUPS_ENAB\s+(\S+)/m.exec(defs);
  return { users, groups, groupsByGid, shadow: sh, usergroupsEnab: m ? m[1]!.toLowerCase() === 'yes' : false };
}

/** The account database for this run (read once; shared by every user/group state). */
export function loadAccounts(facts: FactCache): Promise<AccountsDb> {
  return facts.get(KEY, () => readAccounts());
}

export function invalidateAccounts(facts: FactCache): void {
  facts.invalidate(KEY);
}

/** Explicit supplementary groups of a user (where /etc/group lists them), sorted. */
export function supplementaryGroups(db: AccountsDb, user: string): string[] {
  const out: string[] = [];
  for (const g of db.groups.values()) if (g.members.includes(user)) out.push(g.name);
  return out.sort();
}

/** Every group of a user, primary included, as Salt's user.info `groups` (getgrouplist). */
export function allGroups(db: AccountsDb, u: UserEntry): string[] {
  const set = new Set(supplementaryGroups(db, u.name));
  const primary = db.groupsByGid.get(u.gid);
  if (primary) set.add(primary.name);
  return [...set].sort();
}

/** A group named or numbered as a Salt tree writes it ('wheel', '10', 10). */
export function findGroup(db: AccountsDb, ref: string): GroupEntry | undefined {
  return db.groups.get(ref) ?? (/^\d+$/.test(ref) ? db.groupsByGid.get(Number(ref)) : undefined);
}
