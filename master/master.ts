/** The master process: key store, agent server, jobs and the CLI socket wired together. */
import os from 'node:os';
import path from 'node:path';
import { loadOrCreateIdentity } from '../core/identity.js';
import type { Logger } from '../core/log.js';
import { DEFAULT_PILLAR_TREE, DEFAULT_STATE_TREE, type MasterConfig } from './config.js';
import type { Store } from './store-api.js';
import { openStore } from './store.js';
import { AgentServer, serverLimits, type AgentConn } from './server.js';
import { JobManager, type AgentLinks, type FleetRevisions } from './jobs.js';
import { GitSource, StateTree, type ConfigSource } from './tree.js';
import { listenCli } from './cli-socket.js';
import { handleCli, type CliContext } from './cli-handlers.js';
import { AgentCalls } from './calls.js';
import { FleetCalls } from './calls-route.js';
import { MasterMetrics, serveMetrics } from './metrics.js';
import { Releaser } from './rollout.js';
import { fanOut, ReleaseMetrics } from './release-metrics.js';
import { Scheduler } from './schedule.js';
import { ConsoleLive } from './console/live.js';
import { serveConsole } from './console/server.js';
import { consoleReleases } from './console/source.js';
import { openRouting } from './bus-route.js';
import { Leases } from './leases.js';
import { DEAD_AFTER_BEATS } from './presence.js';
import { fleetConnected } from './fleet-connected.js';
import { StopDeadline } from './stop-deadline.js';

export interface RunningMaster {
  port: number;
  fingerprint: string;
  store: Store;
  /** exiting: the process ends right after (the agents' sockets are left to the kernel: AgentServer.close) */
  close(o?: { exiting?: boolean }): Promise<void>;
  /** counts a rejection the process-wide net caught (tsalt_unhandled_rejections_total, with metrics: on) */
  unhandledRejection(): void;
}

function inside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** git: one repository for states and pillar; otherwise the state_tree and pillar_tree directories. */
function configSource(cfg: MasterConfig, log: Logger): ConfigSource {
  if (cfg.git) return new GitSource(cfg.git, log);
  const states = cfg.state_tree ?? DEFAULT_STATE_TREE;
  const pillar = cfg.pillar_tree ?? DEFAULT_PILLAR_TREE;
  if (inside(pillar, states)) {
    // everything in the state tree is bundled for every agent: pillar there would leak
    throw new Error(`pillar_tree ${pillar} is inside state_tree ${states}; pillar would reach every agent`);
  }
  return new StateTree(states, log, pillar);
}

export async function startMaster(cfg: MasterConfig, log: Logger): Promise<RunningMaster> {
  const source = configSource(cfg, log.child('tree'));
  await source.check();
  const identity = await loadOrCreateIdentity(cfg.pki_dir, 'master', 'tsalt-master');
  if (identity.created) log.info(`created the master key in ${cfg.pki_dir}`);
  log.info(`master fingerprint ${identity.fingerprint} (agents pin it as master_finger)`);
  const store = await openStore(cfg.store ?? cfg.db, (m) => log.info(m));
  /** what to close when the start fails half-way, last first */
  const undo: (() => Promise<void>)[] = [];
  try {
    return await startWith(cfg, log, source, identity, store, undo);
  } catch (e) {
    for (const u of undo.reverse()) await u().catch(() => {});
    await store.close().catch(() => {});
    throw e;
  }
}

