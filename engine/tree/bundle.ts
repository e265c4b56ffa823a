/**
 * Content-addressed state tree bundles. The master packs the files of one tree revision; the
 * hash covers every path, mode bit and byte, so an agent that verified it can cache the
 * unpacked tree on disk under that hash and reuse it for every later job at that revision.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Bundle, BundleFile } from '../../protocol/messages.js';
import { LocalTree } from './local.js';
import { normaliseTreePath, TreeError } from './source.js';

export interface BundleEntry {
  path: string;
  data: Buffer;
  executable: boolean;
}

export function bundleHash(entries: readonly BundleEntry[]): string {
  const h = crypto.createHash('sha256');
  for (const e of [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    h.update(`${e.path}\0${e.executable ? 'x' : '-'}\0${e.data.length}\0`);
    h.update(e.data);
  }
  return h.digest('hex');
}

export function toWire(entries: readonly BundleEntry[]): BundleFile[] {
  return entries.map((e) => ({ path: e.path, data: e.data.toString('base64'), ...(e.executable ? { executable: true } : {}) }));
}

/**
 * What trees of one bundle hash have read in this process, shared by every agent of a process
 * that runs many (`tsalt agent --config a --config b ...`): the hash names the content (verified
 * when it was stored), so the second agent's top.sls is the first one's bytes, not another
 * open/realpath/read. Bounded: the last few hashes, small files only.
 */
const SHARED_HASHES = 4;
const SHARED_FILE_MAX = 256 * 1024;
const SHARED_BYTES_MAX = 16 * 1024 * 1024;
interface SharedReads {
  files: Map<string, Buffer>;
  exists: Map<string, boolean>;
  bytes: number;
  /** values worked out from the content alone (BundleTree.derived) */
  derived: Map<string, unknown>;
}
const sharedReads = new Map<string, SharedReads>();
function readsOf(hash: string): SharedReads {
  let r = sharedReads.get(hash);
  if (r) {
    sharedReads.delete(hash); // most recent last
  } else {
    r = { files: new Map(), exists: new Map(), bytes: 0, derived: new Map() };
    if (sharedReads.size >= SHARED_HASHES) sharedReads.delete(sharedReads.keys().next().value!);
  }
  sharedReads.set(hash, r);
  return r;
}

/** A bundle unpacked on disk: a LocalTree labelled with its revision. */
export class BundleTree extends LocalTree {
  override readonly label: string;
  private readonly reads: SharedReads | undefined;
  constructor(dir: string, revision: string) {
    super(dir);
    this.label = `revision ${revision}`;
    const hash = path.basename(dir);
    this.reads = /^[0-9a-f]{64}$/.test(hash) ? readsOf(hash) : undefined;
  }

  override readSync(p: string): Buffer {
    const r = this.reads;
    if (!r) return super.readSync(p);
    const rel = normaliseTreePath(p);
    const hit = r.files.get(rel);
    if (hit) return Buffer.from(hit); // a copy: a caller may write into what it gets
    const data = super.readSync(p);
    if (data.length <= SHARED_FILE_MAX && r.bytes + data.length <= SHARED_BYTES_MAX) {
      r.files.set(rel, Buffer.from(data));
      r.bytes += data.length;
    }
    return data;
  }

  /**
   * A value worked out from this tree's content alone (top.sls read when it holds no template
   * code), kept with the shared reads of its hash: every job of every agent of the process at
   * this revision gets the first one's. `make` says whether its value may be kept (a value that
   * depends on anything but the files, or an error, is not). Only read what it gives.
   */
  derived<T>(key: string, make: () => { value: T; keep: boolean }): T {
    const r = this.reads;
    if (r?.derived.has(key)) return r.derived.get(key) as T;
    const { value, keep } = make();
    if (r && keep) r.derived.set(key, value);
    return value;
  }

  override existsSync(p: string): boolean {
    const r = this.reads;
    if (!r) return super.existsSync(p);
    const rel = normaliseTreePath(p);
    if (r.files.has(rel)) return true;
    const hit = r.exists.get(rel);
    if (hit !== undefined) return hit;
    const e = super.existsSync(p); // throws for a path that leaves the tree: not kept
    if (r.exists.size < 10_000) r.exists.set(rel, e);
    return e;
  }
}

/** The agent's bundle cache: `<cache>/bundles/<hash>/`. */
export class BundleCache {
  private readonly dir: string;
  constructor(cacheDir: string) {
    this.dir = path.join(cacheDir, 'bundles');
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  has(hash: string): boolean {
    return /^[0-9a-f]{64}$/.test(hash) && fs.existsSync(path.join(this.dir, hash));
  }

  /** the trees opened last, so an agent's next job at the same revision uses the same one (its renderer with it) */
  private readonly opened = new Map<string, BundleTree>();

  open(hash: string, revision: string): BundleTree {
    const key = `${hash}\0${revision}`;
    let t = this.opened.get(key);
    if (!t) {
      t = new BundleTree(path.join(this.dir, hash), revision);
      if (this.opened.size >= 2) this.opened.delete(this.opened.keys().next().value!);
      this.opened.set(key, t);
    }
    return t;
  }

  /**
   * Verify a received bundle against the hash the job named and unpack it atomically
   * (temp dir + rename). Paths that would leave the tree are refused, whatever the hash says.
   */
  store(b: Bundle, expected: string): BundleTree {
    if (b.hash !== expected) throw new TreeError(`bundle ${b.hash.slice(0, 12)} is not the one the job named (${expected.slice(0, 12)})`);
    const entries: BundleEntry[] = b.files.map((f) => {
      const rel = normaliseTreePath(f.path);
      if (!rel || rel !== f.path) throw new TreeError(`bundle path ${JSON.stringify(f.path)} is not a plain tree path`);
      return { path: rel, data: Buffer.from(f.data, 'base64'), executable: f.executable === true };
    });
    const actual = bundleHash(entries);
    if (actual !== expected) throw new TreeError(`bundle content hash ${actual.slice(0, 12)} does not match ${expected.slice(0, 12)}`);
    const final = path.join(this.dir, expected);
    if (!fs.existsSync(final)) {
      const tmp = fs.mkdtempSync(path.join(this.dir, '.tmp-'));
      for (const e of entries) {
        const abs = path.join(tmp, e.path);
        fs.mkdirSync(path.dirname(abs), { recursive: true });
        fs.writeFileSync(abs, e.data, { mode: e.executable ? 0o755 : 0o644 });
      }
      try {
        fs.renameSync(tmp, final);
      } catch (err) {
        fs.rmSync(tmp, { recursive: true, force: true });
        if (!fs.existsSync(final)) throw err; // lost a race with ourselves: fine
      }
    }
    return this.open(expected, b.revision);
  }
}
