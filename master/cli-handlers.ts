/**
 * What the master does for each CLI socket request: one handler per request type, as the
 * agent's daemon has one per master message. startMaster builds the context once; adding a
 * request means a schema in protocol/messages.ts and an entry here (the type checker insists).
 */
import type { Identity } from '../core/identity.js';
import type { Logger } from '../core/log.js';
import { CALL_FUNCTIONS, JOB_FUNCTIONS, type Call } from '../protocol/messages.js';
import { type CliEvent, type CliRequest, type TargetType } from '../protocol/cli-messages.js';
import { saltStateReturn } from '../protocol/results.js';
import { traverse, type Data } from '../engine/render/salt-functions.js';
import { resolveTarget, TargetError } from './target.js';
import { pillarAt, type FleetCalls } from './calls-route.js';
import { jobHistory } from './job-history.js';
import type { Store, AgentRow } from './store-api.js';
import type { AgentServer } from './server.js';
import type { JobManager } from './jobs.js';
import type { Scheduler } from './schedule.js';
import type { BuiltBundle, ConfigSource } from './tree.js';
import type { Releaser } from './rollout.js';
import { releaseHandlers } from './release-handlers.js';
import { fleetConnected } from './fleet-connected.js';
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
  /** calls to agents connected here or, with masters sharing the store, to any of them */
  calls: FleetCalls;
  log: Logger;
  /** several masters on one store: a key change reaches the master holding that agent's connection */
  keysChanged?: (state: 'accepted' | 'rejected' | 'deleted', ids: string[]) => void;
  /** masters sharing a store: agents connected to the other live masters (agent id -> master id) */
  elsewhere?: () => Promise<Map<string, string>>;
}

type Req<T extends CliRequest['type']> = Extract<CliRequest, { type: T }>;
export type CliHandlerTable = { [T in CliRequest['type']]: (req: Req<T>, send: Send, ctx: CliContext) => Promise<number> | number };

