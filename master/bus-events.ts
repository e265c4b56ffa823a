/**
 * What masters sharing one store tell each other (master/bus.ts carries it). One zod schema per
 * event, discriminated by `type`; a receiving master parses every event before acting and
 * dispatches it through a table (BusHandlers), as agents' messages are.
 *
 * Events name jobs and agents, nothing more: bundles, rendered pillar and results never travel on
 * the bus. The store holds the job (its revision, sls, test flag), each agent's revision and every
 * return; a master that is told about a job reads the rest from there.
 */
import * as z from 'zod';
import { AgentIdSchema, JidSchema } from '../protocol/messages.js';

/** A master's id (master.yaml master_id; default hostname:port). */
export const MasterIdSchema = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[^\s"\\]+$/, 'a master id has no spaces, quotes or backslashes');
export type MasterId = z.infer<typeof MasterIdSchema>;

const Agents = z.array(AgentIdSchema).min(1);

/**
 * The job's owner (the master that started it) sends it to agents connected to master `to`: that
 * master builds each agent's job from the store (bundle and pillar at the agent's revision) and
 * sends it. `pillar` is the operator's inline pillar (`tsalt apply ... pillar='{...}'`), the only
 * part of a job the store does not keep (only its keys are stored).
 */
export const DispatchEventSchema = z.strictObject({
  type: z.literal('dispatch'),
  from: MasterIdSchema,
  to: MasterIdSchema,
  jid: JidSchema,
  agents: Agents,
  pillar: z.record(z.string(), z.unknown()).optional(),
  /**
   * a rollout's or schedule's job: an agent busy with another state run is sent it again when
   * free (by the master holding it, which sees the refusal), not failed
   */
  wait_idle: z.literal(true).optional(),
});

/**
 * These agents' runs of job `jid` ended on the master that sent it (a return stored, refused,
 * lost): their status and return are in the store. The job's owner finishes them.
 */
export const ReturnedEventSchema = z.strictObject({
  type: z.literal('returned'),
  from: MasterIdSchema,
  jid: JidSchema,
  agents: Agents,
});

/**
 * These agents' state results of job `jid` (streamed to `from`, which sent them the job) are in the
 * store: the job's owner reads the new ones and streams them to its CLI.
 */
export const ProgressEventSchema = z.strictObject({
  type: z.literal('progress'),
  from: MasterIdSchema,
  jid: JidSchema,
  agents: Agents,
});

/** Keys changed (`tsalt keys accept/reject/delete` on `from`): a master holding their connections acts. */
export const KeyEventSchema = z.strictObject({
  type: z.literal('key'),
  from: MasterIdSchema,
  state: z.enum(['accepted', 'rejected', 'deleted']),
  agents: Agents,
});

/** `tsalt jobs kill JID` on the owner: masters that sent the job to their agents tell them to stop. */
export const KillEventSchema = z.strictObject({
  type: z.literal('kill'),
  from: MasterIdSchema,
  jid: JidSchema,
  by: z.string().max(200),
});

/**
 * `from` may have missed events (its bus connection dropped and came back): owners of running jobs
 * send their dispatches for `from`'s agents again (a master that already sent a job ignores it).
 */
export const ResyncEventSchema = z.strictObject({
  type: z.literal('resync'),
  from: MasterIdSchema,
});

/** A routed call's id (master/calls-route.ts): its rows in the store's `calls` table. */
export const CallIdSchema = z.string().regex(/^[0-9a-f]{32}$/);

/**
 * `tsalt ping/call/show` on `from` for agents connected to `to`: `to` takes call `id`'s rows from
 * the store (the request; pillar and bundle it renders itself), sends each agent its call and
 * stores each answer there. The event only names the call: answers can be megabytes.
 */
export const CallEventSchema = z.strictObject({
  type: z.literal('call'),
  from: MasterIdSchema,
  to: MasterIdSchema,
  id: CallIdSchema,
});

/** Answers to call `id` are in the store: the master that asked (`to`) reads them (and deletes them). */
export const AnsweredEventSchema = z.strictObject({
  type: z.literal('answered'),
  from: MasterIdSchema,
  to: MasterIdSchema,
  id: CallIdSchema,
});

export const BusEventSchema = z.discriminatedUnion('type', [
  DispatchEventSchema,
  ReturnedEventSchema,
  ProgressEventSchema,
  KeyEventSchema,
  KillEventSchema,
  ResyncEventSchema,
  CallEventSchema,
  AnsweredEventSchema,
]);
export type BusEvent = z.infer<typeof BusEventSchema>;
export type BusEventType = BusEvent['type'];
export type BusEventOf<T extends BusEventType> = Extract<BusEvent, { type: T }>;

/** A receiving master's dispatch table: one handler per event type. */
export type BusHandlers = { [T in BusEventType]: (ev: BusEventOf<T>) => void | Promise<void> };

/** Runs the handler for `ev` (parsed already). */
export function dispatchBusEvent(table: BusHandlers, ev: BusEvent): void | Promise<void> {
  const h = table[ev.type] as (e: BusEvent) => void | Promise<void>;
  return h(ev);
}

/**
 * An event too large for one message, split by its agent list into events that each fit in
 * `maxBytes` of JSON (events without an agent list are returned whole).
 */
export function splitEvent(ev: BusEvent, maxBytes: number): BusEvent[] {
  if (Buffer.byteLength(JSON.stringify(ev)) <= maxBytes) return [ev];
  if (!('agents' in ev) || ev.agents.length < 2) {
    throw new Error(`bus event '${ev.type}' is ${Buffer.byteLength(JSON.stringify(ev))} bytes, over the ${maxBytes} a message holds`);
  }
  const half = Math.ceil(ev.agents.length / 2);
  return [...splitEvent({ ...ev, agents: ev.agents.slice(0, half) } as BusEvent, maxBytes), ...splitEvent({ ...ev, agents: ev.agents.slice(half) } as BusEvent, maxBytes)];
}
