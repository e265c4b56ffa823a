/** /etc/tsalt/agent.yaml. Names follow Salt's minion config where one exists. */
import os from 'node:os';
import path from 'node:path';
// zod/mini, as the messages: what the agent daemon holds for its life (protocol/messages.ts)
import * as z from 'zod/mini';
import { loadConfigFile } from '../../core/config-file.js';
import { LogLevelSchema } from '../../core/log.js';
import { AgentIdSchema } from '../../protocol/messages.js';

export const DEFAULT_AGENT_CONFIG = '/etc/tsalt/agent.yaml';

const FingerprintSchema = z.string().check(z.regex(/^[0-9a-fA-F:\s]{64,}$/, 'a sha256 fingerprint (64 hex digits)'));

export const AgentConfigSchema = z.strictObject({
  /** the agent id (Salt: id); default the host name. It goes into the agent's certificate. */
  id: z.optional(AgentIdSchema),
  /**
   * the master's host name or address (Salt: master), `host:port` or `[v6]:port` to give its port;
   * or a list of masters: the agent connects to the first it reaches and, when that one is lost,
   * to the next (Salt's master_type: failover), coming back round to the first after the last
   */
  master: z._default(z.union([z.string().check(z.minLength(1)), z.array(z.string().check(z.minLength(1))).check(z.minLength(1))]), 'salt'),
  /**
   * str or failover (Salt's names). Either way a tsalt agent holds one connection, to one master
   * of the list at a time: masters sharing a store route jobs to each other, so an agent needs
   * no connection to every master (Salt's str mode)
   */
  master_type: z._default(z.enum(['str', 'failover']), 'str'),
  /** the master's agent port (the master's `port`), for masters listed without one */
  master_port: z._default(z.int().check(z.gte(1), z.lte(65535)), 4506),
  /**
   * sha256 fingerprint of the master's public key (Salt: master_finger): one for every listed
   * master (masters sharing one key), or a map from each master (as written in master) to its own
   */
  master_finger: z.optional(z.union([FingerprintSchema, z.record(z.string(), FingerprintSchema)])),
  /** without a master_finger for a master: trust the first key it shows and pin it (trust on first use) */
  tofu: z._default(z.boolean(), false),
  /** try the listed masters in a random order, spreading agents over them (Salt: random_master) */
  random_master: z._default(z.boolean(), false),
  /**
   * connected to a later master of the list, go back to the first as soon as it answers again
   * (Salt: master_failback); with random_master the first stays first
   */
  master_failback: z._default(z.boolean(), false),
  /** how often, in seconds, to check whether the first master is back (0: every heartbeat) */
  master_failback_interval: z._default(z.number().check(z.gte(0)), 0),
  /** seconds between checks that the master is alive (Salt: master_alive_interval); overrides heartbeat_s */
  master_alive_interval: z.optional(z.number().check(z.positive())),
  /** the agent's key and certificate (created at first start), and master.fp with the keys tofu pinned, one line per master */
  pki_dir: z._default(z.string(), '/etc/tsalt/pki/agent'),
  /** bundles by hash, spooled returns */
  cache_dir: z._default(z.string(), '/var/cache/tsalt'),
  /** YAML grains merged over the detected ones (`roles:` lives here) */
  grains_file: z._default(z.string(), '/etc/tsalt/grains'),
  /** static grains from this config (over grains_file) */
  grains: z._default(z.record(z.string(), z.unknown()), {}),
  /** rebase file states under this directory (demos, tests) */
  root: z.optional(z.string()),
  /** first reconnect delay; each next one doubles (with jitter) up to backoff_max_s */
  backoff_min_s: z._default(z.number().check(z.positive()), 1),
  /** longest delay between reconnect attempts */
  backoff_max_s: z._default(z.number().check(z.positive()), 60),
  /** ping the master this often; a missed answer moves on to the next master (or reconnects) */
  heartbeat_s: z._default(z.number().check(z.positive()), 15),
  /** largest frame accepted from the master (state tree bundles come in one) */
  max_frame_bytes: z._default(z.int().check(z.positive()), 512 * 1024 * 1024),
  /**
   * Largest return (and streamed state result) sent to the master; longer output is cut in the
   * middle. Keep it below the master's max_frame_bytes (16 MiB by default).
   */
  max_return_bytes: z._default(z.int().check(z.gte(4096)), 8 * 1024 * 1024),
  /**
   * Run state runs and the calls that need the state engine in a child process (Salt's minion
   * option of that name), kept while jobs come and let go job_worker_idle_s after the last: the
   * idle agent then holds its connection, not the engine. Default: on when the process runs one
   * agent, off when one process runs several (`tsalt agent --config a --config b`, load tests)
   */
  multiprocessing: z.optional(z.boolean()),
  /** seconds the job worker is kept after the last job or call ends (0: let go at once) */
  job_worker_idle_s: z._default(z.number().check(z.gte(0)), 30),
  /** error, warn, info or debug; `tsalt agent --log-level` overrides it */
  log_level: z._default(LogLevelSchema, 'info'),
});
export type AgentConfig = z.infer<typeof AgentConfigSchema> & { id: string; configFile: string };

export function loadAgentConfig(file: string | undefined): AgentConfig {
  const f = file ?? DEFAULT_AGENT_CONFIG;
  const cfg = loadConfigFile(f, AgentConfigSchema, file !== undefined);
  const base = path.dirname(path.resolve(f));
  const abs = (p: string) => path.resolve(base, p);
  return {
    ...cfg,
    id: cfg.id ?? (AgentIdSchema.safeParse(os.hostname()).success ? os.hostname() : 'localhost'),
    pki_dir: abs(cfg.pki_dir),
    cache_dir: abs(cfg.cache_dir),
    grains_file: abs(cfg.grains_file),
    root: cfg.root === undefined ? undefined : abs(cfg.root),
    configFile: f,
  };
}
