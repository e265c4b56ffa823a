/**
 * The calls an agent answers from what it already holds (grains, the call's pillar), without
 * the state engine: the daemon runs these itself, so `tsalt ping` or `tsalt grains` neither
 * start the job worker nor load the engine into the daemon. agent/calls.ts has the rest.
 */
import type { Call, CallFunction } from '../protocol/messages.js';
import type { BundleTree } from '../engine/tree/bundle.js';

type Data = Record<string, unknown>;

/** What a call may use of the agent. */
export interface CallHost {
  id: string;
  grains(): Data;
  opts: Data;
  /** re-read the grains (and tell the master when they changed) */
  refreshGrains(): Promise<void>;
  /** a state run is in progress: functions that change the host wait for none */
  busy(): string | undefined;
  /** unpack the call's bundle (cached by hash) */
  tree(b: NonNullable<Call['bundle']>): BundleTree;
}

export type CallArgs = { args: unknown[]; kwargs: Data };
export type CallHandler = (a: CallArgs, host: CallHost, call: Call) => unknown;

export const LIGHT_CALLS = {
  'test.ping': () => true,
  'grains.items': (_a, host) => host.grains(),
  'pillar.items': (_a, _host, call) => call.pillar ?? {},
  'saltutil.sync_grains': async (_a, host) => {
    await host.refreshGrains();
    return []; // Salt lists the custom grains modules it synced: tsalt has none
  },
} satisfies Partial<Record<CallFunction, CallHandler>>;

export type LightCall = keyof typeof LIGHT_CALLS;

export function isLightCall(fun: string): fun is LightCall {
  return Object.prototype.hasOwnProperty.call(LIGHT_CALLS, fun);
}
