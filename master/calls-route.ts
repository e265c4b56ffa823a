/**
 * Calls (`tsalt ping/call/show`, pillar.get...) to agents connected to any master sharing the
 * store. An agent connected here is called directly (master/calls.ts); one connected to another
 * live master is called through it:
 *
 *   asker m1 (the CLI's master)                 holder m2 (the agent's master)
 *   calls rows: request per agent ─▶ store
 *   call {id, to: m2} ─────────────────────────▶ takes the rows (once), renders each agent's
 *                                                pillar and the tree itself, calls the agents
 *                                   store ◀───── each answer, stored once
 *   reads and deletes the answers ◀──────────── answered {id, to: m1}
 *
 * The bus only names the call: a request holds arguments and an answer can be megabytes
 * (state.show_sls), over NOTIFY's 8,000 bytes. The asker deletes a call when it has every
 * answer or stops waiting; rows a master left behind (it died waiting) are pruned by age.
 * After a bus gap the asker reads the answers it waits for, the holder takes calls it missed.
 */
import crypto from 'node:crypto';
import * as z from 'zod';
import type { Logger } from '../core/log.js';
import { toWire } from '../engine/tree/bundle.js';
import type { Data } from '../engine/render/salt-functions.js';
import { CALL_FUNCTIONS, PILLAR_FUNCTIONS, TREE_FUNCTIONS, type Call } from '../protocol/messages.js';
import type { AgentCalls, CallOutcome } from './calls.js';
import { pillarFor } from './pillar.js';
import type { AgentRow, Store } from './store-api.js';
import type { ConfigSource } from './tree.js';

/** A call as the CLI asked it, without what is rendered per agent (pillar) or per revision (the tree). */
export const CallAskSchema = z.strictObject({
  fun: z.enum(CALL_FUNCTIONS),
  args: z.array(z.unknown()).max(1000),
  kwargs: z.record(z.string(), z.unknown()),
  /** TREE_FUNCTIONS: the revision to compile (absent: the desired one, else the head) */
  revision: z.string().max(200).optional(),
});
export type CallAsk = z.infer<typeof CallAskSchema>;

/** A routed call's stored request: the ask and how long the asker waits. */
const StoredRequestSchema = z.strictObject({ ask: CallAskSchema, timeout_ms: z.number().int().positive() });

/** An answer as the holder stores it (another master wrote it: parsed before use). */
const StoredOutcomeSchema = z.union([
  z.strictObject({ status: z.literal('ok'), return: z.unknown(), rtt_ms: z.number() }),
  z.strictObject({ status: z.literal('error'), error: z.string(), rtt_ms: z.number() }),
  z.strictObject({ status: z.enum(['timeout', 'offline', 'lost']), error: z.string() }),
]);

/** The answer waited for past the call's own timeout: the holder's timeout answer arrives first. */
const ANSWER_GRACE_MS = 2000;
/** Rows whose asker stopped waiting this long ago are a dead master's: pruned. */
const PRUNE_AFTER_S = 300;
/** At most one prune a minute (asking a call triggers it). */
const PRUNE_EVERY_MS = 60_000;

export type CallBody = Omit<Call, 'type' | 'id'>;

/** What a call needs from the state tree and the store: the agent's pillar, the tree at a revision. */
export interface CallSources {
  source: Pick<ConfigSource, 'snapshot'>;
  store: Pick<Store, 'desired'>;
}

/**
 * An agent's pillar as its jobs get it: rendered from the pillar of the revision the fleet gives
 * that agent (its assigned revision, else the desired one, else the head).
 */
export async function pillarAt(src: CallSources, a: AgentRow): Promise<Data> {
  const rev = a.revision_assigned ?? (await src.store.desired());
  const snap = await src.source.snapshot(rev ?? undefined);
  return pillarFor(snap.pillar(), a.id, { ...a.grains, id: a.id });
}

