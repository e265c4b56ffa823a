/**
 * The config repository as the master reads it: git objects only (`--git-dir`), never a work
 * tree, so a bare repository operators push to and a clone with local edits read the same.
 * Every read names a commit; what a branch points to is asked once per job and then pinned.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exec, execOk } from '../engine/run/exec.js';
import type { BundleEntry } from '../engine/tree/bundle.js';
import type { Logger } from '../core/log.js';

export class GitError extends Error {}

export interface CommitInfo {
  sha: string;
  /** committer date, ISO 8601 */
  date: string;
  author: string;
  subject: string;
  parents: string[];
}

const SHA = /^[0-9a-f]{40}$/;

export class GitRepo {
  private constructor(
    /** the repository as configured */
    readonly repo: string,
    /** its git directory (the repository itself when bare, `.git` of a clone) */
    readonly gitDir: string,
  ) {}

  /** Opens `repo`; a clear error when it is missing or not a git repository. */
  static async open(repo: string): Promise<GitRepo> {
    if (!fs.existsSync(repo)) throw new GitError(`git.repo ${repo} does not exist (create it with \`git init --bare ${repo}\`)`);
    const r = await exec(['git', '-C', repo, 'rev-parse', '--absolute-git-dir']);
    if (r.code !== 0) throw new GitError(`git.repo ${repo} is not a git repository`);
    const gitDir = r.stdout.trim();
    // a directory inside some other repository is not that repository
    const top = await exec(['git', '-C', repo, 'rev-parse', '--is-bare-repository', '--show-toplevel']);
    const [bare, toplevel] = top.stdout.split('\n');
    if (bare !== 'true' && toplevel && path.resolve(toplevel) !== fs.realpathSync(repo)) {
      throw new GitError(`git.repo ${repo} is not a git repository (it is a directory inside ${toplevel})`);
    }
    return new GitRepo(repo, gitDir);
  }

  private git(args: string[]) {
    return exec(['git', '--git-dir', this.gitDir, ...args]);
  }

  /** The commit a branch points to now; undefined when the branch does not exist (yet). */
  async branchHead(branch: string): Promise<string | undefined> {
    const r = await this.git(['rev-parse', '--verify', '--quiet', `refs/heads/${branch}^{commit}`]);
    return r.code === 0 ? r.stdout.trim() : undefined;
  }

  async branches(): Promise<string[]> {
    const r = await this.git(['for-each-ref', '--format=%(refname:short)', 'refs/heads/']);
    return r.stdout.split('\n').filter(Boolean);
  }

  /** A revision expression (sha, tag, `main~1`) to its commit; a clear error when it does not resolve. */
  async resolve(rev: string): Promise<string> {
    // --end-of-options keeps git from reading a revision as an option
    const r = await this.git(['rev-parse', '--verify', '--quiet', '--end-of-options', `${rev}^{commit}`]);
    if (r.code !== 0) throw new GitError(`unknown revision '${rev}' in ${this.repo}`);
    return r.stdout.trim();
  }

  /** Whether `ancestor` is `commit` or one of its ancestors. */
  async isAncestor(ancestor: string, commit: string): Promise<boolean> {
    const r = await this.git(['merge-base', '--is-ancestor', ancestor, commit]);
    if (r.code > 1) throw new GitError(`git merge-base ${ancestor} ${commit}: ${r.stderr.trim()}`);
    return r.code === 0;
  }

  async commitInfo(sha: string): Promise<CommitInfo> {
    if (!SHA.test(sha)) sha = await this.resolve(sha);
    const r = await this.git(['show', '-s', '--format=%H%x00%cI%x00%an <%ae>%x00%s%x00%P', sha]);
    if (r.code !== 0) throw new GitError(`commit ${sha} not found in ${this.repo}`);
    const [h = sha, date = '', author = '', subject = '', parents = ''] = r.stdout.replace(/\n$/, '').split('\0');
    return { sha: h, date, author, subject, parents: parents.split(' ').filter(Boolean) };
  }

  /** Whether `dir` (a path inside the repository) is a directory at `commit`. */
  async hasDir(commit: string, dir: string): Promise<boolean> {
    const r = await this.git(['cat-file', '-t', `${commit}:${dir}`]);
    return r.code === 0 && r.stdout.trim() === 'tree';
  }

  /**
   * The files of `dir` at `commit`, paths relative to `dir`, read from git objects (`git
   * archive` of the tree object), links that leave the directory left out.
   */
  async files(commit: string, dir: string, log?: Logger): Promise<BundleEntry[]> {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsalt-git-'));
    try {
      const tar = path.join(tmp, 'tree.tar');
      const out = path.join(tmp, 'tree');
      fs.mkdirSync(out);
      await execOk(['git', '--git-dir', this.gitDir, 'archive', '--format=tar', '-o', tar, dir ? `${commit}:${dir}` : commit]);
      await execOk(['tar', '-x', '--no-same-owner', '-f', tar, '-C', out]);
      return walkFiles(out, log);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
}

/** Regular files under `root` (links only when they stay inside), '/'-separated, sorted. */
export function walkFiles(root: string, log?: Logger): BundleEntry[] {
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
        log?.warn(`tree: ${child} links outside the tree; left out`);
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
