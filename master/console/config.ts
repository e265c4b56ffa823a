/** `console:` in master.yaml: the read-only web console (absent: no console). */
import * as z from 'zod';

export const ConsoleConfigSchema = z.strictObject({
  /** address the console listens on; the default keeps it on the master itself */
  interface: z.string().min(1).default('127.0.0.1'),
  /** 0 picks a free port (tests; the chosen one is logged) */
  port: z.number().int().min(0).max(65535).default(4580),
  /**
   * Live pages' streams get a keepalive this often; a page whose stream is still behind one
   * interval later (its reader stopped reading: a suspended laptop, a stalled proxy) is dropped
   */
  keepalive_s: z.number().positive().max(3600).default(15),
  /**
   * The operators' secret: `Authorization: Bearer <token>`, or `?token=<token>` once on any
   * URL (which sets a session cookie). Long enough not to be guessed.
   */
  token: z.string().min(16, 'console.token must be at least 16 characters (e.g. `openssl rand -hex 24`)'),
});
export type ConsoleConfig = z.infer<typeof ConsoleConfigSchema>;
