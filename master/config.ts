/** /etc/tsalt/master.yaml. Every key is optional; an unknown key is an error that names it. */
import path from 'node:path';
import { z } from 'zod';
import { loadConfigFile } from '../core/config-file.js';
import { LogLevelSchema } from '../core/log.js';
import { RolloutConfigSchema } from './rollout.js';
import { MetricsConfigSchema } from './metrics.js';
import { ScheduleConfigSchema } from './schedule.js';

export const DEFAULT_MASTER_CONFIG = '/etc/tsalt/master.yaml';

export const MasterConfigSchema = z.strictObject({
  /** address to listen on for agents (Salt: interface) */
  interface: z.string().default('0.0.0.0'),
  /** the port agents connect to (Salt: ret_port); 0 picks a free port (tests); the chosen one is written to `<pki_dir>/../port` */
  port: z.number().int().min(0).max(65535).default(4506),
  /** the master's key and certificate (created at first start); agents pin its fingerprint */
  pki_dir: z.string().default('/etc/tsalt/pki/master'),
  /** SQLite database (WAL) with agents, jobs and results */
  db: z.string().default('/var/lib/tsalt/master.db'),
  /** the CLI's Unix socket, mode 0600 */
  socket: z.string().default('/run/tsalt/master.sock'),
  /** the state tree: a git work tree (jobs pin its HEAD commit) or a plain directory */
  state_tree: z.string().default('/srv/tsalt/states'),
  /** the pillar tree with top.sls; never sent to agents as files */
  pillar_tree: z.string().default('/srv/tsalt/pillar'),
  /** Salt nodegroups: name -> compound target (or list of ids) */
  nodegroups: z.record(z.string(), z.union([z.string(), z.array(z.string())])).default({}),
  /** accept every new key (test labs only; Salt: auto_accept) */
  auto_accept: z.boolean().default(false),
  /** largest frame accepted from an agent; larger ones close the connection */
  max_frame_bytes: z.number().int().positive().default(16 * 1024 * 1024),
  /** ping agents this often; two missed pongs drop the connection */
  heartbeat_s: z.number().positive().default(15),
  /** an agent that dropped mid-job and is not back (with the job) after this long: job lost */
  lost_after_s: z.number().positive().default(60),
  /** `tsalt apply` waits this long for returns unless --timeout is given (Salt: timeout) */
  timeout_s: z.number().positive().default(600),
  /** error, warn, info or debug; `tsalt master --log-level` overrides it */
  log_level: LogLevelSchema.default('info'),
  /** apply each new git revision of state_tree automatically, batch by batch (absent: off) */
  rollout: RolloutConfigSchema.optional(),
  /** Prometheus endpoint, GET /metrics (absent: none); an empty `metrics:` takes the defaults */
  metrics: z.preprocess((v) => (v === null ? {} : v), MetricsConfigSchema).optional(),
  /** scheduled jobs (Salt's schedule): name -> function, target, interval; see master/schedule.ts */
  schedule: ScheduleConfigSchema.default({}),
});
export type MasterConfig = z.infer<typeof MasterConfigSchema>;

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
    socket: abs(cfg.socket),
    state_tree: abs(cfg.state_tree),
    pillar_tree: abs(cfg.pillar_tree),
    configFile: f,
  };
}
