/**
 * The answer `getent passwd|group KEY` would give, read from /etc/passwd and /etc/group without
 * forking, when the files prove it; undefined when only getent can tell (nss.ts then forks it).
 * A fork of the Node process costs 5-10 ms of blocked event loop, and every runas, ownership
 * and user.info lookup paid it.
 *
 * Why the files are the answer (glibc >= 2.33: nss/nss_database.c, nss_action_parse.c,
 * nss_readline.c, nss_files/files-parse.c, files-pwd.c, pwd/fgetpwent_r.c, grp/fgetgrent_r.c,
 * nss/getent.c, pwd/putpwent.c, grp/putgrent.c):
 * - NSS asks the sources of the database's nsswitch.conf line in order and a SUCCESS returns
 *   unless the source is followed by an action list. So `passwd: files ...` with no `[...]`
 *   after `files`, and the key found in /etc/passwd, is that entry, whatever follows `files`.
 * - the files backend skips blank lines and '#' comments after leading whitespace, and the
 *   first line that parses and matches (name by strcmp, or uid) wins. getent prints that
 *   entry with putpwent/putgrent: ids in decimal, members joined by ','.
 * Anything else falls back: a missing nsswitch.conf or database line (the built-in default is
 * `compat [NOTFOUND=return] files` or `files` depending on how glibc was built), a last line
 * without newline (glibc ignores it), duplicate lines, an action list glibc would reject (it
 * then fails every lookup), `compat`, +/- lines, a line whose fields we would read differently
 * from glibc's parser (field count, non-decimal ids, whitespace in a member list, an indented
 * last line without newline), keys getent reads as numbers we do not (' 1', '-1', > 2^32-1),
 * a key not in the file (LDAP/sssd may have it), and a running nscd (getent would answer from
 * its cache).
 */
import fs from 'node:fs';

export type NssDb = 'passwd' | 'group';

export const NSS_PATHS = {
  nsswitch: '/etc/nsswitch.conf',
  passwd: '/etc/passwd',
  group: '/etc/group',
  /** glibc's _PATH_NSCDSOCKET: with nscd running, lookups go to its cache first */
  nscdSocket: '/var/run/nscd/socket',
};

/** C-locale isspace minus '\n' (lines are already split) */
const SPACE = /^[ \t\v\f\r]*/;
const WS = ' \t\v\f\r\n';

/**
 * For each database, whether `files` is its first source with the default SUCCESS=return.
 * Undefined when the whole configuration is not certain (see the module comment).
 */
