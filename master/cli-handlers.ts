/**
 * What the master does for each CLI socket request: one handler per request type, as the
 * agent's daemon has one per master message. startMaster builds the context once; adding a
 * request means a schema in protocol/messages.ts and an entry here (the type checker insists).
 */
import type { Identity } from '../core/identity.js';
import type { Logger } from '../core/log.js';
import type { CliEvent, CliRequest } from '../protocol/messages.js';
import type { Store, AgentRow } from './store.js';
import type { AgentServer } from './server.js';
import type { JobManager } from './jobs.js';
import type { Scheduler } from './schedule.js';
import type { ConfigSource } from './tree.js';
import type { Releaser } from './rollout.js';
import { releaseHandlers } from './release-handlers.js';
import type { MasterConfig } from './config.js';

export type Send = (ev: CliEvent) => void;

/** Everything a CLI handler may use, wired once by startMaster. */
export interface CliContext {
  cfg: MasterConfig;
  identity: Pick<Identity, 'fingerprint'>;
  store: Store;
  server: AgentServer;
  jobs: JobManager;
  scheduler: Scheduler;
  /** states and pillar by revision */
  source: ConfigSource;
  /** the desired revision and rollouts (with git: or rollout:) */
  releaser?: Releaser;
  log: Logger;
}

type Req<T extends CliRequest['type']> = Extract<CliRequest, { type: T }>;
export type CliHandlerTable = { [T in CliRequest['type']]: (req: Req<T>, send: Send, ctx: CliContext) => Promise<number> | number };

/** The CLI socket's dispatch table. */
export const cliHandlers: CliHandlerTable = {
  'keys.list': (_req, send, { server, store, identity }) => {
    const connected = server.connectedIds();
    send({
      type: 'data',
      data: {
        master_fingerprint: identity.fingerprint,
        keys: store.listAgents().map((a) => ({ id: a.id, state: a.key_state, fingerprint: a.fingerprint, connected: connected.has(a.id) })),
      },
    });
    return 0;
  },
  'keys.accept': (req, send, { store, server }) => {
    const rows = store.listAgents();
    const ids = req.all ? rows.filter((a) => a.key_state === 'pending').map((a) => a.id) : req.ids;
    return keyOp(ids, rows, send, (a) => {
      store.setKeyState(a.id, 'accepted');
      server.promote(a.id);
    });
  },
  'keys.reject': (req, send, { store, server, log }) =>
    keyOp(req.ids, store.listAgents(), send, (a) => {
      store.setKeyState(a.id, 'rejected');
      server.drop(a.id, 'rejected');
      log.info(`agent ${a.id} rejected`);
    }),
  'keys.delete': (req, send, { store, server, log }) =>
    keyOp(req.ids, store.listAgents(), send, (a) => {
      store.deleteAgent(a.id);
      server.drop(a.id, 'deleted');
      log.info(`agent ${a.id} key deleted`);
    }),
  'agents.list': (_req, send, { server, store }) => {
    const connected = server.connectedIds();
    send({
      type: 'data',
      data: store
        .listAgents()
        .filter((a) => a.key_state === 'accepted')
        .map((a) => ({
          id: a.id,
          connected: connected.has(a.id),
          last_seen: a.last_seen,
          os: [a.grains.os, a.grains.osrelease].filter((x) => x !== undefined).join(' ') || null,
          roles: a.grains.roles ?? null,
          revision_applied: a.revision_applied,
        })),
    });
    return 0;
  },
  'jobs.list': (req, send, { store }) => {
    send({ type: 'data', data: store.listJobs(req.limit) });
    return 0;
  },
  'jobs.get': (req, send, { store }) => {
    const job = store.getJob(req.jid);
    if (!job) {
      send({ type: 'error', message: `no job ${req.jid}` });
      return 1;
    }
    const agents = store.jobAgents(req.jid).map((m) => ({ ...m, results: store.stateResults(req.jid, m.agent_id) }));
    send({ type: 'data', data: { job, agents } });
    return 0;
  },
  'jobs.kill': (req, send, { jobs }) => jobs.kill(req.jid, req.user, send),
  'schedule.list': (_req, send, { scheduler }) => {
    send({ type: 'data', data: scheduler.list() });
    return 0;
  },
  apply: (req, send, { jobs }) => jobs.start(req, send),
  run: (req, send, { jobs }) => jobs.start(req, send),
  ...releaseHandlers,
};

/** Route one request to its handler. */
export async function handleCli(ctx: CliContext, req: CliRequest, send: Send): Promise<number> {
  const h = cliHandlers[req.type] as (r: CliRequest, s: Send, c: CliContext) => Promise<number> | number;
  return h(req, send, ctx);
}

function keyOp(ids: string[], rows: AgentRow[], send: Send, op: (a: AgentRow) => void): number {
  const byId = new Map(rows.map((a) => [a.id, a]));
  const done: string[] = [];
  let code = 0;
  for (const id of ids) {
    const a = byId.get(id);
    if (!a) {
      send({ type: 'error', message: `no key for '${id}'` });
      code = 1;
      continue;
    }
    op(a);
    done.push(id);
  }
  send({ type: 'data', data: { ids: done } });
  return code;
}
