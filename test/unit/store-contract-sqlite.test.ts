/** The Store contract (store-contract-cases.ts) on SQLite (master/store-sqlite.ts), a file per store name. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';
import { SqliteStore } from '../../master/store-sqlite.js';
import { storeContract } from './store-contract-cases.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsalt-contract-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

storeContract(async (name) => new SqliteStore(path.join(dir, `${name}.db`)));
