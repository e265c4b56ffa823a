/**
 * Every message the master and an agent exchange over the websocket (the CLI socket's are in
 * protocol/cli-messages.ts). One JSON object per text frame, discriminated by `type`. Both sides parse with these schemas before acting; a frame
 * that does not parse closes the connection (see decodeFrame).
 *
 * Note what is absent: an agent never names itself (its id comes from its TLS certificate),
 * and there is no message by which an agent asks for pillar: pillar only travels inside the
 * `job` sent to the agent it was rendered for.
 */
import { isDeepStrictEqual } from 'node:util';
// zod/mini: the agent daemon parses these and nothing of zod's classic API; a mini schema is a
// fraction of a classic one's memory (no method closures per instance), which an idle agent keeps
import * as z from 'zod/mini';
import { RunReportSchema, StateResultSchema } from './results.js';

export const PROTOCOL_VERSION = 1;

/** Salt-style job id: UTC timestamp with microseconds, e.g. 20240131120000123456. */
export const JidSchema = z.string().check(z.regex(/^\d{20}$/, 'a jid is 20 digits'));
/** Minion ids as Salt accepts them, minus anything that could be a path or an option. */
export const AgentIdSchema = z.string().check(z.regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/, 'invalid agent id'));
/** sha256 of the content-addressed bundle, hex */
export const HashSchema = z.string().check(z.regex(/^[0-9a-f]{64}$/));
export const Data = z.record(z.string(), z.unknown());

// ---------------------------------------------------------------- agent -> master

export const HelloSchema = z.strictObject({
  type: z.literal('hello'),
  version: z.int(),
  grains: Data,
  /**
   * the jids of the runs in progress (a state run, commands), so a restarted master does not
   * mark them lost; the master takes it as their acknowledgement (a state run's job_ack may not
   * have gone out yet)
   */
  running: z.array(JidSchema).check(z.maxLength(1000)),
  /** jids whose return is spooled on disk and about to be re-sent */
  spooled: z.array(JidSchema).check(z.maxLength(10000)),
});

/** The agent's grains changed (its grains file was edited): the master re-targets with them. */
export const GrainsUpdateSchema = z.strictObject({ type: z.literal('grains'), grains: Data });

/**
 * The agent took the job: sent at once for a command, for a state run only once it has run
 * ACK_AFTER_MS (agent/daemon.ts) and never when its return goes first.
 */
export const JobAckSchema = z.strictObject({ type: z.literal('job_ack'), jid: JidSchema });

/** The agent will not run this job (busy with another state run, or unknown kind). */
export const JobRefusedSchema = z.strictObject({
  type: z.literal('job_refused'),
  jid: JidSchema,
  message: z.string().check(z.maxLength(4096)),
});

export const BundleGetSchema = z.strictObject({ type: z.literal('bundle_get'), jid: JidSchema, hash: HashSchema });

export const StateEventSchema = z.strictObject({
  type: z.literal('state_result'),
  jid: JidSchema,
  result: StateResultSchema,
});

export const ReturnBodySchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('apply'), report: RunReportSchema }),
  /** the tree did not compile, the bundle could not be fetched, ...: nothing ran */
  z.strictObject({ kind: z.literal('error'), error: z.string() }),
  z.strictObject({
    kind: z.literal('run'),
    retcode: z.int(),
    stdout: z.string(),
    stderr: z.string(),
  }),
]);
export type ReturnBody = z.infer<typeof ReturnBodySchema>;

export const JobReturnSchema = z.strictObject({
  type: z.literal('job_return'),
  jid: JidSchema,
  /** revision the agent actually ran (apply) */
  revision: z.optional(z.string().check(z.maxLength(200))),
  body: ReturnBodySchema,
});
export type JobReturn = z.infer<typeof JobReturnSchema>;

/** The answer to a `call`: Salt's return value, or the error the function raised. */
export const CallReturnSchema = z.strictObject({
  type: z.literal('call_return'),
  id: z.string().check(z.regex(/^[0-9a-f]{32}$/)),
  ok: z.boolean(),
  return: z.optional(z.unknown()),
  error: z.optional(z.string().check(z.maxLength(100_000))),
});

export const AgentMessageSchema = z.discriminatedUnion('type', [
  HelloSchema,
  GrainsUpdateSchema,
  JobAckSchema,
  JobRefusedSchema,
  BundleGetSchema,
  StateEventSchema,
  JobReturnSchema,
  CallReturnSchema,
]);
export type AgentMessage = z.infer<typeof AgentMessageSchema>;
export type AgentMessageType = AgentMessage['type'];

