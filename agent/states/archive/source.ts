/**
 * Get an archive's bytes onto local disk: `salt://` from the state tree, `http(s)://` with
 * node's http client, or a local path. Remote downloads are verified against `source_hash`
 * before anyone uses them; a verified download is kept (keyed by URL) so reruns that already
 * have it do not fetch again, like Salt's file.cached.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { StateFailure } from '../define.js';
import type { RunContext } from '../context.js';

export interface SourceHash {
  algo: string;
  hex: string;
}

const BY_LENGTH: Record<number, string> = { 32: 'md5', 40: 'sha1', 56: 'sha224', 64: 'sha256', 96: 'sha384', 128: 'sha512' };

/** `sha256=abc...`, `md5=...`, or bare hex (algorithm from its length), as Salt accepts. */
export function parseSourceHash(s: string): SourceHash {
  const m = /^\s*(?:(md5|sha1|sha224|sha256|sha384|sha512)[=:])?([0-9a-fA-F]+)\s*$/.exec(s);
  const hex = m?.[2]?.toLowerCase();
  const algo = m?.[1] ?? (hex ? BY_LENGTH[hex.length] : undefined);
  if (!m || !hex || !algo || BY_LENGTH[hex.length] !== algo) {
    throw new StateFailure(
      `source_hash '${s}' is not a hash Salt understands: use <algo>=<hex> (md5, sha1, sha224, sha256, sha384, sha512) or the bare hex digest`,
    );
  }
  return { algo, hex };
}

export async function fileHash(file: string, algo: string): Promise<string> {
  const h = crypto.createHash(algo);
  for await (const chunk of fs.createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function verify(file: string, label: string, want: SourceHash): Promise<void> {
  const got = await fileHash(file, want.algo);
  if (got !== want.hex) {
    throw new StateFailure(`${label} does not match the desired source_hash ${want.algo}=${want.hex} (it has ${want.algo}=${got})`);
  }
}

/** A directory only we can write: downloads must not be swappable by other local users. */
function cacheDir(ctx: RunContext): string {
  const base = typeof ctx.opts.cachedir === 'string' ? ctx.opts.cachedir : path.join(os.tmpdir(), `tsalt-cache-${process.getuid?.() ?? 0}`);
  const dir = path.join(base, 'archive');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.lstatSync(dir);
  if (!st.isDirectory() || st.uid !== process.getuid?.() || (st.mode & 0o022) !== 0) {
    throw new StateFailure(`archive cache ${dir} is not a private directory of this user; refusing to use it`);
  }
  return dir;
}

function download(url: string, dest: string, redirects = 5): Promise<void> {
  return new Promise((resolve, reject) => {
    const mod = url.startsWith('https:') ? https : http;
    const req = mod.get(url, { timeout: 60_000 }, (res) => {
      const code = res.statusCode ?? 0;
      if (code >= 300 && code < 400 && res.headers.location) {
        res.resume();
        if (redirects <= 0) return reject(new StateFailure(`Too many redirects fetching ${url}`));
        return resolve(download(new URL(res.headers.location, url).toString(), dest, redirects - 1));
      }
      if (code !== 200) {
        res.resume();
        return reject(new StateFailure(`Failed to fetch ${url}: HTTP ${code} ${res.statusMessage ?? ''}`.trim()));
      }
      const out = fs.createWriteStream(dest, { mode: 0o600 });
      res.pipe(out);
      res.on('error', (e) => reject(new StateFailure(`Failed to fetch ${url}: ${e.message}`)));
      out.on('error', (e) => reject(new StateFailure(`Failed to write ${dest}: ${e.message}`)));
      out.on('finish', () => resolve());
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (e) => reject(new StateFailure(`Failed to fetch ${url}: ${e.message}`)));
  });
}

export interface Fetched {
  file: string;
}

/**
 * The archive as a local file. Checking a state may call this (test mode too): it changes
 * nothing the tree manages, and a test run that verifies the hash predicts the real run.
 */
export async function fetchSource(
  ctx: RunContext,
  source: string,
  sourceHash: string | undefined,
  skipVerify: boolean,
): Promise<Fetched> {
  const want = sourceHash && !skipVerify ? parseSourceHash(sourceHash) : undefined;
  return ctx.facts.get(`archive:source:${source}:${sourceHash ?? ''}:${skipVerify}`, async () => {
    if (/^https?:\/\//i.test(source)) {
      if (!sourceHash && !skipVerify) {
        throw new StateFailure(
          `Unable to verify upstream hash of source file ${source}, please set source_hash or set skip_verify to True`,
        );
      }
      const dir = cacheDir(ctx);
      const key = crypto.createHash('sha256').update(source).digest('hex').slice(0, 16);
      const base = path.basename(new URL(source).pathname) || 'archive';
      const cached = path.join(dir, `${key}-${base}`);
      if (want && fs.existsSync(cached) && (await fileHash(cached, want.algo)) === want.hex) return { file: cached };
      const tmp = `${cached}.part-${process.pid}`;
      try {
        await download(source, tmp);
        if (want) await verify(tmp, source, want);
        fs.renameSync(tmp, cached);
      } finally {
        fs.rmSync(tmp, { force: true });
      }
      return { file: cached };
    }
    if (source.startsWith('salt://')) {
      const data = await ctx.tree.read(source);
      const dir = cacheDir(ctx);
      const file = path.join(dir, `tree-${crypto.createHash('sha256').update(data).digest('hex').slice(0, 24)}-${path.basename(source)}`);
      if (!fs.existsSync(file)) {
        fs.writeFileSync(`${file}.part-${process.pid}`, data, { mode: 0o600 });
        fs.renameSync(`${file}.part-${process.pid}`, file);
      }
      if (want) await verify(file, source, want);
      return { file };
    }
    const local = source.startsWith('file://') ? decodeURIComponent(new URL(source).pathname) : source;
    if (!path.isAbsolute(local)) throw new StateFailure(`Invalid source "${source}": use salt://, http(s)://, file:// or an absolute path`);
    if (!fs.existsSync(local) || !fs.statSync(local).isFile()) throw new StateFailure(`Source file '${local}' does not exist`);
    if (want) await verify(local, local, want);
    return { file: local };
  });
}
