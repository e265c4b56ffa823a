/**
 * master.yaml's `store:` picks the store by URL scheme: a path or sqlite:///path is SQLite,
 * postgres:// is PostgreSQL; a URL of any other kind is a config error naming the file and the key.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadMasterConfig } from '../../master/config.js';
import { ConfigError } from '../../core/config-file.js';
import { openStore, parseStoreSpec, redact } from '../../master/store.js';
import { tempDir } from '../helpers/harness.js';

function write(text: string): string {
  const f = path.join(tempDir('tsalt-store-'), 'master.yaml');
  fs.writeFileSync(f, text);
  return f;
}

describe('store: in master.yaml', () => {
  it('absent: the store is db (relative to master.yaml)', () => {
    const f = write('db: data/m.db\n');
    expect(loadMasterConfig(f).store).toBe(path.join(path.dirname(f), 'data/m.db'));
  });

  it('a relative path is relative to master.yaml; URLs are kept as given', () => {
    const f = write('store: s.db\n');
    expect(loadMasterConfig(f).store).toBe(path.join(path.dirname(f), 's.db'));
    expect(loadMasterConfig(write('store: sqlite:///var/lib/x.db\n')).store).toBe('sqlite:///var/lib/x.db');
    expect(loadMasterConfig(write('store: postgres://tsalt@db1/tsalt\n')).store).toBe('postgres://tsalt@db1/tsalt');
  });

  it('a URL of another kind, or a malformed one, is an error naming master.yaml and the key', () => {
    for (const [v, why] of [
      ['mysql://u@h/db', /unknown store scheme 'mysql:\/\/'/],
      ['sqlite://relative.db', /SQLite URL names an absolute path/],
      ['postgres:///nohost', /names no host/],
    ] as const) {
      const f = write(`store: ${v}\n`);
      expect(() => loadMasterConfig(f)).toThrow(ConfigError);
      expect(() => loadMasterConfig(f)).toThrow(new RegExp(`${f.replace(/[.]/g, '\\.')}[\\s\\S]*store[\\s\\S]*${why.source}`));
    }
  });

  it('passwords never reach a message', () => {
    expect(redact('postgres://tsalt:s3cret@db1/tsalt')).toBe('postgres://tsalt:***@db1/tsalt');
    expect(() => parseStoreSpec('foo://u:s3cret@h/x')).toThrow(/u:\*\*\*@h/);
  });
});

describe('openStore', () => {
  it('opens SQLite from a path and from sqlite:///', async () => {
    const dir = tempDir('tsalt-store-');
    for (const spec of [path.join(dir, 'a.db'), `sqlite://${path.join(dir, 'b.db')}`]) {
      const s = await openStore(spec);
      expect(s.kind).toBe('sqlite');
      await s.setMeta('k', 'v');
      expect(await s.getMeta('k')).toBe('v');
      await s.close();
    }
    expect(fs.existsSync(path.join(dir, 'b.db'))).toBe(true);
  });

  it('postgres:// and postgresql:// open the PostgreSQL store (its own tests run it against a real server)', async () => {
    // nothing listens on port 1: the PostgreSQL store's own error, naming the store without its password
    for (const scheme of ['postgres', 'postgresql']) {
      await expect(openStore(`${scheme}://tsalt:s3cret@127.0.0.1:1/tsalt`)).rejects.toThrow(
        `${scheme}://tsalt:***@127.0.0.1:1/tsalt: cannot reach the PostgreSQL server (connect ECONNREFUSED 127.0.0.1:1)`,
      );
    }
  });
});