// ---------------------------------------------------------------- master -> agent

/** Key state, so the agent can tell its operator why nothing happens. Carries nothing else. */
export const KeyStatusSchema = z.strictObject({
  type: z.literal('key_status'),
  state: z.enum(['pending', 'accepted', 'rejected']),
});

/** A state run: the tree at `revision` (bundle `bundle`), these sls (empty: highstate). */
export const ApplySpecSchema = z.strictObject({
  kind: z.literal('apply'),
  revision: z.string().check(z.maxLength(200)),
  bundle: HashSchema,
  sls: z.array(z.string().check(z.maxLength(1000))).check(z.maxLength(1000)),
  test: z.boolean(),
  /** this agent's pillar, rendered on the master for this agent only */
  pillar: Data,
});

export const JobSchema = z.strictObject({
  type: z.literal('job'),
  jid: JidSchema,
  spec: z.discriminatedUnion('kind', [
    ApplySpecSchema,
    z.strictObject({
      kind: z.literal('run'),
      command: z.string().check(z.maxLength(100_000)),
      timeout_s: z.optional(z.number().check(z.positive())),
    }),
  ]),
});
export type Job = z.infer<typeof JobSchema>;

export const BundleFileSchema = z.strictObject({
  path: z.string().check(z.maxLength(4096)),
  /** base64 */
  data: z.string(),
  executable: z.optional(z.boolean()),
});
export type BundleFile = z.infer<typeof BundleFileSchema>;

export const BundleSchema = z.strictObject({
  type: z.literal('bundle'),
  hash: HashSchema,
  revision: z.string().check(z.maxLength(200)),
  files: z.array(BundleFileSchema),
});
export type Bundle = z.infer<typeof BundleSchema>;

export const ReturnAckSchema = z.strictObject({ type: z.literal('return_ack'), jid: JidSchema });

/** The master refuses something the agent asked for (bundle it was not offered, ...). */
export const DeniedSchema = z.strictObject({ type: z.literal('denied'), message: z.string() });

/** Stop this job now (`tsalt jobs kill`): its programs are terminated, states not run yet say so. */
export const JobKillSchema = z.strictObject({ type: z.literal('job_kill'), jid: JidSchema });

/**
 * Salt's execution functions an operator may call on agents (`tsalt call`, `tsalt ping`,
 * `tsalt show`). state.apply/highstate/sls run as jobs (stored, streamed); the rest answer at once.
 */
export const CALL_FUNCTIONS = [
  'test.ping',
  'cmd.run',
  'cmd.run_all',
  'pkg.version',
  'pkg.list_pkgs',
  'pkg.install',
  'pkg.remove',
  'service.status',
  'service.restart',
  'service.reload',
  'file.file_exists',
  'file.read',
  'network.ip_addrs',
  'grains.items',
  'grains.get',
  'pillar.get',
  'pillar.items',
  'user.info',
  'saltutil.sync_grains',
  'state.show_sls',
  'state.show_highstate',
  'state.show_lowstate',
  'state.apply',
  'state.highstate',
  'state.sls',
] as const;
export type CallFunction = (typeof CALL_FUNCTIONS)[number];
/** Run as jobs on the master's side (JobManager), not as calls. */
export const JOB_FUNCTIONS: ReadonlySet<string> = new Set(['state.apply', 'state.highstate', 'state.sls']);
/** Functions that need this agent's pillar (sent with the call, to that agent only). */
export const PILLAR_FUNCTIONS: ReadonlySet<string> = new Set(['pillar.get', 'pillar.items', 'state.show_sls', 'state.show_highstate', 'state.show_lowstate']);
/** Functions that compile the state tree: the call carries the tree at the desired revision. */
export const TREE_FUNCTIONS: ReadonlySet<string> = new Set(['state.show_sls', 'state.show_highstate', 'state.show_lowstate']);

/** Run one execution function now and answer with `call_return` (not a job: nothing stored). */
export const CallSchema = z.strictObject({
  type: z.literal('call'),
  id: z.string().check(z.regex(/^[0-9a-f]{32}$/)),
  fun: z.enum(CALL_FUNCTIONS),
  args: z.array(z.unknown()).check(z.maxLength(1000)),
  kwargs: Data,
  /** this agent's pillar, rendered for it (PILLAR_FUNCTIONS only) */
  pillar: z.optional(Data),
  /** the state tree to compile (TREE_FUNCTIONS only) */
  bundle: z.optional(z.strictObject({ hash: HashSchema, revision: z.string().check(z.maxLength(200)), files: z.array(BundleFileSchema) })),
});
export type Call = z.infer<typeof CallSchema>;

