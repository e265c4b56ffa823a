/**
 * git.latest (salt.states.git.latest): a checkout of `name` at `target`, kept at the remote's
 * `rev`. Decisions follow Salt: the remote is asked with `git ls-remote`; a tag, branch or SHA1
 * is resolved there; an update that is not a fast-forward (or would lose local changes) fails
 * unless `force_reset`; a non-empty non-git `target` fails unless `force_clone`.
 * A clone happens in a temp directory next to `target` and is renamed into place when it is
 * complete, so a failed clone leaves nothing behind.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as z from 'zod/mini';
import { accountNameArg, boolArg, defineState, programName, StateFailure, type StateModule } from './define.js';
import type { RunContext } from './context.js';
import { exec, type ExecOptions, type ExecResult } from '../run/exec.js';
import { runAsOptions, lookupUser } from './runas.js';

// a URL or rev starting with '-' would be a git option (`--upload-pack=...` runs a command)
const gitWord = (what: string) => z.union([programName(what), z.pipe(z.number(), z.transform(String))]);
const args = z.object({
  name: programName('git repository URL'),
  target: z.optional(z.string()),
  rev: z._default(gitWord('git rev'), 'HEAD'),
  branch: z.optional(gitWord('git branch')),
  user: z.optional(accountNameArg('user')),
  remote: z._default(programName('git remote'), 'origin'),
  // Salt also accepts 'remote-changes' (reset only for remote changes): treated as True here
  force_reset: z._default(
    z.pipe(
      z.union([boolArg, z.literal('remote-changes')]),
      z.transform((v) => v !== false),
    ),
    false,
  ),
  force_clone: z._default(boolArg, false),
  depth: z.optional(z.number().check(z.int(), z.positive())),
  submodules: z._default(boolArg, false),
});
type Args = z.output<typeof args>;

type RevType = 'sha1' | 'branch' | 'tag';

interface Remote {
  rev: string; // full SHA1, or the (possibly short) SHA1 the user gave
  type: RevType;
  /** `origin/<branch>` when rev is a branch, to set as the upstream */
  upstream?: string;
}

type Plan =
  | { kind: 'clone'; remote: Remote; forced: boolean }
  | {
      kind: 'update';
      remote: Remote;
      localRev: string | undefined;
      localBranch: string | undefined;
      hasRemoteRev: boolean;
      /** undefined: not known until fetched */
      fastForward: boolean | undefined;
      setUrl: boolean;
      resetOnly: boolean;
    };

class Git {
  constructor(
    private readonly opts: ExecOptions,
    private readonly cwd: string,
  ) {}

  run(argv: string[], cwd = this.cwd): Promise<ExecResult> {
    return exec(['git', ...argv], { ...this.opts, cwd });
  }

  async ok(argv: string[], cwd = this.cwd): Promise<string> {
    const r = await this.run(argv, cwd);
    if (r.code !== 0) {
      const msg = (r.stderr || r.stdout).trim().split('\n').slice(-4).join('\n');
      throw new StateFailure(`git ${argv.join(' ')} failed: ${msg}`);
    }
    return r.stdout.trim();
  }

  async maybe(argv: string[]): Promise<string | undefined> {
    const r = await this.run(argv);
    return r.code === 0 ? r.stdout.trim() : undefined;
  }
}

async function gitFor(user: string | undefined, cwd: string): Promise<Git> {
  // never prompt for credentials: an agent has nobody to answer
  const o = await runAsOptions(user, { GIT_TERMINAL_PROMPT: '0', LC_ALL: 'C' });
  return new Git({ ...o, timeoutMs: 30 * 60_000 }, cwd);
}

async function remoteRefs(ctx: RunContext, g: Git, name: string, user: string | undefined): Promise<Map<string, string>> {
  return ctx.facts.get(`git:ls-remote:${user ?? ''}:${name}`, async () => {
    const r = await g.run(['ls-remote', '--', name], '/');
    if (r.code !== 0) throw new StateFailure(`Failed to check remote refs: ${(r.stderr || r.stdout).trim()}`);
    const refs = new Map<string, string>();
    for (const line of r.stdout.split('\n')) {
      const [sha, ref] = line.split('\t');
      if (sha && ref) refs.set(ref, sha);
    }
    return refs;
  });
}

