/** Argument shapes shared by the user and group states (Salt trees write these loosely). */
import * as z from 'zod/mini';
import { accountNameArg } from './define.js';

/** Salt treats `uid: ''` (from `{{ data.get('uid', '') }}`) and null as "not given". */
export function unset<T extends z.ZodMiniType>(schema: T) {
  return z.pipe(
    z.optional(z.union([z.literal(''), z.null(), schema])),
    z.transform((v) => (v === '' || v === null ? undefined : v) as z.output<T> | undefined),
  );
}

/** uid/gid number: 1000 or '1000' */
export const idArg = z.pipe(
  z.union([z.number().check(z.int(), z.nonnegative()), z.string().check(z.regex(/^\d+$/))]),
  z.transform(Number),
);

/** a group or user by name or number */
export const nameArg = z.pipe(z.union([accountNameArg('user/group'), z.number().check(z.int())]), z.transform(String));

/** a list of names; Salt also sees `groups: wheel,adm` written as one string */
export const namesArg = z.pipe(
  z.pipe(
    z.union([z.string(), z.array(z.union([z.string(), z.number().check(z.int())])), z.null()]),
    z.transform((v) =>
      v === null
        ? []
        : typeof v === 'string'
          ? v
              .split(',')
              .map((s) => s.trim())
              .filter(Boolean)
          : v.map(String),
    ),
  ),
  z.array(accountNameArg('user/group')),
);

/** GECOS fields: numbers (phone numbers, rooms) become strings */
export const textArg = z.pipe(z.union([z.string(), z.number()]), z.transform(String));
