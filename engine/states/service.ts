/**
 * Salt's `service` states: running, dead, enabled, disabled, masked, unmasked and mod_watch. Comments and
 * the `{<name>: true}` change shape follow salt/states/service.py so Salt users read familiar
 * output. The init system is behind a provider (engine/providers/service), chosen from grains.
 */
import * as z from 'zod/mini';
import { boolArg, defineState, StateFailure, type ApplyOutcome, type StateModule } from './define.js';
import type { RunContext } from './context.js';
import { serviceNameSchema, type ActionOptions, type ServiceProvider, type ServiceStatus } from '../providers/service/types.js';

/** Seconds as Salt trees write them: 5, 2.5 or '5'. */
const seconds = z.pipe(
  z.union([z.number(), z.pipe(z.string().check(z.regex(/^\d+(\.\d+)?$/, 'a number of seconds')), z.transform(Number))]),
  z.number().check(z.nonnegative()),
);

const common = {
  name: serviceNameSchema,
  /** Salt: decide "running" by looking for this string in the process table (sysv). */
  sig: z.optional(z.string().check(z.minLength(1))),
  init_delay: z.optional(seconds),
  /** Stop waiting for the init system after this many seconds. */
  timeout: z.optional(seconds),
  /** systemd only: queue the job, do not wait for it. */
  no_block: z._default(boolArg, false),
  /** Not an option: caught so the typo gets Salt's explanation instead of being ignored. */
  enabled: z.optional(z.unknown()),
};

const runningArgs = z.object({ ...common, enable: z.optional(boolArg), reload: z._default(boolArg, false) });
const deadArgs = z.object({ ...common, enable: z.optional(boolArg) });
const bootArgs = z.object({ name: serviceNameSchema });

type RunningArgs = z.output<typeof runningArgs>;
type DeadArgs = z.output<typeof deadArgs>;

/** What apply must do: start/stop the process, and enable (true) / disable (false) at boot. */
interface Plan {
  start?: boolean;
  stop?: boolean;
  boot?: boolean;
}

const sleep = (s: number) => new Promise<void>((r) => setTimeout(r, s * 1000));

/**
 * With `sig`, whether a service runs is the process table's answer, and a daemon an init script
 * forks shows there a moment after the script returns (start-stop-daemon --background returns
 * before its child has exec'd the daemon), as one it stops leaves a moment after: under load the
 * single read right after the action failed a start that worked. The table is read again for up
 * to SIG_SETTLE_S until it says what the action meant; without sig the init system's own status
 * is final at once, as Salt reads it.
 */
const SIG_SETTLE_S = 2;
async function settledRunning(p: ServiceProvider, name: string, sig: string | undefined, want: boolean): Promise<boolean> {
  const end = Date.now() + (sig ? SIG_SETTLE_S * 1000 : 0);
  for (;;) {
    const running = (await p.status(name, { sig, fresh: true })).running;
    if (running === want || Date.now() >= end) return running;
    await sleep(0.1);
  }
}
const msg = (e: unknown) => (e instanceof Error ? e.message : String(e));

function actionOpts(a: { timeout?: number; no_block: boolean }): ActionOptions {
  return { timeoutMs: a.timeout !== undefined ? a.timeout * 1000 : undefined, noBlock: a.no_block };
}

function typoGuard(a: { name: string; enabled?: unknown }): void {
  if (a.enabled !== undefined) {
    throw new StateFailure(`Service ${a.name} uses non-existent option "enabled".  Perhaps "enable" option was intended?`);
  }
}

/** The boot-time change `enable: True/False` asks for, or undefined when none is needed. */
function bootChange(st: ServiceStatus, enable: boolean | undefined): boolean | undefined {
  if (enable === true && !st.enabled) return true;
  if (enable === false && st.enabled && st.togglable) return false;
  return undefined;
}

/** Salt's _enable/_disable comments; `started` true: just started, false: dead, null: untouched. */
function bootComment(name: string, boot: boolean, done: 'has been' | 'is already', started: boolean | null): string {
  const how = started === true ? 'is running' : started === false ? 'is dead' : 'is in the desired state';
  return `Service ${name} ${done} ${boot ? 'enabled' : 'disabled'}, and ${how}`;
}

async function setBoot(p: ServiceProvider, name: string, boot: boolean, started: boolean | null, changes: Record<string, unknown>, o: ActionOptions) {
  try {
    await (boot ? p.enable(name, o) : p.disable(name, o));
  } catch (e) {
    const state = started === true ? 'but the service is running' : started === false ? 'and the service is dead' : 'but the service was already running';
    const what = boot ? 'to start at boot' : 'to not start at boot';
    throw new StateFailure(`Failed when setting service ${name} ${what}, ${state}. Additional information follows:\n\n${msg(e)}`, changes);
  }
}

