/**
 * Rows as both stores read them (SQLite and PostgreSQL hand back the same columns, JSON as
 * text), mapped to the interface's types in one place.
 */
import type { ReturnBody } from '../protocol/messages.js';
import type { StateResult } from '../protocol/results.js';
import type { AgentJobStatus } from '../protocol/cli-messages.js';
import type { AgentRow, CallRow, JobAgentRow, JobRow, KeyState, RolloutRow, RolloutStatus } from './store-api.js';

type Row = Record<string, unknown>;

/**
 * `o[key]` parsed from JSON text on first read. Most readers of an agent row never look at its
 * grains (a connection checks the key; `tsalt keys` lists states): parsing every agent's grains
 * on each read was the largest store cost of a fleet reconnecting after a master restart.
 */
function lazyJson(o: object, key: string, text: string): void {
  const settle = (value: unknown) => Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
  Object.defineProperty(o, key, {
    enumerable: true,
    configurable: true,
    get: () => {
      const v: unknown = JSON.parse(text);
      settle(v);
      return v;
    },
    set: settle,
  });
}

export function agentRow(r: Row): AgentRow {
  const row: Omit<AgentRow, 'grains'> = {
    id: String(r.id),
    fingerprint: String(r.fingerprint),
    key_state: r.key_state as KeyState,
    first_seen: String(r.first_seen),
    last_seen: (r.last_seen as string | null) ?? null,
    revision_applied: (r.revision_applied as string | null) ?? null,
    revision_attempted: (r.revision_attempted as string | null) ?? null,
    attempt_status: (r.attempt_status as AgentJobStatus | null) ?? null,
    attempt_jid: (r.attempt_jid as string | null) ?? null,
    revision_assigned: (r.revision_assigned as string | null) ?? null,
  };
  lazyJson(row, 'grains', String(r.grains ?? '{}'));
  return row as AgentRow;
}

export function rolloutRow(r: Row): RolloutRow {
  return {
    id: Number(r.id),
    revision: String(r.revision),
    previous: (r.previous as string | null) ?? null,
    reason: String(r.reason),
    started_by: String(r.started_by),
    started: String(r.started),
    finished: (r.finished as string | null) ?? null,
    status: r.status as RolloutStatus,
    batch: Number(r.batch),
    batches: Number(r.batches),
    agents: JSON.parse(String(r.agents)) as string[],
    jids: JSON.parse(String(r.jids)) as string[],
    message: (r.message as string | null) ?? null,
  };
}

export function jobRow(r: Row): JobRow {
  return {
    jid: String(r.jid),
    kind: r.kind as JobRow['kind'],
    target: String(r.target),
    tgt_type: String(r.tgt_type),
    args: JSON.parse(String(r.args)) as Record<string, unknown>,
    revision: (r.revision as string | null) ?? null,
    started_by: String(r.started_by),
    intent: r.intent === 'corrective' ? 'corrective' : 'intentional',
    created: String(r.created),
    killed: r.killed_by ? { by: String(r.killed_by), at: String(r.killed_at) } : null,
  };
}

export function jobAgentRow(r: Row): JobAgentRow {
  return {
    jid: String(r.jid),
    agent_id: String(r.agent_id),
    revision: (r.revision as string | null) ?? null,
    status: r.status as AgentJobStatus,
    started: (r.started as string | null) ?? null,
    finished: (r.finished as string | null) ?? null,
    error: (r.error as string | null) ?? null,
    body: r.body ? (JSON.parse(String(r.body)) as ReturnBody) : null,
  };
}

export function callRow(r: Row): CallRow {
  return {
    id: String(r.id),
    agent_id: String(r.agent_id),
    asked_by: String(r.asked_by),
    sent_by: String(r.sent_by),
    request: JSON.parse(String(r.request)) as Record<string, unknown>,
    expires: String(r.expires),
  };
}

/** A state_results row as the StateResult the agent sent. */
export function stateResultRow(r: Row): StateResult {
  return {
    id: String(r.state_id),
    sls: String(r.sls),
    fun: String(r.fun),
    name: String(r.name),
    result: r.result === null ? null : r.result === 1,
    changes: JSON.parse(String(r.changes)) as Record<string, unknown>,
    comment: String(r.comment),
    start: String(r.start),
    duration_ms: Number(r.duration_ms),
    run_num: Number(r.run_num),
    ...(r.warnings ? { warnings: JSON.parse(String(r.warnings)) as string[] } : {}),
  };
}
