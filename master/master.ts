/** The master process: key store, agent server, jobs and the CLI socket wired together. */
import path from 'node:path';
import type net from 'node:net';
import { loadOrCreateIdentity } from '../core/identity.js';
import type { Logger } from '../core/log.js';
import type { CliEvent, CliRequest } from '../protocol/messages.js';
import type { MasterConfig } from './config.js';
import { Store, type AgentRow } from './store.js';
import { AgentServer, serverLimits } from './server.js';
import { JobManager } from './jobs.js';
import { StateTree } from './tree.js';
import { PillarSource } from './pillar.js';
import { listenCli } from './cli-socket.js';
import { MasterMetrics, serveMetrics } from './metrics.js';
import { Rollout } from './rollout.js';
import { Scheduler } from './schedule.js';

export interface RunningMaster {
  port: number;
  fingerprint: string;
  store: Store;
  close(): Promise<void>;
}

function inside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

export async function startMaster(cfg: MasterConfig, log: Logger): Promise<RunningMaster> {
  if (inside(cfg.pillar_tree, cfg.state_tree)) {
    // everything in the state tree is bundled for every agent: pillar there would leak
    throw new Error(`pillar_tree ${cfg.pillar_tree} is inside state_tree ${cfg.state_tree}; pillar would reach every agent`);
  }
  const identity = await loadOrCreateIdentity(cfg.pki_dir, 'master', 'tsalt-master');
  if (identity.created) log.info(`created the master key in ${cfg.pki_dir}`);
  log.info(`master fingerprint ${identity.fingerprint} (agents pin it as master_finger)`);
  const store = new Store(cfg.db);
  const tree = new StateTree(cfg.state_tree, log.child('tree'));
  const metrics = cfg.metrics ? new MasterMetrics() : undefined;
  const jobs = new JobManager(store, tree, new PillarSource(cfg.pillar_tree), cfg, log.child('jobs'), metrics);
  const server = new AgentServer({
    identity,
    store,
    log: log.child('agents'),
    maxFrameBytes: cfg.max_frame_bytes,
    heartbeatS: cfg.heartbeat_s,
    autoAccept: cfg.auto_accept,
    limits: serverLimits(cfg),
    events: {
      ready: () => {},
      disconnected: (c) => jobs.onDisconnect(c),
      accepted: jobs.handlers(),
    },
  });
  jobs.server = server;
  jobs.recover();
  const scheduler = new Scheduler(
    cfg.schedule,
    jobs,
    store,
    {
      timeout_s: cfg.timeout_s,
      // runs due at start-up wait (at most lost_after_s) for the agents to reconnect
      settle: { agentsBack: () => store.listAgents().every((a) => a.key_state !== 'accepted' || server.ready(a.id) !== undefined), max_s: cfg.lost_after_s },
    },
    log.child('schedule'),
  );
  // bound before the agent port: a metrics port in use fails the start with nothing listening yet
  const metricsHttp =
    cfg.metrics && metrics
      ? await serveMetrics(
          cfg.metrics,
          metrics,
          {
            agents: () => {
              const connected = server.connectedIds();
              return store.listAgents().map((a) => ({ key_state: a.key_state, connected: connected.has(a.id) }));
            },
            revision: () => tree.head(),
          },
          log.child('metrics'),
        )
      : undefined;
  const port = await server.listen(cfg.interface, cfg.port);
  log.info(`listening for agents on ${cfg.interface}:${port}`);

  const handle = async (req: CliRequest, send: (ev: CliEvent) => void): Promise<number> => {
    switch (req.type) {
      case 'keys.list': {
        const connected = server.connectedIds();
        send({
          type: 'data',
          data: {
            master_fingerprint: identity.fingerprint,
            keys: store.listAgents().map((a) => ({ id: a.id, state: a.key_state, fingerprint: a.fingerprint, connected: connected.has(a.id) })),
          },
        });
        return 0;
      }
      case 'keys.accept': {
        const rows = store.listAgents();
        const ids = req.all ? rows.filter((a) => a.key_state === 'pending').map((a) => a.id) : req.ids;
        return keyOp(ids, rows, send, (a) => {
          store.setKeyState(a.id, 'accepted');
          server.promote(a.id);
        });
      }
      case 'keys.reject':
        return keyOp(req.ids, store.listAgents(), send, (a) => {
          store.setKeyState(a.id, 'rejected');
          server.drop(a.id, 'rejected');
          log.info(`agent ${a.id} rejected`);
        });
      case 'keys.delete':
        return keyOp(req.ids, store.listAgents(), send, (a) => {
          store.deleteAgent(a.id);
          server.drop(a.id, 'deleted');
          log.info(`agent ${a.id} key deleted`);
        });
      case 'agents.list': {
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
      }
      case 'jobs.list':
        send({ type: 'data', data: store.listJobs(req.limit) });
        return 0;
      case 'jobs.get': {
        const job = store.getJob(req.jid);
        if (!job) {
          send({ type: 'error', message: `no job ${req.jid}` });
          return 1;
        }
        const minions = store.jobMinions(req.jid).map((m) => ({ ...m, results: store.stateResults(req.jid, m.agent_id) }));
        send({ type: 'data', data: { job, minions } });
        return 0;
      }
      case 'jobs.kill':
        return jobs.kill(req.jid, req.user, send);
      case 'schedule.list':
        send({ type: 'data', data: scheduler.list() });
        return 0;
      case 'apply':
      case 'run':
        return jobs.start(req, send);
    }
  };
  const cli: net.Server = await listenCli(cfg.socket, handle, log.child('cli'));
  log.info(`cli socket ${cfg.socket}`);
  const rollout = cfg.rollout ? new Rollout(cfg.rollout, tree, jobs, store, log.child('rollout')) : undefined;
  rollout?.start();
  scheduler.start();

  return {
    port,
    fingerprint: identity.fingerprint,
    store,
    async close() {
      rollout?.stop();
      scheduler.stop();
      jobs.stop();
      await metricsHttp?.close();
      await new Promise<void>((r) => cli.close(() => r()));
      await server.close();
      store.close();
    },
  };
}

function keyOp(ids: string[], rows: AgentRow[], send: (ev: CliEvent) => void, op: (a: AgentRow) => void): number {
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
