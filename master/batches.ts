/**
 * How a rollout splits its agents: ordered groups (rollout.groups, or one group per value of a
 * grain with serial_by), each cut into batches of `batch` agents. Hosts sharing a role are
 * spread over batches, and a batch never holds every host of a role that has more than one in
 * the group: with lb1 and lb2 in one group, one of them always keeps serving while the other
 * takes the new revision.
 */
import { batchSize } from './jobs.js';

export interface PlanHost {
  id: string;
  /** the `roles` grain (a list, or one string) */
  roles: string[];
}

export function rolesOf(grains: Record<string, unknown>): string[] {
  const r = grains.roles;
  if (Array.isArray(r)) return r.map(String);
  return typeof r === 'string' && r ? [r] : [];
}

/** Hosts grouped by one grain's value, groups in the order of the values; hosts without it last. */
export function groupByGrain(hosts: { id: string; grains: Record<string, unknown> }[], grain: string): string[][] {
  const groups = new Map<string, string[]>();
  const rest: string[] = [];
  for (const h of hosts) {
    const v = h.grains[grain];
    const key = Array.isArray(v) ? (v.length ? String([...v].map(String).sort()[0]) : undefined) : v === undefined || v === null || v === '' ? undefined : String(v);
    if (key === undefined) rest.push(h.id);
    else groups.set(key, [...(groups.get(key) ?? []), h.id]);
  }
  return [...[...groups.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, ids]) => ids), ...(rest.length ? [rest] : [])];
}

/** Batches for each group, groups in order; every host once. */
export function planBatches(groups: PlanHost[][], batch: string): string[][] {
  const out: string[][] = [];
  const placed = new Set<string>();
  for (const g0 of groups) {
    const g = g0.filter((h) => !placed.has(h.id));
    for (const h of g) placed.add(h.id);
    if (!g.length) continue;
    out.push(...groupBatches(g, batchSize(batch, g.length)));
  }
  return out;
}

function groupBatches(hosts: PlanHost[], size: number): string[][] {
  // round-robin over roles, so hosts of one role land in different batches first
  const byRole = new Map<string, PlanHost[]>();
  for (const h of [...hosts].sort((a, b) => (a.id < b.id ? -1 : 1))) {
    const key = h.roles.length ? [...h.roles].sort().join(',') : `\0${h.id}`;
    byRole.set(key, [...(byRole.get(key) ?? []), h]);
  }
  const lanes = [...byRole.values()];
  const order: PlanHost[] = [];
  for (let i = 0; order.length < hosts.length; i++) for (const lane of lanes) if (lane[i]) order.push(lane[i]!);
  const batches: PlanHost[][] = [];
  for (let i = 0; i < order.length; i += size) batches.push(order.slice(i, i + size));
  // then make sure no batch holds all the hosts of a role shared by several in the group
  const members = new Map<string, number>();
  for (const h of hosts) for (const r of h.roles) members.set(r, (members.get(r) ?? 0) + 1);
  for (let b = 0; b < batches.length; b++) {
    for (;;) {
      const batchHosts = batches[b]!;
      const full = [...members].find(([r, n]) => n > 1 && batchHosts.filter((h) => h.roles.includes(r)).length === n);
      if (!full) break;
      const role = full[0];
      const idx = batchHosts.map((h) => h.roles.includes(role)).lastIndexOf(true);
      const [moved] = batchHosts.splice(idx, 1);
      if (b + 1 === batches.length) batches.push([]);
      batches[b + 1]!.unshift(moved!);
    }
  }
  return batches.filter((x) => x.length).map((x) => x.map((h) => h.id));
}
