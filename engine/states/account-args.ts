/** Argument shapes shared by the user and group states (Salt trees write these loosely). */
import * as z from 'zod';
import { accountNameArg } from './define.js';

/** Salt treats `uid: ''` (from `{{ data.get('uid', '') }}`) and null as "not given". */
export function unset<T extends z.ZodType>(schema: T) {
  return z
    .union([z.literal(''), z.null(), schema])
    .optional()
    .transform((v) => (v === '' || v === null ? undefined : v) as z.output<T> | undefined);
}

/** uid/gid number: 1000 or '1000' */
export const idArg = z.union([z.number().int().nonnegative(), z.string().regex(/^\d+$/)]).transform(Number);

/** a group or user by name or number */
export const nameArg = z.union([accountNameArg('user/group'), z.number().int()]).transform(String);

/** a list of names; Salt also sees `groups: wheel,adm` written as one string */
export const namesArg = z
  .union([z.string(), z.array(z.union([z.string(), z.number().int()])), z.null()])
  .transform((v) => (v === null ? [] : typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : v.map(String)))
  .pipe(z.array(accountNameArg('user/group')));

/** GECOS fields: numbers (phone numbers, rooms) become strings */
export const textArg = z.union([z.string(), z.number()]).transform(String);
