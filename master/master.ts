/** The master process: key store, agent server, jobs and the CLI socket wired together. */
import path from 'node:path';
import type net from 'node:net';
import { loadOrCreateIdentity } from '../core/identity.js';
import type { Logger } from '../core/log.js';
import type { MasterConfig } from './config.js';
import { Store } from './store.js';
import { AgentServer, type AgentConn } from './server.js';
import { JobManager } from './jobs.js';
import { StateTree } from './tree.js';
import { PillarSource } from './pillar.js';
import { listenCli } from './cli-socket.js';
import { handleCli, type CliContext } from './cli-handlers.js';
import { AgentCalls } from './calls.js';
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
  const pillar = new PillarSource(cfg.pillar_tree);
  const jobs = new JobManager(store, tree, pillar, cfg, log.child('jobs'), metrics);
  // answers to calls come through the server, which the calls use to send: tied by a closure
  const calls: AgentCalls = new AgentCalls({ ready: (id): AgentConn | undefined => server.ready(id) });
  const server: AgentServer = new AgentServer({
    identity,
    store,
    log: log.child('agents'),
    maxFrameBytes: cfg.max_frame_bytes,
    heartbeatS: cfg.heartbeat_s,
    autoAccept: cfg.auto_accept,
    events: {
      ready: () => {},
      disconnected: (c) => {
        jobs.onDisconnect(c);
        calls.onDisconnect(c);
      },
      accepted: { ...jobs.handlers(), call_return: (c, m) => calls.onReturn(c, m) },
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

  const cliLog = log.child('cli');
  const cliCtx: CliContext = { cfg, identity, store, server, jobs, scheduler, tree, pillar, calls, log };
  const cli: net.Server = await listenCli(cfg.socket, (req, send) => handleCli(cliCtx, req, send), cliLog);
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
      calls.stop();
      await metricsHttp?.close();
      await new Promise<void>((r) => cli.close(() => r()));
      await server.close();
      store.close();
    },
  };
}

