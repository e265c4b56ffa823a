/**
 * Requisite kinds and references: the words compile, run and the states all use. A leaf module
 * (it imports nothing), so that none of those layers has to import another for them.
 */

/** Requisite keys (each also exists as `<kind>_in`); `extend` appends to them instead of replacing. */
export const REQUISITE_KINDS = [
  'require',
  'watch',
  'onchanges',
  'onfail',
  'prereq',
  'listen',
  'use',
  'require_any',
  'watch_any',
  'onchanges_any',
  'onfail_any',
  'onfail_all',
] as const;
export type RequisiteKind = (typeof REQUISITE_KINDS)[number];

/** One requisite target as written: `- pkg: nginx`, `- sls: web`, `- nginx`. */
export interface RequisiteRef {
  /** module the target must be (`pkg`), 'sls' for a whole SLS, or null for any module */
  state: string | null;
  ref: string;
}