/** One ask's call bodies: the tree (TREE_FUNCTIONS, built once per ask) and each agent's body. */
export interface CallBodies {
  /** the tree the ask compiles, undefined for other functions; rejects when its revision does not resolve */
  tree(): Promise<CallBody['bundle']>;
  /** the agent's body, with its pillar (PILLAR_FUNCTIONS); rejects with "pillar did not render: ..." */
  of(a: AgentRow): Promise<CallBody>;
}

export function callBodies(src: CallSources, ask: CallAsk): CallBodies {
  let bundle: Promise<CallBody['bundle']> | undefined;
  const tree = () =>
    (bundle ??= TREE_FUNCTIONS.has(ask.fun)
      ? (async () => {
          const b = (await src.source.snapshot(ask.revision ?? (await src.store.desired()))).bundle;
          return { hash: b.hash, revision: b.revision, files: toWire(b.entries) };
        })()
      : Promise.resolve(undefined));
  return {
    tree,
    async of(a) {
      let pillar: Data | undefined;
      if (PILLAR_FUNCTIONS.has(ask.fun)) {
        try {
          pillar = await pillarAt(src, a);
        } catch (e) {
          throw new Error(`pillar did not render: ${(e as Error).message}`);
        }
      }
      const b = await tree();
      return { fun: ask.fun, args: ask.args, kwargs: ask.kwargs, ...(pillar ? { pillar } : {}), ...(b ? { bundle: b } : {}) };
    },
  };
}

/** The bus side of routed calls (master/bus-route.ts's Router). */
export interface CallRoutes {
  readonly self: string;
  /** agents held by other live masters: agent id -> master id */
  elsewhere(): Promise<Map<string, string>>;
  /** master `to` holds the agents of call `id` */
  askCall(to: string, id: string): void;
  /** answers to call `id` of master `to` are stored */
  callAnswered(to: string, id: string): void;
}

export type CallStore = Pick<Store, 'getAgent' | 'listAgents' | 'desired' | 'askCalls' | 'takeCalls' | 'untakenCalls' | 'answerCall' | 'collectAnswers' | 'dropCall' | 'pruneCalls'>;

export interface FleetCallsOptions {
  local: Pick<AgentCalls, 'call' | 'has'>;
  store: CallStore;
  source: Pick<ConfigSource, 'snapshot'>;
  /** with masters sharing the store; absent: one master, every call is local */
  routes?: CallRoutes;
  log: Logger;
}

/** A call this master asked another to send: the agents whose answers it still waits for. */
interface Waiting {
  open: Map<string, (o: CallOutcome) => void>;
  timer: NodeJS.Timeout;
  /** reads of the store, one after another (two events must not read at once for nothing) */
  reading: Promise<void>;
}

export class FleetCalls {
  private readonly waiting = new Map<string, Waiting>();
  /** answered events to send, gathered per tick: call id -> asking master */
  private readonly answeredOut = new Map<string, string>();
  private lastPrune = 0;
  private stopped = false;

  constructor(private readonly o: FleetCallsOptions) {}

  /** One ask on each of these agents, wherever they are connected; each agent's outcome, in order. */
  async callAll(agents: readonly AgentRow[], ask: CallAsk, timeoutMs: number): Promise<[string, CallOutcome][]> {
    const body = callBodies(this.o, ask);
    // the tree first: a revision that does not resolve fails the request before any call, and
    // other masters are sent the commit it resolved to (HEAD~1 is HEAD~1 of this master's tree)
    const tree = await body.tree();
    const routed: CallAsk = tree ? { ...ask, revision: tree.revision } : ask;
    const away = this.o.routes && agents.some((a) => !this.o.local.has(a.id)) ? await this.elsewhere(this.o.routes) : new Map<string, string>();
    const byHolder = new Map<string, string[]>();
    for (const a of agents) {
      const holder = this.o.local.has(a.id) ? undefined : away.get(a.id);
      if (!holder) continue;
      const ids = byHolder.get(holder);
      if (ids) ids.push(a.id);
      else byHolder.set(holder, [a.id]);
    }
    const remote = new Map<string, Promise<CallOutcome>>();
    for (const [holder, ids] of byHolder) {
      const outcomes = this.ask(holder, ids, routed, timeoutMs);
      ids.forEach((id, i) => remote.set(id, outcomes[i]!));
    }
    return Promise.all(
      agents.map(async (a): Promise<[string, CallOutcome]> => {
        const r = remote.get(a.id);
        if (r) return [a.id, await r];
        return [a.id, await this.callHere(a, body, timeoutMs)];
      }),
    );
  }

