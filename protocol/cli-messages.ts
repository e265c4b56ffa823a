/**
 * The master's CLI socket (root only): every request `tsalt` sends and every event the master
 * answers with, one JSON object per line, discriminated by `type`. Apart from the agents'
 * messages (protocol/messages.ts), which the agent daemon loads: it never builds these.
 */
import * as z from 'zod';
import { Data, JidSchema, ReturnBodySchema } from './messages.js';
import { StateResultSchema } from './results.js';

export const TargetTypeSchema = z.enum(['glob', 'pcre', 'list', 'grain', 'grain_pcre', 'pillar', 'pillar_pcre', 'ipcidr', 'compound', 'nodegroup']);
export type TargetType = z.infer<typeof TargetTypeSchema>;

const TargetFields = {
  target: z.string().min(1).max(10_000),
  tgt_type: TargetTypeSchema,
  /** `N` agents at a time, or `N%` of the targets */
  batch: z.string().regex(/^\d+%?$/).optional(),
  /** with batches: an agent that fails or does not return cancels the agents not yet started */
  stop_on_failure: z.boolean().optional(),
  /** seconds each agent has to return; absent: the master's timeout_s */
  timeout_s: z.number().positive().optional(),
  /** who started it, for the job history */
  user: z.string().max(200),
};

/** A git revision (commit, tag, `HEAD~2`); never starting with '-' (an option to git). */
const RevisionSchema = z.string().regex(/^[\w./^~@{}-]+$/).refine((r) => !r.startsWith('-'), 'a revision cannot start with -').max(200);

export const CliRequestSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('keys.list') }),
  z.strictObject({ type: z.literal('keys.accept'), ids: z.array(z.string()), all: z.boolean() }),
  z.strictObject({ type: z.literal('keys.reject'), ids: z.array(z.string()) }),
  z.strictObject({ type: z.literal('keys.delete'), ids: z.array(z.string()) }),
  z.strictObject({ type: z.literal('agents.list') }),
  z.strictObject({
    type: z.literal('jobs.list'),
    limit: z.number().int().positive().max(10_000),
    /** the job's target expression or an agent it ran on */
    target: z.string().min(1).max(10_000).optional(),
    /** who started it (user, or user@cli) */
    by: z.string().min(1).max(200).optional(),
    /** only jobs where an agent failed, timed out, was lost or cancelled */
    failed: z.boolean().optional(),
    /** only test runs (true) or only real runs (false) */
    test: z.boolean().optional(),
    /** ISO 8601 time: jobs created at or after it */
    since: z.iso.datetime().optional(),
  }),
  z.strictObject({ type: z.literal('jobs.get'), jid: JidSchema }),
  z.strictObject({ type: z.literal('jobs.kill'), jid: JidSchema, user: z.string().max(200) }),
  /** `tsalt schedule`: the master's scheduled jobs, their last and next run */
  z.strictObject({ type: z.literal('schedule.list') }),
  z.strictObject({
    type: z.literal('apply'),
    ...TargetFields,
    sls: z.array(z.string()),
    test: z.boolean(),
    /** Salt's `pillar='{...}'`: merged over each agent's rendered pillar for this job only */
    pillar: z.optional(Data),
    /** a git revision of the state tree (commit, tag, `HEAD~2`): roll back or forward to it; default HEAD */
    revision: z.string().regex(/^[\w./^~@{}-]+$/).refine((r) => !r.startsWith('-'), 'a revision cannot start with -').max(200).optional(),
  }),
  z.strictObject({ type: z.literal('run'), ...TargetFields, command: z.string().min(1) }),
  /** `tsalt revisions`: the commits the master has seen, newest first, with their outcome */
  z.strictObject({ type: z.literal('revisions.list'), limit: z.number().int().positive().max(10_000) }),
  /** `tsalt status`: desired revision, branch head, the running rollout, each agent in sync or not */
  z.strictObject({ type: z.literal('status') }),
  /** `tsalt rollout [REV] [--force]`: make REV (default: the branch head) desired and roll it out */
  z.strictObject({ type: z.literal('rollout'), revision: RevisionSchema.optional(), force: z.boolean(), user: z.string().max(200) }),
  /** `tsalt rollback REV [target]`: REV becomes desired (or those agents' revision) and is applied */
  z.strictObject({
    type: z.literal('rollback'),
    revision: RevisionSchema,
    target: z.string().min(1).max(10_000).optional(),
    tgt_type: TargetTypeSchema.optional(),
    user: z.string().max(200),
  }),
  /** `tsalt grains`: what the master knows of each targeted agent's grains (KEY: one of them, a:b:c) */
  z.strictObject({ type: z.literal('grains'), target: TargetFields.target, tgt_type: TargetTypeSchema, key: z.string().min(1).max(1000).optional() }),
  /** `tsalt pillar`: each targeted agent's pillar as the master renders it; to this socket only, never logged */
  z.strictObject({ type: z.literal('pillar'), target: TargetFields.target, tgt_type: TargetTypeSchema, key: z.string().min(1).max(1000).optional() }),
  /** `tsalt call`, `tsalt ping`, `tsalt show`: one of CALL_FUNCTIONS on each targeted agent */
  z.strictObject({
    type: z.literal('call'),
    ...TargetFields,
    fun: z.string().min(1).max(200),
    args: z.array(z.unknown()).max(1000),
    kwargs: Data,
    /** state.show_*: compile the tree at this revision (default HEAD) */
    revision: z.string().regex(/^[\w./^~@{}-]+$/).refine((r) => !r.startsWith('-'), 'a revision cannot start with -').max(200).optional(),
  }),
]);
export type CliRequest = z.infer<typeof CliRequestSchema>;
/** A job as the master runs it: an apply or run request with its timeout settled. */
export type JobRequest = Extract<CliRequest, { type: 'apply' | 'run' }> & { timeout_s: number };

/** Events the master streams back on the CLI socket; the last one is always `end`. */
export const CliEventSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('data'), data: z.unknown() }),
  z.strictObject({
    type: z.literal('job_started'),
    jid: JidSchema,
    revision: z.string().nullable(),
    targets: z.array(z.string()),
    offline: z.array(z.strictObject({ id: z.string(), last_seen: z.string().nullable() })),
  }),
  z.strictObject({ type: z.literal('state_result'), agent: z.string(), result: StateResultSchema }),
  z.strictObject({
    type: z.literal('agent_done'),
    agent: z.string(),
    status: z.enum(['done', 'failed', 'timeout', 'lost', 'cancelled']),
    body: z.optional(ReturnBodySchema),
    error: z.string().optional(),
  }),
  z.strictObject({ type: z.literal('error'), message: z.string() }),
  z.strictObject({ type: z.literal('end'), code: z.number().int() }),
]);
export type CliEvent = z.infer<typeof CliEventSchema>;

/** `cancelled`: never sent, because an earlier batch failed and the job stops on failure. */
export const AgentJobStatusSchema = z.enum(['queued', 'running', 'done', 'failed', 'timeout', 'lost', 'cancelled']);
export type AgentJobStatus = z.infer<typeof AgentJobStatusSchema>;
