/**
 * Files from `http(s)://`, for the states that accept remote sources (file.managed,
 * archive.extracted). A download lands in a private cache directory under a temporary name,
 * is checked against `source_hash` and only then renamed into the cache (keyed by URL), so
 * nothing unverified is ever used and reruns that already hold the file do not fetch again,
 * like Salt's file.cached.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StateFailure } from './define.js';
import type { RunContext } from './context.js';

export interface SourceHash {
  algo: string;
  hex: string;
}

const BY_LENGTH: Record<number, string> = { 32: 'md5', 40: 'sha1', 56: 'sha224', 64: 'sha256', 96: 'sha384', 128: 'sha512' };

export function isRemote(url: string): boolean {
  return /^https?:\/\//i.test(url);
}

/** `sha256=abc...`, `md5=...`, or bare hex (algorithm from its length), as Salt accepts. */
export function parseSourceHash(s: string): SourceHash {
  const m = /^\s*(?:(md5|sha1|sha224|sha256|sha384|sha512)[=:])?([0-9a-fA-F]+)\s*$/i.exec(s);
  const hex = m?.[2]?.toLowerCase();
  const algo = m?.[1]?.toLowerCase() ?? (hex ? BY_LENGTH[hex.length] : undefined);
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

export async function verifyFile(file: string, label: string, want: SourceHash): Promise<void> {
  const got = await fileHash(file, want.algo);
  if (got !== want.hex) {
    throw new StateFailure(`${label} does not match the desired source_hash ${want.algo}=${want.hex} (it has ${want.algo}=${got})`);
  }
}

/** A directory only we can write: downloads must not be swappable by other local users. */
export function cacheDir(ctx: RunContext, sub: string): string {
  const base = typeof ctx.opts.cachedir === 'string' ? ctx.opts.cachedir : path.join(os.tmpdir(), `tsalt-cache-${process.getuid?.() ?? 0}`);
  const dir = path.join(base, sub);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.lstatSync(dir);
  if (!st.isDirectory() || st.uid !== process.getuid?.() || (st.mode & 0o022) !== 0) {
    throw new StateFailure(`download cache ${dir} is not a private directory of this user; refusing to use it`);
  }
  return dir;
}

async function download(url: string, dest: string, redirects = 5): Promise<void> {
  // loaded on first download: node's http/https/tls are not free to load, and most runs never fetch
  const mod = url.toLowerCase().startsWith('https:') ? await import('node:https') : await import('node:http');
  return new Promise((resolve, reject) => {
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

/**
 * A remote file as a local path in the cache. `want` undefined means skip_verify: the file is
 * fetched on every run (there is nothing to tell a stale copy from a good one). Memoised per
 * run, so checking and applying a state fetch once.
 */
export function fetchRemote(ctx: RunContext, url: string, want: SourceHash | undefined, sub = 'downloads'): Promise<string> {
  return ctx.facts.get(`download:${url}:${want ? `${want.algo}=${want.hex}` : 'unverified'}`, async () => {
    const dir = cacheDir(ctx, sub);
    const key = crypto.createHash('sha256').update(url).digest('hex').slice(0, 16);
    const base = path.basename(new URL(url).pathname) || 'download';
    const cached = path.join(dir, `${key}-${base}`);
    if (want && fs.existsSync(cached) && (await fileHash(cached, want.algo)) === want.hex) return cached;
    const tmp = `${cached}.part-${process.pid}`;
    try {
      await download(url, tmp);
      if (want) await verifyFile(tmp, url, want);
      fs.renameSync(tmp, cached);
    } finally {
      fs.rmSync(tmp, { force: true });
    }
    return cached;
  });
}

/** A small text file from the web (a published SHA256SUMS); not verified, as in Salt. */
export async function fetchRemoteText(ctx: RunContext, url: string): Promise<string> {
  return fs.readFileSync(await fetchRemote(ctx, url, undefined, 'downloads'), 'utf8');
}
