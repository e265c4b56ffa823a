/**
 * The contract every state function follows (docs/design.md, step 5: a state checks, then applies).
 *
 * - `check` is read-only. It returns the changes the state would make, or no changes when the
 *   system already matches. Test mode (`--test`) stops there, so a test run and the real run
 *   that follows share one code path and cannot disagree.
 * - `apply` is only called when `check` reported changes. Idempotence by construction.
 * - A problem with the system or the arguments is a thrown `StateFailure` (result: false, the
 *   message becomes the comment); anything else thrown is a bug and is reported the same way.
 */
import * as z from 'zod/mini';
// zod's core classes by their own module: `z.core.X` would make the bundler keep all of core
import * as zcore from 'zod/v4/core';
import type { RunContext } from './context.js';

// zod/mini loads no messages; classic zod set English as its first schema was built. The
// argument errors tsalt prints are English (cli/zod-jitless.ts sets it first in the `tsalt local`
// bundle; the job worker, tests and the unbundled engine come through here).
if (!z.config().localeError) z.config(z.locales.en());

export type Changes = Record<string, unknown>;

export interface CheckOutcome<P = unknown> {
  /** Empty or absent: converged, `apply` is not called. */
  changes?: Changes;
  comment: string;
  /** Whatever `check` learnt that `apply` needs (saves querying twice). */
  plan?: P;
}

export interface ApplyOutcome {
  changes: Changes;
  comment: string;
  /** Defaults to true. `cmd.run` returns false on a non-zero exit but still reports changes. */
  result?: boolean;
}

export class StateFailure extends Error {
  constructor(
    message: string,
    readonly changes: Changes = {},
  ) {
    super(message);
    this.name = 'StateFailure';
  }
}

export interface StateDefinition<S extends z.ZodMiniType = z.ZodMiniType, P = unknown> {
  /** Arguments, without requisites/order/name handling which the compiler strips first. */
  args: S;
  /**
   * Salt quirk kept on purpose: keyword arguments `file.managed` does not know become template
   * variables. Modules that set this receive unknown keys in `extra` instead of a warning.
   */
  passUnknownArgs?: boolean;
  check(ctx: RunContext, args: z.output<S>, extra: Record<string, unknown>): Promise<CheckOutcome<P>>;
  apply(ctx: RunContext, args: z.output<S>, plan: P | undefined, extra: Record<string, unknown>): Promise<ApplyOutcome>;
  /**
   * Called (instead of nothing) when a `watch`ed state changed and this state itself changed
   * nothing, as Salt's mod_watch. Must honour `ctx.test` (report, don't act).
   */
  modWatch?(ctx: RunContext, args: z.output<S>, extra: Record<string, unknown>): Promise<ApplyOutcome>;
  /**
   * Start this module's run-wide read-only query early (through `ctx.facts`), so one
   * `dpkg-query` runs while the file states are checked. Called once per module function
   * before the run; must not throw and must not change anything.
   */
  prefetch?(ctx: RunContext): void;
}

export function defineState<S extends z.ZodMiniType, P = unknown>(def: StateDefinition<S, P>): StateDefinition<S, P> {
  return def;
}

/** A module file (`file.ts`, `pkg.ts`, ...) default-exports its functions by Salt name. */
export type StateModule = Record<string, StateDefinition<z.ZodMiniType, any>>;

// ---- argument helpers shared by modules: Salt trees write the same thing many ways ----

/** `mode: 644`, `mode: '0644'`, `mode: 0o644` -> '0644'. YAML hands us numbers for unquoted modes. */
export const modeArg = z.pipe(
  z.union([z.string(), z.number()]),
  z.transform((v, ctx) => {
    const s = typeof v === 'number' ? String(v) : v.trim();
    if (!/^0?[0-7]{3,4}$/.test(s)) {
      // zod/mini's transform has no ctx.addIssue: the issue classic's addIssue would push
      ctx.issues.push({ code: 'custom', message: `mode must be octal digits like '0644', got ${JSON.stringify(v)}`, input: v });
      return z.NEVER;
    }
    return s.padStart(4, '0').slice(-4);
  }),
);

/** A value Salt accepts either as one item or a list of items. */
export function listArg<T extends z.ZodMiniType>(item: T) {
  return z.pipe(
    z.union([item, z.array(item)]),
    z.transform((v) => (Array.isArray(v) ? v : [v]) as z.output<T>[]),
  );
}

/** Salt's truthy strings ('True', 'yes') appear in trees from older YAML habits. */
export const boolArg = z.pipe(
  z.union([z.boolean(), z.enum(['True', 'False', 'true', 'false', 'yes', 'no'])]),
  z.transform((v) => v === true || v === 'True' || v === 'true' || v === 'yes'),
);