/** The CLI socket's dispatch table. */
export const cliHandlers: CliHandlerTable = {
  'keys.list': async (_req, send, { server, store, identity, elsewhere }) => {
    const agents = await store.listKeys();
    const connected = await fleetConnected(server, elsewhere);
    send({
      type: 'data',
      data: {
        master_fingerprint: identity.fingerprint,
        keys: agents.map((a) => ({ id: a.id, state: a.key_state, fingerprint: a.fingerprint, connected: connected.has(a.id) })),
      },
    });
    return 0;
  },
  'keys.accept': async (req, send, { store, server, keysChanged }) => {
    const rows = await store.listAgents();
    const ids = req.all ? rows.filter((a) => a.key_state === 'pending').map((a) => a.id) : req.ids;
    return keyOp(ids, rows, send, async (a) => {
      await store.setKeyState(a.id, 'accepted');
      server.promote(a.id);
      keysChanged?.('accepted', [a.id]);
    });
  },
  'keys.reject': async (req, send, { store, server, log, keysChanged }) =>
    keyOp(req.ids, await store.listAgents(), send, async (a) => {
      await store.setKeyState(a.id, 'rejected');
      server.drop(a.id, 'rejected');
      keysChanged?.('rejected', [a.id]);
      log.info(`agent ${a.id} rejected`);
    }),
  'keys.delete': async (req, send, { store, server, log, keysChanged }) =>
    keyOp(req.ids, await store.listAgents(), send, async (a) => {
      await store.deleteAgent(a.id);
      server.drop(a.id, 'deleted');
      keysChanged?.('deleted', [a.id]);
      log.info(`agent ${a.id} key deleted`);
    }),
  'agents.list': async (_req, send, { server, store, elsewhere }) => {
    const agents = await store.listAgents();
    const connected = await fleetConnected(server, elsewhere);
    send({
      type: 'data',
      data: agents
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
  'jobs.list': async (req, send, { store }) => {
    const { type: _t, ...filter } = req;
    send({ type: 'data', data: await jobHistory(store, filter) });
    return 0;
  },
  'jobs.get': async (req, send, { store }) => {
    const job = await store.getJob(req.jid);
    if (!job) {
      send({ type: 'error', message: `no job ${req.jid}` });
      return 1;
    }
    const agents = await Promise.all((await store.jobAgents(req.jid)).map(async (m) => ({ ...m, results: await store.stateResults(req.jid, m.agent_id) })));
    send({ type: 'data', data: { job, agents } });
    return 0;
  },
  'jobs.kill': async (req, send, { jobs, store }) => {
    const code = await jobs.kill(req.jid, req.user, send);
    if (code === 0) await store.markKilled(req.jid, req.user);
    return code;
  },
  'schedule.list': (_req, send, { scheduler }) => {
    send({ type: 'data', data: scheduler.list() });
    return 0;
  },
  apply: async (req, send, ctx) => ((await listNamesUnknown(req, send, ctx)) ? 1 : ctx.jobs.start(req, send)),
  run: async (req, send, ctx) => ((await listNamesUnknown(req, send, ctx)) ? 1 : ctx.jobs.start(req, send)),
  grains: async (req, send, ctx) => {
    const agents = await targeted(req, send, ctx);
    if (!agents) return 1;
    send({ type: 'data', data: Object.fromEntries(agents.map((a) => [a.id, pick({ ...a.grains, id: a.id }, req.key)])) });
    return 0;
  },
  // pillar values go to this socket only: nothing here logs them
  pillar: async (req, send, ctx) => {
    const agents = await targeted(req, send, ctx);
    if (!agents) return 1;
    let code = 0;
    const out: Data = {};
    for (const a of agents) {
      try {
        out[a.id] = pick(await pillarAt(ctx, a), req.key);
      } catch (e) {
        send({ type: 'error', message: `${a.id}: pillar did not render: ${(e as Error).message}` });
        code = 2;
      }
    }
    send({ type: 'data', data: out });
    return code;
  },
  call: async (req, send, ctx) => {
    if (!(CALL_FUNCTIONS as readonly string[]).includes(req.fun)) {
      send({ type: 'error', message: `'${req.fun}' is not a function tsalt can call; known: ${CALL_FUNCTIONS.join(', ')}` });
      return 1;
    }
    if (await listNamesUnknown(req, send, ctx)) return 1;
    if (JOB_FUNCTIONS.has(req.fun)) return stateJob(req, send, ctx);
    const agents = await targeted(req, send, ctx);
    if (!agents) return 1;
    const fun = req.fun as Call['fun'];
    const timeoutMs = (req.timeout_s ?? ctx.cfg.timeout_s) * 1000;
    // each agent wherever it is connected; pillar and tree rendered by the master sending the call
    const returns = await ctx.calls.callAll(agents, { fun, args: req.args, kwargs: req.kwargs, ...(req.revision !== undefined ? { revision: req.revision } : {}) }, timeoutMs);
    send({ type: 'data', data: { fun, returns: Object.fromEntries(returns) } });
    const statuses = returns.map(([, o]) => o.status);
    return statuses.some((st) => st === 'timeout' || st === 'offline' || st === 'lost') ? 3 : statuses.includes('error') ? 2 : 0;
  },
  ...releaseHandlers,
};

/** The accepted agents a target names; an error sent (and undefined) when it names none. */
async function targeted(req: { target: string; tgt_type: TargetType }, send: Send, ctx: CliContext) {
  if (await listNamesUnknown(req, send, ctx)) return undefined;
  try {
    return await resolveTarget(req.target, req.tgt_type, await ctx.store.listAgents(), ctx.cfg.nodegroups, (a) => pillarAt(ctx, a));
  } catch (e) {
    if (!(e instanceof TargetError)) throw e;
    send({ type: 'error', message: e.message });
    return undefined;
  }
}

/**
 * A list target (-L a1,b1, or L@a1,b1 in a compound) naming an id that is no accepted agent is a typo or a stale list:
 * say which ids, and run nothing (never the rest of the list silently).
 */
async function listNamesUnknown(req: { target: string; tgt_type: TargetType }, send: Send, { store }: CliContext): Promise<boolean> {
  // -L a,b, and the L@a,b parts of a compound target
  const lists = req.tgt_type === 'list' ? [req.target] : req.tgt_type === 'compound' ? [...req.target.matchAll(/(?:^|[\s(])L@([^\s()]+)/g)].map((m) => m[1]!) : [];
  if (!lists.length) return false;
  const rows = new Map((await store.listAgents()).map((a) => [a.id, a.key_state]));
  const bad = [...new Set(lists.flatMap((l) => l.split(',')).map((x) => x.trim()).filter(Boolean))].filter((id) => rows.get(id) !== 'accepted');
  if (!bad.length) return false;
  const why = (id: string) => (rows.has(id) ? `${id} (key ${rows.get(id)})` : `${id} (no such agent)`);
  send({ type: 'error', message: `the target list names ${bad.length === 1 ? 'an id that matches' : 'ids that match'} no accepted agent: ${bad.map(why).join(', ')}; nothing was run` });
  return true;
}

/** KEY (Salt's `a:b:0` path) out of data, or all of it; a missing key is Salt's '' */
function pick(data: Data, key: string | undefined): unknown {
  if (key === undefined) return data;
  const v = traverse(data, key);
  return typeof v === 'symbol' ? '' : v;
}

/** state.apply / state.highstate / state.sls as a job (stored, streamed), answered in Salt's return shape. */
async function stateJob(req: Extract<CliRequest, { type: 'call' }>, send: Send, ctx: CliContext): Promise<number> {
  const [first] = req.args;
  const mods = first ?? req.kwargs.mods;
  const sls = req.fun === 'state.highstate' ? [] : Array.isArray(mods) ? mods.map(String) : typeof mods === 'string' ? mods.split(',').filter(Boolean) : [];
  if (req.fun === 'state.sls' && sls.length === 0) {
    send({ type: 'error', message: 'state.sls: name the SLS (e.g. state.sls web,db)' });
    return 1;
  }
  const test = req.kwargs.test === true || /^(true|1|yes|on)$/i.test(String(req.kwargs.test ?? ''));
  const pillar = req.kwargs.pillar;
  const returns: Data = {};
  const code = await ctx.jobs.start(
    {
      type: 'apply',
      target: req.target,
      tgt_type: req.tgt_type,
      sls,
      test,
      user: req.user,
      ...(pillar && typeof pillar === 'object' && !Array.isArray(pillar) ? { pillar: pillar as Data } : {}),
      ...(req.timeout_s !== undefined ? { timeout_s: req.timeout_s } : {}),
      ...(req.batch !== undefined ? { batch: req.batch } : {}),
      ...(req.revision !== undefined ? { revision: req.revision } : {}),
    },
    (ev) => {
      if (ev.type === 'agent_done') {
        const b = ev.body;
        returns[ev.agent] =
          b?.kind === 'apply'
            ? { status: 'ok', return: saltStateReturn(b.report.results) }
            : { status: ev.status === 'done' || ev.status === 'failed' ? 'error' : ev.status, error: b?.kind === 'error' ? b.error : (ev.error ?? ev.status) };
      } else if (ev.type !== 'end' && ev.type !== 'data') send(ev);
    },
  );
  send({ type: 'data', data: { fun: req.fun, returns } });
  return code;
}

/** Route one request to its handler. */
export async function handleCli(ctx: CliContext, req: CliRequest, send: Send): Promise<number> {
  const h = cliHandlers[req.type] as (r: CliRequest, s: Send, c: CliContext) => Promise<number> | number;
  return h(req, send, ctx);
}

async function keyOp(ids: string[], rows: AgentRow[], send: Send, op: (a: AgentRow) => Promise<void>): Promise<number> {
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
    await op(a);
    done.push(id);
  }
  send({ type: 'data', data: { ids: done } });
  return code;
}
