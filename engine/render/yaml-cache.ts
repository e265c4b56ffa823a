/**
 * Parsed SLS YAML kept on disk between runs, keyed by the rendered text: a no-op run renders the
 * same text as the run before, and reading back V8's serialisation of the data is ~50x cheaper
 * than js-yaml parsing it again in a fresh process. The data Salt's schema yields (strings,
 * numbers incl. NaN/±Infinity/-0, booleans, null, arrays, plain objects, shared aliases, own
 * `__proto__` keys) comes back exactly (test/unit/compile-cache.test.ts). Rendered text can hold
 * pillar values, so only `tsalt local` uses it, whose pillar tree is on this machine already;
 * never an agent (pillar from the master stays in memory) nor pillar rendering itself. Same
 * trust rules as the template cache.
 */
import crypto from 'node:crypto';
import v8 from 'node:v8';
import { PrivateCacheDir, type CacheDebug } from './compile-cache.js';
import { SALT_YAML_SCHEMA } from './salt-yaml.js';

export const YAML_CACHE_FORMAT = 'tsalt-yaml-1';
/** package.json pins js-yaml to exactly this (the test checks); its parse is part of the key. */
export const JS_YAML_VERSION = '4.3.2';

let schemaFingerprint: string | undefined;
function fingerprint(): string {
  if (schemaFingerprint) return schemaFingerprint;
  const s = SALT_YAML_SCHEMA as unknown as { compiledImplicit: object[]; compiledExplicit: object[] };
  const types = [...s.compiledImplicit, ...s.compiledExplicit].map((t) =>
    Object.entries(t)
      .map(([k, v]) => `${k}=${typeof v === 'function' ? String(v) : JSON.stringify(v)}`)
      .join(';'),
  );
  schemaFingerprint = crypto
    .createHash('sha256')
    .update([YAML_CACHE_FORMAT, JS_YAML_VERSION, process.versions.v8, ...types].join('\0'))
    .digest('hex');
  return schemaFingerprint;
}

export class ParsedYamlCache extends PrivateCacheDir {
  constructor(dir: string, debug?: CacheDebug, limits?: { files: number; bytes: number }) {
    super(dir, YAML_CACHE_FORMAT, 'parsed-YAML cache', '.v8', debug, limits);
  }

  static key(text: string): string {
    return crypto.createHash('sha256').update(fingerprint()).update('\0').update(text).digest('hex');
  }

  /** The data stored for `text`, or undefined. */
  get(text: string): { data: unknown } | undefined {
    const body = this.getBytes(ParsedYamlCache.key(text));
    if (!body) return undefined;
    try {
      return { data: v8.deserialize(body) };
    } catch {
      return undefined; // checksummed, so only a V8 that reads its own format differently
    }
  }

  set(text: string, data: unknown): void {
    let body: Buffer;
    try {
      body = v8.serialize(data);
    } catch {
      return;
    }
    this.setBytes(ParsedYamlCache.key(text), body);
  }
}