async function startWith(cfg: MasterConfig, log: Logger, source: ConfigSource, identity: Awaited<ReturnType<typeof loadOrCreateIdentity>>, store: Store, undo: (() => Promise<void>)[]): Promise<RunningMaster> {
  const metrics = cfg.metrics ? new MasterMetrics() : undefined;
  const consoleLive = cfg.console ? new ConsoleLive() : undefined;
  // the server dispatches agents' messages to the jobs, the jobs send through the server
  const agents: AgentLinks = { ready: (id) => server.ready(id) };
  // with git: or rollout:, jobs without --revision apply the desired revision (kept in the store);
  // a lab's state_tree without rollout: applies its HEAD
  const tracked = cfg.git !== undefined || cfg.rollout !== undefined;
  const revisions: FleetRevisions = { desired: () => store.desired(), forAgent: (a, desired) => a.revision_assigned ?? desired };
  const releaseMetrics = metrics && tracked ? new ReleaseMetrics(metrics.registry, store, () => server.connectedIds()) : undefined;
  // several masters on one store: jobs, returns and key changes routed between them
  let port = cfg.port;
  const routing = await openRouting({ store, location: cfg.store ?? cfg.db, self: cfg.master_id ?? `${os.hostname()}:${cfg.port}`, url: () => `${cfg.interface}:${port}`, heartbeat_s: cfg.master_heartbeat_s, log: log.child('route') });
  const { presence, router } = routing;
  undo.push(() => routing.close()); // a start that fails later leaves no bus connection open
  // masters sharing a store: a schedule's ticks and acting on pushes are one master's at a time
  const leases = presence ? new Leases({ store, holder: presence.self, ttl_s: cfg.master_heartbeat_s * DEAD_AFTER_BEATS, log: log.child('lease') }) : undefined;
  // agents held by the other masters (refreshed every heartbeat): a rollout's batches reach them too
  let elsewhere = new Set<string>();
  const elsewhereTimer = router
    ? setInterval(() => void router.elsewhere().then((m) => (elsewhere = new Set(m.keys())), () => undefined), cfg.master_heartbeat_s * 1000)
    : undefined;
  elsewhereTimer?.unref();
  undo.push(async () => elsewhereTimer && clearInterval(elsewhereTimer));
  const jobs = new JobManager({ store, source, agents, cfg, log: log.child('jobs'), ...(tracked ? { revisions } : {}), ...(metrics || consoleLive ? { events: fanOut(metrics, releaseMetrics, consoleLive) } : {}), ...(router ? { remote: router } : {}) });
  let releaser: Releaser | undefined;
  // answers to calls come through the server, which the calls use to send: tied by a closure
  const calls: AgentCalls = new AgentCalls({ ready: (id): AgentConn | undefined => server.ready(id) });
  const server: AgentServer = new AgentServer({
    identity,
    store,
    log: log.child('agents'),
    maxFrameBytes: cfg.max_frame_bytes,
    heartbeatS: cfg.heartbeat_s,
    autoAccept: cfg.auto_accept,
    limits: serverLimits(cfg),
    events: {
      ready: (c) => {
        void presence?.claim(c.id);
        releaser?.onAgentReady(c.id);
      },
      disconnected: (c) => {
        void presence?.release(c.id);
        void jobs.onDisconnect(c);
        calls.onDisconnect(c);
      },
      accepted: { ...jobs.handlers(), call_return: (c, m) => calls.onReturn(c, m) },
    },
  });
  // calls reach agents connected here and, with masters sharing the store, through the others
  const fleetCalls = new FleetCalls({ local: calls, store, source, log: log.child('calls'), ...(router ? { routes: router } : {}) });
  router?.attach(jobs, server, fleetCalls);
  await jobs.recover();
  const scheduler = new Scheduler(
    cfg.schedule,
    jobs,
    store,
    {
      timeout_s: cfg.timeout_s,
      // runs due at start-up wait (at most lost_after_s) for the agents to reconnect
      // (agents connected to another master sharing the store are back too)
      settle: {
        agentsBack: async () => {
          const held = router ? await router.elsewhere() : new Map<string, string>();
          return (await store.listKeys()).every((a) => a.key_state !== 'accepted' || server.ready(a.id) !== undefined || held.has(a.id));
        },
        max_s: cfg.lost_after_s,
      },
      ...(leases ? { leases } : {}),
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
            // the fleet's agents as the store knows them: connected here or to another live
            // master sharing the store (so every master exports the same gauge, not its share)
            agents: async () => {
              const connected = server.connectedIds();
              const held = router ? await router.elsewhere() : new Map<string, string>();
              return (await store.listKeys()).map((a) => ({ key_state: a.key_state, connected: connected.has(a.id) || held.has(a.id) }));
            },
            revision: () => source.head(),
          },
          log.child('metrics'),
        )
      : undefined;
  // the console reads the store, the connections and the schedule; it is given nothing that acts
  const consoleHttp =
    cfg.console && consoleLive
      ? await serveConsole(
          cfg.console,
          {
            store,
            // the fleet's connections: agents held by another live master count as connected
            connected: () => fleetConnected(server, router ? () => router.elsewhere() : undefined),
            head: () => source.head(),
            schedules: () => scheduler.list(),
            nodegroups: cfg.nodegroups,
            ...(tracked ? { releases: consoleReleases(source, cfg.rollout, () => releaser?.current) } : {}),
          },
          consoleLive,
          log.child('console'),
        )
      : undefined;
  // before agents can connect: the sessions this master's previous run left are void
  await presence?.start();
  port = await server.listen(cfg.interface, cfg.port);
  log.info(`listening for agents on ${cfg.interface}:${port}`);

  const cliLog = log.child('cli');
  const cliCtx: CliContext = { cfg, identity, store, server, jobs, scheduler, source, calls: fleetCalls, log, ...(router ? { keysChanged: (state, ids) => router.keysChanged(state, ids), elsewhere: () => router.elsewhere() } : {}) };
  const cli = await listenCli(cfg.socket, (req, send) => handleCli(cliCtx, req, send), cliLog);
  log.info(`cli socket ${cfg.socket}`);
  releaser = tracked
    ? new Releaser({
        cfg: cfg.rollout,
        source,
        jobs,
        store,
        agents: leases && router
          ? { ready: (id: string) => server.ready(id) ?? (elsewhere.has(id) || undefined), refresh: async () => void (elsewhere = new Set((await router.elsewhere()).keys())) }
          : agents,
        log: log.child('rollout'),
        settle_s: cfg.lost_after_s,
        timeout_s: cfg.timeout_s,
        ...(releaseMetrics ? { events: releaseMetrics } : {}),
        ...(leases ? { leases } : {}),
      })
    : undefined;
  if (releaser) cliCtx.releaser = releaser;
  leases?.start();
  await releaser?.start();
  await scheduler.start();

  return {
    port,
    fingerprint: identity.fingerprint,
    store,
    unhandledRejection: () => metrics?.unhandledRejection(),
    async close(o: { exiting?: boolean } = {}) {
      // every store call of the stop within a deadline: a store that does not answer must not
      // hold the stop (master/stop-deadline.ts)
      const deadline = new StopDeadline();
      releaser?.stop();
      scheduler.stop();
      clearInterval(elsewhereTimer);
      await leases?.stop(deadline.bound);
      jobs.stop();
      fleetCalls.stop();
      calls.stop();
      await metricsHttp?.close();
      await consoleHttp?.close();
      await cli.close();
      await server.close({ ...o, bound: deadline.bound });
      await routing.close(deadline.bound);
      // the pool's end waits for its connections to end, which one to a server that does not
      // answer never does: left to the process's exit
      await deadline.bound(store.close()).catch((e: Error) => log.warn(`closing the store: ${e.message}; its connections are left to the exit`));
      if (deadline.storeGone) log.warn('stopped without the store: what it did not take is not written (agents\' last seen, leases given up: they expire)');
    },
  };
}

