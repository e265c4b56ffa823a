/**
 * The master database's schema, as ordered migrations. `PRAGMA user_version` holds how many
 * have been applied; opening a database applies the missing ones, each in its own transaction
 * with its version bump, so a master killed mid-upgrade leaves the last complete version behind.
 * Migrations are only ever appended: a released one is never edited.
 */
import type Database from 'better-sqlite3';

export interface Migration {
  /** what it changes, for the log */
  what: string;
  sql: string;
  /**
   * Run with foreign keys off (a table copied, dropped and renamed: SQLite's 12 steps); the
   * keys are checked before the migration commits. Set outside the transaction: SQLite ignores
   * the pragma inside one.
   */
  foreignKeysOff?: true;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    // version 1: the schema of the releases before versioning (user_version 0, tables made with
    // IF NOT EXISTS), so an old master.db and an empty file both come out at version 1
    what: 'agents, jobs, job_minions, state_results',
    sql: `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS agents (
  id TEXT PRIMARY KEY,
  fingerprint TEXT NOT NULL,
  key_state TEXT NOT NULL CHECK (key_state IN ('pending','accepted','rejected')),
  grains TEXT NOT NULL DEFAULT '{}',
  first_seen TEXT NOT NULL,
  last_seen TEXT,
  revision_applied TEXT
);
CREATE TABLE IF NOT EXISTS jobs (
  jid TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  target TEXT NOT NULL,
  tgt_type TEXT NOT NULL,
  args TEXT NOT NULL,
  revision TEXT,
  started_by TEXT NOT NULL,
  created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS job_minions (
  jid TEXT NOT NULL REFERENCES jobs(jid) ON DELETE CASCADE,
  agent_id TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('queued','running','done','failed','timeout','lost','cancelled')),
  started TEXT,
  finished TEXT,
  error TEXT,
  body TEXT,
  PRIMARY KEY (jid, agent_id)
);
CREATE INDEX IF NOT EXISTS job_minions_open ON job_minions(status) WHERE status IN ('queued','running');
CREATE TABLE IF NOT EXISTS state_results (
  jid TEXT NOT NULL,
  agent_id TEXT NOT NULL,
  run_num INTEGER NOT NULL,
  state_id TEXT NOT NULL,
  sls TEXT NOT NULL,
  fun TEXT NOT NULL,
  name TEXT NOT NULL,
  result INTEGER,
  changes TEXT NOT NULL,
  comment TEXT NOT NULL,
  start TEXT NOT NULL,
  duration_ms REAL NOT NULL,
  warnings TEXT,
  PRIMARY KEY (jid, agent_id, run_num),
  FOREIGN KEY (jid, agent_id) REFERENCES job_minions(jid, agent_id) ON DELETE CASCADE
);`,
  },
  {
    // version 2: one word for the hosts (agent); what an agent last attempted next to what it
    // last applied successfully; whether a job's changes were intended (a rollout, an apply) or
    // corrective (a schedule putting drift back)
    what: 'job_minions -> job_agents; agents.revision_attempted; jobs.intent',
    sql: `
ALTER TABLE job_minions RENAME TO job_agents;
DROP INDEX IF EXISTS job_minions_open;
CREATE INDEX job_agents_open ON job_agents(status) WHERE status IN ('queued','running');
ALTER TABLE agents ADD COLUMN revision_attempted TEXT;
ALTER TABLE agents ADD COLUMN attempt_status TEXT;
ALTER TABLE agents ADD COLUMN attempt_jid TEXT;
ALTER TABLE jobs ADD COLUMN intent TEXT NOT NULL DEFAULT 'intentional' CHECK (intent IN ('intentional','corrective'));
UPDATE jobs SET intent = 'corrective' WHERE started_by LIKE 'schedule:%';
-- the last attempt of a released database is its last finished apply job, whatever its result
UPDATE agents SET
  attempt_jid = (SELECT ja.jid FROM job_agents ja JOIN jobs j ON j.jid = ja.jid
                 WHERE ja.agent_id = agents.id AND j.kind = 'apply' AND j.revision IS NOT NULL AND ja.status IN ('done','failed','timeout')
                 ORDER BY ja.jid DESC LIMIT 1);
UPDATE agents SET
  revision_attempted = (SELECT revision FROM jobs WHERE jid = agents.attempt_jid),
  attempt_status = (SELECT status FROM job_agents WHERE jid = agents.attempt_jid AND agent_id = agents.id)
  WHERE attempt_jid IS NOT NULL;`,
  },
  {
    // version 3: releases. The desired revision (meta 'desired.revision', taken over from the
    // old 'rollout.revision'), each agent's assigned revision, the revision each agent of a job
    // was sent, the commits seen and the rollouts run
    what: 'revisions, rollouts; agents.revision_assigned; job_agents.revision',
    sql: `
CREATE TABLE revisions (
  sha TEXT PRIMARY KEY,
  seen TEXT NOT NULL,
  date TEXT,
  author TEXT,
  subject TEXT,
  outcome TEXT NOT NULL DEFAULT 'seen' CHECK (outcome IN ('seen','rolling_out','rolled_out','failed','rolled_back','refused')),
  detail TEXT
);
CREATE TABLE rollouts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  revision TEXT NOT NULL,
  previous TEXT,
  reason TEXT NOT NULL,
  started_by TEXT NOT NULL,
  started TEXT NOT NULL,
  finished TEXT,
  status TEXT NOT NULL CHECK (status IN ('running','succeeded','halted','rolled_back','failed')),
  batch INTEGER NOT NULL DEFAULT 0,
  batches INTEGER NOT NULL DEFAULT 0,
  agents TEXT NOT NULL DEFAULT '[]',
  jids TEXT NOT NULL DEFAULT '[]',
  message TEXT
);
ALTER TABLE agents ADD COLUMN revision_assigned TEXT;
ALTER TABLE job_agents ADD COLUMN revision TEXT;
UPDATE job_agents SET revision = (SELECT revision FROM jobs WHERE jobs.jid = job_agents.jid);
INSERT OR IGNORE INTO meta (key, value) SELECT 'desired.revision', value FROM meta WHERE key = 'rollout.revision';
DELETE FROM meta WHERE key = 'rollout.revision';`,
  },
  {
    // version 4: each rollout batch as it ran (its group, agents, job) and each verify check's
    // result after it (outcome, tries, message, time), so status and the console read what
    // happened instead of inferring it from the rollout's message
    what: 'rollout_batches, rollout_verify',
    sql: `
CREATE TABLE rollout_batches (
  rollout_id INTEGER NOT NULL REFERENCES rollouts(id) ON DELETE CASCADE,
  batch INTEGER NOT NULL,
  group_num INTEGER NOT NULL,
  group_name TEXT NOT NULL,
  agents TEXT NOT NULL,
  offline TEXT NOT NULL DEFAULT '[]',
  jid TEXT,
  status TEXT NOT NULL CHECK (status IN ('pending','applying','verifying','done','failed','skipped','not_run')),
  started TEXT,
  finished TEXT,
  PRIMARY KEY (rollout_id, batch)
);
CREATE TABLE rollout_verify (
  rollout_id INTEGER NOT NULL,
  batch INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  name TEXT NOT NULL,
  outcome TEXT NOT NULL CHECK (outcome IN ('running','passed','failed')),
  attempts INTEGER NOT NULL,
  message TEXT,
  started TEXT NOT NULL,
  finished TEXT,
  PRIMARY KEY (rollout_id, batch, seq),
  FOREIGN KEY (rollout_id, batch) REFERENCES rollout_batches(rollout_id, batch) ON DELETE CASCADE
);`,
  },
  {
    // version 5: `tsalt jobs kill` is remembered on the job (it was a meta row per job,
    // 'job_killed:<jid>' = {"by","at"}), so every store answers it with the job
    what: 'jobs.killed_by, jobs.killed_at',
    sql: `
ALTER TABLE jobs ADD COLUMN killed_by TEXT;
ALTER TABLE jobs ADD COLUMN killed_at TEXT;
UPDATE jobs SET
  killed_by = (SELECT json_extract(value, '$.by') FROM meta WHERE key = 'job_killed:' || jobs.jid),
  killed_at = (SELECT json_extract(value, '$.at') FROM meta WHERE key = 'job_killed:' || jobs.jid)
  WHERE EXISTS (SELECT 1 FROM meta WHERE key = 'job_killed:' || jobs.jid);
DELETE FROM meta WHERE key LIKE 'job\\_killed:%' ESCAPE '\\';`,
  },
  {
    // version 6: several masters on one store. Each master's heartbeat (masters), the master
    // holding each agent's connection (sessions: one per agent), and leases that let one master
    // of several run a fleet-wide duty (a schedule, a rollout) at a time
    what: 'masters, sessions, leases',
    sql: `
CREATE TABLE masters (
  id TEXT PRIMARY KEY,
  url TEXT NOT NULL,
  started TEXT NOT NULL,
  seen TEXT NOT NULL
);
CREATE TABLE sessions (
  agent_id TEXT PRIMARY KEY REFERENCES agents(id) ON DELETE CASCADE,
  master_id TEXT NOT NULL,
  since TEXT NOT NULL
);
CREATE INDEX sessions_master ON sessions(master_id);
CREATE TABLE leases (
  name TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  expires TEXT NOT NULL
);`,
  },
  {
    // version 7: an agent's open runs by agent id. Every hello and disconnect asks for them;
    // the only index on open rows was by status, so each read scanned every open row of every
    // running job (13% of a 5,000-agent master's CPU, quadratic when a job's agents drop together)
    what: 'index job_agents_open_agent',
    sql: `
CREATE INDEX job_agents_open_agent ON job_agents(agent_id) WHERE status IN ('queued','running');`,
  },
  {
    // version 8: calls (`tsalt ping/call/show`) routed to the master holding the agent's
    // connection. One row per call and agent: the request without pillar or bundle (the holding
    // master renders those), taken once by that master, answered once; the asking master reads
    // and deletes the answer, or the whole call when it stops waiting. `expires` is when it stops
    // waiting: rows a master left behind (it died waiting) are deleted by age after it. Answers
    // go here rather than on the bus: one such as state.show_sls is far over NOTIFY's 8,000 bytes
    what: 'calls',
    sql: `
CREATE TABLE calls (
  id TEXT NOT NULL,
  agent_id TEXT NOT NULL,
  asked_by TEXT NOT NULL,
  sent_by TEXT NOT NULL,
  request TEXT NOT NULL,
  created TEXT NOT NULL,
  expires TEXT NOT NULL,
  taken TEXT,
  answered TEXT,
  answer TEXT,
  PRIMARY KEY (id, agent_id)
);
CREATE INDEX calls_sent_by ON calls(sent_by) WHERE taken IS NULL;
CREATE INDEX calls_expires ON calls(expires);`,
  },
  {
    // version 9: job_agents' status and agents' key_state CHECKs as comparisons, the same
    // constraints. SQLite runs a CHECK's IN list of more than two values through a temporary
    // b-tree built at every insert or update of the column, a 88 KiB allocation each; the master
    // writes job_agents three times per agent and job (queued, running, its return) and agents at
    // every first contact, and its malloc setting (MALLOC_MMAP_THRESHOLD_,
    // packaging/tsalt-master.service) maps, faults in and unmaps each one: 0.3–0.5 ms per write.
    // SQLite changes a CHECK only by copying the table (its documented 12 steps), with foreign
    // keys off so that dropping the old table cascades to nothing.
    what: 'job_agents, agents: status and key_state CHECKs without an IN list',
    foreignKeysOff: true,
    sql: `
CREATE TABLE agents_v9 (
  id TEXT PRIMARY KEY,
  fingerprint TEXT NOT NULL,
  key_state TEXT NOT NULL CHECK (key_state = 'pending' OR key_state = 'accepted' OR key_state = 'rejected'),
  grains TEXT NOT NULL DEFAULT '{}',
  first_seen TEXT NOT NULL,
  last_seen TEXT,
  revision_applied TEXT,
  revision_attempted TEXT,
  attempt_status TEXT,
  attempt_jid TEXT,
  revision_assigned TEXT
);
INSERT INTO agents_v9 (id, fingerprint, key_state, grains, first_seen, last_seen, revision_applied, revision_attempted, attempt_status, attempt_jid, revision_assigned)
  SELECT id, fingerprint, key_state, grains, first_seen, last_seen, revision_applied, revision_attempted, attempt_status, attempt_jid, revision_assigned FROM agents;
DROP TABLE agents;
ALTER TABLE agents_v9 RENAME TO agents;
CREATE TABLE job_agents_v9 (
  jid TEXT NOT NULL REFERENCES jobs(jid) ON DELETE CASCADE,
  agent_id TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status = 'queued' OR status = 'running' OR status = 'done' OR status = 'failed' OR status = 'timeout' OR status = 'lost' OR status = 'cancelled'),
  started TEXT,
  finished TEXT,
  error TEXT,
  body TEXT,
  revision TEXT,
  PRIMARY KEY (jid, agent_id)
);
INSERT INTO job_agents_v9 (jid, agent_id, status, started, finished, error, body, revision)
  SELECT jid, agent_id, status, started, finished, error, body, revision FROM job_agents;
DROP TABLE job_agents;
ALTER TABLE job_agents_v9 RENAME TO job_agents;
CREATE INDEX job_agents_open ON job_agents(status) WHERE status IN ('queued','running');
CREATE INDEX job_agents_open_agent ON job_agents(agent_id) WHERE status IN ('queued','running');`,
  },
];

