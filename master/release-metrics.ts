/**
 * Release metrics, in the master's registry next to MasterMetrics: the desired revision, agents
 * behind it, rollouts by outcome, and changes by intent, so drift put back by schedules
 * (corrective changes: someone edits hosts by hand) shows apart from rollouts' changes.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { StateResult } from '../protocol/results.js';
import type { AgentDoneStatus, JobEvents } from './jobs.js';
import type { ReleaseEvents } from './rollout.js';
import type { JobIntent, RolloutStatus, Store } from './store-api.js';
import { agentSync } from './release-handlers.js';

const OUTCOMES: readonly Exclude<RolloutStatus, 'running'>[] = ['succeeded', 'failed', 'halted', 'rolled_back'];

export class ReleaseMetrics implements JobEvents, ReleaseEvents {
  private readonly rollouts: Counter<'outcome'>;
  private readonly changes: Counter<'intent'>;
  private readonly intents = new Map<string, JobIntent>();

  constructor(
    registry: Registry,
    private readonly store: Store,
    connected: () => Set<string>,
  ) {
    const desired = new Gauge({
      name: 'tsalt_desired_revision_info',
      help: 'The revision the fleet should run (the desired revision), as a label.',
      labelNames: ['revision'] as const,
      registers: [registry],
      async collect() {
        const d = await store.desired();
        this.reset();
        if (d) this.set({ revision: d }, 1);
      },
    });
    void desired;
    new Gauge({
      name: 'tsalt_agents_behind',
      help: 'Accepted agents whose last successful run is not the revision the fleet gives them (behind, or failed on it).',
      registers: [registry],
      async collect() {
        this.set(agentSync(await store.releaseSnapshot(), connected()).filter((a) => a.sync === 'behind' || a.sync === 'failed').length);
      },
    });
    this.rollouts = new Counter({ name: 'tsalt_rollouts_total', help: 'Rollouts finished, by outcome.', labelNames: ['outcome'] as const, registers: [registry] });
    this.changes = new Counter({
      name: 'tsalt_state_changes_by_intent_total',
      help: 'State results that changed something, by intent: intentional (rollouts, applies) or corrective (scheduled runs putting drift back).',
      labelNames: ['intent'] as const,
      registers: [registry],
    });
    for (const outcome of OUTCOMES) this.rollouts.inc({ outcome }, 0);
    for (const intent of ['intentional', 'corrective']) this.changes.inc({ intent }, 0);
  }

  rolloutFinished(status: RolloutStatus): void {
    this.rollouts.inc({ outcome: status });
  }

  jobStarted(jid: string, _kind: 'apply' | 'run', intent: JobIntent): void {
    this.intents.set(jid, intent);
  }

  agentDone(_jid: string, _status: AgentDoneStatus): void {}

  stateResult(jid: string, r: Pick<StateResult, 'result' | 'changes'>): void {
    if (r.result === null || Object.keys(r.changes).length === 0) return;
    const intent = this.intents.get(jid);
    if (intent) {
      this.changes.inc({ intent });
      return;
    }
    // a job this master did not start (a late return after a restart): its row says
    void this.store.getJob(jid).then(
      (j) => this.changes.inc({ intent: j?.intent ?? 'intentional' }),
      () => this.changes.inc({ intent: 'intentional' }),
    );
  }

  jobCompleted(jid: string): void {
    this.intents.delete(jid);
  }
}

/** Several observers of the same job events. */
export function fanOut(...sinks: (JobEvents | undefined)[]): JobEvents {
  const all = sinks.filter((s): s is JobEvents => s !== undefined);
  return {
    jobStarted: (jid, kind, intent) => all.forEach((s) => s.jobStarted(jid, kind, intent)),
    agentDone: (jid, status) => all.forEach((s) => s.agentDone(jid, status)),
    stateResult: (jid, r) => all.forEach((s) => s.stateResult(jid, r)),
    jobCompleted: (jid) => all.forEach((s) => s.jobCompleted(jid)),
  };
}
