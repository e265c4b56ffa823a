/**
 * Calls: one execution function sent to one agent, answered by `call_return` (not a job:
 * nothing stored, nothing spooled). The answer is accepted only from the agent the call was
 * sent to; a disconnect or the timeout ends the wait. The round-trip time is measured here.
 */
import crypto from 'node:crypto';
import type { AgentMessage, Call } from '../protocol/messages.js';
import type { AgentConn, AgentServer } from './server.js';

export type CallOutcome =
  | { status: 'ok'; return: unknown; rtt_ms: number }
  | { status: 'error'; error: string; rtt_ms: number }
  /** Salt: "Minion did not return" */
  | { status: 'timeout' | 'offline' | 'lost'; error: string };

interface Pending {
  agent: string;
  sent: number;
  timer: NodeJS.Timeout;
  resolve(o: CallOutcome): void;
}

export class AgentCalls {
  private readonly pending = new Map<string, Pending>();

  constructor(private readonly server: Pick<AgentServer, 'ready'>) {}

  /** Whether the agent is connected here, ready for a call. */
  has(agent: string): boolean {
    return this.server.ready(agent) !== undefined;
  }

  call(agent: string, body: Omit<Call, 'type' | 'id'>, timeoutMs: number): Promise<CallOutcome> {
    const conn = this.server.ready(agent);
    if (!conn) return Promise.resolve({ status: 'offline', error: 'Minion did not return. [Not connected]' });
    const id = crypto.randomBytes(16).toString('hex');
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve({ status: 'timeout', error: `Minion did not return. [No response within ${timeoutMs / 1000}s]` });
      }, timeoutMs);
      this.pending.set(id, { agent, sent: performance.now(), timer, resolve });
      if (!conn.send({ type: 'call', id, ...body })) {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve({ status: 'offline', error: 'Minion did not return. [Not connected]' });
      }
    });
  }

  /** `call_return` from an accepted agent. */
  onReturn(conn: AgentConn, m: Extract<AgentMessage, { type: 'call_return' }>): void {
    const p = this.pending.get(m.id);
    if (!p || p.agent !== conn.id) return; // not this agent's call (or answered already)
    this.pending.delete(m.id);
    clearTimeout(p.timer);
    const rtt_ms = Math.round((performance.now() - p.sent) * 1000) / 1000;
    p.resolve(m.ok ? { status: 'ok', return: m.return ?? null, rtt_ms } : { status: 'error', error: m.error ?? 'failed', rtt_ms });
  }

  onDisconnect(conn: AgentConn): void {
    for (const [id, p] of this.pending) {
      if (p.agent !== conn.id) continue;
      this.pending.delete(id);
      clearTimeout(p.timer);
      p.resolve({ status: 'lost', error: 'Minion did not return. [Disconnected]' });
    }
  }

  stop(): void {
    for (const p of this.pending.values()) clearTimeout(p.timer);
  }
}
