/**
 * Messages between the agent daemon and its job worker (agent/worker.ts), the child process
 * that runs state runs and calls (Salt's minion `multiprocessing`): the daemon keeps only the
 * master's connection in memory, the engine lives in the worker while jobs come. Node's IPC
 * channel carries them as JSON; each side parses what it receives with these schemas.
 */
import * as z from 'zod/mini';
import { ApplySpecSchema, CallSchema, JidSchema, ReturnBodySchema } from '../protocol/messages.js';
import { StateResultSchema } from '../protocol/results.js';

const Data = z.record(z.string(), z.unknown());

/** What the worker needs of the agent's config (the daemon read it; the worker reads no file of its own). */
export const WorkerHostSchema = z.strictObject({
  id: z.string(),
  cache_dir: z.string(),
  grains_file: z.string(),
  root: z.optional(z.string()),
  /** the grains as the daemon last read them (refreshed before each state run) */
  grains: Data,
});
export type WorkerHost = z.infer<typeof WorkerHostSchema>;

export const ToWorkerSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('apply'), jid: JidSchema, spec: ApplySpecSchema, host: WorkerHostSchema }),
  /** `busy`: the jid of the state run in progress when the call came (functions that change the host refuse then) */
  z.strictObject({ type: z.literal('call'), call: CallSchema, host: WorkerHostSchema, busy: z.optional(JidSchema) }),
  z.strictObject({ type: z.literal('kill'), jid: JidSchema }),
  /** the machine's grains (engine/grains/detect.ts), so the daemon never loads systeminformation */
  z.strictObject({ type: z.literal('detect_grains') }),
  /** make the agent's key and certificate (core/identity.ts), so the daemon never loads the x509 library */
  z.strictObject({ type: z.literal('make_identity'), dir: z.string(), base: z.string(), name: z.string() }),
]);
export type ToWorker = z.infer<typeof ToWorkerSchema>;

export const FromWorkerSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('state_result'), jid: JidSchema, result: StateResultSchema }),
  z.strictObject({ type: z.literal('apply_done'), jid: JidSchema, body: ReturnBodySchema }),
  z.strictObject({ type: z.literal('call_done'), id: CallSchema.shape.id, ok: z.boolean(), return: z.optional(z.unknown()), error: z.optional(z.string()) }),
  z.strictObject({ type: z.literal('grains_detected'), grains: z.optional(Data), error: z.optional(z.string()) }),
  z.strictObject({ type: z.literal('identity_made'), created: z.boolean(), error: z.optional(z.string()) }),
]);

/** The request key of a grains detection (jids and call ids have other shapes). */
export const DETECT_KEY = 'detect_grains';
/** The request key of making the agent's identity. */
export const IDENTITY_KEY = 'make_identity';
export type FromWorker = z.infer<typeof FromWorkerSchema>;