export const MasterMessageSchema = z.discriminatedUnion('type', [
  KeyStatusSchema,
  JobSchema,
  JobKillSchema,
  BundleSchema,
  ReturnAckSchema,
  DeniedSchema,
  CallSchema,
]);
export type MasterMessage = z.infer<typeof MasterMessageSchema>;

// ---------------------------------------------------------------- framing

export type Decoded<T> = { ok: true; msg: T } | { ok: false; reason: string };

/**
 * Parse one websocket frame. Binary frames, non-JSON, unknown types and bad shapes are all
 * refusals with a reason for the log (never the frame's content: it may hold secrets).
 */
export function decodeFrame<S extends z.ZodMiniType>(
  schema: S,
  data: unknown,
  isBinary: boolean,
  /** texts of this schema checked already (a receiver sent the same frames many times) */
  valid?: ValidFrames,
): Decoded<z.infer<S>> {
  if (isBinary) return { ok: false, reason: 'binary frame' };
  const text = Buffer.isBuffer(data) ? data.toString('utf8') : typeof data === 'string' ? data : null;
  if (text === null) return { ok: false, reason: 'unreadable frame' };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'frame is not JSON' };
  }
  if (valid?.has(schema, text)) return { ok: true, msg: raw as z.infer<S> };
  const r = z.safeParse(schema, raw);
  if (r.success) valid?.learn(schema, text, raw, r.data);
  if (!r.success) {
    const t = raw && typeof raw === 'object' && 'type' in raw ? String((raw as { type: unknown }).type).slice(0, 40) : '?';
    const issue = r.error.issues[0];
    return { ok: false, reason: `bad message (type ${JSON.stringify(t)}): ${issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid'}` };
  }
  return { ok: true, msg: r.data };
}

/**
 * Frame texts a schema accepted and whose parse was their JSON as it is (no default, transform
 * or key order of the schema's changed anything): the agents of one process are each sent the
 * same job and the same return_ack; the first is checked, the others get their own JSON.parse
 * of a text known good. Bounded: the latest texts, small ones.
 */
export class ValidFrames {
  private readonly texts = new Map<z.ZodMiniType, Set<string>>();
  constructor(
    // the same frame reaches a process's agents at about the same time: a few texts are enough,
    // and a one-agent daemon (no use for them) holds at most 8 x 16 KiB
    private readonly maxTexts = 8,
    private readonly maxChars = 16 * 1024,
  ) {}

  has(schema: z.ZodMiniType, text: string): boolean {
    return this.texts.get(schema)?.has(text) ?? false;
  }

  /** After `schema` accepted `raw` (the JSON.parse of `text`) giving `parsed`. */
  learn(schema: z.ZodMiniType, text: string, raw: unknown, parsed: unknown): void {
    if (text.length > this.maxChars || !isDeepStrictEqual(parsed, raw)) return;
    let set = this.texts.get(schema);
    if (!set) this.texts.set(schema, (set = new Set()));
    if (set.size >= this.maxTexts) set.delete(set.values().next().value!);
    set.add(text);
  }
}

/** Websocket close codes used by both sides (4000-4999 are application-defined). */
export const CloseCode = {
  protocolError: 4400,
  unauthenticated: 4401,
  rejected: 4403,
  keyMismatch: 4409,
  replaced: 4410,
  shutdown: 1001,
} as const;

/** A websocket close frame's reason may be at most this many bytes (RFC 6455: 125 less the code). */
const CLOSE_REASON_MAX_BYTES = 123;

/**
 * `reason` cut to what a close frame holds, in bytes and on a character's boundary: ws throws
 * for a longer one, and a reason may quote what the peer sent (a message type of multibyte
 * characters made 120 characters over 123 bytes, and the throw ended the process).
 */
export function closeReason(reason: string): string {
  if (Buffer.byteLength(reason) <= CLOSE_REASON_MAX_BYTES) return reason;
  let out = '';
  let bytes = 0;
  for (const ch of reason) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > CLOSE_REASON_MAX_BYTES) break;
    out += ch;
    bytes += n;
  }
  return out;
}
