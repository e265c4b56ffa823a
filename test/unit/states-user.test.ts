import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runState, tempDir } from '../helpers/harness.js';

const U1 = 'tsalt_t_u1';
const U2 = 'tsalt_t_u2';
const U3 = 'tsalt_t_u3';
const G1 = 'tsalt_t_ug1';
const G2 = 'tsalt_t_ug2';
const USERS = [U1, U2, U3];
const GROUPS = [G1, G2, U1, U2, U3];
// sha512-crypt hashes of 'one' and 'two' (openssl passwd -6 -salt ...)
const HASH1 = '$6$saltsalt$kiRCEN9h6.zvW9LfVNgSwgm2787.AP2FffCmRoXgfIr6JNAEomr.2TTu4gXSLZC8ktz9QdSO9U53P04XAACMi1';
const HASH2 = '$6$saltsalt$dg1mCWso1bcZ4jIR4DTGWQLYWovPSQ8XfXMYgd99Ac12YxNhttSzGlvMuY4NK9oxdbAshf9Z9d.77bjXhbJN00';

let dir: string;

function cleanup() {
  for (const u of USERS) spawnSync('userdel', ['-r', u], { stdio: 'ignore' });
  for (const g of GROUPS) spawnSync('groupdel', [g], { stdio: 'ignore' });
}

function getent(db: string, key: string): string[] | undefined {
  const r = spawnSync('getent', [db, key]);
  return r.status === 0 ? r.stdout.toString().trim().split(':') : undefined;
}
const idGroups = (u: string) => execFileSync('id', ['-nG', u]).toString().trim().split(' ').sort();
const freeId = (start: number) => {
  for (let i = start; ; i++) if (!getent('passwd', String(i)) && !getent('group', String(i))) return i;
};

/** test run, real run, second run: the test run predicts the real one, the second changes nothing */
async function converge(fun: string, args: Record<string, unknown>) {
  const t = await runState(fun, args, { test: true });
  const r = await runState(fun, args);
  const again = await runState(fun, args);
  return { t, r, again };
}

function expectConverged(x: Awaited<ReturnType<typeof converge>>) {
  expect(x.r.result, x.r.comment).toBe(true);
  expect(x.t.result, x.t.comment).toBe(null);
  expect(Object.keys(x.t.changes).sort()).toEqual(Object.keys(x.r.changes).sort());
  expect(x.again.result, x.again.comment).toBe(true);
  expect(x.again.changes).toEqual({});
}

beforeAll(() => {
  cleanup();
  dir = tempDir('tsalt-user-');
  fs.chmodSync(dir, 0o755);
  execFileSync('groupadd', [G1]);
  execFileSync('groupadd', [G2]);
});

