/**
 * Salt's `pkgrepo.managed` / `pkgrepo.absent`: a yum/dnf `.repo` section or an apt source line.
 * The provider's RepoBackend computes the file contents (read-only); this module writes them
 * atomically and refreshes the package metadata, putting the old files back if that fails.
 * Paths are the machine's (not --root); dnf's repo dir follows its install root.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as z from 'zod/mini';
import { boolArg, defineState, StateFailure, type StateModule } from './define.js';
import type { RunContext } from './context.js';
import { PkgError, type FileWrite, type PkgProvider, type RepoArgs, type RepoPlan } from '../providers/pkg/types.js';
import { tempName } from './file/atomic-write.js';
import { refuseSpecial } from './file/paths.js';

// yum writes flags as 1/0; trees write them as booleans, numbers or strings
const flagArg = z.pipe(
  z.union([boolArg, z.literal(0), z.literal(1), z.literal('0'), z.literal('1')]),
  z.transform((v) => v === true || v === 1 || v === '1'),
);
const scalar = z.union([z.string(), z.number(), z.boolean()]);

// Keys handled here; anything else is a yum repo option written as given (priority, sslverify, ...).
const args = z.catchall(
  z.object({
    name: z.string().check(z.minLength(1)),
    humanname: z.optional(z.string()),
    baseurl: z.optional(z.string()),
    mirrorlist: z.optional(z.string()),
    metalink: z.optional(z.string()),
    gpgcheck: z.optional(flagArg),
    gpgkey: z.optional(z.string()),
    enabled: z.optional(flagArg),
    /** older Salt spelling, the inverse of `enabled` */
    disabled: z.optional(flagArg),
    file: z.optional(z.string()),
    clean_file: z._default(boolArg, false),
    key_url: z.optional(z.string()),
    refresh: z.optional(boolArg),
    refresh_db: z.optional(boolArg),
    /** Salt takes a string or a list of comment lines; they only annotate the repo file */
    comments: z.optional(z.union([z.string(), z.array(z.string())])),
  }),
  scalar,
);

type Args = z.output<typeof args>;
const KNOWN = new Set(Object.keys(args.shape));
// Salt arguments for apt (or for Salt itself) that must never end up as yum repo options
const NOT_REPO_OPTIONS = new Set([
  'dist', 'comps', 'keyid', 'keyserver', 'key_text', 'ppa', 'ppa_auth', 'architectures',
  'consolidate', 'signedby', 'aptkey', 'comments', 'saltenv', 'test', 'basedir',
]);

async function fetchKey(ctx: RunContext, url: string): Promise<Buffer> {
  try {
    if (url.startsWith('salt://')) return await ctx.tree.read(url);
    if (/^https?:\/\//.test(url)) {
      const res = await fetch(url, { signal: AbortSignal.timeout(60_000) });
      if (!res.ok) throw new Error(`HTTP ${res.status} ${res.statusText}`);
      return Buffer.from(await res.arrayBuffer());
    }
    const local = url.startsWith('file://') ? new URL(url).pathname : url;
    if (!path.isAbsolute(local)) throw new Error('expected salt://, http(s)://, file:// or an absolute path');
    return await fs.promises.readFile(local);
  } catch (e) {
    throw new StateFailure(`Failed to fetch key_url '${url}': ${e instanceof Error ? e.message : String(e)}`);
  }
}

async function repoArgs(ctx: RunContext, a: Args, withKey: boolean): Promise<RepoArgs> {
  const extra: Record<string, string> = {};
  for (const [k, v] of Object.entries(a)) {
    if (KNOWN.has(k) || NOT_REPO_OPTIONS.has(k) || v === undefined) continue;
    extra[k] = typeof v === 'boolean' ? (v ? '1' : '0') : String(v);
  }
  if (a.file !== undefined && !path.isAbsolute(a.file)) throw new StateFailure(`file must be an absolute path, got '${a.file}'`);
  return {
    name: a.name.trim(),
    humanname: a.humanname,
    baseurl: a.baseurl,
    mirrorlist: a.mirrorlist,
    metalink: a.metalink,
    gpgcheck: a.gpgcheck,
    gpgkey: a.gpgkey,
    enabled: a.enabled ?? (a.disabled === undefined ? undefined : !a.disabled),
    file: a.file,
    clean_file: a.clean_file,
    key: withKey && a.key_url ? { url: a.key_url, data: await fetchKey(ctx, a.key_url) } : undefined,
    extra,
  };
}

