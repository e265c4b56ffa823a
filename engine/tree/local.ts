/** A state tree that is a directory on this machine (masterless mode, and the master's checkout). */
import fs from 'node:fs';
import path from 'node:path';
import { normaliseTreePath, TreeError, type TreeSource } from './source.js';

export class LocalTree implements TreeSource {
  readonly label: string;
  private readonly rootReal: string;

  constructor(readonly dir: string) {
    this.label = dir;
    this.rootReal = fs.realpathSync.native(dir); // realpath(3), as resolve() does: the JS version lstats each component
  }

  /** Absolute path of a tree file, after checking symlinks do not lead outside the tree. */
  resolve(p: string): string {
    const rel = normaliseTreePath(p);
    const abs = path.join(this.rootReal, rel);
    let real: string;
    try {
      real = fs.realpathSync.native(abs); // realpath(3): the JS version walks path components
    } catch {
      return abs; // missing: callers report it as missing, not as an escape
    }
    if (real !== this.rootReal && !real.startsWith(this.rootReal + path.sep)) {
      throw new TreeError(`salt://${rel} resolves outside the state tree (${this.label})`);
    }
    return real;
  }

  async read(p: string): Promise<Buffer> {
    return this.readSync(p);
  }

  readSync(p: string): Buffer {
    const abs = this.resolve(p);
    try {
      return fs.readFileSync(abs);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new TreeError(`salt://${normaliseTreePath(p)} not found in ${this.label}`);
      if (code === 'EISDIR') throw new TreeError(`salt://${normaliseTreePath(p)} is a directory`);
      throw e;
    }
  }

  async exists(p: string): Promise<boolean> {
    return this.existsSync(p);
  }

  existsSync(p: string): boolean {
    try {
      return fs.statSync(this.resolve(p)).isFile();
    } catch (e) {
      if (e instanceof TreeError) throw e;
      return false;
    }
  }

  async list(dir: string): Promise<string[]> {
    const base = normaliseTreePath(dir);
    const out: string[] = [];
    const walk = (rel: string) => {
      const abs = this.resolve(rel);
      for (const ent of fs.readdirSync(abs, { withFileTypes: true })) {
        const child = rel ? `${rel}/${ent.name}` : ent.name;
        if (ent.isDirectory()) walk(child);
        else if (ent.isFile() || ent.isSymbolicLink()) {
          this.resolve(child); // refuses links that leave the tree
          out.push(child);
        }
      }
    };
    walk(base);
    return out.sort();
  }
}
