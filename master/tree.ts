/**
 * Where the master's states and pillar come from, by revision. A job pins one revision and gets
 * both its state bundle and its pillar from that same revision (a Snapshot):
 *
 * - `git:` (GitSource): one repository, bare or a clone, read from git objects only. A revision
 *   is a commit; the states are `<commit>:<states_dir>`, the pillar `<commit>:<pillar_dir>`.
 * - `state_tree` / `pillar_tree` (StateTree): directories for labs. A state tree in a git work
 *   tree pins its HEAD commit (committed files only); a plain one is bundled as it is, its
 *   revision `dir-<hash>`. The pillar directory is read as it is at job time.
 */
import fs from 'node:fs';
import path from 'node:path';
import { exec } from '../engine/run/exec.js';
import { bundleHash, type BundleEntry } from '../engine/tree/bundle.js';
import { LocalTree } from '../engine/tree/local.js';
import type { TreeSource } from '../engine/tree/source.js';
import type { Logger } from '../core/log.js';
import { GitError, GitRepo, walkFiles, type CommitInfo } from './git.js';
import { MemoryTree } from './pillar.js';

export interface BuiltBundle {
  revision: string;
  hash: string;
  entries: BundleEntry[];
  bytes: number;
}

/** One revision of states and pillar, as a job uses it. */
export interface Snapshot {
  revision: string;
  bundle: BuiltBundle;
  /** the pillar tree at this revision; undefined when there is none */
  pillar(): TreeSource | undefined;
}

export interface ConfigSource {
  /** for messages: what the master serves */
  readonly label: string;
  /** Checks the configuration at start-up; throws an error naming what is wrong. */
  check(): Promise<void>;
  /** The released commit (the branch head, or the work tree's HEAD); undefined: none (yet), or plain directories. */
  head(): Promise<string | undefined>;
  /** The states and pillar of a revision (default: head); errors name the revision and what is missing. */
  snapshot(revision?: string): Promise<Snapshot>;
  /** Commit details, for `tsalt revisions`; undefined for plain directories. */
  commitInfo(revision: string): Promise<CommitInfo | undefined>;
  /** Whether `ancestor` is `commit` or an ancestor of it (plain directories: always true). */
  isAncestor(ancestor: string, commit: string): Promise<boolean>;
  /** Files and directories whose change may mean the head moved (fs.watch), existing now. */
  watchPaths(): Promise<string[]>;
}

const sum = (entries: BundleEntry[]) => entries.reduce((n, e) => n + e.data.length, 0);

function bundleOf(revision: string, entries: BundleEntry[]): BuiltBundle {
  return { revision, hash: bundleHash(entries), entries, bytes: sum(entries) };
}

/** A small cache of recent revisions' snapshots; failed builds are not kept. */
class SnapshotCache {
  private readonly m = new Map<string, Promise<Snapshot>>();
  get(key: string, build: () => Promise<Snapshot>): Promise<Snapshot> {
    let p = this.m.get(key);
    if (!p) {
      p = build();
      this.m.set(key, p);
      p.catch(() => this.m.delete(key));
      if (this.m.size > 8) this.m.delete(this.m.keys().next().value!);
    }
    return p;
  }
}

// ------------------------------------------------------------------ git: one repository

export interface GitSourceConfig {
  repo: string;
  branch: string;
  states_dir: string;
  pillar_dir: string;
}

export class GitSource implements ConfigSource {
  readonly label: string;
  private repoP: Promise<GitRepo> | undefined;
  private readonly cache = new SnapshotCache();

  constructor(
    readonly cfg: GitSourceConfig,
    private readonly log?: Logger,
  ) {
    this.label = `git repository ${cfg.repo} (branch ${cfg.branch})`;
  }

  /** Opened on first use; a repository that is missing now is looked for again next time. */
  repo(): Promise<GitRepo> {
    if (!this.repoP) {
      const p = GitRepo.open(this.cfg.repo);
      this.repoP = p;
      p.catch(() => {
        if (this.repoP === p) this.repoP = undefined;
      });
    }
    return this.repoP;
  }

  async check(): Promise<void> {
    const repo = await this.repo();
    if (await repo.branchHead(this.cfg.branch)) return;
    const branches = await repo.branches();
    // an empty repository (`git init --bare`, nothing pushed yet) waits for its first push
    if (branches.length === 0) {
      this.log?.warn(`${this.cfg.repo} has no commits yet: push branch ${this.cfg.branch} to it`);
      return;
    }
    throw new GitError(`git.branch '${this.cfg.branch}' does not exist in ${this.cfg.repo} (branches: ${branches.join(', ')})`);
  }