export const SCHEMA_VERSION = MIGRATIONS.length;

export class SchemaError extends Error {}

/** Brings the database to SCHEMA_VERSION; returns the versions it went from and to. */
export function migrate(db: Database.Database, file: string, log?: (msg: string) => void): { from: number; to: number } {
  const from = db.pragma('user_version', { simple: true }) as number;
  if (from > SCHEMA_VERSION) {
    throw new SchemaError(`${file}: database schema version ${from} is newer than this tsalt knows (${SCHEMA_VERSION}); run the tsalt that wrote it`);
  }
  for (let v = from; v < SCHEMA_VERSION; v++) {
    const m = MIGRATIONS[v]!;
    const keys = db.pragma('foreign_keys', { simple: true }) as number;
    if (m.foreignKeysOff) db.pragma('foreign_keys = OFF');
    try {
      db.transaction(() => {
        db.exec(m.sql);
        if (m.foreignKeysOff) {
          const bad = db.pragma('foreign_key_check') as unknown[];
          if (bad.length) throw new SchemaError(`${file}: schema ${v} -> ${v + 1} (${m.what}): ${bad.length} foreign key violation(s); not migrated`);
        }
        // user_version lives in the file header and is part of the transaction
        db.pragma(`user_version = ${v + 1}`);
      })();
    } finally {
      if (m.foreignKeysOff) db.pragma(`foreign_keys = ${keys ? 'ON' : 'OFF'}`);
    }
    log?.(`${file}: schema ${v} -> ${v + 1} (${m.what})`);
  }
  const fk = db.pragma('foreign_key_check') as unknown[];
  if (fk.length) throw new SchemaError(`${file}: ${fk.length} foreign key violation(s) after migrating`);
  return { from, to: SCHEMA_VERSION };
}
