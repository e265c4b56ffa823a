/** A master.db brought to an older schema version by the migrations themselves, to test the next ones on. */
import path from 'node:path';
import Database from 'better-sqlite3';
import { MIGRATIONS } from '../../master/store-schema.js';
import { tempDir } from './harness.js';

/** A new database file at schema `version` (migrations 1..version applied, foreign keys on), open for the test's rows. */
export function databaseAt(version: number): { file: string; db: Database.Database } {
  const file = path.join(tempDir(), 'm.db');
  const db = new Database(file);
  db.pragma('foreign_keys = ON');
  for (const m of MIGRATIONS.slice(0, version)) db.exec(m.sql);
  db.pragma(`user_version = ${version}`);
  return { file, db };
}
