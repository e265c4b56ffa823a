/**
 * Get an archive's bytes onto local disk: `salt://` from the state tree, `http(s)://` with
 * node's http client, or a local path. Remote downloads are verified against `source_hash`
 * before anyone uses them; a verified download is kept (keyed by URL) so reruns that already
 * have it do not fetch again, like Salt's file.cached.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { StateFailure } from '../define.js';
import type { RunContext } from '../context.js';
import { cacheDir, fetchRemote, isRemote, parseSourceHash, verifyFile } from '../download.js';

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
    if (isRemote(source)) {
      if (!sourceHash && !skipVerify) {
        throw new StateFailure(
          `Unable to verify upstream hash of source file ${source}, please set source_hash or set skip_verify to True`,
        );
      }
      return { file: await fetchRemote(ctx, source, want, 'archive') };
    }
    if (source.startsWith('salt://')) {
      const data = await ctx.tree.read(source);
      const dir = cacheDir(ctx, 'archive');
      const file = path.join(dir, `tree-${crypto.createHash('sha256').update(data).digest('hex').slice(0, 24)}-${path.basename(source)}`);
      if (!fs.existsSync(file)) {
        fs.writeFileSync(`${file}.part-${process.pid}`, data, { mode: 0o600 });
        fs.renameSync(`${file}.part-${process.pid}`, file);
      }
      if (want) await verifyFile(file, source, want);
      return { file };
    }
    const local = source.startsWith('file://') ? decodeURIComponent(new URL(source).pathname) : source;
    if (!path.isAbsolute(local)) throw new StateFailure(`Invalid source "${source}": use salt://, http(s)://, file:// or an absolute path`);
    if (!fs.existsSync(local) || !fs.statSync(local).isFile()) throw new StateFailure(`Source file '${local}' does not exist`);
    if (want) await verifyFile(local, local, want);
    return { file: local };
  });
}
