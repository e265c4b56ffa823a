/**
 * What the service states need from an init system. One implementation per init system
 * (systemd, sysv), chosen in select.ts from grains; the state module never branches on the OS.
 */
import * as z from 'zod/mini';
import { ProviderError, type HostEnv } from '../host.js';

export interface ServiceStatus {
  /** The init system knows the service (unit file / init script exists). */
  available: boolean;
  running: boolean;
  /** Starts at boot. */
  enabled: boolean;
  /**
   * Whether enable/disable can change anything. False for systemd `static`/`generated`
   * units: `systemctl disable` is a no-op for them, so wanting them disabled must not report a
   * change on every run.
   */
  togglable: boolean;
}

export interface ActionOptions {
  /** Give up waiting for the init system after this long (the job may still complete). */
  timeoutMs?: number;
  /** systemd `--no-block`: queue the job without waiting for it. */
  noBlock?: boolean;
}

export interface ServiceProvider {
  readonly name: string;
  /** Current state; cached for the run (ctx.facts) until this provider changes the service. */
  /** fresh: read again, not the status remembered for this run (a state waiting for a change to show) */
  status(name: string, o?: { sig?: string; fresh?: boolean }): Promise<ServiceStatus>;
  /** Each action throws an Error whose message says what the init system answered. */
  start(name: string, o?: ActionOptions): Promise<void>;
  stop(name: string, o?: ActionOptions): Promise<void>;
  restart(name: string, o?: ActionOptions): Promise<void>;
  reload(name: string, o?: ActionOptions): Promise<void>;
  enable(name: string, o?: ActionOptions): Promise<void>;
  disable(name: string, o?: ActionOptions): Promise<void>;
  /**
   * Masks (systemd only; absent on init systems without them). A runtime mask (/run) and an
   * indefinite one (/etc) are separate things: each call is about one kind, as in Salt.
   */
  masked?(name: string, runtime: boolean): Promise<boolean>;
  mask?(name: string, runtime: boolean, o?: ActionOptions): Promise<void>;
  unmask?(name: string, runtime: boolean, o?: ActionOptions): Promise<void>;
}

export type ServiceProviderFactory = (host: HostEnv) => ServiceProvider;

/** No init system fits, or its options are wrong: said as it is in the state's comment. */
export class ServiceError extends ProviderError {
  constructor(message: string) {
    super(message);
    this.name = 'ServiceError';
  }
}

/**
 * Agent options the service providers read (from opts, falling back to grains). They let the
 * agent drive an init system that is not the host's own, e.g. a container's.
 */
export const serviceOptsSchema = z.object({
  /** Salt's provider override: `providers: {service: systemd}`. */
  providers: z.optional(z.looseObject({ service: z.optional(z.string()) })),
  /** `systemctl -M <machine>`: a machine registered with systemd-machined. */
  service_machine: z.optional(z.string().check(z.regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/))),
  /** argv prepended to every init-system command, e.g. `[nsenter, -t, PID, -a]`. */
  service_command_prefix: z.optional(z.array(z.string().check(z.minLength(1)))),
});
export type ServiceOpts = z.infer<typeof serviceOptsSchema>;

/** Read the service options; opts win over grains (opts are per agent, grains per host). */
export function serviceOpts(ctx: Pick<HostEnv, 'opts' | 'grains'>): ServiceOpts {
  const pick = (src: Readonly<Record<string, unknown>>) => ({
    providers: src.providers,
    service_machine: src.service_machine,
    service_command_prefix: src.service_command_prefix,
  });
  const g = serviceOptsSchema.safeParse(pick(ctx.grains));
  const o = serviceOptsSchema.safeParse(pick(ctx.opts));
  if (!o.success) {
    throw new ServiceError(`invalid service options in agent opts: ${o.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  const fromGrains = g.success ? g.data : {};
  return {
    providers: o.data.providers ?? fromGrains.providers,
    service_machine: o.data.service_machine ?? fromGrains.service_machine,
    service_command_prefix: o.data.service_command_prefix ?? fromGrains.service_command_prefix,
  };
}

/**
 * Service names go into argv and (sysv) into a path under /etc/init.d: no option-looking
 * names, no path separators.
 */
export const serviceNameSchema = z.string().check(
  z.regex(/^[A-Za-z0-9_@:.\\][A-Za-z0-9_@:.\\-]*$/, 'service names are letters, digits and _ @ : . \\ - (not starting with -)'),
  z.refine((s) => s !== '.' && s !== '..', 'not a service name'),
);

/**
 * Wrap a command in coreutils `timeout`, placed after any command prefix: killing the client
 * from outside would only kill `nsenter`, and its child would keep the pipes open.
 * `timeout` exits 124 when it fired.
 */
export function withTimeout(argv: string[], timeoutMs: number | undefined): string[] {
  if (timeoutMs === undefined) return argv;
  return ['timeout', '--kill-after=5', `${timeoutMs / 1000}s`, ...argv];
}
export const TIMED_OUT = 124;

/** Error text of a failed command, trimmed to what a person reads in a state comment. */
export function commandError(stdout: string, stderr: string, code: number): string {
  const text = (stderr.trim() || stdout.trim()).split('\n').slice(-8).join('\n');
  return text || `exited ${code}`;
}