async function provider(ctx: RunContext): Promise<PkgProvider> {
  try {
    return await ctx.providers.pkg(ctx.host);
  } catch (e) {
    throw new StateFailure(e instanceof Error ? e.message : String(e));
  }
}

async function plan(ctx: RunContext, how: (p: PkgProvider) => Promise<RepoPlan>): Promise<RepoPlan> {
  const p = await provider(ctx);
  try {
    return await how(p);
  } catch (e) {
    if (e instanceof PkgError) throw new StateFailure(e.message);
    throw e;
  }
}

async function readOld(file: string): Promise<Buffer | null> {
  refuseSpecial(file);
  return fs.promises.readFile(file).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return null;
    throw e;
  });
}

/** temp file + rename in the same directory: readers never see half a file */
async function writeAtomic(w: FileWrite): Promise<void> {
  if (w.content === null) {
    await fs.promises.rm(w.path, { force: true });
    return;
  }
  const dir = path.dirname(w.path);
  await fs.promises.mkdir(dir, { recursive: true });
  const tmp = tempName(w.path);
  try {
    await fs.promises.writeFile(tmp, w.content, { mode: w.mode ?? 0o644 });
    await fs.promises.rename(tmp, w.path);
  } catch (e) {
    await fs.promises.rm(tmp, { force: true });
    throw e;
  }
}

/** Write the plan; when the metadata refresh then fails, put every file back as it was. */
async function commit(p: PkgProvider, writes: FileWrite[], refresh: boolean): Promise<void> {
  const old = await Promise.all(writes.map(async (w) => ({ path: w.path, content: await readOld(w.path) })));
  const restore = async () => {
    for (const o of old.reverse()) await writeAtomic(o).catch(() => {});
  };
  try {
    for (const w of writes) await writeAtomic(w);
    if (refresh) await p.refresh(true);
  } catch (e) {
    await restore();
    throw new StateFailure(`Failed to configure repo: ${e instanceof Error ? e.message : String(e)} (the previous files were restored)`);
  }
}

const TEST_NOTE =
  'This may cause pkg states to behave differently than stated if this action is repeated without test=True, ' +
  'due to the differences in the configured repositories.';

/** A repo plan as a check outcome: nothing to write is converged; test mode adds Salt's note. */
function checked(ctx: { test: boolean }, r: RepoPlan, wouldDo: string) {
  if (!r.writes.length) return { comment: r.comment };
  return { changes: r.changes, comment: ctx.test ? `${wouldDo} ${TEST_NOTE}` : r.comment, plan: r };
}

const managed = defineState({
  args,
  async check(ctx, a) {
    const ra = await repoArgs(ctx, a, true);
    return checked(ctx, await plan(ctx, (p) => p.repos.planManaged(ra)), `Package repo '${ra.name}' would be configured.`);
  },
  async apply(ctx, a, r) {
    const p = await provider(ctx);
    // Salt refreshes the package database after a repo change unless told not to
    await commit(p, r!.writes, (a.refresh ?? a.refresh_db) !== false);
    return { changes: r!.changes, comment: r!.comment };
  },
});

const absent = defineState({
  args: z.object({ name: z.string().check(z.minLength(1)), file: z.optional(z.string()) }),
  async check(ctx, a) {
    const ra: RepoArgs = { name: a.name.trim(), file: a.file, clean_file: false, extra: {} };
    return checked(ctx, await plan(ctx, (p) => p.repos.planAbsent(ra)), `Package repo '${ra.name}' will be removed.`);
  },
  async apply(ctx, _a, r) {
    const p = await provider(ctx);
    // no refresh: the metadata of a repo that is gone is simply no longer read
    await commit(p, r!.writes, false);
    return { changes: r!.changes, comment: r!.comment };
  },
});

export default { managed, absent } satisfies StateModule;