const running = defineState<typeof runningArgs, Plan>({
  args: runningArgs,
  async check(ctx, a) {
    typoGuard(a);
    const st = await ctx.providers.service(ctx.host).status(a.name, { sig: a.sig });
    if (!st.available) {
      // Salt: in test mode a service missing now may be installed by an earlier state of the run
      if (ctx.test) {
        return {
          changes: { [a.name]: true },
          comment: `Service ${a.name} not present; if created in this state run, it would have been started`,
        };
      }
      throw new StateFailure(`The named service ${a.name} is not available`);
    }
    const plan: Plan = { start: !st.running, boot: bootChange(st, a.enable) };
    if (!plan.start && plan.boot === undefined) return { comment: `The service ${a.name} is already running` };
    const comment = plan.start
      ? `Service ${a.name} is set to start`
      : `Service ${a.name} set to be ${plan.boot ? 'enabled' : 'disabled'}`;
    return { changes: { [a.name]: true }, comment, plan };
  },
  async apply(ctx, a, plan) {
    if (!plan) throw new StateFailure(`The named service ${a.name} is not available`);
    const p = ctx.providers.service(ctx.host);
    const o = actionOpts(a);
    let comment = `The service ${a.name} is already running`;
    if (plan.start) {
      try {
        await p.start(a.name, o);
      } catch (e) {
        throw new StateFailure(`Service ${a.name} failed to start: ${msg(e)}`);
      }
      if (a.init_delay) await sleep(a.init_delay);
      // init scripts report success and die a moment later: believe the status, as Salt does
      if (!a.no_block && !(await settledRunning(p, a.name, a.sig, true))) {
        throw new StateFailure(`Service ${a.name} failed to start`);
      }
      comment = `Started Service ${a.name}`;
    }
    const started = plan.start ? true : null;
    const changes = { [a.name]: true };
    if (plan.boot !== undefined) {
      await setBoot(p, a.name, plan.boot, started, plan.start ? changes : {}, o);
      comment = bootComment(a.name, plan.boot, 'has been', started);
    } else if (a.enable !== undefined) {
      comment = bootComment(a.name, a.enable, 'is already', started);
    }
    if (plan.start && a.init_delay) comment += `\nDelayed return for ${a.init_delay} seconds`;
    return { changes, comment };
  },
  modWatch: (ctx, a) => watchRunning(ctx, a),
});

async function watchRunning(ctx: RunContext, a: RunningArgs): Promise<ApplyOutcome> {
  const p = ctx.providers.service(ctx.host);
  const st = await p.status(a.name, { sig: a.sig });
  // Salt's mod_watch starts a stopped service instead of restarting it
  const verb = st.running ? (a.reload ? 'reload' : 'restart') : 'start';
  const done = `${verb}ed`;
  if (ctx.test) return { changes: {}, comment: `Service is set to be ${done}` };
  const o = actionOpts(a);
  if (verb === 'start') await p.stop(a.name, o).catch(() => {}); // Salt stops before starting (clears a failed state)
  try {
    await p[verb](a.name, o);
  } catch (e) {
    throw new StateFailure(`Failed to ${verb} the service: ${msg(e)}`);
  }
  if (a.init_delay) await sleep(a.init_delay);
  return { changes: { [a.name]: true }, comment: `Service ${done}` };
}

const dead = defineState<typeof deadArgs, Plan>({
  args: deadArgs,
  async check(ctx, a) {
    typoGuard(a);
    const st = await ctx.providers.service(ctx.host).status(a.name, { sig: a.sig });
    // Salt: a service that does not exist is as dead as it gets
    if (!st.available) return { comment: `The named service ${a.name} is not available` };
    const plan: Plan = { stop: st.running, boot: bootChange(st, a.enable) };
    if (!plan.stop && plan.boot === undefined) return { comment: `The service ${a.name} is already dead` };
    const comment = plan.stop
      ? `Service ${a.name} is set to be killed`
      : `Service ${a.name} set to be ${plan.boot ? 'enabled' : 'disabled'}`;
    return { changes: { [a.name]: true }, comment, plan };
  },
  async apply(ctx, a, plan) {
    if (!plan) return { changes: {}, comment: `The named service ${a.name} is not available` };
    const p = ctx.providers.service(ctx.host);
    const o = actionOpts(a);
    let comment = `The service ${a.name} is already dead`;
    if (plan.stop) {
      try {
        await p.stop(a.name, o);
      } catch (e) {
        throw new StateFailure(`Service ${a.name} failed to die: ${msg(e)}`);
      }
      if (a.init_delay) await sleep(a.init_delay);
      if (!a.no_block && (await settledRunning(p, a.name, a.sig, false))) {
        throw new StateFailure(`Service ${a.name} failed to die`);
      }
      comment = `Service ${a.name} was killed`;
    }
    const started = plan.stop ? false : null;
    const changes = { [a.name]: true };
    if (plan.boot !== undefined) {
      await setBoot(p, a.name, plan.boot, started, plan.stop ? changes : {}, o);
      comment = bootComment(a.name, plan.boot, 'has been', started);
    } else if (a.enable !== undefined && plan.stop) {
      comment = bootComment(a.name, a.enable, 'is already', started);
    }
    return { changes, comment };
  },
  modWatch: (ctx, a) => watchDead(ctx, a),
});

