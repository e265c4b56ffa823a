/**
 * Job events for the console's live pages (one of the JobManager's sinks, next to the metrics).
 * Listeners are told only *that* a job moved: the pages read what changed from the store, the
 * one source of truth.
 */
import type { AgentDoneStatus, JobEvents } from '../jobs.js';
import type { StateResult } from '../../protocol/results.js';

export type JobChange = { jid: string; kind: 'started' | 'agent' | 'state' | 'completed' };
type Listener = (c: JobChange) => void;

export class ConsoleLive implements JobEvents {
  private readonly listeners = new Set<Listener>();

  subscribe(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private tell(c: JobChange): void {
    for (const fn of this.listeners) {
      try {
        fn(c);
      } catch {
        this.listeners.delete(fn); // a page that went away never disturbs the job
      }
    }
  }

  jobStarted(jid: string): void {
    this.tell({ jid, kind: 'started' });
  }
  agentDone(jid: string, _status: AgentDoneStatus): void {
    this.tell({ jid, kind: 'agent' });
  }
  stateResult(jid: string, _r: StateResult): void {
    this.tell({ jid, kind: 'state' });
  }
  jobCompleted(jid: string): void {
    this.tell({ jid, kind: 'completed' });
  }
}