/**
 * A name a program receives as an operand (package, user, group, npm package, cron user...).
 * One starting with '-' cannot be valid and would reach the program as an option, so it is
 * refused here, at compile time, naming the state; blanks and control characters never make a
 * valid name either. `extra` adds the rule of one kind of name.
 */
export function programName(what: string, extra?: { re: RegExp; says: string }) {
  return z.string().check(
    z.superRefine((s, ctx) => {
      const why = !s
        ? 'is empty'
        : s.startsWith('-')
          ? "starts with '-': a program would read it as an option"
          : /[\s\x00-\x1f\x7f]/.test(s)
            ? 'contains blanks or control characters'
            : extra && !extra.re.test(s)
              ? extra.says
              : undefined;
      if (why) ctx.addIssue({ code: 'custom', message: `${what} name ${JSON.stringify(s)} cannot be valid: it ${why}` });
    }),
  );
}

/** Package names as apt/dnf take them (`name`, `name:arch`; versions go in `version`). */
export const packageNameArg = programName('package');

/** User and group names: what passwd/group files can hold (no `:` or `,`, no `/`). */
export function accountNameArg(what: string) {
  return programName(what, { re: /^[^:,/]+$/, says: "contains ':', ',' or '/'" });
}

/** user/group given by name or numeric id ('' as before: left to the state to read as unset) */
export const principalArg = z.pipe(
  z.union([z.literal(''), accountNameArg('user/group'), z.number().check(z.int())]),
  z.transform((v) => String(v)),
);

/**
 * `name` reaches a program only when none of `unless` (`pkgs`, `sources`) is given; otherwise it
 * is the state's label. Checks it then with `rule` (a programName schema), at compile time.
 */
export function nameUnless<T extends z.ZodMiniObject>(schema: T, rule: z.ZodMiniType, unless: string[]): T {
  return schema.check(
    z.superRefine((a, ctx) => {
      const o = a as Record<string, unknown>;
      if (unless.some((k) => o[k] !== undefined)) return;
      const r = rule.safeParse(o.name);
      if (!r.success) for (const i of r.error.issues) ctx.addIssue({ code: 'custom', message: i.message, path: ['name'] });
    }),
  );
}

// ---- argument validation: the compiler runs it for every state before anything converges ----

export interface ValidatedArgs {
  args: unknown;
  extra: Record<string, unknown>;
  warnings: string[];
}

export class ArgError extends Error {
  constructor(readonly issues: string[]) {
    super(issues.join('; '));
    this.name = 'ArgError';
  }
}

/** Validate raw arguments; unknown keys are warnings (Salt ignores them) or template vars. */
export function validateArgs(def: StateDefinition, raw: Record<string, unknown>): ValidatedArgs {
  const parsed = def.args.safeParse(raw);
  if (!parsed.success) {
    throw new ArgError(
      parsed.error.issues.map((i) => (i.path.length ? `argument '${i.path.join('.')}': ${i.message}` : i.message)),
    );
  }
  const known = knownKeys(def.args);
  const extra: Record<string, unknown> = {};
  const warnings: string[] = [];
  if (known) {
    const unknown = Object.keys(raw).filter((k) => !known.has(k));
    for (const k of unknown) extra[k] = raw[k];
    if (unknown.length && !def.passUnknownArgs) {
      warnings.push(`The following arguments are not used by the state and are ignored: ${unknown.join(', ')}`);
    }
  }
  return { args: parsed.data, extra, warnings };
}

/**
 * The argument names a state's schema declares, through zod core's classes (so for zod/mini and
 * classic schemas alike): the object's `shape`, reached through `.transform()` pipes; undefined
 * when the object takes any key (a catchall: `z.looseObject`, `z.catchall(x)`, classic's
 * `.passthrough()`, `.loose()`, `.catchall(x)`).
 */
export function knownKeys(schema: zcore.$ZodType): ReadonlySet<string> | undefined {
  if (knownKeysOf.has(schema)) return knownKeysOf.get(schema);
  const keys = declaredKeys(schema);
  knownKeysOf.set(schema, keys);
  return keys;
}
/** a state's schema is built once: its keys too (every state of every run asked again); one Set shared by every caller, so read-only */
const knownKeysOf = new WeakMap<zcore.$ZodType, ReadonlySet<string> | undefined>();

function declaredKeys(schema: zcore.$ZodType): Set<string> | undefined {
  let s: zcore.$ZodType = schema;
  while (s instanceof zcore.$ZodPipe) s = s._zod.def.in;
  if (!(s instanceof zcore.$ZodObject)) return undefined;
  const catchall = s._zod.def.catchall;
  if (catchall && !(catchall instanceof zcore.$ZodNever)) return undefined;
  return new Set(Object.keys(s._zod.def.shape));
}
