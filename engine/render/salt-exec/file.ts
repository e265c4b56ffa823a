/** Salt's read-only file.* functions (salt/modules/file.py) for templates. */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { getpwnamSync } from '../../run/nss.js';
import { bind, str, type SaltFns } from './args.js';

/** Python's os.path.expanduser: `~` and `~user` (Salt's file functions all apply it). */
export function expanduser(p: string): string {
  if (!p.startsWith('~')) return p;
  const slash = p.indexOf('/');
  const who = p.slice(1, slash < 0 ? undefined : slash);
  const rest = slash < 0 ? '' : p.slice(slash);
  const home = who === '' ? (process.env.HOME ?? getpwnamSync('root')?.home) : getpwnamSync(who)?.home;
  return home === undefined ? p : home.replace(/\/+$/, '') + rest || '/';
}

/** Python's os.path.join: an absolute part restarts the path. */
export function pyJoin(parts: string[]): string {
  let out = '';
  for (const p of parts) {
    if (p.startsWith('/')) out = p;
    else if (out === '' || out.endsWith('/')) out += p;
    else out += '/' + p;
  }
  return out;
}

function statOr(p: string, fn: (p: string) => fs.Stats): fs.Stats | undefined {
  try {
    return fn(p);
  } catch {
    return undefined;
  }
}

export const HASH_FORMS = new Set(['md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512']);

export function fileFunctions(): SaltFns {
  const onePath = (fn: string, raw: unknown[]) => expanduser(str(fn, bind(fn, raw, ['path']).a, 'path'));
  return {
    'file.file_exists': (...raw) => statOr(onePath('file.file_exists', raw), fs.statSync)?.isFile() ?? false,
    'file.directory_exists': (...raw) => statOr(onePath('file.directory_exists', raw), fs.statSync)?.isDirectory() ?? false,
    'file.is_link': (...raw) => statOr(onePath('file.is_link', raw), fs.lstatSync)?.isSymbolicLink() ?? false,
    'file.read': (...raw) => {
      const { a } = bind('file.read', raw, ['path', 'binary']);
      const p = expanduser(str('file.read', a, 'path'));
      try {
        return fs.readFileSync(p, 'utf8');
      } catch (e) {
        throw new Error(`file.read: cannot read ${p}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
    },
    'file.get_hash': (...raw) => {
      const { a } = bind('file.get_hash', raw, ['path', 'form', 'chunk_size']);
      const p = expanduser(str('file.get_hash', a, 'path'));
      const form = a.form === undefined || a.form === null ? 'sha256' : String(a.form);
      if (!HASH_FORMS.has(form)) throw new Error(`file.get_hash: invalid hash type '${form}'`);
      let data: Buffer;
      try {
        data = fs.readFileSync(p);
      } catch (e) {
        throw new Error(`file.get_hash: cannot read ${p}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
      return crypto.createHash(form).update(data).digest('hex');
    },
    'file.basename': (...raw) => {
      const p = str('file.basename', bind('file.basename', raw, ['path']).a, 'path');
      return p.slice(p.lastIndexOf('/') + 1); // Python: '/a/b/' -> ''
    },
    'file.dirname': (...raw) => {
      const p = str('file.dirname', bind('file.dirname', raw, ['path']).a, 'path');
      const i = p.lastIndexOf('/') + 1;
      const head = p.slice(0, i);
      // Python keeps a head of only slashes, else drops trailing slashes
      return /^\/+$/.test(head) ? head : head.replace(/\/+$/, '');
    },
    'file.join': (...raw) => {
      const { rest } = bind('file.join', raw, [], { varargs: true });
      if (rest.length === 0) throw new Error('file.join: needs at least one path');
      return pyJoin(rest.map(String));
    },
    'file.normpath': (...raw) => path.posix.normalize(str('file.normpath', bind('file.normpath', raw, ['path']).a, 'path')),
  };
}