afterAll(() => {
  cleanup();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('user.present', () => {
  it('creates a user with all its attributes, then is idempotent', async () => {
    const uid = freeId(43100);
    const home = path.join(dir, U1);
    const args = {
      name: U1,
      uid,
      shell: '/bin/bash',
      home,
      fullname: 'Test One',
      roomnumber: 12,
      groups: [G1],
      password: HASH1,
    };
    const x = await converge('user.present', args);
    expectConverged(x);
    expect(x.t.comment).toBe(`User ${U1} set to be added`);
    expect(x.r.comment).toBe(`New user ${U1} created`);
    expect(x.r.changes).toMatchObject({
      name: U1,
      uid,
      home,
      shell: '/bin/bash',
      fullname: 'Test One',
      roomnumber: '12',
      groups: [G1, U1].sort(),
      password: 'XXX-REDACTED-XXX',
    });
    expect(x.again.comment).toBe(`User ${U1} is present and up to date`);
    const pw = getent('passwd', U1)!;
    expect(pw[2]).toBe(String(uid));
    expect(pw[4]).toBe('Test One,12');
    expect(pw[5]).toBe(home);
    expect(pw[6]).toBe('/bin/bash');
    expect(getent('shadow', U1)![1]).toBe(HASH1);
    expect(idGroups(U1)).toEqual([G1, U1].sort());
    expect(fs.statSync(home).uid).toBe(uid);
    expect(JSON.stringify(x.r)).not.toContain(HASH1);
  });

  it('updates only what differs: shell, groups (exact set), GECOS, password', async () => {
    const args = { name: U1, shell: '/bin/sh', groups: [G2], fullname: 'Renamed', password: HASH2 };
    const x = await converge('user.present', args);
    expectConverged(x);
    expect(x.r.comment).toBe(`Updated user ${U1}`);
    expect(x.r.changes).toEqual({
      shell: '/bin/sh',
      groups: [G2, U1].sort(),
      fullname: 'Renamed',
      passwd: 'XXX-REDACTED-XXX',
    });
    expect(x.t.comment).toMatch(/^The following user attributes are set to be changed:\n/);
    expect(idGroups(U1)).toEqual([G2, U1].sort());
    // roomnumber was not given: kept
    expect(getent('passwd', U1)![4]).toBe('Renamed,12');
    expect(getent('shadow', U1)![1]).toBe(HASH2);
  });

  it('remove_groups: False only adds; no groups argument leaves groups alone', async () => {
    const x = await converge('user.present', { name: U1, groups: [G1], remove_groups: false });
    expectConverged(x);
    expect(idGroups(U1)).toEqual([G1, G2, U1].sort());
    expect(await runState('user.present', { name: U1, shell: '/bin/sh' })).toMatchObject({ result: true, changes: {} });
    const empty = await converge('user.present', { name: U1, groups: [] });
    expectConverged(empty);
    expect(idGroups(U1)).toEqual([U1]);
  });

  it('optional_groups: missing ones are ignored', async () => {
    const x = await converge('user.present', { name: U1, groups: [G1], optional_groups: [G2, 'tsalt_t_nosuch'] });
    expectConverged(x);
    expect(idGroups(U1)).toEqual([G1, G2, U1].sort());
  });

  it('enforce_password: False keeps an existing password', async () => {
    const r = await runState('user.present', { name: U1, password: HASH1, enforce_password: false });
    expect(r).toMatchObject({ result: true, changes: {} });
    expect(getent('shadow', U1)![1]).toBe(HASH2);
  });

  it('refuses a uid change unless allow_uid_change, as Salt', async () => {
    const before = getent('passwd', U1)![2];
    const newUid = freeId(43150);
    const r = await runState('user.present', { name: U1, uid: newUid });
    expect(r.result).toBe(false);
    expect(r.comment).toMatch(/Changing uid \(\d+ -> \d+\) not permitted, set allow_uid_change to True/);
    expect(getent('passwd', U1)![2]).toBe(before);
    const x = await converge('user.present', { name: U1, uid: newUid, allow_uid_change: true });
    expectConverged(x);
    expect(x.r.changes).toEqual({ uid: newUid });
  });

  it('changes the primary group by name (allow_gid_change) and reports gid and groups', async () => {
    const g2 = Number(getent('group', G2)![2]);
    const x = await converge('user.present', { name: U1, gid: G2, groups: [G1], allow_gid_change: true });
    expectConverged(x);
    expect(x.r.changes).toMatchObject({ gid: g2 });
    expect(Object.keys(x.r.changes).sort()).toEqual(['gid', 'groups']);
    expect(getent('passwd', U1)![3]).toBe(String(g2));
  });

  it('empty_password removes the password', async () => {
    const x = await converge('user.present', { name: U1, empty_password: true });
    expectConverged(x);
    expect(x.r.changes).toEqual({ passwd: 'XXX-REDACTED-XXX' });
    expect(getent('shadow', U1)![1]).toBe('');
  });

  it('a missing group fails before anything is created; test mode assumes an earlier state creates it', async () => {
    const r = await runState('user.present', { name: U2, groups: [G1, 'tsalt_t_nosuch'] });
    expect(r).toMatchObject({ result: false, changes: {}, comment: 'The following group(s) are not present: tsalt_t_nosuch' });
    expect(getent('passwd', U2)).toBeUndefined();
    const t = await runState('user.present', { name: U2, groups: ['tsalt_t_nosuch'] }, { test: true });
    expect(t.result).toBe(null);
    expect(t.comment).toMatch(/assuming group\(s\) tsalt_t_nosuch/);
    const g = await runState('user.present', { name: U2, gid: 'tsalt_t_nosuch' });
    expect(g).toMatchObject({ result: false, comment: 'Default group with name "tsalt_t_nosuch" is not present' });
  });

  it('createhome: False creates no home; system users; usergroup False', async () => {
    const home = path.join(dir, U2);
    const x = await converge('user.present', { name: U2, home, createhome: false, system: true, usergroup: false });
    expectConverged(x);
    expect(fs.existsSync(home)).toBe(false);
    const pw = getent('passwd', U2)!;
    expect(Number(pw[2])).toBeLessThan(1000);
    expect(getent('group', U2)).toBeUndefined();
    // with createhome (default), a missing home of an existing user is created
    const y = await converge('user.present', { name: U2, home });
    expectConverged(y);
    expect(y.r.changes).toEqual({ homeDoesNotExist: home });
    expect(fs.statSync(home).uid).toBe(Number(pw[2]));
  });

  it('a useradd failure is reported and leaves no user', async () => {
    const r = await runState('user.present', { name: U3, shell: '/bin/sh', uid: 0, unique: true });
    expect(r.result).toBe(false);
    expect(r.comment).toMatch(/Failed to create new user tsalt_t_u3: .*useradd/);
    expect(getent('passwd', U3)).toBeUndefined();
  });

  it('rejects bad arguments', async () => {
    await expect(runState('user.present', { name: U3, uid: 'abc' })).rejects.toThrow(/uid/);
  });
});

describe('user.absent', () => {
  it('removes the user and its private group; test mode predicts it', async () => {
    execFileSync('useradd', ['-m', '-d', path.join(dir, U3), U3]);
    expect(getent('group', U3)).toBeDefined();
    const x = await converge('user.absent', { name: U3, purge: true });
    expectConverged(x);
    expect(x.t.comment).toBe(`User ${U3} set for removal`);
    expect(x.r).toMatchObject({ comment: `Removed user ${U3}`, changes: { [U3]: 'removed', [`${U3} group`]: 'removed' } });
    expect(x.again.comment).toBe(`User ${U3} is not present`);
    expect(getent('passwd', U3)).toBeUndefined();
    expect(fs.existsSync(path.join(dir, U3))).toBe(false);
  });

  it('keeps the home without purge and a shared group', async () => {
    const x = await converge('user.absent', { name: U2 });
    expectConverged(x);
    expect(x.r.changes).toEqual({ [U2]: 'removed' });
    expect(fs.existsSync(path.join(dir, U2))).toBe(true);
  });
});
