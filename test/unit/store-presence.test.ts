/** Masters, sessions and leases on the SQLite store (the same contract runs on PostgreSQL). */
import path from 'node:path';
import { afterAll, describe } from 'vitest';
import { SqliteStore } from '../../master/store-sqlite.js';
import { tempDir } from '../helpers/harness.js';
import { presenceContract } from '../helpers/presence-contract.js';

const open: SqliteStore[] = [];
afterAll(async () => {
  for (const s of open) await s.close();
});

describe('SQLite store: masters, sessions, leases', () => {
  presenceContract(async () => {
    const s = new SqliteStore(path.join(tempDir(), 'master.db'));
    open.push(s);
    return s;
  });
});
