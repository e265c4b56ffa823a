/** How a rollout cuts its agents into batches: groups in order, pairs of a role never together. */
import { describe, expect, it } from 'vitest';
import { groupByGrain, planBatches, type PlanHost } from '../../master/batches.js';

const h = (id: string, ...roles: string[]): PlanHost => ({ id, roles });
const stack = [h('app1', 'app'), h('app2', 'app'), h('db1', 'db'), h('db2', 'db'), h('lb1', 'haproxy'), h('lb2', 'haproxy'), h('web1', 'nginx'), h('web2', 'nginx')];

/** Every role shared by several hosts of the plan keeps one host out of each batch. */
function pairsSafe(batches: string[][], hosts: PlanHost[]): boolean {
  const roles = new Map<string, string[]>();
  for (const x of hosts) for (const r of x.roles) roles.set(r, [...(roles.get(r) ?? []), x.id]);
  return batches.every((b) => [...roles.values()].every((ids) => ids.length < 2 || !ids.every((id) => b.includes(id))));
}

describe('rollout batches', () => {
  it('25% of the shipped stack: lb1 and lb2 never in one batch (alphabetical order put them together)', () => {
    const b = planBatches([stack], '25%');
    expect(b.flat().sort()).toEqual(stack.map((x) => x.id).sort());
    expect(b.every((x) => x.length === 2)).toBe(true);
    expect(pairsSafe(b, stack)).toBe(true);
  });

  it('any batch size keeps every pair apart, even 100%', () => {
    for (const size of ['1', '2', '3', '4', '50%', '75%', '100%']) {
      const b = planBatches([stack], size);
      expect(b.flat().sort(), size).toEqual(stack.map((x) => x.id).sort());
      expect(pairsSafe(b, stack), size).toBe(true);
    }
    expect(planBatches([[h('w1', 'web'), h('w2', 'web'), h('w3', 'web')]], '100%')).toEqual([['w1', 'w2'], ['w3']]);
  });

  it('groups go in order, each host once; a group of one host is one batch', () => {
    const lbs = [h('lb1', 'haproxy'), h('lb2', 'haproxy')];
    const b = planBatches([lbs, [h('web1', 'nginx')], stack], '100%');
    expect(b.slice(0, 3)).toEqual([['lb1'], ['lb2'], ['web1']]);
    expect(b.flat().sort()).toEqual(stack.map((x) => x.id).sort());
    expect(pairsSafe(b.slice(3), stack)).toBe(true);
  });

  it('serial_by: one group per value of the grain, hosts without it last', () => {
    expect(
      groupByGrain(
        [
          { id: 'web1', grains: { roles: ['nginx'] } },
          { id: 'lb1', grains: { roles: 'haproxy' } },
          { id: 'x', grains: {} },
          { id: 'lb2', grains: { roles: ['haproxy'] } },
        ],
        'roles',
      ),
    ).toEqual([['lb1', 'lb2'], ['web1'], ['x']]);
  });
});
