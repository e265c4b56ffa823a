/**
 * pkg.installed `sources`: package files instead of repository packages. Each source becomes a
 * local file (salt:// from the state tree, http(s):// through the download cache, file:// or an
 * absolute path as is) and is read for the package it holds, so `check` can compare it with the
 * installed set and predict the change without installing anything.
 *
 * As in Salt there is no source_hash here: the package manager's signature checks stand guard
 * (skipped only with skip_verify), so remote files are fetched on every run (once per run).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { StateFailure } from './define.js';
import type { RunContext } from './context.js';
import { cacheDir, fetchRemote, isRemote } from './download.js';
import type { PackageFile, PkgProvider } from '../providers/pkg/types.js';

const CACHE = 'pkg';

/** `[{foo: salt://foo.deb}, {bar: https://x/bar.deb}]` in order, each name once. */
export function packSources(sources: Array<Record<string, string>>): Array<{ name: string; source: string }> {
  const out: Array<{ name: string; source: string }> = [];
  for (const item of sources) {
    for (const [name, source] of Object.entries(item)) {
      if (out.some((o) => o.name === name)) throw new StateFailure(`Package '${name}' is listed more than once in sources`);
      out.push({ name, source });
    }
  }
  return out;
}

/**
 * The file under a name the package manager takes as a file: apt and dnf only read arguments
 * ending in `.deb` / `.rpm` as files, and a URL's last segment need not (`/download?id=3`).
 */
function withExt(ctx: RunContext, file: string, ext: string): string {
  if (file.endsWith(ext)) return file;
  const key = crypto.createHash('sha256').update(file).digest('hex').slice(0, 16);
  const copy = path.join(cacheDir(ctx, CACHE), `local-${key}-${path.basename(file)}${ext}`);
  const tmp = `${copy}.part-${process.pid}`;
  try {
    fs.copyFileSync(file, tmp);
    fs.renameSync(tmp, copy);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  return copy;
}

/** One source as a local file; memoised per run (states naming the same source fetch it once). */
export function fetchPackageFile(ctx: RunContext, source: string, ext: string): Promise<string> {
  return ctx.facts.get(`pkg:source:${source}`, async () => {
    if (isRemote(source)) return withExt(ctx, await fetchRemote(ctx, source, undefined, CACHE), ext);
    if (source.startsWith('salt://')) {
      let data: Buffer;
      try {
        data = await ctx.tree.read(source);
      } catch (e) {
        throw new StateFailure(`Unable to cache ${source}: ${(e as Error).message}`);
      }
      // named by content: a changed file in the tree is a new cache entry, never a half-written one
      const digest = crypto.createHash('sha256').update(data).digest('hex').slice(0, 24);
      const base = path.basename(source.replace(/\?.*$/, ''));
      const file = path.join(cacheDir(ctx, CACHE), `tree-${digest}-${base}${base.endsWith(ext) ? '' : ext}`);
      if (!fs.existsSync(file)) {
        const tmp = `${file}.part-${process.pid}`;
        fs.writeFileSync(tmp, data, { mode: 0o600 });
        fs.renameSync(tmp, file);
      }
      return file;
    }
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source) && !source.startsWith('file://')) {
      throw new StateFailure(`Unsupported source ${source}: use salt://, http(s)://, file:// or an absolute local path`);
    }
    const local = source.startsWith('file://') ? decodeURIComponent(new URL(source).pathname) : source;
    if (!path.isAbsolute(local)) {
      throw new StateFailure(`Path ${source} is either not absolute or an invalid protocol: use salt://, http(s)://, file:// or an absolute path`);
    }
    let st: fs.Stats;
    try {
      st = fs.statSync(local);
    } catch {
      throw new StateFailure(`${source} does not exist on minion`);
    }
    if (!st.isFile()) throw new StateFailure(`${source} is not a file`);
    return withExt(ctx, local, ext);
  });
}

/**
 * Every source fetched and read; the package inside each file must be the one its key names
 * (Salt's sources are keyed by the name `pkg.list_pkgs` shows), else nothing is installed.
 */
export async function readSources(ctx: RunContext, p: PkgProvider, sources: Array<Record<string, string>>): Promise<PackageFile[]> {
  const wanted = packSources(sources);
  const files = await Promise.all(
    wanted.map(async ({ name, source }) => {
      const file = await fetchPackageFile(ctx, source, p.fileExt);
      let info: PackageFile;
      try {
        info = await p.readPackageFile(file);
      } catch (e) {
        throw new StateFailure(`Failed to parse metadata for ${source}: ${(e as Error).message}`);
      }
      return { name, source, info };
    }),
  );
  const wrong = files.filter((f) => f.info.name !== f.name);
  if (wrong.length) {
    throw new StateFailure(
      wrong.map((f) => `Package file ${f.source} holds package '${f.info.name}', not '${f.name}'.`).join(' ') +
        ' The name in sources must be the name of the package inside the file.',
    );
  }
  return files.map((f) => f.info);
}
