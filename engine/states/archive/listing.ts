/**
 * What an archive contains, read with the same tools that extract it (GNU tar, Info-ZIP
 * unzip), and the checks that keep extraction inside `name`: no absolute member names, no
 * `..`, no device nodes; symlinks are checked again on disk after extraction (verifyTree).
 */
import fs from 'node:fs';
import path from 'node:path';
import { exec } from '../../run/exec.js';
import { StateFailure } from '../define.js';

export type MemberType = 'dir' | 'file' | 'link' | 'hardlink';

export interface Member {
  /** relative path, '/'-separated, no trailing slash */
  name: string;
  type: MemberType;
}

export type ArchiveFormat = 'tar' | 'zip';

/** Salt's guess_archive_type, for the formats we extract. */
export function guessFormat(source: string): ArchiveFormat | undefined {
  const p = source.split(/[?#]/)[0]!.toLowerCase();
  if (/\.(zip|jar|war)$/.test(p)) return 'zip';
  if (/\.(tar|tar\.(gz|bz2|xz|lzma|zst|z)|tgz|tbz2?|txz|tlz|tzst)$/.test(p)) return 'tar';
  return undefined;
}

/** Decode GNU tar's --quoting-style=c: "..." with C escapes and octal bytes. */
function unquoteC(s: string): string {
  const bytes: number[] = [];
  const simple: Record<string, number> = { n: 10, t: 9, r: 13, a: 7, b: 8, f: 12, v: 11, '\\': 92, '"': 34, '?': 63 };
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (ch !== '\\') {
      bytes.push(...Buffer.from(ch, 'utf8'));
      continue;
    }
    const next = s[i + 1] ?? '';
    if (/[0-7]/.test(next)) {
      const oct = /^[0-7]{1,3}/.exec(s.slice(i + 1))![0];
      bytes.push(parseInt(oct, 8));
      i += oct.length;
    } else {
      bytes.push(simple[next] ?? next.charCodeAt(0));
      i += 1;
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

const TAR_LINE =
  /^(\S)\S{9}\S*\s+\S+\s+[\d,]+\s+\d{4}-\d\d-\d\d \d\d:\d\d(?::\d\d(?:\.\d+)?)?\s+"((?:[^"\\]|\\.)*)"(?: (->|link to) "((?:[^"\\]|\\.)*)")?$/;

/** Normalise a member name; reject what would land outside the extraction directory. */
function safeName(raw: string, archive: string): string | undefined {
  if (raw.startsWith('/')) throw new StateFailure(`Archive ${archive} has a member with an absolute path (${raw}); refusing to extract it`);
  const parts = raw.split('/').filter((s) => s !== '' && s !== '.');
  if (parts.includes('..')) throw new StateFailure(`Archive ${archive} has a member that leaves the target directory (${raw}); refusing to extract it`);
  return parts.length ? parts.join('/') : undefined;
}

function strip(name: string, n: number): string | undefined {
  if (!n) return name;
  const parts = name.split('/').slice(n);
  return parts.length ? parts.join('/') : undefined;
}

export async function listArchive(file: string, format: ArchiveFormat, stripComponents = 0): Promise<Member[]> {
  const members: Member[] = [];
  const add = (raw: string, type: MemberType, target?: string) => {
    const n = safeName(raw, file);
    if (type === 'hardlink' && target !== undefined) safeName(target, file);
    if (type === 'link' && target !== undefined) {
      if (target.startsWith('/')) throw new StateFailure(`Archive ${file} has a symlink ${raw} -> ${target} that points outside the target directory; refusing to extract it`);
      const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(n ?? '.'), target));
      if (resolved === '..' || resolved.startsWith('../')) {
        throw new StateFailure(`Archive ${file} has a symlink ${raw} -> ${target} that points outside the target directory; refusing to extract it`);
      }
    }
    const s = n === undefined ? undefined : strip(n, stripComponents);
    if (s !== undefined) members.push({ name: s, type });
  };

  if (format === 'tar') {
    const r = await exec(['tar', '-tvf', file, '--quoting-style=c', '--numeric-owner', '--full-time'], { env: { ...process.env, LC_ALL: 'C' } });
    if (r.code !== 0) throw new StateFailure(`Cannot list tar archive ${file}: ${r.stderr.trim().split('\n').slice(-3).join('\n')}`);
    for (const line of r.stdout.split('\n')) {
      if (!line) continue;
      const m = TAR_LINE.exec(line);
      if (!m) throw new StateFailure(`Cannot understand tar's listing of ${file}: ${line}`);
      const [, t, rawName, rel, rawTarget] = m;
      const name = unquoteC(rawName!);
      const target = rawTarget === undefined ? undefined : unquoteC(rawTarget);
      if (t === 'd') add(name, 'dir');
      else if (t === 'l' || rel === '->') add(name, 'link', target);
      else if (t === 'h' || rel === 'link to') add(name, 'hardlink', target);
      else if (t === '-') add(name, 'file');
      else throw new StateFailure(`Archive ${file} has a special file ${name} (type '${t}'); refusing to extract it`);
    }
  } else {
    const names = await exec(['unzip', '-Z1', file], { env: { ...process.env, LC_ALL: 'C' } });
    if (names.code !== 0) throw new StateFailure(`Cannot list zip archive ${file}: ${(names.stderr || names.stdout).trim().split('\n').slice(-3).join('\n')}`);
    const list = names.stdout.split('\n').filter((l) => l !== '');
    const long = await exec(['unzip', '-Zs', file], { env: { ...process.env, LC_ALL: 'C' } });
    // entry lines follow a two-line header, in the same order as -Z1
    const lines = long.stdout.split('\n').slice(2, 2 + list.length);
    list.forEach((raw, i) => {
      const line = lines[i] ?? '';
      const isLink = line.endsWith(raw) && line.startsWith('l');
      add(raw, raw.endsWith('/') ? 'dir' : isLink ? 'link' : 'file');
    });
  }
  return members;
}

/**
 * After extraction into the private staging directory: every symlink must stay inside it and
 * nothing but files, directories and symlinks may exist (zip symlink targets are only known here).
 */
export function verifyTree(root: string): void {
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir)) {
      const p = path.join(dir, e);
      const st = fs.lstatSync(p);
      if (st.isSymbolicLink()) {
        const t = fs.readlinkSync(p);
        const resolved = path.resolve(path.dirname(p), t);
        if (path.isAbsolute(t) || (resolved !== root && !resolved.startsWith(root + path.sep))) {
          throw new StateFailure(`Archive member ${path.relative(root, p)} is a symlink to ${t}, outside the target directory; refusing to extract`);
        }
      } else if (st.isDirectory()) walk(p);
      else if (!st.isFile()) throw new StateFailure(`Archive member ${path.relative(root, p)} is a special file; refusing to extract`);
    }
  };
  walk(root);
}
