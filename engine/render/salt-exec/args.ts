/**
 * Calling convention shared by the `salt[...]` functions: Nunjucks passes `f(a, cwd='/tmp')` as
 * positional values plus a trailing `{__keywords: true, ...}` object. `bind` maps both onto
 * Salt's parameter names so each function reads its arguments by name.
 */
export type Data = Record<string, unknown>;
export type SaltFn = (...args: unknown[]) => unknown;
export type SaltFns = Record<string, SaltFn>;

export function kwOf(args: unknown[]): [unknown[], Data] {
  const last = args[args.length - 1] as (Data & { __keywords?: boolean }) | undefined;
  if (last && typeof last === 'object' && last.__keywords) {
    const { __keywords, ...kw } = last;
    return [args.slice(0, -1), kw];
  }
  return [args, {}];
}

export interface Bound {
  a: Data;
  /** positional values beyond the named parameters (Salt's *args) */
  rest: unknown[];
}

/**
 * Bind positional and keyword arguments to `params` (Salt's signature, in order). Too many
 * positionals or an unknown keyword is an error naming the function, unless `loose` (Salt
 * functions with **kwargs, e.g. cmd.run, ignore what they do not use).
 */
export function bind(fn: string, raw: unknown[], params: string[], o: { varargs?: boolean; loose?: boolean } = {}): Bound {
  const [pos, kw] = kwOf(raw);
  const a: Data = {};
  params.forEach((p, i) => {
    if (i < pos.length) a[p] = pos[i];
  });
  const rest = pos.slice(params.length);
  if (rest.length && !o.varargs) throw new Error(`${fn}: takes at most ${params.length} positional argument(s), got ${pos.length}`);
  for (const [k, v] of Object.entries(kw)) {
    if (params.includes(k)) {
      if (k in a) throw new Error(`${fn}: got multiple values for argument '${k}'`);
      a[k] = v;
    } else if (!o.loose) {
      throw new Error(`${fn}: unexpected keyword argument '${k}'`);
    }
  }
  return { a, rest };
}

/** A required string argument. */
export function str(fn: string, a: Data, name: string): string {
  const v = a[name];
  if (v === undefined || v === null) throw new Error(`${fn}: missing required argument '${name}'`);
  if (typeof v !== 'string' && typeof v !== 'number') throw new Error(`${fn}: '${name}' must be a string`);
  return String(v);
}

/** Python truthiness for flag arguments (a YAML/Jinja value may be a string 'False' too). */
export function flag(v: unknown, dflt: boolean): boolean {
  if (v === undefined || v === null) return dflt;
  if (typeof v === 'string') return !['', 'false', 'no', 'off', '0'].includes(v.toLowerCase());
  return Boolean(v);
}

export function isDict(v: unknown): v is Data {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
