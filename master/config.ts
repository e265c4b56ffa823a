/** /etc/tsalt/master.yaml. Every key is optional; an unknown key is an error that names it. */
import path from 'node:path';
import * as z from 'zod';
import { loadConfigFile } from '../core/config-file.js';
import { LogLevelSchema } from '../core/log.js';
import { RolloutConfigSchema } from './rollout.js';
import { MetricsConfigSchema } from './metrics.js';
import { ScheduleConfigSchema } from './schedule.js';
import { ConsoleConfigSchema } from './console/config.js';
import { MasterIdSchema } from './bus-events.js';
import { parseStoreSpec, StoreSpecError } from './store.js';

export const DEFAULT_MASTER_CONFIG = '/etc/tsalt/master.yaml';

/** A directory inside the repository: relative, no `..`, no leading `-`. */
const RepoDir = z
  .string()
  .min(1)
  .transform((d) => d.replace(/^\.\/+/, '').replace(/\/+$/, ''))
  .refine((d) => d !== '' && !d.startsWith('/') && !d.startsWith('-') && !d.split('/').includes('..'), 'a directory inside the repository (relative, no ..)');

export const GitConfigSchema = z.strictObject({
  /** the repository, bare or a clone; `git push` goes here. Read from git objects only */
  repo: z.string().min(1),
  /** the branch that is released */
  branch: z
    .string()
    .min(1)
    .refine((b) => !b.startsWith('-') && !b.includes('..') && !/[\s~^:?*[\\]/.test(b), 'a git branch name')
    .default('main'),
  /** the state tree inside the repository (default: states) */
  states_dir: RepoDir.default('states'),
  /** the pillar tree inside the repository (default: pillar); not inside states_dir */
  pillar_dir: RepoDir.default('pillar'),
}).superRefine((g, ctx) => {
  // everything under states_dir is bundled for every agent: pillar there would leak
  const norm = (d: string) => (d === '.' ? '' : d);
  const [sd, pd] = [norm(g.states_dir), norm(g.pillar_dir)];
  if (sd === '' || pd === sd || pd.startsWith(`${sd}/`)) {
    ctx.addIssue({ code: 'custom', path: ['pillar_dir'], message: `pillar_dir '${g.pillar_dir}' is inside states_dir '${g.states_dir}'; pillar would reach every agent` });
  }
});
export type GitConfig = z.infer<typeof GitConfigSchema>;

export const MasterConfigSchema = z.strictObject({
  /** address to listen on for agents (Salt: interface) */
  interface: z.string().default('0.0.0.0'),
  /** the port agents connect to (Salt: ret_port); 0 picks a free port (tests); the chosen one is written to `<pki_dir>/../port` */
  port: z.number().int().min(0).max(65535).default(4506),
  /** the master's key and certificate (created at first start); agents pin its fingerprint */
  pki_dir: z.string().default('/etc/tsalt/pki/master'),
  /** SQLite database (WAL) with agents, jobs and results (the store, unless `store:` names another) */
  db: z.string().default('/var/lib/tsalt/master.db'),
  /** the store, when it is not db: a SQLite path, sqlite:///abs/path, or postgres://user@host/database (PostgreSQL, shared by several masters: the password in the URL or PGPASSWORD; docs/fleet.md, PostgreSQL store); absent: db */
  store: z
    .string()
    .min(1)
    .superRefine((v, ctx) => {
      try {
        parseStoreSpec(v);
      } catch (e) {
        if (!(e instanceof StoreSpecError)) throw e;
        ctx.addIssue({ code: 'custom', message: e.message });
      }
    })
    .optional(),
  /** the CLI's Unix socket, mode 0600 */
  socket: z.string().default('/run/tsalt/master.sock'),
  /** the config repository operators push to: states and pillar, one revision (see GitConfigSchema) */
  git: GitConfigSchema.optional(),
  /** without git: the state tree, a git work tree (jobs pin its HEAD commit) or a plain directory */
  state_tree: z.string().optional(),
  /** without git: the pillar tree with top.sls, read as it is at job time; never sent to agents as files */
  pillar_tree: z.string().optional(),
  /** Salt nodegroups: name -> compound target (or list of ids) */
  nodegroups: z.record(z.string(), z.union([z.string(), z.array(z.string())])).default({}),
  /** accept every new key (test labs only; Salt: auto_accept) */
  auto_accept: z.boolean().default(false),
  /** largest frame accepted from an agent; larger ones close the connection */
  max_frame_bytes: z.number().int().positive().default(16 * 1024 * 1024),
  /** largest frame from an agent whose key is not accepted yet (its hello is ~1 KiB) */
  pending_max_frame_bytes: z.number().int().positive().default(16 * 1024),
  /** connections from keys not accepted yet, at once; more are refused (and logged) */
  max_pending_connections: z.number().int().positive().default(100),
  /** pending keys kept; new ids beyond it are refused (and logged) until some are accepted or deleted */
  max_pending_keys: z.number().int().positive().default(1000),
  /** TLS handshake plus the websocket upgrade request must finish within this */
  tls_handshake_timeout_s: z.number().positive().default(10),
  /** sockets on the agent port at once, in any state; more are dropped (and logged) */
  max_connections: z.number().int().positive().default(10_000),
  /** TLS handshakes in progress at once on the agent port, e.g. when a whole fleet reconnects after a master restart; more new sockets wait for their turn (max_handshake_rate 0: are dropped, and their agents retry with backoff); logged when hit */
  max_handshakes: z.number().int().positive().default(200),
  /** TLS handshakes started per second on the agent port (0: no limit); sockets beyond it wait for their turn (at most tls_handshake_timeout_s) instead of being dropped, so a fleet reconnecting at once is let in at this pace without its agents backing off further */
  max_handshake_rate: z.number().int().nonnegative().default(500),
  /** ping agents this often; two missed pongs drop the connection */
  heartbeat_s: z.number().positive().default(15),
  /** an agent that dropped mid-job and is not back (with the job) after this long: job lost */
  lost_after_s: z.number().positive().default(60),
  /** a return the store refused (locked past its busy timeout, disk full) is held and stored again this often; unacknowledged meanwhile, so the agent keeps it spooled */
  held_return_retry_s: z.number().positive().default(2),
  /** returns held for a refusing store, in bytes at most; beyond it the agent's connection is closed and it sends the return again on reconnect */
  held_returns_max_bytes: z.number().int().positive().default(256 * 1024 * 1024),
  /** `tsalt apply` waits this long for returns unless --timeout is given (Salt: timeout) */
  timeout_s: z.number().positive().default(600),
  /** error, warn, info or debug; `tsalt master --log-level` overrides it */
  log_level: z._default(LogLevelSchema, 'info'),
  /** roll out each pushed revision group by group, batch by batch, with verify checks (absent: pushes only move the desired revision) */
  rollout: RolloutConfigSchema.optional(),
  /** Prometheus endpoint, GET /metrics (absent: none); an empty `metrics:` takes the defaults */
  metrics: z.preprocess((v) => (v === null ? {} : v), MetricsConfigSchema).optional(),
  /** scheduled jobs (Salt's schedule): name -> function, target, interval; see master/schedule.ts */
  schedule: ScheduleConfigSchema.default({}),
  /** the read-only web console (absent: none); see docs/console.md */
  console: ConsoleConfigSchema.optional(),
  /** this master's name among masters sharing one store (default: hostname:port); agents' sessions and jobs name it */
  master_id: MasterIdSchema.optional(),
  /** masters sharing one store each record a heartbeat this often; a master silent for 3 of them is dead and its agents count as offline until they connect elsewhere */
  master_heartbeat_s: z.number().positive().default(5),
}).superRefine((c, ctx) => {
  for (const k of ['state_tree', 'pillar_tree'] as const) {
    if (c.git && c[k] !== undefined) {
      ctx.addIssue({ code: 'custom', path: [k], message: `give either git: (states and pillar from one repository) or ${k}, not both` });
    }
  }
});
export type MasterConfig = z.infer<typeof MasterConfigSchema>;

export const DEFAULT_STATE_TREE = '/srv/tsalt/states';
export const DEFAULT_PILLAR_TREE = '/srv/tsalt/pillar';

export function loadMasterConfig(file: string | undefined): MasterConfig & { configFile: string } {
  const f = file ?? DEFAULT_MASTER_CONFIG;
  const cfg = loadConfigFile(f, MasterConfigSchema, file !== undefined);
  // relative paths in a config file are relative to that file, not to the cwd
  const base = path.dirname(path.resolve(f));
  const abs = (p: string) => path.resolve(base, p);
  return {
    ...cfg,
    pki_dir: abs(cfg.pki_dir),
    db: abs(cfg.db),
    // store: a plain SQLite path is relative to this file too; absent, the store is db
    store: cfg.store === undefined ? abs(cfg.db) : /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(cfg.store) ? cfg.store : abs(cfg.store),
    socket: abs(cfg.socket),
    ...(cfg.git
      ? { git: { ...cfg.git, repo: abs(cfg.git.repo) } }
      : { state_tree: abs(cfg.state_tree ?? DEFAULT_STATE_TREE), pillar_tree: abs(cfg.pillar_tree ?? DEFAULT_PILLAR_TREE) }),
    configFile: f,
  };
}
