/**
 * Compiled templates kept on disk between runs. Nunjucks turns a template into JavaScript source
 * (lex, parse, compile: the largest cost of rendering a tree's SLS files and file templates);
 * a `tsalt local apply` or a freshly started agent would redo it for every template at every
 * start. This keeps that source, never the rendered output, so every render still runs with
 * the variables, filters and sandbox of the current run.
 *
 * The source is what our patched compiler (./nunjucks-patch.ts) emits: every lookup and call in
 * it goes through the sandbox at run time. The key is a hash of the template's text and path
 * and of everything that shapes the emitted source: the Nunjucks version, the source text of
 * the parser, lexer and compiler functions as patched, of the runtime and sandbox functions the
 * code calls, this file's format, the environment's options, extensions and async filters. Any
 * change to those gives new keys (the old files age out of the bounded directory).
 *
 * Trust: the directory must be ours and private (owner = this user, no group/other write), else
 * the cache is not used. Each file names its key and the SHA-256 of its source; a file that does
 * not match is ignored (debug message, TSALT_DEBUG=1) and replaced.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import nunjucks from 'nunjucks';
import { NUNJUCKS_VERSION } from './nunjucks-patch.js';
import * as sandbox from './sandbox.js';

/** Bumped when the file format or what a key covers changes. */
export const CACHE_FORMAT = 'tsalt-jinja-1';
/** At most this many files / bytes in the directory; the oldest go first. */
export const MAX_FILES = 512;
export const MAX_BYTES = 32 * 1024 * 1024;
/** A file body larger than this is not kept. */
const MAX_SOURCE = 1024 * 1024;

/* eslint-disable @typescript-eslint/no-explicit-any */
const N = nunjucks as any;

function sha256(...parts: string[]): string {
  const h = crypto.createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex');
}

/** The source text of every function of `obj` (own and inherited up to Object), sorted by name. */
function functionsText(obj: any): string {
  const out: string[] = [];
  const seen = new Set<string>();
  for (let o = obj; o && o !== Object.prototype && o !== Function.prototype; o = Object.getPrototypeOf(o)) {
    for (const name of Object.getOwnPropertyNames(o).sort()) {
      if (seen.has(name)) continue;
      seen.add(name);
      const d = Object.getOwnPropertyDescriptor(o, name);
      if (d && typeof d.value === 'function') out.push(`${name}=${String(d.value)}`);
    }
  }
  return out.join('\n');
}

let codeFingerprint: string | undefined;
/**
 * What the emitted source depends on in this process: computed on first use, after the patches
 * are installed (jinja.ts installs them before any template compiles).
 */
export function compilerFingerprint(): string {
  codeFingerprint ??= sha256(
    CACHE_FORMAT,
    NUNJUCKS_VERSION,
    functionsText(N.compiler.Compiler.prototype),
    functionsText(N.parser.Parser.prototype),
    functionsText(N.lexer),
    functionsText(N.lexer.Tokenizer?.prototype),
    Object.keys(N.nodes).sort().join(','),
    functionsText(N.runtime),
    functionsText(sandbox),
  );
  return codeFingerprint;
}

/** The environment's part of the key: options, extensions (their parsers emit code), async filters. */
/** The parts of a Nunjucks Environment the compiled code depends on (internals, not in its typings). */
export interface CompilingEnvironment {
  extensionsList?: { __name?: string; tags?: string[] }[];
  opts?: unknown;
  asyncFilters?: unknown;
}

export function environmentFingerprint(env: CompilingEnvironment): string {
  const exts = (env.extensionsList ?? []).map((e) => `${e.__name ?? ''}:${(e.tags ?? []).join(',')}:${functionsText(e)}`);
  return sha256(compilerFingerprint(), JSON.stringify(env.opts ?? {}), JSON.stringify(env.asyncFilters ?? []), exts.join('\n'));
}

export type CacheDebug = (msg: string) => void;

const defaultDebug: CacheDebug = (msg) => {
  if (process.env.TSALT_DEBUG) process.stderr.write(`tsalt: debug: ${msg}\n`);
};

/** `<cachedir>/jinja`; without a configured cachedir, the per-user one downloads use too. */
export function templateCacheDir(cachedir: unknown): string {
  const base = typeof cachedir === 'string' ? cachedir : path.join(os.tmpdir(), `tsalt-cache-${process.getuid?.() ?? 0}`);
  return path.join(base, 'jinja');
}

/** Tests: compute the fingerprint again (after changing a compiler function on purpose). */
export function forgetCompilerFingerprint(): void {
  codeFingerprint = undefined;
}

