/** CLI handlers for releases: `tsalt revisions`, `tsalt status`, `tsalt rollout`, `tsalt rollback`. */
import type { AgentJobStatus } from '../protocol/cli-messages.js';
import type { CliContext, CliHandlerTable, Send } from './cli-handlers.js';
import type { ReleaseSnapshot, RevisionRow, RolloutBatchRow, RolloutRow } from './store-api.js';
import type { Releaser } from './rollout.js';
import { fleetConnected } from './fleet-connected.js';

export interface RevisionLine extends RevisionRow {
  desired: boolean;
  head: boolean;
  /** agents whose last successful run is this revision */
  agents_applied: number;
  /** agents whose last attempt of this revision failed */
  agents_failed: number;
}

export type AgentSync = 'in_sync' | 'behind' | 'failed' | 'held';

export interface AgentStatusLine {
  id: string;
  connected: boolean;
  /** the revision the fleet gives it (desired, or held on another by a halted rollout / targeted rollback) */
  revision: string | null;
  revision_applied: string | null;
  revision_attempted: string | null;
  attempt_status: AgentJobStatus | null;
  attempt_jid: string | null;
  sync: AgentSync;
}

export interface StatusData {
  source: string;
  desired: string | null;
  head: string | null;
  /** the rollout running now (batch k of n), else null */
  rollout: RolloutRow | null;
  last_rollout: RolloutRow | null;
  /** the batches of that rollout (running, else last), as they ran, each with its verify results */
  rollout_batches: RolloutBatchRow[];
  agents: AgentStatusLine[];
}

function noReleases(send: Send): number {
  send({ type: 'error', message: 'releases need git: (or rollout:) in master.yaml; this master serves a plain state_tree' });
  return 1;
}

/** Each accepted agent against the revision the fleet gives it, from one ReleaseSnapshot's agents and desired revision. */
export function agentSync(snap: Pick<ReleaseSnapshot, 'agents' | 'desired'>, connected: ReadonlySet<string>): AgentStatusLine[] {
  const desired = snap.desired ?? null;
  return snap.agents
    .filter((a) => a.key_state === 'accepted')
    .map((a) => {
      const want = a.revision_assigned ?? desired;
      const sync: AgentSync =
        want && a.revision_attempted === want && a.attempt_status !== 'done' && a.revision_applied !== want
          ? 'failed'
          : a.revision_applied === want
            ? want === desired
              ? 'in_sync'
              : 'held'
            : 'behind';
      return {
        id: a.id,
        connected: connected.has(a.id),
        revision: want,
        revision_applied: a.revision_applied,
        revision_attempted: a.revision_attempted,
        attempt_status: a.attempt_status,
        attempt_jid: a.attempt_jid,
        sync,
      };
    });
}

async function withReleaser(ctx: CliContext, send: Send, fn: (r: Releaser) => Promise<number>): Promise<number> {
  const r = ctx.releaser;
  if (!r) return noReleases(send);
  try {
    return await fn(r);
  } catch (e) {
    send({ type: 'error', message: (e as Error).message });
    return 1;
  }
}

export const releaseHandlers: Pick<CliHandlerTable, 'revisions.list' | 'status' | 'rollout' | 'rollback'> = {
  'revisions.list': async (req, send, ctx) => {
    if (!ctx.releaser) return noReleases(send);
    // the outcomes, the desired revision and the agents in one read: read apart, a push acted on
    // in between (this master's event loop or the other master's runs on while this one waits
    // for git or the store) was listed with its outcome (failed, rolled out) and not desired
    const snap = await ctx.store.releaseSnapshot({ revisions: req.limit });
    // the head after the store: a push moves the branch before it is recorded, so the head is at
    // least as new as every revision the snapshot lists
    const head = await ctx.source.head().catch(() => undefined);
    const agents = snap.agents.filter((a) => a.key_state === 'accepted');
    const lines: RevisionLine[] = snap.revisions.map((r) => ({
      ...r,
      desired: r.sha === snap.desired,
      head: r.sha === head,
      agents_applied: agents.filter((a) => a.revision_applied === r.sha).length,
      agents_failed: agents.filter((a) => a.revision_attempted === r.sha && a.attempt_status !== 'done' && a.revision_applied !== r.sha).length,
    }));
    send({ type: 'data', data: lines });
    return 0;
  },
  status: async (_req, send, ctx) => {
    if (!ctx.releaser) return noReleases(send);
    const connected = await fleetConnected(ctx.server, ctx.elsewhere);
    // one read (as revisions.list): the desired revision, each agent's sync against it and the
    // rollout's batches agree; masters sharing a store: the rollout running may be another
    // master's (it holds the rollout lease)
    const snap = await ctx.store.releaseSnapshot({ rollouts: { limit: 1, running: ctx.releaser.current } });
    const data: StatusData = {
      source: ctx.source.label,
      desired: snap.desired ?? null,
      head: (await ctx.source.head().catch(() => undefined)) ?? null,
      rollout: snap.running ?? null,
      last_rollout: snap.rollouts[0] ?? null,
      rollout_batches: snap.batches,
      agents: agentSync(snap, connected),
    };
    send({ type: 'data', data });
    return 0;
  },
  rollout: (req, send, ctx) =>
    withReleaser(ctx, send, (r) =>
      r.rollout(req.revision, { force: req.force, user: req.user, say: (message, level = 'info') => send({ type: 'data', data: { message, level } }) }),
    ),
  rollback: (req, send, ctx) =>
    withReleaser(ctx, send, (r) =>
      r.rollback(req.revision, req.target ? { target: req.target, tgt_type: req.tgt_type ?? 'glob' } : undefined, {
        user: req.user,
        say: (message, level = 'info') => send({ type: 'data', data: { message, level } }),
      }),
    ),
};