  async head(): Promise<string | undefined> {
    return (await this.repo()).branchHead(this.cfg.branch);
  }

  async snapshot(revision?: string): Promise<Snapshot> {
    const repo = await this.repo();
    let commit: string;
    if (revision === undefined) {
      const h = await repo.branchHead(this.cfg.branch);
      if (!h) throw new GitError(`branch ${this.cfg.branch} does not exist in ${this.cfg.repo}: push it first`);
      commit = h;
    } else {
      commit = await repo.resolve(revision);
    }
    return this.cache.get(commit, () => this.build(repo, commit));
  }

  private async build(repo: GitRepo, commit: string): Promise<Snapshot> {
    const { states_dir: sd, pillar_dir: pd } = this.cfg;
    const short = commit.slice(0, 12);
    if (!(await repo.hasDir(commit, sd))) throw new GitError(`revision ${short} has no ${sd}/ directory (git.states_dir) in ${this.cfg.repo}`);
    // both read from the one commit: a push in between cannot mix two revisions
    const [states, pillar] = await Promise.all([
      repo.files(commit, sd, this.log),
      repo.hasDir(commit, pd).then((has) => (has ? repo.files(commit, pd, this.log) : [])),
    ]);
    if (!states.some((e) => e.path === 'top.sls')) throw new GitError(`revision ${short} has no top.sls in ${sd}/ of ${this.cfg.repo}`);
    const bundle = bundleOf(commit, states);
    this.log?.info(`tree: revision ${short}: ${states.length} state file(s) (bundle ${bundle.hash.slice(0, 12)}), ${pillar.length} pillar file(s)`);
    const pillarTree = pillar.length ? new MemoryTree(`pillar at revision ${short}`, pillar) : undefined;
    return { revision: commit, bundle, pillar: () => pillarTree };
  }

  async commitInfo(revision: string): Promise<CommitInfo> {
    return (await this.repo()).commitInfo(revision);
  }

  async isAncestor(ancestor: string, commit: string): Promise<boolean> {
    return (await this.repo()).isAncestor(ancestor, commit);
  }

  async watchPaths(): Promise<string[]> {
    const g = (await this.repo()).gitDir;
    // a push renames refs/heads/<branch>.lock onto the ref; `git gc` rewrites packed-refs
    const refDir = path.dirname(path.join(g, 'refs/heads', this.cfg.branch));
    return [g, path.join(g, 'refs/heads'), refDir].filter((p, i, a) => a.indexOf(p) === i && fs.existsSync(p));
  }
}

// ------------------------------------------------------------------ state_tree / pillar_tree

interface WorkTree {
  prefix: string;
  top: string;
  gitDir: string;
}

export class StateTree implements ConfigSource {
  readonly label: string;
  private readonly cache = new SnapshotCache();
  private git: Promise<WorkTree | null> | undefined;

  constructor(
    readonly dir: string,
    private readonly log?: Logger,
    readonly pillarDir?: string,
  ) {
    this.label = `state tree ${dir}`;
  }

  async check(): Promise<void> {
    if (!fs.existsSync(this.dir)) return; // created later: asked again at each job
    // a bare repository as state_tree would be bundled as git's own files
    const r = await probeGit(['-C', this.dir, 'rev-parse', '--is-bare-repository']);
    if (r?.code === 0 && r.stdout.trim() === 'true') {
      throw new GitError(`state_tree ${this.dir} is a bare git repository: serve it with \`git: {repo: ${this.dir}}\` instead of state_tree`);
    }
  }