/**
 * A private directory of files, one per key, each headed by its format, key and the SHA-256 of
 * its body: what is read back is exactly what was stored for that key, or nothing.
 */
export class PrivateCacheDir {
  private usable: boolean | undefined;
  /** lookups answered from disk / not (stored files that were ignored count as misses) */
  readonly stats = { hits: 0, misses: 0 };

  constructor(
    readonly dir: string,
    private readonly format: string,
    /** in messages: 'compiled-template cache' */
    private readonly label: string,
    private readonly ext: string,
    private readonly debug: CacheDebug = defaultDebug,
    private readonly limits = { files: MAX_FILES, bytes: MAX_BYTES },
  ) {}

  /** Made on first use; unusable (and said once) unless it is a private directory of this user. */
  private ready(): boolean {
    if (this.usable !== undefined) return this.usable;
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      const st = fs.lstatSync(this.dir);
      const uid = process.getuid?.();
      if (!st.isDirectory() || (uid !== undefined && st.uid !== uid) || (st.mode & 0o022) !== 0) {
        this.debug(`${this.label} ${this.dir} is not a private directory of this user: not used`);
        this.usable = false;
      } else this.usable = true;
    } catch (e) {
      this.debug(`${this.label} ${this.dir} not usable: ${(e as Error).message}`);
      this.usable = false;
    }
    return this.usable;
  }

  private file(key: string): string {
    return path.join(this.dir, `${key}${this.ext}`);
  }

  /** The stored body for `key`, or undefined (missing, or not exactly what was stored for it). */
  getBytes(key: string): Buffer | undefined {
    if (!this.ready()) return undefined;
    let data: Buffer;
    try {
      data = fs.readFileSync(this.file(key));
    } catch {
      this.stats.misses++;
      return undefined;
    }
    const nl = data.indexOf(10);
    const m = /^\/\/ (\S+) key=([0-9a-f]{64}) sha256=([0-9a-f]{64})$/.exec(data.subarray(0, nl < 0 ? Math.min(data.length, 200) : nl).toString('latin1'));
    const body = nl < 0 ? Buffer.alloc(0) : data.subarray(nl + 1);
    let why: string | undefined;
    if (!m) why = 'no valid header';
    else if (m[1] !== this.format) why = `format ${m[1]}, not ${this.format}`;
    else if (m[2] !== key) why = 'it holds another key';
    else if (crypto.createHash('sha256').update(body).digest('hex') !== m[3]) why = 'its content does not match its checksum';
    if (why) {
      this.debug(`ignoring ${this.label} file ${this.file(key)}: ${why}; computing it again`);
      this.stats.misses++;
      return undefined;
    }
    this.stats.hits++;
    return body;
  }

  /** Stores atomically (temp file + rename); failures only cost the next run the work again. */
  setBytes(key: string, body: Buffer): void {
    if (body.length > MAX_SOURCE || !this.ready()) return;
    const file = this.file(key);
    const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
    try {
      const head = `// ${this.format} key=${key} sha256=${crypto.createHash('sha256').update(body).digest('hex')}\n`;
      fs.writeFileSync(tmp, Buffer.concat([Buffer.from(head, 'latin1'), body]), { mode: 0o600 });
      fs.renameSync(tmp, file);
      this.prune();
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      this.debug(`${this.label}: could not store ${file}: ${(e as Error).message}`);
    }
  }

  /** Keeps the directory within its limits, dropping the least recently written (misses only). */
  private prune(): void {
    const names = fs.readdirSync(this.dir);
    const files: { f: string; size: number; mtime: number }[] = [];
    for (const n of names) {
      const f = path.join(this.dir, n);
      try {
        const st = fs.statSync(f);
        files.push({ f, size: st.size, mtime: st.mtimeMs });
      } catch {
        /* removed by a concurrent run */
      }
    }
    files.sort((a, b) => b.mtime - a.mtime);
    let bytes = 0;
    files.forEach((x, i) => {
      bytes += x.size;
      if (i >= this.limits.files || bytes > this.limits.bytes) fs.rmSync(x.f, { force: true });
    });
  }
}

export class CompiledTemplateCache extends PrivateCacheDir {
  constructor(dir: string, debug?: CacheDebug, limits?: { files: number; bytes: number }) {
    super(dir, CACHE_FORMAT, 'compiled-template cache', '.js', debug, limits);
  }

  static key(envFingerprint: string, templatePath: string, text: string): string {
    return sha256(envFingerprint, templatePath, text);
  }

  get(key: string): string | undefined {
    return this.getBytes(key)?.toString('utf8');
  }

  set(key: string, source: string): void {
    this.setBytes(key, Buffer.from(source, 'utf8'));
  }
}
