/** The store contract (store-contract-cases.ts) on the SQLite store, a new file per case. */
import path from 'node:path';
import { SqliteStore } from '../../master/store-sqlite.js';
import { tempDir } from '../helpers/harness.js';
import { storeContract } from './store-contract-cases.js';

storeContract('sqlite', async () => new SqliteStore(path.join(tempDir('tsalt-contract-'), 'master.db')));