  /** Agents held by the other masters; none when the store cannot say (they count as not connected). */
  private async elsewhere(routes: CallRoutes): Promise<Map<string, string>> {
    try {
      return await routes.elsewhere();
    } catch (e) {
      this.o.log.error(`calls: which master holds which agent could not be read: ${(e as Error).message}`);
      return new Map();
    }
  }

  /** An agent connected here (or nowhere: the local call says it is not connected). */
  private async callHere(a: AgentRow, body: CallBodies, timeoutMs: number): Promise<CallOutcome> {
    let b: CallBody;
    try {
      b = await body.of(a);
    } catch (e) {
      return { status: 'error', error: (e as Error).message, rtt_ms: 0 };
    }
    return this.o.local.call(a.id, b, timeoutMs);
  }

  /** The asking side: rows in the store, the holder named on the bus, an outcome per agent. */
  private ask(holder: string, ids: string[], ask: CallAsk, timeoutMs: number): Promise<CallOutcome>[] {
    const routes = this.o.routes!;
    const id = crypto.randomBytes(16).toString('hex');
    const waitMs = timeoutMs + ANSWER_GRACE_MS;
    const expires = new Date(Date.now() + waitMs).toISOString();
    const open = new Map<string, (o: CallOutcome) => void>();
    const outcomes = ids.map((agent) => new Promise<CallOutcome>((resolve) => open.set(agent, resolve)));
    const w: Waiting = {
      open,
      reading: Promise.resolve(),
      timer: setTimeout(() => this.giveUp(id, `Minion did not return. [No response within ${timeoutMs / 1000}s]`, 'timeout'), waitMs),
    };
    this.waiting.set(id, w);
    const request = { ask, timeout_ms: timeoutMs };
    void this.o.store
      .askCalls(ids.map((agent_id) => ({ id, agent_id, asked_by: routes.self, sent_by: holder, request, expires })))
      .then(() => {
        routes.askCall(holder, id);
        this.o.log.debug(`call ${id}: ${ask.fun} to ${ids.length} agent(s) through master ${holder}`);
      })
      .catch((e: Error) => this.giveUp(id, `Minion did not return. [master store: ${e.message}]`, 'lost'));
    this.prune();
    return outcomes;
  }

  /** The asker stops waiting: the agents not answered get `status`, the call's rows go. */
  private giveUp(id: string, error: string, status: 'timeout' | 'lost'): void {
    const w = this.waiting.get(id);
    if (!w) return;
    this.waiting.delete(id);
    clearTimeout(w.timer);
    for (const resolve of w.open.values()) resolve({ status, error });
    void this.o.store.dropCall(id).catch((e: Error) => this.o.log.debug(`call ${id}: dropping it: ${e.message} (pruned by age later)`));
  }

  /** Rows of masters that died waiting, at most once a minute. */
  private prune(): void {
    const t = Date.now();
    if (t - this.lastPrune < PRUNE_EVERY_MS) return;
    this.lastPrune = t;
    void this.o.store.pruneCalls(PRUNE_AFTER_S).then(
      (n) => n && this.o.log.info(`calls: ${n} answer row(s) nobody waits for any more deleted`),
      (e: Error) => this.o.log.debug(`calls: pruning old rows: ${e.message}`),
    );
  }

