/** /etc/tsalt/agent.yaml. Names follow Salt's minion config where one exists. */
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { loadConfigFile } from '../../core/config-file.js';
import { LogLevelSchema } from '../../core/log.js';
import { AgentIdSchema } from '../../protocol/messages.js';

export const DEFAULT_AGENT_CONFIG = '/etc/tsalt/agent.yaml';

export const AgentConfigSchema = z.strictObject({
  /** the agent id (Salt: id); default the host name. It goes into the agent's certificate. */
  id: AgentIdSchema.optional(),
  /** the master's host name or address (Salt: master) */
  master: z.string().default('salt'),
  /** the master's agent port (the master's `port`) */
  master_port: z.number().int().min(1).max(65535).default(4506),
  /** sha256 fingerprint of the master's public key (Salt: master_finger) */
  master_finger: z.string().regex(/^[0-9a-fA-F:\s]{64,}$/).optional(),
  /** without master_finger: trust the first master seen and pin it (trust on first use) */
  tofu: z.boolean().default(false),
  /** the agent's key and certificate (created at first start), and master.fp when tofu pinned one */
  pki_dir: z.string().default('/etc/tsalt/pki/agent'),
  /** bundles by hash, spooled returns */
  cache_dir: z.string().default('/var/cache/tsalt'),
  /** YAML grains merged over the detected ones (`roles:` lives here) */
  grains_file: z.string().default('/etc/tsalt/grains'),
  /** static grains from this config (over grains_file) */
  grains: z.record(z.string(), z.unknown()).default({}),
  /** rebase file states under this directory (demos, tests) */
  root: z.string().optional(),
  /** first reconnect delay; each next one doubles (with jitter) up to backoff_max_s */
  backoff_min_s: z.number().positive().default(1),
  /** longest delay between reconnect attempts */
  backoff_max_s: z.number().positive().default(60),
  /** ping the master this often; a missed answer reconnects */
  heartbeat_s: z.number().positive().default(15),
  /** largest frame accepted from the master (state tree bundles come in one) */
  max_frame_bytes: z.number().int().positive().default(512 * 1024 * 1024),
  /**
   * Largest return (and streamed state result) sent to the master; longer output is cut in the
   * middle. Keep it below the master's max_frame_bytes (16 MiB by default).
   */
  max_return_bytes: z.number().int().min(4096).default(8 * 1024 * 1024),
  /** error, warn, info or debug; `tsalt agent --log-level` overrides it */
  log_level: LogLevelSchema.default('info'),
});
export type AgentConfig = z.infer<typeof AgentConfigSchema> & { id: string; configFile: string };

export function loadAgentConfig(file: string | undefined): AgentConfig {
  const f = file ?? DEFAULT_AGENT_CONFIG;
  const cfg = loadConfigFile(f, AgentConfigSchema, file !== undefined);
  const base = path.dirname(path.resolve(f));
  const abs = (p: string) => path.resolve(base, p);
  return {
    ...cfg,
    id: cfg.id ?? AgentIdSchema.catch('localhost').parse(os.hostname()),
    pki_dir: abs(cfg.pki_dir),
    cache_dir: abs(cfg.cache_dir),
    grains_file: abs(cfg.grains_file),
    root: cfg.root === undefined ? undefined : abs(cfg.root),
    configFile: f,
  };
}
