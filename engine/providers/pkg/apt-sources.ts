/**
 * apt sources as one-line entries (`deb [opts] uri suite comp...`) in sources.list and
 * sources.list.d/*.list. An entry matches another when type, options, URI, suite and the set of
 * components agree, whatever the spacing.
 */
// node:fs/promises is loaded on first use (fs.promises), not by every run that imports this
import fs from 'node:fs';
import path from 'node:path';
import { PkgError, type FileWrite, type RepoArgs, type RepoBackend, type RepoPlan } from './types.js';

export interface SourceLine {
  disabled: boolean;
  type: string;
  options: string[];
  uri: string;
  dist: string;
  comps: string[];
}

const LINE = /^\s*(#\s*)?(deb|deb-src)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)(?:\s+([^#]*))?\s*(?:#.*)?$/;

export function parseSource(line: string): SourceLine | undefined {
  const m = LINE.exec(line);
  if (!m) return undefined;
  return {
    disabled: Boolean(m[1]),
    type: m[2]!,
    options: (m[3] ?? '').split(/\s+/).filter(Boolean).sort(),
    uri: m[4]!.replace(/\/+$/, ''),
    dist: m[5]!,
    comps: (m[6] ?? '').split(/\s+/).filter(Boolean).sort(),
  };
}

function sameSource(a: SourceLine, b: SourceLine): boolean {
  return (
    a.type === b.type &&
    a.uri === b.uri &&
    a.dist === b.dist &&
    a.options.join(' ') === b.options.join(' ') &&
    a.comps.join(' ') === b.comps.join(' ')
  );
}

async function readOr(file: string): Promise<string | undefined> {
  try {
    return await fs.promises.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

const withNewline = (lines: string[]) => (lines.length ? lines.join('\n').replace(/\n*$/, '\n') : '');

export class AptSources implements RepoBackend {
  constructor(readonly etcApt: string) {}

  /** Every source file apt reads, plus the state's own `file` (which may live elsewhere). */
  private async files(extra?: string): Promise<string[]> {
    const list = [path.join(this.etcApt, 'sources.list')];
    try {
      const d = path.join(this.etcApt, 'sources.list.d');
      for (const e of (await fs.promises.readdir(d)).sort()) if (e.endsWith('.list')) list.push(path.join(d, e));
    } catch {
      /* no sources.list.d */
    }
    if (extra && !list.includes(extra)) list.push(extra);
    return list;
  }

  private wanted(a: RepoArgs): SourceLine {
    const w = parseSource(a.name);
    if (!w || w.disabled) {
      throw new PkgError(`'${a.name}' is not an apt source line like 'deb http://deb.example.org/debian bookworm main'`);
    }
    return w;
  }

  async planManaged(a: RepoArgs): Promise<RepoPlan> {
    const want = this.wanted(a);
    const disabled = a.enabled === false;
    const line = `${disabled ? '# ' : ''}${a.name.trim().replace(/\s+/g, ' ')}`;
    const target = a.file ?? path.join(this.etcApt, 'sources.list');
    const changes: Record<string, unknown> = {};
    const writes: FileWrite[] = [];

    // where is it now? (a state without `file` accepts the entry wherever apt reads it)
    let present = false;
    let oldLine = '';
    for (const f of a.file ? [a.file] : await this.files()) {
      for (const l of ((await readOr(f)) ?? '').split('\n')) {
        const s = parseSource(l);
        if (!s || !sameSource(s, want)) continue;
        oldLine = l;
        if (s.disabled === disabled) present = true;
      }
    }
    const text = (await readOr(target)) ?? '';
    const lines = text.split('\n').filter((l, i, all) => i < all.length - 1 || l !== '');
    let next: string[];
    if (a.clean_file) {
      next = [line];
    } else if (present) {
      next = lines;
    } else {
      // replace a matching entry with the other enabled state, else append
      let replaced = false;
      next = lines.map((l) => {
        const s = parseSource(l);
        if (s && sameSource(s, want) && !replaced) {
          replaced = true;
          return line;
        }
        return l;
      });
      if (!replaced) next.push(line);
    }
    const content = withNewline(next);
    if (content !== text) {
      changes.repo = { old: oldLine, new: line };
      writes.push({ path: target, content, mode: 0o644 });
    }

    if (a.key) {
      const keyPath = this.keyPath(want, target, a.key.data);
      const cur = await fs.promises.readFile(keyPath).catch(() => undefined);
      if (!cur || !cur.equals(a.key.data)) {
        changes.key_url = { old: cur ? keyPath : '', new: a.key.url };
        // the key first: a source apt cannot verify would break `apt-get update`
        writes.unshift({ path: keyPath, content: a.key.data, mode: 0o644 });
      }
    }
    if (!writes.length) return { changes: {}, comment: `Package repo '${a.name}' already configured`, writes };
    return { changes, comment: `Configured package repo '${a.name}' in ${target}`, writes };
  }

  /** `signed-by=` names the keyring; otherwise the key is trusted apt-wide, as apt-key add did. */
  private keyPath(s: SourceLine, target: string, data: Buffer): string {
    const signed = s.options.find((o) => o.startsWith('signed-by='));
    if (signed) return signed.slice('signed-by='.length);
    const armored = data.subarray(0, 64).toString('latin1').includes('-----BEGIN PGP');
    return path.join(this.etcApt, 'trusted.gpg.d', `${path.basename(target, '.list')}.${armored ? 'asc' : 'gpg'}`);
  }

  async planAbsent(a: RepoArgs): Promise<RepoPlan> {
    const want = this.wanted(a);
    const writes: FileWrite[] = [];
    for (const f of await this.files(a.file)) {
      const text = await readOr(f);
      if (text === undefined) continue;
      const lines = text.split('\n');
      const kept = lines.filter((l) => {
        const s = parseSource(l);
        return !(s && sameSource(s, want));
      });
      if (kept.length === lines.length) continue;
      // a file left with nothing but comments goes; sources.list itself always stays
      const empty = kept.every((l) => l.trim() === '' || l.trim().startsWith('#'));
      writes.push(
        empty && path.basename(f) !== 'sources.list'
          ? { path: f, content: null }
          : { path: f, content: withNewline(kept.filter((l, i) => i < kept.length - 1 || l !== '')), mode: 0o644 },
      );
    }
    if (!writes.length) return { changes: {}, comment: `Package repo ${a.name} is absent`, writes };
    return { changes: { repo: a.name }, comment: `Removed repo ${a.name}`, writes };
  }
}
