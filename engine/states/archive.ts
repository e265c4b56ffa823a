/**
 * archive.extracted (salt.states.archive.extracted): an archive unpacked into `name`.
 * Already extracted means what Salt means: every path the archive lists exists under `name`
 * with the right type (or `if_missing` exists). Extraction goes into a private staging
 * directory next to `name`, is checked there (no member may land outside `name`), and only
 * then is moved into place, so a bad archive, hash or tool failure leaves `name` untouched.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as z from 'zod/mini';
import { boolArg, defineState, principalArg, StateFailure, type StateModule } from './define.js';
import { exec } from '../run/exec.js';
import { lookupGroup, lookupUser } from './runas.js';
import { fetchSource } from './archive/source.js';
import { specialKind } from './file/paths.js';
import { guessFormat, listArchive, verifyTree, type ArchiveFormat, type Member } from './archive/listing.js';

const args = z.object({
  name: z.string(),
  source: z.string(),
  source_hash: z.optional(z.string()),
  skip_verify: z._default(boolArg, false),
  if_missing: z.optional(z.string()),
  enforce_toplevel: z._default(boolArg, true),
  user: z.optional(principalArg),
  group: z.optional(principalArg),
  archive_format: z.optional(
    z.pipe(
      z.enum(['tar', 'zip', 'TAR', 'ZIP']),
      z.transform((s) => s.toLowerCase() as ArchiveFormat),
    ),
  ),
  options: z.optional(z.pipe(z.union([z.string(), z.number()]), z.transform(String))),
  overwrite: z._default(boolArg, false),
  force: z._default(boolArg, false),
  clean: z._default(boolArg, false),
  trim_output: z._default(z.union([z.boolean(), z.number().check(z.int(), z.nonnegative())]), false),
  // Salt arguments that only tune its cache: accepted, nothing to do here
  keep_source: z.optional(boolArg),
  keep: z.optional(boolArg),
});
type Args = z.output<typeof args>;

interface ExtractPlan {
  kind: 'extract';
  file: string;
  format: ArchiveFormat;
  members: Member[];
  uid: number;
  gid: number;
  listed: string[];
}
interface ChownPlan {
  kind: 'chown';
  members: Member[];
  uid: number;
  gid: number;
}
type Plan = ExtractPlan | ChownPlan;

/** Options that would make tar/unzip write somewhere else than the staging directory. */
const UNSAFE_TAR = /^(-P|--absolute-names|-C|--directory(=.*)?|--to-command(=.*)?|--transform(=.*)?|--xform(=.*)?|--one-top-level(=.*)?|-f|--file(=.*)?)$/;

