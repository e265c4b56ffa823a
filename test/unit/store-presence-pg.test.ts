/** Masters, sessions and leases on the PostgreSQL store (the same contract as SQLite's), on a server this file starts. */
import { afterAll, beforeAll, describe } from 'vitest';
import { openPgStore, type PgStore } from '../../master/store-pg.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';
import { presenceContract } from '../helpers/presence-contract.js';

let server: Postgres;
const open: PgStore[] = [];
let n = 0;
beforeAll(async () => {
  server = await startPostgres();
}, 60_000);
afterAll(async () => {
  for (const s of open) await s.close();
  await server?.stop();
});

describe('PostgreSQL store: masters, sessions, leases', () => {
  presenceContract(async () => {
    const s = await openPgStore(await server.createDatabase(`presence_${++n}`));
    open.push(s);
    return s;
  });
});