export function filesFirst(conf: string): Record<NssDb, boolean> | undefined {
  // NUL ends a C string; isspace of a non-ASCII byte depends on getent's locale
  if (/[^\x01-\x7f]/.test(conf)) return undefined;
  const lines = conf.split('\n');
  // glibc reads lines with getline and stops at EOF before processing an unterminated last line
  const last = lines.pop()!;
  if (last.replace(SPACE, '') !== '' && !last.replace(SPACE, '').startsWith('#')) return undefined;
  const seen = new Map<string, string>();
  for (const raw of lines) {
    const line = raw.replace(SPACE, '');
    if (line === '' || line.startsWith('#')) continue; // glibc: an unknown database name
    const m = /^([^\s:]+)[\s:]*([^]*)$/.exec(line);
    if (!m) continue; // starts with ':': glibc skips it
    const [, name, services] = m as unknown as [string, string, string];
    // an action list glibc rejects makes the whole file fail to load: every lookup fails
    if (!actionsValid(services)) return undefined;
    if (name === 'passwd' || name === 'group') {
      if (seen.has(name)) return undefined; // glibc 2.33+ takes the last: not worth being sure
      seen.set(name, services);
    }
  }
  const first = (db: NssDb) => {
    const s = seen.get(db);
    if (s === undefined) return false; // built-in default: depends on the glibc build
    const m = /^files(?=[\s[]|$)\s*/.exec(s);
    return m !== null && s[m[0].length] !== '[';
  };
  return { passwd: first('passwd'), group: first('group') };
}

/** nss_action_parse's grammar: ( <source> ( "[" ( "!"? <status> "=" <action> )+ "]" )? )* */
function actionsValid(s: string): boolean {
  let i = 0;
  const skip = () => {
    while (i < s.length && WS.includes(s[i]!)) i++;
  };
  const word = () => {
    const start = i;
    while (i < s.length && !WS.includes(s[i]!) && s[i] !== '=' && s[i] !== ']') i++;
    return s.slice(start, i).toUpperCase();
  };
  for (;;) {
    skip();
    if (i >= s.length) return true;
    const start = i;
    while (i < s.length && !WS.includes(s[i]!) && s[i] !== '[') i++;
    if (i === start) return true; // glibc stops parsing at a '[' with no source before it
    skip();
    if (s[i] !== '[') continue;
    i++;
    skip();
    do {
      if (s[i] === '!') i++;
      if (!['SUCCESS', 'UNAVAIL', 'NOTFOUND', 'TRYAGAIN'].includes(word())) return false;
      skip();
      if (s[i] !== '=') return false;
      i++;
      skip();
      if (!['RETURN', 'CONTINUE', 'MERGE'].includes(word())) return false;
      skip();
    } while (i < s.length && s[i] !== ']');
    if (s[i] !== ']') return false;
    i++;
  }
}

/** The entries of /etc/passwd or /etc/group, as getent prints them, split at ':'. */
export interface FilesTable {
  byName: Map<string, string[]>;
  byId: Map<number, string[]>;
}

const ID = /^\d{1,10}$/;
const MAX_ID = 0xffffffff;

/**
 * Parse /etc/passwd or /etc/group as glibc's files backend does, or undefined when a line is
 * one we are not sure to read the same way (then every lookup forks getent).
 */
export function parseFilesDb(db: NssDb, text: string): FilesTable | undefined {
  // NUL ends a C string mid-line; U+FFFD: bytes that are not UTF-8
  if (text.includes('\0') || text.includes('\uFFFD')) return undefined;
  const lines = text.split('\n');
  // glibc strips leading whitespace with memmove(buf, p, strlen(p)), which leaves the last bytes
  // in place after the moved line: harmless when a '\n' ends it, garbage on an unterminated one
  if (/^[ \t\v\f\r]/.test(lines.at(-1)!)) return undefined;
  const t: FilesTable = { byName: new Map(), byId: new Map() };
  for (const raw of lines) {
    const line = raw.replace(SPACE, '');
    if (line === '' || line.startsWith('#')) continue;
    // isspace of a non-ASCII byte depends on getent's locale
    if (line.charCodeAt(0) > 0x7f) return undefined;
    const f = line.split(':');
    if (f.length !== (db === 'passwd' ? 7 : 4)) return undefined;
    if (f[0]!.startsWith('+') || f[0]!.startsWith('-')) return undefined; // compat syntax
    const ids = db === 'passwd' ? [f[2]!, f[3]!] : [f[2]!];
    if (!ids.every((v) => ID.test(v) && Number(v) <= MAX_ID)) return undefined;
    if (db === 'group' && /\s/.test(f[3]!)) return undefined; // glibc trims member names
    // as putpwent/putgrent print them: ids in decimal, the member list without empty names
    const out =
      db === 'passwd'
        ? [f[0]!, f[1]!, String(Number(f[2])), String(Number(f[3])), f[4]!, f[5]!, f[6]!]
        : [f[0]!, f[1]!, String(Number(f[2])), f[3]!.split(',').filter(Boolean).join(',')];
    if (!t.byName.has(out[0]!)) t.byName.set(out[0]!, out); // first match wins
    const id = Number(out[2]);
    if (!t.byId.has(id)) t.byId.set(id, out);
  }
  return t;
}

/** What getent does with KEY: a number when strtoul takes all of it, else a name. */
export function lookupKey(t: FilesTable, key: string): string[] | undefined {
  if (ID.test(key) && Number(key) <= MAX_ID) return t.byId.get(Number(key));
  // strtoul also takes leading space, a sign, and wraps big values: leave those to getent
  if (key === '' || /^[ \t\n\v\f\r]*[+-]?\d+$/.test(key)) return undefined;
  return t.byName.get(key);
}

interface Cached<T> {
  key: string | null;
  value: T;
}
const cache = new Map<string, Cached<unknown>>();

const statKey = (s: fs.BigIntStats) => `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;

/**
 * `parse(contents)` of a file, parsed once per version of it (dev, inode, size, mtime, ctime):
 * useradd replaces /etc/passwd, so the next lookup sees the new entry. A file changed in the
 * last 2 s is not cached (timestamps are coarse: an edit in the same tick could keep them).
 * Undefined when the file cannot be read.
 */
function readParsed<T>(p: string, parse: (text: string) => T): T | undefined {
  let st: fs.BigIntStats;
  try {
    st = fs.statSync(p, { bigint: true });
  } catch {
    return undefined;
  }
  const hit = cache.get(p) as Cached<T> | undefined;
  if (hit && hit.key === statKey(st)) return hit.value;
  let fd: number;
  try {
    fd = fs.openSync(p, 'r');
  } catch {
    return undefined;
  }
  try {
    // the stat of the very file read (a rename may have replaced the path since)
    const fst = fs.fstatSync(fd, { bigint: true });
    const value = parse(fs.readFileSync(fd, 'utf8'));
    const recent = BigInt(Date.now()) * 1_000_000n - fst.mtimeNs < 2_000_000_000n;
    cache.set(p, { key: recent ? null : statKey(fst), value });
    return value;
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The fields `getent DB KEY` would print, when /etc/passwd or /etc/group proves them; undefined
 * when getent must be asked (see the module comment).
 */
export function filesEntry(db: NssDb, key: string): string[] | undefined {
  if (fs.existsSync(NSS_PATHS.nscdSocket)) return undefined;
  const conf = readParsed(NSS_PATHS.nsswitch, filesFirst);
  if (!conf?.[db]) return undefined;
  const t = readParsed(NSS_PATHS[db], (text) => parseFilesDb(db, text));
  return t ? lookupKey(t, key)?.slice() : undefined; // a copy: callers own what they get
}