/** Salt's resolution order: HEAD, branch, annotated tag, tag, then anything hex as a SHA1. */
function resolveRev(refs: Map<string, string>, a: Args): Remote | undefined {
  const rev = a.rev;
  if (rev === 'HEAD') {
    const head = refs.get('HEAD');
    return head ? { rev: head, type: 'sha1' } : undefined;
  }
  const br = refs.get(`refs/heads/${rev}`);
  if (br) return { rev: br, type: 'branch', upstream: `${a.remote}/${rev}` };
  const tag = refs.get(`refs/tags/${rev}^{}`) ?? refs.get(`refs/tags/${rev}`);
  if (tag) return { rev: tag, type: 'tag' };
  if (/^[0-9a-fA-F]{4,40}$/.test(rev)) return { rev: rev.toLowerCase(), type: 'sha1' };
  return undefined;
}

function revsMatch(local: string | undefined, remote: Remote): boolean {
  if (!local) return false;
  return remote.type === 'sha1' ? local.startsWith(remote.rev) : local === remote.rev;
}

const short = (s: string | undefined) => (s ? s.slice(0, 7) : 'none');

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

const latest = defineState<typeof args, Plan>({
  args,
  async check(ctx, a) {
    if (!a.target) throw new StateFailure("'target' argument is required");
    const target = ctx.path(a.target);
    const g = await gitFor(a.user, isDir(path.join(target, '.git')) ? target : '/');
    const refs = await remoteRefs(ctx, g, a.name, a.user);
    const remote = resolveRev(refs, a);
    if (!remote) {
      if (a.rev !== 'HEAD') throw new StateFailure(`No revision matching '${a.rev}' exists in the remote repository`);
      throw new StateFailure(`Remote repository ${a.name} is empty, nothing to check out`);
    }
    if (a.depth !== undefined && remote.type !== 'branch') {
      throw new StateFailure("When 'depth' is used, 'rev' must be set to the name of a branch on the remote repository");
    }
    const newKey = `${a.name} => ${target}`;

    if (!isDir(path.join(target, '.git'))) {
      if (fs.existsSync(target) && !isDir(target)) throw new StateFailure(`Target '${target}' exists and is not a directory`);
      const nonEmpty = isDir(target) && fs.readdirSync(target).length > 0;
      if (nonEmpty && !a.force_clone) {
        throw new StateFailure(
          `Target '${target}' exists, is non-empty and is not a git repository. Set the 'force_clone' option to True ` +
            `to remove this directory's contents and proceed with cloning the remote repository`,
        );
      }
      const changes: Record<string, unknown> = { new: newKey, revision: { old: null, new: remote.rev } };
      if (nonEmpty) changes['forced clone'] = true;
      const comment = nonEmpty
        ? `Target directory ${target} exists. Since force_clone=True, the contents of ${target} would be deleted, and ${a.name} would be cloned into this directory.`
        : `Repository ${a.name} would be cloned to ${target}`;
      return { changes, comment, plan: { kind: 'clone', remote, forced: nonEmpty } };
    }

    const localRev = await g.maybe(['rev-parse', '--verify', '-q', 'HEAD']);
    const localBranch = await g.maybe(['symbolic-ref', '--short', '-q', 'HEAD']);
    const url = await g.maybe(['config', '--get', `remote.${a.remote}.url`]);
    const localChanges = localRev ? Boolean(await g.maybe(['diff', 'HEAD'])) : false;
    const needBranch = a.branch !== undefined && a.branch !== localBranch;
    const setUrl = url !== a.name;
    const changes: Record<string, unknown> = {};
    if (setUrl) changes.remote = { old: url ?? null, new: a.name };
    const matched = revsMatch(localRev, remote) && !needBranch;

    if (matched) {
      if (localChanges && a.force_reset) {
        changes['forced update'] = true;
        return {
          changes,
          comment: `${target} is up-to-date, but with local changes. Since 'force_reset' is enabled, these local changes would be reset.`,
          plan: { kind: 'update', remote, localRev, localBranch, hasRemoteRev: true, fastForward: false, setUrl, resetOnly: true },
        };
      }
      const comment = `Repository ${target} is up-to-date${localChanges ? ', but with uncommitted changes' : ''}`;
      if (!setUrl) return { comment };
      return {
        changes,
        comment: `Remote '${a.remote}' would be changed from ${url ?? 'nothing'} to ${a.name}`,
        plan: { kind: 'update', remote, localRev, localBranch, hasRemoteRev: true, fastForward: true, setUrl, resetOnly: false },
      };
    }

    // the revision we move from: the branch we will switch to, if it exists already
    let baseRev = localRev;
    if (needBranch) {
      baseRev = (await g.maybe(['rev-parse', '--verify', '-q', `refs/heads/${a.branch}^{commit}`])) ?? remote.rev;
    }
    const hasRemoteRev = (await g.run(['cat-file', '-e', `${remote.rev}^{commit}`])).code === 0;
    let fastForward: boolean | undefined;
    if (localChanges) fastForward = false;
    else if (hasRemoteRev) fastForward = !baseRev || (await g.run(['merge-base', '--is-ancestor', baseRev, remote.rev])).code === 0;
    if (fastForward === false && !a.force_reset) {
      throw new StateFailure(
        `Repository would be updated from ${short(baseRev)} to ${short(remote.rev)}, but this is not a fast-forward update` +
          `${localChanges ? ' (there are uncommitted local changes)' : ''}. Set 'force_reset' to True to force this update.`,
      );
    }
    changes.revision = { old: localRev ?? null, new: remote.rev };
    if (fastForward === false) changes['forced update'] = true;
    const how = fastForward === true ? 'fast-forwarded' : fastForward === false ? 'hard-reset' : 'updated';
    return {
      changes,
      comment: `Repository would be ${how} from ${short(localRev)} to ${short(remote.rev)}${hasRemoteRev ? '' : ` (after fetching '${a.remote}')`}`,
      plan: { kind: 'update', remote, localRev, localBranch, hasRemoteRev, fastForward, setUrl, resetOnly: false },
    };
  },

  async apply(ctx, a, plan) {
    if (!plan || !a.target) throw new Error('git.latest: apply without a plan');
    const target = ctx.path(a.target);
    return plan.kind === 'clone' ? clone(a, target, plan) : update(a, target, plan);
  },
});

