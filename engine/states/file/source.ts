/**
 * Where file content comes from: `salt://` (the state tree, confined to it), `http(s)://`
 * (downloaded, then checked against `source_hash`, which is required unless `skip_verify`),
 * or a local path (`/x` or `file:///x`, mapped through --root like every managed path), with
 * `source_hash` checked for local sources too.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { RunContext } from '../context.js';
import { StateFailure } from '../define.js';
import { fetchRemote, fetchRemoteText, fileHash, isRemote, parseSourceHash, type SourceHash } from '../download.js';
import { normaliseTreePath, TreeError } from '../../tree/source.js';

export interface SourceData {
  data: Buffer;
  /** the source as written in the tree */
  source: string;
  /** tree-relative path for salt:// sources (template name, tpldir) */
  treePath?: string;
}

/** Salt allows `- source: [{salt://a: <hash>}, salt://b]`. */
export type SourceSpec = string | Record<string, string>;

function specUrl(s: SourceSpec): { url: string; hash?: string } {
  if (typeof s === 'string') return { url: s };
  const [url, hash] = Object.entries(s)[0] ?? [''];
  return { url, hash };
}

function localPath(ctx: RunContext, url: string): string | undefined {
  if (url.startsWith('file://')) return ctx.path(decodeURIComponent(url.slice('file://'.length)));
  if (path.isAbsolute(url)) return ctx.path(url);
  return undefined;
}

function treeFailure(e: unknown): never {
  if (e instanceof TreeError) throw new StateFailure(e.message);
  throw e;
}

/** The first source of the list that exists, read. Escapes from the tree fail the state. */
export async function readFirstSource(
  ctx: RunContext,
  specs: SourceSpec[],
  sourceHash: string | undefined,
  skipVerify: boolean,
  opts: { sourceHashName?: string; current?: string } = {},
): Promise<SourceData> {
  const failures: string[] = [];
  for (const spec of specs) {
    const { url, hash } = specUrl(spec);
    if (isRemote(url)) {
      const hashSpec = hash ?? sourceHash;
      if (!hashSpec && !skipVerify) {
        throw new StateFailure(`Unable to verify upstream hash of source file ${url}, please set source_hash or set skip_verify to True`);
      }
      const want = hashSpec && !skipVerify ? await expectedHash(ctx, hashSpec, opts.sourceHashName ?? path.basename(new URL(url).pathname)) : undefined;
      // Salt's shortcut: a file that already has the wanted hash is not downloaded again
      if (want && opts.current && (await hashOf(opts.current, want.algo)) === want.hex) {
        return { data: fs.readFileSync(opts.current), source: url };
      }
      try {
        return { data: fs.readFileSync(await fetchRemote(ctx, url, want)), source: url };
      } catch (e) {
        if (!(e instanceof StateFailure) || /does not match the desired source_hash/.test(e.message)) throw e;
        failures.push(e.message);
        continue; // unreachable: try the next source, as Salt does
      }
    }
    if (url.startsWith('salt://')) {
      let exists: boolean;
      try {
        exists = await ctx.tree.exists(url);
      } catch (e) {
        treeFailure(e);
      }
      if (!exists) continue;
      try {
        // source_hash is ignored for salt:// (the tree is the authority), as in Salt
        return { data: await ctx.tree.read(url), source: url, treePath: normaliseTreePath(url) };
      } catch (e) {
        treeFailure(e);
      }
    }
    const local = localPath(ctx, url);
    if (local === undefined) {
      throw new StateFailure(`Source ${url}: use salt://, http(s)://, file:// or an absolute local path`);
    }
    let st: fs.Stats;
    try {
      st = fs.statSync(local);
    } catch {
      continue;
    }
    if (!st.isFile()) continue;
    const data = fs.readFileSync(local);
    const want = hash ?? sourceHash;
    if (want && !skipVerify) await verifyHash(ctx, data, want, url);
    return { data, source: url };
  }
  const urls = specs.map((s) => specUrl(s).url);
  if (urls.length === 1) throw new StateFailure(failures[0] ?? `Source file ${urls[0]} not found in saltenv 'base'`);
  throw new StateFailure(`none of the specified sources were found: ${urls.join(', ')}${failures.length ? ` (${failures.join('; ')})` : ''}`);
}

async function hashOf(file: string, algo: string): Promise<string | undefined> {
  try {
    return fs.statSync(file).isFile() ? await fileHash(file, algo) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The digest `source_hash` asks for: `sha256=<hex>`, a bare hex digest, or a hash file
 * (salt://, http(s)://, local) whose line naming `name` (or its first digest) is used.
 */
async function expectedHash(ctx: RunContext, spec: string, name: string): Promise<SourceHash> {
  const text = spec.trim();
  if (!/^(salt|https?|file):\/\//i.test(text) && !text.startsWith('/')) return parseSourceHash(text);
  let hashFile: string;
  try {
    hashFile = text.startsWith('salt://')
      ? (await ctx.tree.read(text).catch(treeFailure)).toString('utf8')
      : isRemote(text)
        ? await fetchRemoteText(ctx, text)
        : fs.readFileSync(localPath(ctx, text)!, 'utf8');
  } catch (e) {
    if (e instanceof StateFailure) throw new StateFailure(`source_hash file ${text}: ${e.message}`);
    throw new StateFailure(`source_hash file ${text} cannot be read: ${(e as Error).message}`);
  }
  const lines = hashFile.split('\n');
  const line = lines.find((l) => l.split(/\s+/).some((w) => w.replace(/^\*/, '') === name || path.basename(w) === name)) ?? lines[0] ?? '';
  const m = /\b([0-9a-fA-F]{32,128})\b/.exec(line);
  if (!m) throw new StateFailure(`source_hash file ${text} has no hash for ${name}`);
  return parseSourceHash(m[1]!);
}

async function verifyHash(ctx: RunContext, data: Buffer, spec: string, url: string): Promise<void> {
  const want = await expectedHash(ctx, spec, path.basename(url));
  const got = crypto.createHash(want.algo).update(data).digest('hex');
  if (got !== want.hex) {
    throw new StateFailure(`Specified ${want.algo} checksum for ${url} (${want.hex}) does not match actual checksum (${got})`);
  }
}