function tarOptions(options: string | undefined): { argv: string[]; strip: number } {
  if (!options) return { argv: [], strip: 0 };
  const tokens = options.trim().split(/\s+/).filter(Boolean);
  const argv: string[] = [];
  tokens.forEach((t, i) => {
    if (UNSAFE_TAR.test(t)) throw new StateFailure(`tar option '${t}' is not allowed: extraction must stay inside 'name'`);
    if (!t.startsWith('-') && i === 0) {
      // Salt's "xzf"-style first word: keep the modifiers, x/f/v are ours
      const letters = t.replace(/[xfv]/g, '');
      if (/[PC]/.test(letters)) throw new StateFailure(`tar option '${t}' is not allowed: extraction must stay inside 'name'`);
      if (letters) argv.push(`-${letters}`);
    } else argv.push(t);
  });
  const m = /--strip(?:-components)?(?:\s+|=)["']?(\d+)["']?/.exec(options);
  return { argv, strip: m ? Number(m[1]) : 0 };
}

function zipOptions(options: string | undefined): string[] {
  const argv = options ? options.trim().split(/\s+/).filter(Boolean) : [];
  for (const t of argv) {
    if (t === '-d' || t.startsWith('-d') || t === '-:' || !t.startsWith('-')) {
      throw new StateFailure(`unzip option '${t}' is not allowed: extraction must stay inside 'name'`);
    }
  }
  return argv;
}

function lstat(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch {
    return undefined;
  }
}

function typeMatches(st: fs.Stats, m: Member): boolean {
  if (m.type === 'dir') return st.isDirectory();
  if (m.type === 'link') return st.isSymbolicLink();
  return !st.isDirectory() && !st.isSymbolicLink();
}

function topLevel(members: Member[]): string[] {
  return [...new Set(members.map((m) => m.name.split('/')[0]!))];
}

function trimmed(list: string[], trim: boolean | number): string[] {
  if (trim === false || trim === 0) return list;
  return list.slice(0, trim === true ? 100 : trim);
}

const extracted = defineState<typeof args, Plan>({
  args,
  async check(ctx, a) {
    const name = ctx.path(a.name).replace(/\/+$/, '') || '/';
    if (!path.isAbsolute(a.name)) throw new StateFailure(`${a.name} is not an absolute path`);
    if (a.if_missing !== undefined) {
      if (!path.isAbsolute(a.if_missing)) throw new StateFailure("Value for 'if_missing' is not an absolute path");
      if (fs.existsSync(ctx.path(a.if_missing))) return { comment: `Path ${a.if_missing} exists` };
    }
    const nameSt = lstat(name);
    if (nameSt && !nameSt.isDirectory()) throw new StateFailure(`${name} exists and is not a directory`);
    const uid = a.user !== undefined ? (await lookupUser(a.user)).uid : -1;
    const gid = a.group !== undefined ? await lookupGroup(a.group) : -1;
    const format = a.archive_format ?? guessFormat(a.source);
    if (!format) {
      throw new StateFailure("Could not guess archive_format from the value of the 'source' argument. Please set this archive_format to one of the following: tar, zip");
    }
    const strip = format === 'tar' ? tarOptions(a.options).strip : (zipOptions(a.options), 0);

    const { file } = await fetchSource(ctx, a.source, a.source_hash, a.skip_verify);
    const members = await listArchive(file, format, strip);
    if (!members.length) throw new StateFailure(`No files would be extracted from ${a.source}: the archive is empty`);
    const tops = topLevel(members);
    const topFiles = members.filter((m) => !m.name.includes('/') && m.type !== 'dir');
    if (a.enforce_toplevel && (tops.length > 1 || topFiles.length)) {
      throw new StateFailure(
        "Archive does not have a single top-level directory. To allow this archive to be extracted, set 'enforce_toplevel' to False. " +
          `To avoid a '${format}-bomb' it may also be advisable to set a top-level directory by adding it to the 'name' value ` +
          `(for example, setting 'name' to ${path.join(name, 'some_dir')} instead of ${name}).`,
      );
    }

    let missing = false;
    const incorrect: string[] = [];
    for (const m of members) {
      const st = lstat(path.join(name, m.name));
      if (!st) missing = true;
      else if (!typeMatches(st, m)) incorrect.push(m.name);
    }
    if (incorrect.length && !a.force && !a.clean) {
      throw new StateFailure(
        `The below paths (relative to ${name}) exist, but are the incorrect type (file instead of directory, symlink instead of file, etc.). ` +
          `To proceed with extraction, set 'force' to True. Note that this will remove these paths before extracting.\n\n` +
          incorrect.map((p) => `- ${p}`).join('\n'),
      );
    }

    const listed = members.map((m) => (m.type === 'dir' ? `${m.name}/` : m.name));
    if (a.overwrite || missing || incorrect.length) {
      const changes: Record<string, unknown> = { extracted_files: trimmed(listed, a.trim_output) };
      if (!nameSt) changes.directories_created = [name];
      if (a.clean) {
        const removed = tops.map((t) => path.join(name, t)).filter((p) => lstat(p));
        if (removed.length) changes.removed = removed;
      }
      return {
        changes,
        comment: `Archive ${a.source} would be extracted to ${name}${a.clean ? ', after cleaning destination path(s)' : ''}`,
        plan: { kind: 'extract', file, format, members, uid, gid, listed },
      };
    }
    if (uid !== -1 || gid !== -1) {
      const wrong = members.some((m) => {
        const st = fs.lstatSync(path.join(name, m.name));
        // archives never hold devices or FIFOs (listing refuses them): one there now is not ours
        const kind = specialKind(st);
        if (kind) throw new StateFailure(`Refusing to change the owner of ${path.join(a.name, m.name)}: it is a ${kind}, not the archive's file`);
        return (uid !== -1 && st.uid !== uid) || (gid !== -1 && st.gid !== gid);
      });
      if (wrong) {
        return {
          changes: { 'updated ownership': true },
          comment: 'All files in archive are already present. Ownership would be updated on one or more files/directories.',
          plan: { kind: 'chown', members, uid, gid },
        };
      }
    }
    return { comment: 'All files in archive are already present' };
  },

  async apply(ctx, a, plan) {
    if (!plan) throw new Error('archive.extracted: apply without a plan');
    const name = ctx.path(a.name).replace(/\/+$/, '') || '/';
    if (plan.kind === 'chown') {
      for (const m of plan.members) fs.lchownSync(path.join(name, m.name), plan.uid, plan.gid);
      return { changes: { 'updated ownership': true }, comment: 'All files in archive are already present. Ownership was updated.' };
    }
    return extract(a, name, plan);
  },
});

async function extract(a: Args, name: string, plan: ExtractPlan) {
  const parent = path.dirname(name);
  fs.mkdirSync(parent, { recursive: true });
  const staging = fs.mkdtempSync(path.join(parent, `.tsalt-archive-${path.basename(name)}-`));
  try {
    const root = path.join(staging, 'root');
    fs.mkdirSync(root, { mode: 0o755 });
    const argv =
      plan.format === 'tar'
        ? ['tar', '-x', '-f', plan.file, '-C', root, ...tarOptions(a.options).argv]
        : ['unzip', '-q', '-o', ...zipOptions(a.options), plan.file, '-d', root];
    const r = await exec(argv, { env: { ...process.env, LC_ALL: 'C' }, timeoutMs: 60 * 60_000 });
    // unzip exits 1 for warnings that still extracted everything
    if (r.code !== 0 && !(plan.format === 'zip' && r.code === 1)) {
      throw new StateFailure(`Failed to extract ${a.source}: ${(r.stderr || r.stdout).trim().split('\n').slice(-5).join('\n')}`);
    }
    verifyTree(root);
    if (plan.uid !== -1 || plan.gid !== -1) chownTree(root, plan.uid, plan.gid);

    // from here on `name` changes; everything that can fail on bad input has been checked
    const changes: Record<string, unknown> = { extracted_files: trimmed(plan.listed, a.trim_output) };
    if (a.clean) {
      const removed: string[] = [];
      for (const t of topLevel(plan.members)) {
        const p = path.join(name, t);
        if (lstat(p)) {
          fs.rmSync(p, { recursive: true, force: true });
          removed.push(p);
        }
      }
      if (removed.length) changes.removed = removed;
    }
    if (!lstat(name)) {
      if (plan.uid !== -1 || plan.gid !== -1) fs.lchownSync(root, plan.uid, plan.gid);
      fs.renameSync(root, name);
      changes.directories_created = [name];
    } else {
      mergeInto(root, name);
    }
    return { changes, comment: `${a.source} extracted to ${name}` };
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

function chownTree(dir: string, uid: number, gid: number): void {
  for (const e of fs.readdirSync(dir)) {
    const p = path.join(dir, e);
    fs.lchownSync(p, uid, gid);
    if (fs.lstatSync(p).isDirectory()) chownTree(p, uid, gid);
  }
}

/** Move staged entries into an existing directory: renames, merging directories that exist on both sides. */
function mergeInto(src: string, dst: string): void {
  for (const e of fs.readdirSync(src)) {
    const s = path.join(src, e);
    const d = path.join(dst, e);
    const sst = fs.lstatSync(s);
    const dst_ = lstat(d);
    if (sst.isDirectory() && dst_?.isDirectory()) {
      mergeInto(s, d);
      continue;
    }
    // a wrong-typed path (force) gives way; a file is replaced atomically by rename
    if (dst_ && (dst_.isDirectory() || sst.isDirectory())) fs.rmSync(d, { recursive: true, force: true });
    fs.renameSync(s, d);
  }
}

export default { extracted } satisfies StateModule;