async function watchDead(ctx: RunContext, a: DeadArgs): Promise<ApplyOutcome> {
  const p = ctx.providers.service(ctx.host);
  if (!(await p.status(a.name, { sig: a.sig })).running) return { changes: {}, comment: 'Service is already stopped' };
  if (ctx.test) return { changes: {}, comment: 'Service is set to be stopped' };
  try {
    await p.stop(a.name, actionOpts(a));
  } catch (e) {
    throw new StateFailure(`Failed to stop the service: ${msg(e)}`);
  }
  return { changes: { [a.name]: true }, comment: 'Service stopped' };
}

/** service.enabled / service.disabled: boot links only, the process is left alone. */
function bootState(want: boolean) {
  const word = want ? 'enabled' : 'disabled';
  return defineState<typeof bootArgs, undefined>({
    args: bootArgs,
    async check(ctx, a) {
      const st = await ctx.providers.service(ctx.host).status(a.name);
      if (!st.available) {
        // Salt: enabling a missing service fails; disabling one is already done
        if (want) throw new StateFailure(`The named service ${a.name} is not available`);
        return { comment: `The named service ${a.name} is not available` };
      }
      if (st.enabled === want) return { comment: bootComment(a.name, want, 'is already', null) };
      if (!st.togglable) {
        return { comment: `Service ${a.name} cannot be ${word} (a static or generated unit), and is in the desired state` };
      }
      return { changes: { [a.name]: true }, comment: `Service ${a.name} set to be ${word}` };
    },
    async apply(ctx, a) {
      await setBoot(ctx.providers.service(ctx.host), a.name, want, null, {}, {});
      return { changes: { [a.name]: true }, comment: bootComment(a.name, want, 'has been', null) };
    },
    // Salt's mod_watch only knows running and dead
    async modWatch() {
      throw new StateFailure(`Unable to trigger watch for service.${word}`);
    },
  });
}

const maskArgs = z.object({
  name: serviceNameSchema,
  /** manage the runtime mask (/run, gone at reboot) instead of the indefinite one (/etc) */
  runtime: z._default(boolArg, false),
});

/** The provider's mask functions, or Salt's refusal on init systems without masks (sysv). */
function maskingProvider(ctx: RunContext): Required<Pick<ServiceProvider, 'masked' | 'mask' | 'unmask'>> {
  const p = ctx.providers.service(ctx.host);
  if (!p.masked || !p.mask || !p.unmask) {
    throw new StateFailure(`Service masking not available on this minion (the ${p.name} service provider has no masks; they are a systemd feature)`);
  }
  return { masked: p.masked.bind(p), mask: p.mask.bind(p), unmask: p.unmask.bind(p) };
}

/**
 * service.masked / service.unmasked. Salt's change shape: `{masked: {old, new}}`, keyed
 * `runtime masked` for runtime masks. The two kinds are managed independently, as in Salt.
 */
function maskState(want: boolean) {
  return defineState<typeof maskArgs, undefined>({
    args: maskArgs,
    async check(ctx, a) {
      const kind = a.runtime ? 'runtime masked' : 'masked';
      const done = want ? kind : a.runtime ? 'runtime unmasked' : 'unmasked';
      let now: boolean;
      try {
        now = await maskingProvider(ctx).masked(a.name, a.runtime);
      } catch (e) {
        if (e instanceof StateFailure) throw e;
        throw new StateFailure(`Failed to read the mask state of service ${a.name}: ${msg(e)}`);
      }
      if (now === want) return { comment: want ? `Service ${a.name} is already ${done}` : `Service ${a.name} was already ${done}` };
      return { changes: { [kind]: { old: !want, new: want } }, comment: `Service ${a.name} would be ${done}` };
    },
    async apply(ctx, a) {
      const kind = a.runtime ? 'runtime masked' : 'masked';
      const done = want ? kind : a.runtime ? 'runtime unmasked' : 'unmasked';
      const p = maskingProvider(ctx);
      const verb = want ? 'mask' : 'unmask';
      try {
        await p[verb](a.name, a.runtime);
      } catch (e) {
        throw new StateFailure(`Failed to ${verb} service ${a.name}: ${msg(e)}`);
      }
      // systemctl succeeds without effect when another link wins (a vendor mask, a unit file in
      // /etc shadowing a runtime mask): believe the state, not the exit code
      if ((await p.masked(a.name, a.runtime)) !== want) {
        throw new StateFailure(`Failed to ${verb} service ${a.name}: systemctl succeeded but the service is still ${want ? 'not ' : ''}${kind}`);
      }
      return { changes: { [kind]: { old: !want, new: want } }, comment: `Service ${a.name} was ${done}` };
    },
    async modWatch() {
      throw new StateFailure(`Unable to trigger watch for service.${want ? 'masked' : 'unmasked'}`);
    },
  });
}

export default {
  running,
  dead,
  enabled: bootState(true),
  disabled: bootState(false),
  masked: maskState(true),
  unmasked: maskState(false),
} satisfies StateModule;