  /** `answered {id}` for this master: the answers so far, read (and deleted) from the store. */
  onAnswered(id: string): Promise<void> {
    const w = this.waiting.get(id);
    if (!w) return Promise.resolve(); // answered after this master gave up: dropped with the call
    w.reading = w.reading.then(async () => {
      if (!this.waiting.has(id)) return;
      for (const { agent_id, answer } of await this.o.store.collectAnswers(id)) {
        const resolve = w.open.get(agent_id);
        if (!resolve) continue;
        w.open.delete(agent_id);
        const parsed = StoredOutcomeSchema.safeParse(answer);
        resolve(parsed.success ? (parsed.data as CallOutcome) : { status: 'error', error: `the answer stored for ${agent_id} does not parse: ${parsed.error.issues[0]?.message ?? ''}`, rtt_ms: 0 });
      }
      if (!w.open.size) {
        clearTimeout(w.timer);
        this.waiting.delete(id);
      }
    });
    w.reading = w.reading.catch((e: Error) => this.o.log.error(`call ${id}: reading its answers: ${e.message}`));
    return w.reading;
  }

  /** `call {id}` for this master: its rows taken (once), each agent called, each answer stored. */
  async onAsked(id: string): Promise<void> {
    const rows = await this.o.store.takeCalls(id, this.o.routes!.self);
    if (!rows.length) return; // taken already (a re-sync and the event), or dropped
    const req = StoredRequestSchema.safeParse(rows[0]!.request);
    const asker = rows[0]!.asked_by;
    if (!req.success) {
      this.o.log.warn(`call ${id} from master ${asker}: the request does not parse (${req.error.issues[0]?.message ?? ''}); answered as an error`);
    }
    const body = req.success ? callBodies(this.o, req.data.ask) : undefined;
    this.o.log.debug(`call ${id}: ${req.success ? req.data.ask.fun : '?'} for master ${asker} to ${rows.length} agent(s)`);
    // many agents (ping '*'): their rows in one read
    const all = rows.length > 20 ? new Map((await this.o.store.listAgents()).map((a) => [a.id, a])) : undefined;
    await Promise.all(
      rows.map(async (r) => {
        let outcome: CallOutcome;
        if (!req.success || !body) outcome = { status: 'error', error: 'master: the routed call does not parse', rtt_ms: 0 };
        else {
          const a = all ? all.get(r.agent_id) : await this.o.store.getAgent(r.agent_id);
          outcome = a ? await this.callHere(a, body, req.data.timeout_ms) : { status: 'offline', error: 'Minion did not return. [No such agent]' };
        }
        if (this.stopped) return;
        try {
          if (await this.o.store.answerCall(id, r.agent_id, outcome)) this.queueAnswered(id, asker);
        } catch (e) {
          this.o.log.error(`call ${id}: storing the answer of ${r.agent_id}: ${(e as Error).message}`);
        }
      }),
    );
  }

  /** One answered event per call and tick, however many agents answered in it. */
  private queueAnswered(id: string, asker: string): void {
    const first = this.answeredOut.size === 0;
    this.answeredOut.set(id, asker);
    if (!first) return;
    setImmediate(() => {
      const out = [...this.answeredOut];
      this.answeredOut.clear();
      for (const [callId, to] of out) this.o.routes?.callAnswered(to, callId);
    });
  }

  /** After a bus gap: answers this master waits for, calls it was asked to send. */
  async resync(): Promise<void> {
    for (const id of [...this.waiting.keys()]) await this.onAnswered(id);
    if (!this.o.routes) return;
    // not awaited: each waits for its agents' answers
    for (const id of await this.o.store.untakenCalls(this.o.routes.self)) void this.onAsked(id).catch((e: Error) => this.o.log.error(`call ${id}: ${e.message}`));
  }

  stop(): void {
    this.stopped = true;
    for (const [id, w] of this.waiting) {
      clearTimeout(w.timer);
      for (const resolve of w.open.values()) resolve({ status: 'lost', error: 'Minion did not return. [master stopping]' });
      this.waiting.delete(id);
    }
  }
}