  /**
   * Whether the tree is in git (and where). Only a positive answer is kept: a tree that is
   * missing or not in git yet is asked again next time (created or `git init`ed later).
   */
  private isGit(): Promise<WorkTree | null> {
    this.git ??= (async () => {
      if (!fs.existsSync(this.dir)) throw new Error(`state tree ${this.dir} does not exist`);
      const r = await probeGit(['-C', this.dir, 'rev-parse', '--show-toplevel', '--show-prefix', '--absolute-git-dir']);
      if (!r || r.code !== 0) return null;
      const [top = this.dir, prefix = '', gitDir = ''] = r.stdout.split('\n');
      return { top, prefix: prefix.trim(), gitDir: gitDir.trim() };
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

  private pillarTree(): TreeSource | undefined {
    return this.pillarDir && fs.existsSync(this.pillarDir) ? new LocalTree(this.pillarDir) : undefined;
  }

  /** The revision a new job pins: HEAD's commit, or `dir-<hash>` for a plain directory. */
  async current(): Promise<BuiltBundle> {
    return (await this.snapshot()).bundle;
  }

  /** HEAD's commit, or undefined for a plain directory (nothing to roll out automatically). */
  async head(): Promise<string | undefined> {
    if (!(await this.isGit())) return undefined;
    const r = await exec(['git', '-C', this.dir, 'rev-parse', '--verify', '--quiet', 'HEAD^{commit}']);
    return r.code === 0 ? r.stdout.trim() : undefined;
  }

  /** The bundle of a given revision (commit, tag, `HEAD~1`, ...); without one, HEAD. */
  async at(revision?: string): Promise<BuiltBundle> {
    return (await this.snapshot(revision)).bundle;
  }

  async snapshot(revision?: string): Promise<Snapshot> {
    const g = await this.isGit();
    if (!g) {
      if (revision !== undefined && !revision.startsWith('dir-')) {
        throw new Error(`--revision needs the state tree in git; ${this.dir} is a plain directory`);
      }
      const bundle = bundleOf('', walkFiles(this.dir, this.log));
      bundle.revision = `dir-${bundle.hash.slice(0, 12)}`;
      // a plain directory has one revision, what it holds now
      if (revision !== undefined && revision !== bundle.revision) {
        throw new Error(`revision ${revision} of plain directory ${this.dir} is gone (it now holds ${bundle.revision})`);
      }
      return { revision: bundle.revision, bundle, pillar: () => this.pillarTree() };
    }
    let commit: string;
    if (revision === undefined) {
      const r = await exec(['git', '-C', this.dir, 'rev-parse', '--verify', 'HEAD^{commit}']);
      if (r.code !== 0) throw new Error(`state tree ${this.dir} is a git work tree without a commit: commit the states first`);
      commit = r.stdout.trim();
    } else {
      // the schema already refused a leading '-'; --end-of-options keeps git from reading one anyway
      const r = await exec(['git', '-C', this.dir, 'rev-parse', '--verify', '--quiet', '--end-of-options', `${revision}^{commit}`]);
      if (r.code !== 0) throw new Error(`unknown revision '${revision}' in ${this.dir}`);
      commit = r.stdout.trim();
    }
    const snap = await this.cache.get(commit, async () => {
      const repo = await GitRepo.open(g.top);
      const entries = await repo.files(commit, g.prefix.replace(/\/$/, ''), this.log);
      const bundle = bundleOf(commit, entries);
      this.log?.info(`tree: bundled revision ${commit.slice(0, 12)}: ${entries.length} files, hash ${bundle.hash.slice(0, 12)}`);
      return { revision: commit, bundle, pillar: () => undefined };
    });
    // the pillar directory is not in the revision: read as it is now (labs; use git: to pin it)
    return { ...snap, pillar: () => this.pillarTree() };
  }

  async commitInfo(revision: string): Promise<CommitInfo | undefined> {
    const g = await this.isGit();
    if (!g) return undefined;
    return (await GitRepo.open(g.top)).commitInfo(revision);
  }

  async isAncestor(ancestor: string, commit: string): Promise<boolean> {
    const g = await this.isGit();
    if (!g) return true;
    return (await GitRepo.open(g.top)).isAncestor(ancestor, commit);
  }

  async watchPaths(): Promise<string[]> {
    const g = await this.isGit().catch(() => null);
    if (!g) return [];
    // HEAD, packed-refs, and the loose ref of the branch checked out
    const head = fs.readFileSync(path.join(g.gitDir, 'HEAD'), 'utf8').trim();
    const ref = head.startsWith('ref: ') ? path.dirname(path.join(g.gitDir, head.slice(5))) : undefined;
    return [g.gitDir, ...(ref ? [ref] : [])].filter((p, i, a) => a.indexOf(p) === i && fs.existsSync(p));
  }
}

/**
 * git asked about a plain state tree: on a master without git installed the answer is "not in
 * git" (a lab's plain directory needs no git), never a failed start.
 */
async function probeGit(args: string[]): Promise<Awaited<ReturnType<typeof exec>> | undefined> {
  try {
    return await exec(['git', ...args]);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}
