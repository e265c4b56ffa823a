import { execFileSync, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runState } from '../helpers/harness.js';

const G = 'tsalt_t_grp';
const G2 = 'tsalt_t_grp2';
const UA = 'tsalt_t_gua';
const UB = 'tsalt_t_gub';
const UC = 'tsalt_t_guc';

function cleanup() {
  for (const u of [UA, UB, UC]) spawnSync('userdel', [u], { stdio: 'ignore' });
  for (const g of [G, G2, UC]) spawnSync('groupdel', [g], { stdio: 'ignore' });
}
function getent(key: string): string[] | undefined {
  const r = spawnSync('getent', ['group', key]);
  return r.status === 0 ? r.stdout.toString().trim().split(':') : undefined;
}
const members = (g: string) => (getent(g)![3] ? getent(g)![3]!.split(',').sort() : []);
const freeGid = (start: number) => {
  for (let i = start; ; i++) if (!getent(String(i))) return i;
};

async function converge(fun: string, args: Record<string, unknown>) {
  const t = await runState(fun, args, { test: true });
  const r = await runState(fun, args);
  const again = await runState(fun, args);
  expect(r.result, r.comment).toBe(true);
  expect(t.result, t.comment).toBe(null);
  expect(Object.keys(t.changes).sort()).toEqual(Object.keys(r.changes).sort());
  expect(again.result, again.comment).toBe(true);
  expect(again.changes).toEqual({});
  return { t, r, again };
}

beforeAll(() => {
  cleanup();
  for (const u of [UA, UB]) execFileSync('useradd', ['-M', '-N', u]);
  execFileSync('useradd', ['-M', '-U', UC]);
});
afterAll(cleanup);

describe('group.present', () => {
  it('creates a group with gid and members, then is idempotent', async () => {
    const gid = freeGid(43200);
    const x = await converge('group.present', { name: G, gid, members: [UA, UB] });
    expect(x.t.comment).toBe(`Group ${G} set to be added`);
    expect(x.r).toMatchObject({ comment: `New group ${G} created`, changes: { name: G, gid, members: [UA, UB] } });
    expect(x.again.comment).toBe(`Group ${G} is present and up to date`);
    expect(getent(G)![2]).toBe(String(gid));
    expect(members(G)).toEqual([UA, UB]);
  });

  it('changes the gid', async () => {
    const gid = freeGid(43250);
    const x = await converge('group.present', { name: G, gid });
    expect(x.r.changes).toEqual({ gid });
    expect(x.t.comment).toBe(`The following group attributes are set to be changed:\ngid: ${gid}`);
    expect(getent(G)![2]).toBe(String(gid));
  });

  it('members is the exact set; [] empties the group', async () => {
    const x = await converge('group.present', { name: G, members: [UB] });
    expect(x.r.changes).toEqual({ members: [UB] });
    expect(members(G)).toEqual([UB]);
    const e = await converge('group.present', { name: G, members: [] });
    expect(e.r.changes).toEqual({ members: [] });
    expect(members(G)).toEqual([]);
  });

  it('addusers / delusers change only the named users', async () => {
    const x = await converge('group.present', { name: G, addusers: [UA, UB] });
    expect(x.r.changes).toEqual({ addusers: [UA, UB] });
    expect(members(G)).toEqual([UA, UB]);
    const d = await converge('group.present', { name: G, delusers: [UA, UC] });
    expect(d.r.changes).toEqual({ delusers: [UA] });
    expect(members(G)).toEqual([UB]);
  });

  it('refuses conflicting options as Salt', async () => {
    const r = await runState('group.present', { name: G, members: [UA], addusers: [UB] });
    expect(r.result).toBe(false);
    expect(r.comment).toMatch(/Conflicting options "members" with "addusers"/);
    const s = await runState('group.present', { name: G, addusers: [UA], delusers: [UA] });
    expect(s).toMatchObject({ result: false, comment: 'Error. Same user(s) can not be added and deleted simultaneously' });
  });

  it('a missing member fails before the group is created', async () => {
    const r = await runState('group.present', { name: G2, members: [UA, 'tsalt_t_nosuch'] });
    expect(r).toMatchObject({ result: false, comment: 'The following user(s) are not present: tsalt_t_nosuch' });
    expect(getent(G2)).toBeUndefined();
    const t = await runState('group.present', { name: G2, members: ['tsalt_t_nosuch'] }, { test: true });
    expect(t.result).toBe(null);
  });

  it('a gid taken by another group fails', async () => {
    const taken = Number(getent(G)![2]);
    const r = await runState('group.present', { name: G2, gid: taken });
    expect(r).toMatchObject({ result: false, comment: `Group ${G2} is not present but gid ${taken} is already taken by group ${G}` });
    const m = await runState('group.present', { name: UC, gid: taken });
    expect(m.result).toBe(false);
    expect(m.comment).toMatch(/could not be applied.*GID '\d+' already exists|already exists/s);
  });

  it('system groups get a system gid', async () => {
    const x = await converge('group.present', { name: G2, system: true });
    expect(Number(getent(G2)![2])).toBeLessThan(1000);
    expect(x.r.changes).toMatchObject({ name: G2, members: [] });
  });
});

describe('group.absent', () => {
  it('removes the group; test mode predicts it', async () => {
    const x = await converge('group.absent', { name: G2 });
    expect(x.t.comment).toBe(`Group ${G2} is set for removal`);
    expect(x.r).toMatchObject({ comment: `Removed group ${G2}`, changes: { [G2]: '' } });
    expect(x.again.comment).toBe('Group not present');
    expect(getent(G2)).toBeUndefined();
  });

  it("fails clearly on a user's primary group", async () => {
    const r = await runState('group.absent', { name: UC });
    expect(r.result).toBe(false);
    expect(r.comment).toMatch(/Failed to remove group tsalt_t_guc: .*primary group/);
    expect(getent(UC)).toBeDefined();
  });
});
