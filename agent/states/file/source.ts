/**
 * Where file content comes from: `salt://` (the state tree, confined to it), a local path
 * (`/x` or `file:///x`, mapped through --root like every managed path), with `source_hash`
 * checked for local sources. No network schemes: agents fetch only from the master's tree.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { RunContext } from '../context.js';
import { StateFailure } from '../define.js';
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
): Promise<SourceData> {
  for (const spec of specs) {
    const { url, hash } = specUrl(spec);
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
      throw new StateFailure(`Source ${url}: only salt://, file:// and absolute local paths are supported`);
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
  if (urls.length === 1) throw new StateFailure(`Source file ${urls[0]} not found in saltenv 'base'`);
  throw new StateFailure(`none of the specified sources were found: ${urls.join(', ')}`);
}

const HEX_ALGOS: Record<number, string> = { 32: 'md5', 40: 'sha1', 56: 'sha224', 64: 'sha256', 96: 'sha384', 128: 'sha512' };

/** `sha256=<hex>`, a bare hex digest, or a hash file (salt://, local) whose first digest is used. */
async function verifyHash(ctx: RunContext, data: Buffer, spec: string, url: string): Promise<void> {
  let text = spec.trim();
  if (text.startsWith('salt://') || text.startsWith('file://') || text.startsWith('/')) {
    const hashFile = text.startsWith('salt://')
      ? (await ctx.tree.read(text).catch(treeFailure)).toString('utf8')
      : fs.readFileSync(localPath(ctx, text)!, 'utf8');
    const base = path.basename(url);
    const lines = hashFile.split('\n');
    const line = lines.find((l) => l.includes(base)) ?? lines[0] ?? '';
    const m = /\b([0-9a-fA-F]{32,128})\b/.exec(line);
    if (!m) throw new StateFailure(`source_hash file ${text} has no hash for ${base}`);
    text = m[1]!;
  }
  let algo: string | undefined;
  let hex = text;
  const eq = text.indexOf('=');
  if (eq > 0) {
    algo = text.slice(0, eq).toLowerCase();
    hex = text.slice(eq + 1);
  } else algo = HEX_ALGOS[text.length];
  if (!algo || !/^[0-9a-fA-F]+$/.test(hex)) throw new StateFailure(`Invalid source_hash ${JSON.stringify(spec)}`);
  let got: string;
  try {
    got = crypto.createHash(algo).update(data).digest('hex');
  } catch {
    throw new StateFailure(`Unsupported hash type ${algo} in source_hash`);
  }
  if (got !== hex.toLowerCase()) {
    throw new StateFailure(`Specified ${algo} checksum for ${url} (${hex.toLowerCase()}) does not match actual checksum (${got})`);
  }
}
