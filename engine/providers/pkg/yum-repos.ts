/**
 * yum/dnf repositories as INI sections in `<dir>/*.repo`. Edits keep every other section and
 * line of the file as it was; only the managed section's keys are set.
 */
// node:fs/promises is loaded on first use (fs.promises), not by every run that imports this
import fs from 'node:fs';
import path from 'node:path';
import { PkgError, type FileWrite, type RepoArgs, type RepoBackend, type RepoPlan } from './types.js';

interface Section {
  name: string;
  /** raw lines after the header, comments included */
  lines: string[];
}

interface IniFile {
  /** lines before the first section */
  head: string[];
  sections: Section[];
}

const KEY_LINE = /^\s*([^=#;\s][^=]*?)\s*=\s*(.*?)\s*$/;

export function parseIni(text: string): IniFile {
  const f: IniFile = { head: [], sections: [] };
  let cur: Section | undefined;
  for (const line of text.split('\n')) {
    const h = /^\s*\[([^\]]+)\]\s*$/.exec(line);
    if (h) {
      cur = { name: h[1]!.trim(), lines: [] };
      f.sections.push(cur);
    } else if (cur) cur.lines.push(line);
    else f.head.push(line);
  }
  return f;
}

export function sectionValues(s: Section): Map<string, string> {
  const m = new Map<string, string>();
  for (const l of s.lines) {
    const kv = KEY_LINE.exec(l);
    if (kv) m.set(kv[1]!, kv[2]!);
  }
  return m;
}

export function serialiseIni(f: IniFile): string {
  const out: string[] = [...f.head];
  for (const s of f.sections) out.push(`[${s.name}]`, ...s.lines);
  return out.join('\n').replace(/\n*$/, '\n');
}

/** Set keys in a section in place: changed keys keep their line, new ones go at the end. */
function setKeys(s: Section, want: Map<string, string>): void {
  const done = new Set<string>();
  s.lines = s.lines.map((l) => {
    const kv = KEY_LINE.exec(l);
    if (!kv || !want.has(kv[1]!)) return l;
    done.add(kv[1]!);
    return `${kv[1]}=${want.get(kv[1]!)}`;
  });
  // keep a blank separator line (if any) after the last key
  let tail = s.lines.length;
  while (tail > 0 && s.lines[tail - 1]!.trim() === '') tail--;
  const added = [...want].filter(([k]) => !done.has(k)).map(([k, v]) => `${k}=${v}`);
  s.lines.splice(tail, 0, ...added);
}

const flag = (b: boolean) => (b ? '1' : '0');

export class YumRepoFiles implements RepoBackend {
  constructor(readonly dir: string) {}

  /** The file that defines section `name`, if any. */
  private async find(name: string): Promise<{ file: string; ini: IniFile; section: Section } | undefined> {
    let entries: string[];
    try {
      entries = (await fs.promises.readdir(this.dir)).filter((e) => e.endsWith('.repo')).sort();
    } catch {
      return undefined;
    }
    for (const e of entries) {
      const file = path.join(this.dir, e);
      const ini = parseIni(await fs.promises.readFile(file, 'utf8'));
      const section = ini.sections.find((s) => s.name === name);
      if (section) return { file, ini, section };
    }
    return undefined;
  }

  async planManaged(a: RepoArgs): Promise<RepoPlan> {
    if (/[\s/\]\[]/.test(a.name)) throw new PkgError(`repo id '${a.name}' may not contain spaces, '/' or brackets`);
    const found = await this.find(a.name);
    if (!found && !a.baseurl && !a.mirrorlist && !a.metalink) {
      throw new PkgError(`Repository '${a.name}' is not configured and no baseurl, mirrorlist or metalink was given`);
    }
    const want = new Map<string, string>();
    if (a.humanname !== undefined) want.set('name', a.humanname);
    else if (!found) want.set('name', a.name); // yum warns about a repo without a name
    if (a.baseurl !== undefined) want.set('baseurl', a.baseurl);
    if (a.mirrorlist !== undefined) want.set('mirrorlist', a.mirrorlist);
    if (a.metalink !== undefined) want.set('metalink', a.metalink);
    // Salt writes enabled=1 when the state does not say otherwise
    want.set('enabled', flag(a.enabled ?? true));
    if (a.gpgcheck !== undefined) want.set('gpgcheck', flag(a.gpgcheck));
    if (a.gpgkey !== undefined) want.set('gpgkey', a.gpgkey);
    for (const [k, v] of Object.entries(a.extra)) want.set(k, v);

    const file = found?.file ?? path.join(this.dir, `${a.name}.repo`);
    const ini = found?.ini ?? { head: [], sections: [] };
    const section = found?.section ?? { name: a.name, lines: [] };
    if (!found) ini.sections.push(section);
    const before = sectionValues(section);
    const changes: Record<string, { old: string; new: string }> = {};
    for (const [k, v] of want) if (before.get(k) !== v) changes[k] = { old: before.get(k) ?? '', new: v };
    if (!Object.keys(changes).length) return { changes: {}, comment: `Package repo '${a.name}' already configured`, writes: [] };
    setKeys(section, want);
    return {
      changes,
      comment: `Configured package repo '${a.name}' in ${file}`,
      writes: [{ path: file, content: serialiseIni(ini), mode: 0o644 }],
    };
  }

  async planAbsent(a: RepoArgs): Promise<RepoPlan> {
    const found = await this.find(a.name);
    if (!found) return { changes: {}, comment: `Package repo ${a.name} is absent`, writes: [] };
    found.ini.sections = found.ini.sections.filter((s) => s !== found.section);
    // a file left without repositories goes, as Salt's del_repo does
    const write: FileWrite = found.ini.sections.length
      ? { path: found.file, content: serialiseIni(found.ini), mode: 0o644 }
      : { path: found.file, content: null };
    return { changes: { repo: a.name }, comment: `Removed repo ${a.name} from ${found.file}`, writes: [write] };
  }
}
