/**
 * The state tree on the master, by revision. A git work tree pins jobs to a commit: the bundle
 * is built from `git archive` of that commit (committed files only, under the tree directory);
 * a plain directory is bundled as it is, its revision being the content hash.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exec, execOk } from '../engine/run/exec.js';
import { bundleHash, type BundleEntry } from '../engine/tree/bundle.js';
import type { Logger } from '../core/log.js';

export interface BuiltBundle {
  revision: string;
  hash: string;
  entries: BundleEntry[];
  bytes: number;
}

/** Regular files under `root` (links only when they stay inside), '/'-separated, sorted. */
function walk(root: string, log?: Logger): BundleEntry[] {
  const rootReal = fs.realpathSync(root);
  const out: BundleEntry[] = [];
  const rec = (rel: string) => {
    for (const ent of fs.readdirSync(path.join(rootReal, rel), { withFileTypes: true })) {
      if (!rel && ent.name === '.git') continue;
      const child = rel ? `${rel}/${ent.name}` : ent.name;
      const abs = path.join(rootReal, child);
      let real: string;
      try {
        real = fs.realpathSync(abs);
      } catch {
        continue; // dangling link
      }
      if (real !== rootReal && !real.startsWith(rootReal + path.sep)) {
        log?.warn(`tree: ${child} links outside the state tree; left out of the bundle`);
        continue;
      }
      const st = fs.statSync(real);
      if (st.isDirectory()) {
        if (!ent.isSymbolicLink()) rec(child);
      } else if (st.isFile()) {
        out.push({ path: child, data: fs.readFileSync(real), executable: (st.mode & 0o111) !== 0 });
      }
    }
  };
  rec('');
  return out.sort((a, b) => (a.path < b.path ? -1 : 1));
}

export class StateTree {
  private readonly cache = new Map<string, Promise<BuiltBundle>>();
  private git: Promise<{ prefix: string; top: string } | null> | undefined;

  constructor(
    readonly dir: string,
    private readonly log?: Logger,
  ) {}

  /**
   * Whether the tree is in git (and where). Only a positive answer is kept: a tree that is
   * missing or not in git yet is asked again next time (created or `git init`ed later).
   */
  private isGit(): Promise<{ prefix: string; top: string } | null> {
    this.git ??= (async () => {
      if (!fs.existsSync(this.dir)) throw new Error(`state tree ${this.dir} does not exist`);
      const r = await exec(['git', '-C', this.dir, 'rev-parse', '--show-toplevel', '--show-prefix']);
      if (r.code !== 0) return null;
      const [top = this.dir, prefix = ''] = r.stdout.split('\n');
      return { top, prefix: prefix.trim() };
    })();
    const pending = this.git;
    pending.then(
      (g) => {
        if (!g && this.git === pending) this.git = undefined;
      },
      () => {
        if (this.git === pending) this.git = undefined;
      },
    );
    return pending;
  }

  /** The revision a new job pins: HEAD's commit, or `dir-<hash>` for a plain directory. */
  async current(): Promise<BuiltBundle> {
    const g = await this.isGit();
    if (!g) {
      const entries = walk(this.dir, this.log);
      const hash = bundleHash(entries);
      return { revision: `dir-${hash.slice(0, 12)}`, hash, entries, bytes: entries.reduce((n, e) => n + e.data.length, 0) };
    }
    const r = await exec(['git', '-C', this.dir, 'rev-parse', '--verify', 'HEAD^{commit}']);
    if (r.code !== 0) throw new Error(`state tree ${this.dir} is a git work tree without a commit: commit the states first`);
    return this.atCommit(r.stdout.trim(), g);
  }

  /** HEAD's commit, or undefined for a plain directory (nothing to roll out automatically). */
  async head(): Promise<string | undefined> {
    if (!(await this.isGit())) return undefined;
    const r = await exec(['git', '-C', this.dir, 'rev-parse', '--verify', '--quiet', 'HEAD^{commit}']);
    return r.code === 0 ? r.stdout.trim() : undefined;
  }

  /**
   * The bundle of a given revision (commit, tag, `HEAD~1`, ...) for rollbacks and roll-forwards;
   * without one, HEAD. Only committed files of the tree directory are in it.
   */
  async at(revision?: string): Promise<BuiltBundle> {
    if (revision === undefined) return this.current();
    const g = await this.isGit();
    if (!g) throw new Error(`--revision needs the state tree in git; ${this.dir} is a plain directory`);
    // the schema already refused a leading '-'; --end-of-options keeps git from reading one anyway
    const r = await exec(['git', '-C', this.dir, 'rev-parse', '--verify', '--quiet', '--end-of-options', `${revision}^{commit}`]);
    if (r.code !== 0) throw new Error(`unknown revision '${revision}' in ${this.dir}`);
    return this.atCommit(r.stdout.trim(), g);
  }

  private atCommit(commit: string, g: { prefix: string; top: string }): Promise<BuiltBundle> {
    let p = this.cache.get(commit);
    if (!p) {
      p = this.build(commit, g);
      this.cache.set(commit, p);
      p.catch(() => this.cache.delete(commit));
      if (this.cache.size > 8) this.cache.delete(this.cache.keys().next().value!);
    }
    return p;
  }

  private async build(commit: string, { prefix, top }: { prefix: string; top: string }): Promise<BuiltBundle> {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsalt-bundle-'));
    try {
      const tar = path.join(tmp, 'tree.tar');
      const out = path.join(tmp, 'tree');
      fs.mkdirSync(out);
      // `<commit>:<prefix>` archives the tree directory itself, paths relative to it; run at
      // the top level, as git archive limits itself to the cwd when run in a subdirectory
      const treeish = prefix ? `${commit}:${prefix.replace(/\/$/, '')}` : commit;
      await execOk(['git', '-C', top, 'archive', '--format=tar', '-o', tar, treeish]);
      await execOk(['tar', '-x', '--no-same-owner', '-f', tar, '-C', out]);
      const entries = walk(out, this.log);
      const hash = bundleHash(entries);
      this.log?.info(`tree: bundled revision ${commit.slice(0, 12)}: ${entries.length} files, hash ${hash.slice(0, 12)}`);
      return { revision: commit, hash, entries, bytes: entries.reduce((n, e) => n + e.data.length, 0) };
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
}
