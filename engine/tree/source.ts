/**
 * Read access to a state tree at one revision. Local directory in masterless mode; a
 * content-addressed bundle from the master in agent mode. Every path is relative to the tree
 * root (a leading `salt://` is accepted) and may never leave it.
 */
export interface TreeSource {
  /** Human label for messages, e.g. `/srv/salt` or `revision 3f2a1c`. */
  readonly label: string;
  /** File contents. Throws TreeError when missing or outside the tree. */
  read(path: string): Promise<Buffer>;
  /** Synchronous read, for the template loader (Nunjucks' include/import are synchronous). */
  readSync(path: string): Buffer;
  exists(path: string): Promise<boolean>;
  existsSync(path: string): boolean;
  /** Every file below `dir` (relative to the tree root, '/'-separated), for `file.recurse`. */
  list(dir: string): Promise<string[]>;
}

export class TreeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TreeError';
  }
}

/** `salt://a/b.sls` or `a/b.sls` or `/a/b.sls` -> `a/b.sls`; refuses `..` escapes. */
export function normaliseTreePath(p: string): string {
  let s = p.startsWith('salt://') ? p.slice('salt://'.length) : p;
  // salt:// URLs may carry ?saltenv=base
  const q = s.indexOf('?');
  if (q >= 0) s = s.slice(0, q);
  const parts: string[] = [];
  for (const seg of s.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      throw new TreeError(`path ${JSON.stringify(p)} leaves the state tree`);
    }
    parts.push(seg);
  }
  return parts.join('/');
}