async function clone(a: Args, target: string, plan: Extract<Plan, { kind: 'clone' }>) {
  const parent = path.dirname(target);
  fs.mkdirSync(parent, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(parent, `.tsalt-git-${path.basename(target)}-`));
  try {
    if (a.user) {
      const pw = await lookupUser(a.user);
      fs.chownSync(tmp, pw.uid, pw.gid);
    }
    const work = path.join(tmp, 'clone');
    const g = await gitFor(a.user, tmp);
    const opts = ['--origin', a.remote];
    if (a.depth !== undefined) opts.push('--depth', String(a.depth), '--branch', a.rev);
    const r = await g.run(['clone', ...opts, '--', a.name, work]);
    if (r.code !== 0) throw new StateFailure(`Clone failed: ${(r.stderr || r.stdout).trim()}`);
    const w = await gitFor(a.user, work);
    if (a.branch !== undefined) {
      const start = a.rev === 'HEAD' ? plan.remote.rev : (plan.remote.upstream ?? a.rev);
      await w.ok(['checkout', '-b', a.branch, start]);
    }
    const head = await w.maybe(['rev-parse', '--verify', '-q', 'HEAD']);
    if (!revsMatch(head, plan.remote)) {
      if ((await w.run(['cat-file', '-e', `${plan.remote.rev}^{commit}`])).code !== 0) {
        await w.ok(['fetch', a.remote, plan.remote.rev]);
      }
      await w.ok(['reset', '--hard', plan.remote.rev]);
    }
    await setUpstream(w, plan.remote);
    if (a.submodules) await w.ok(['submodule', 'update', '--init', '--recursive']);
    const newRev = await w.ok(['rev-parse', 'HEAD']);
    // only now touch target: a failure above leaves it as it was
    if (fs.existsSync(target)) fs.rmSync(target, { recursive: true, force: true });
    fs.renameSync(work, target);
    const changes: Record<string, unknown> = { new: `${a.name} => ${target}`, revision: { old: null, new: newRev } };
    if (plan.forced) changes['forced clone'] = true;
    return { changes, comment: `${a.name} cloned to ${target}` };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

async function setUpstream(g: Git, remote: Remote): Promise<void> {
  // Salt points the local branch at origin/<rev> when rev is a branch; tags and SHA1s track nothing
  if (!remote.upstream) return;
  const branch = await g.maybe(['symbolic-ref', '--short', '-q', 'HEAD']);
  if (!branch) return;
  if ((await g.maybe(['rev-parse', '--abbrev-ref', `${branch}@{upstream}`])) === remote.upstream) return;
  if ((await g.run(['rev-parse', '--verify', '-q', `refs/remotes/${remote.upstream}`])).code !== 0) return;
  await g.ok(['branch', `--set-upstream-to=${remote.upstream}`, branch]);
}

async function update(a: Args, target: string, plan: Extract<Plan, { kind: 'update' }>) {
  const g = await gitFor(a.user, target);
  const comments: string[] = [];
  const changes: Record<string, unknown> = {};
  if (plan.setUrl) {
    const had = await g.maybe(['config', '--get', `remote.${a.remote}.url`]);
    if (had === undefined) await g.ok(['remote', 'add', a.remote, a.name]);
    else await g.ok(['remote', 'set-url', a.remote, a.name]);
    changes.remote = { old: had ?? null, new: a.name };
    comments.push(`Remote '${a.remote}' set to ${a.name}`);
  }
  if (plan.resetOnly) {
    await g.ok(['reset', '--hard', 'HEAD']);
    changes['forced update'] = true;
    return { changes, comment: `Local changes in ${target} were discarded (force_reset)` };
  }
  if (revsMatch(plan.localRev, plan.remote) && (a.branch === undefined || a.branch === plan.localBranch)) {
    return { changes, comment: comments.join('. ') || `Repository ${target} is up-to-date` };
  }

  if (!plan.hasRemoteRev) {
    const fetch = ['fetch', a.remote];
    if (a.depth !== undefined) fetch.push('--depth', String(a.depth));
    await g.ok(fetch);
    if (plan.remote.type === 'tag') await g.ok(['fetch', a.remote, `+refs/tags/${a.rev}:refs/tags/${a.rev}`]);
    if ((await g.run(['cat-file', '-e', `${plan.remote.rev}^{commit}`])).code !== 0) {
      // a SHA1 that no advertised ref contains yet: ask for it directly
      await g.ok(['fetch', a.remote, plan.remote.rev]);
    }
  }
  let ff = plan.fastForward;
  const base = a.branch !== undefined && a.branch !== plan.localBranch
    ? ((await g.maybe(['rev-parse', '--verify', '-q', `refs/heads/${a.branch}^{commit}`])) ?? plan.remote.rev)
    : plan.localRev;
  if (ff === undefined) ff = !base || (await g.run(['merge-base', '--is-ancestor', base, plan.remote.rev])).code === 0;
  if (!ff && !a.force_reset) {
    throw new StateFailure(
      `Repository would be updated from ${short(base)} to ${short(plan.remote.rev)}, but this is not a fast-forward update. ` +
        `Set 'force_reset' to True to force this update.`,
      changes,
    );
  }

  if (a.branch !== undefined && a.branch !== plan.localBranch) {
    const exists = (await g.run(['rev-parse', '--verify', '-q', `refs/heads/${a.branch}`])).code === 0;
    const force = a.force_reset ? ['-f'] : [];
    if (exists) await g.ok(['checkout', ...force, a.branch]);
    else await g.ok(['checkout', ...force, '-b', a.branch, plan.remote.rev]);
    comments.push(`Branch '${a.branch}' checked out`);
  }
  if (ff) await g.ok(['merge', '--ff-only', plan.remote.rev]);
  else {
    await g.ok(['reset', '--hard', plan.remote.rev]);
    changes['forced update'] = true;
  }
  await setUpstream(g, plan.remote);
  if (a.submodules) await g.ok(['submodule', 'update', '--init', '--recursive']);
  const newRev = await g.ok(['rev-parse', 'HEAD']);
  changes.revision = { old: plan.localRev ?? null, new: newRev };
  comments.push(`Repository ${target} ${ff ? 'fast-forwarded' : 'hard-reset'} from ${short(plan.localRev)} to ${short(newRev)}`);
  return { changes, comment: comments.join('. ') };
}

export default { latest } satisfies StateModule;
