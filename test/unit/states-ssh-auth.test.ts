// ssh_auth.present / ssh_auth.absent against the real authorized_keys of a throwaway user,
// with keys made by ssh-keygen (openssh-client).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { exec, execOk } from '../../engine/run/exec.js';
import { runState, tempDir } from '../helpers/harness.js';
import { writeTree } from '../helpers/tree.js';
import { convergeTwice } from './states-file-helpers.js';

const user = `tsa${randomBytes(3).toString('hex')}`;
const base = tempDir('tsalt-sshauth-');
const home = path.join(base, user);
const keysFile = path.join(home, '.ssh/authorized_keys');
let uid = -1;
let gid = -1;

/** A fresh public key line `type blob comment` from ssh-keygen. */
async function keygen(type: 'ed25519' | 'ecdsa' | 'rsa', comment: string): Promise<{ line: string; enc: string; key: string }> {
  const f = path.join(base, `k-${randomBytes(4).toString('hex')}`);
  await execOk(['ssh-keygen', '-q', '-t', type, ...(type === 'rsa' ? ['-b', '2048'] : []), '-N', '', '-C', comment, '-f', f]);
  const line = fs.readFileSync(`${f}.pub`, 'utf8').trim();
  const [enc, key] = line.split(' ') as [string, string];
  return { line, enc, key };
}

let k1: Awaited<ReturnType<typeof keygen>>;
let k2: Awaited<ReturnType<typeof keygen>>;
let k3: Awaited<ReturnType<typeof keygen>>;
let k4: Awaited<ReturnType<typeof keygen>>;

function reset(content?: string, mode = 0o600): void {
  fs.rmSync(path.join(home, '.ssh'), { recursive: true, force: true });
  if (content === undefined) return;
  fs.mkdirSync(path.join(home, '.ssh'), { mode: 0o700 });
  fs.writeFileSync(keysFile, content, { mode });
  fs.chmodSync(keysFile, mode);
  fs.chownSync(path.join(home, '.ssh'), uid, gid);
  fs.chownSync(keysFile, uid, gid);
}

const read = () => fs.readFileSync(keysFile, 'utf8');

beforeAll(async () => {
  await execOk(['useradd', '-m', '-d', home, '-s', '/usr/sbin/nologin', user]);
  const st = fs.statSync(home);
  [uid, gid] = [st.uid, st.gid];
  [k1, k2, k3, k4] = await Promise.all([
    keygen('ed25519', 'alice@laptop'),
    keygen('ecdsa', 'bob@desk'),
    keygen('rsa', 'carol@ci'),
    keygen('ed25519', 'dave@phone'),
  ]);
});
afterAll(async () => {
  await exec(['userdel', '-r', user]);
  fs.rmSync(base, { recursive: true, force: true });
});

describe('ssh_auth.present', () => {
  it('adds a full key line, creating ~/.ssh (0700) and authorized_keys (0600) owned by the user', async () => {
    reset();
    const predicted = await runState('ssh_auth.present', { name: k1.line, user }, { test: true });
    expect(predicted.comment).toBe(`Key ${k1.key} for user ${user} is set to be added`);
    expect(predicted.changes).toEqual({ [k1.key]: 'New' });
    expect(fs.existsSync(path.join(home, '.ssh'))).toBe(false); // test mode changed nothing
    const r = await convergeTwice('ssh_auth.present', { name: k1.line, user });
    expect(r.changes).toEqual({ [k1.key]: 'New' });
    expect(r.comment).toBe(`The authorized host key ${k1.key} for user ${user} was added`);
    expect(read()).toBe(`${k1.line}\n`);
    const d = fs.statSync(path.join(home, '.ssh'));
    const f = fs.statSync(keysFile);
    expect([d.uid, d.gid, d.mode & 0o7777]).toEqual([uid, gid, 0o700]);
    expect([f.uid, f.gid, f.mode & 0o7777]).toEqual([uid, gid, 0o600]);
    const again = await runState('ssh_auth.present', { name: k1.line, user });
    expect(again.comment).toBe(`The authorized host key ${k1.key} is already present for user ${user}`);
  });

  it('key alone with enc alias, comment and options; other lines, comments and mode stay', async () => {
    const before = `# managed by hand\n${k3.line}\n\nfrom="10.0.0.0/8"  ${k2.enc}   ${k2.key} bob@desk\n`;
    reset(before, 0o640);
    const r = await convergeTwice('ssh_auth.present', {
      name: k1.key,
      user,
      enc: 'ed25519',
      comment: 'alice key',
      options: ['no-pty', 'command="echo a, b"'],
    });
    expect(r.changes).toEqual({ [k1.key]: 'New' });
    expect(read()).toBe(`${before}no-pty,command="echo a, b" ssh-ed25519 ${k1.key} alice key\n`);
    expect(fs.statSync(keysFile).mode & 0o7777).toBe(0o640);
    // a symlinked authorized_keys is written through, the link stays
    const real = path.join(home, '.ssh/keys.real');
    fs.renameSync(keysFile, real);
    fs.symlinkSync('keys.real', keysFile);
    await convergeTwice('ssh_auth.present', { name: k4.line, user });
    expect(fs.lstatSync(keysFile).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(real, 'utf8')).toBe(`${before}no-pty,command="echo a, b" ssh-ed25519 ${k1.key} alice key\n${k4.line}\n`);
    // a link onto a file the user does not own (root's) is refused, the target untouched
    const victim = path.join(base, 'root-owned');
    fs.writeFileSync(victim, 'root:secret\n', { mode: 0o600 });
    fs.rmSync(keysFile);
    fs.symlinkSync(victim, keysFile);
    const refused = await runState('ssh_auth.present', { name: k3.line, user });
    expect(refused.result).toBe(false);
    expect(refused.comment).toMatch(/does not own; refusing to write through the link/);
    expect(fs.readFileSync(victim, 'utf8')).toBe('root:secret\n');
    fs.rmSync(keysFile);
    fs.symlinkSync('keys.real', keysFile);
    // an unchanged line written with odd spacing is the same key line for Salt: no change
    const same = await runState('ssh_auth.present', { name: `from="10.0.0.0/8" ${k2.line}`, user });
    expect([same.result, same.changes]).toEqual([true, {}]);
  });

  it('a key present with other options/comment is updated in place, keeping its position', async () => {
    reset(`${k3.line}\ncommand="old" ${k1.enc} ${k1.key} old comment\n# end\n${k2.line}`);
    const predicted = await runState('ssh_auth.present', { name: k1.line, user }, { test: true });
    expect(predicted.comment).toBe(`Key ${k1.key} for user ${user} is set to be updated`);
    const r = await convergeTwice('ssh_auth.present', { name: k1.line, user });
    expect(r.changes).toEqual({ [k1.key]: 'Updated' });
    expect(r.comment).toBe(`The authorized host key ${k1.key} for user ${user} was updated`);
    expect(read()).toBe(`${k3.line}\n${k1.line}\n# end\n${k2.line}`);
    // a new key after a last line without newline starts its own line
    await convergeTwice('ssh_auth.present', { name: k4.line, user });
    expect(read()).toBe(`${k3.line}\n${k1.line}\n# end\n${k2.line}\n${k4.line}\n`);
  });

  it('options in front of the name, ecdsa alias, and the default comment removing an old one', async () => {
    reset(`${k2.enc} ${k2.key} to-be-dropped\n`);
    await convergeTwice('ssh_auth.present', { name: k2.key, user, enc: 'ecdsa' });
    expect(read()).toBe(`ecdsa-sha2-nistp256 ${k2.key}\n`);
    await convergeTwice('ssh_auth.present', { name: `no-agent-forwarding,from="a b" ${k4.line}`, user });
    expect(read()).toContain(`\nno-agent-forwarding,from="a b" ${k4.line}\n`);
    // parts of the name win over the arguments; missing parts come from them
    reset();
    await convergeTwice('ssh_auth.present', { name: k1.line, user, comment: 'not used', options: ['no-pty'] });
    await convergeTwice('ssh_auth.present', { name: `${k2.enc} ${k2.key}`, user, comment: 'from arg' });
    expect(read()).toBe(`no-pty ${k1.line}\n${k2.enc} ${k2.key} from arg\n`);
  });

  it('config: relative to home, %h and %u expanded, absolute paths used as they are', async () => {
    reset();
    await convergeTwice('ssh_auth.present', { name: k1.line, user, config: '.ssh/keys_%u' });
    expect(fs.readFileSync(path.join(home, `.ssh/keys_${user}`), 'utf8')).toBe(`${k1.line}\n`);
    await convergeTwice('ssh_auth.present', { name: k2.line, user, config: '%h/extra/authorized_keys' });
    const st = fs.statSync(path.join(home, 'extra'));
    expect([st.uid, st.mode & 0o7777]).toEqual([uid, 0o700]);
    const shared = path.join(base, 'etc-keys', '%u');
    await convergeTwice('ssh_auth.present', { name: k3.line, user, config: shared });
    expect(fs.readFileSync(path.join(base, 'etc-keys', user), 'utf8')).toBe(`${k3.line}\n`);
    // a directory outside the home is not handed to the user
    expect(fs.statSync(path.join(base, 'etc-keys')).uid).toBe(process.getuid!());
    const bad = await runState('ssh_auth.present', { name: k1.line, user, config: '.ssh/%x' });
    expect([bad.result, bad.comment]).toEqual([false, 'AuthorizedKeysFile path: unknown token character "%x"']);
  });

  it('--root maps the file, not the user; a home missing under the root fails', async () => {
    reset();
    const root = tempDir();
    const missing = await runState('ssh_auth.present', { name: k1.line, user }, { root });
    expect(missing.result).toBe(false);
    expect(missing.comment).toMatch(/Is the home directory available/);
    fs.mkdirSync(path.join(root, home), { recursive: true });
    await convergeTwice('ssh_auth.present', { name: k1.line, user }, { root });
    const f = path.join(root, keysFile);
    expect(fs.readFileSync(f, 'utf8')).toBe(`${k1.line}\n`);
    expect(fs.statSync(f).uid).toBe(uid);
    expect(fs.existsSync(keysFile)).toBe(false);
  });

  it('source: every key of a salt:// file, reported under the state name', async () => {
    reset(`${k3.line}\n${k1.enc} ${k1.key} stale\n`);
    const tree = writeTree({ 'keys/team.pub': `# team keys\n${k1.line}\n\nno-pty ${k2.line}\nnot a key\n` });
    const args = { name: 'team', user, source: 'salt://keys/team.pub', comment: 'ignored', enc: 'ssh-dss' };
    const predicted = await runState('ssh_auth.present', args, { test: true, treeDir: tree });
    expect(predicted.comment).toBe(`Set to update: ${k1.key}\nSet to add: ${k2.key}`);
    const r = await convergeTwice('ssh_auth.present', args, { treeDir: tree });
    expect(r.changes).toEqual({ team: 'Updated' });
    expect(read()).toBe(`${k3.line}\n${k1.line}\nno-pty ${k2.line}\n`);
    const t = await runState('ssh_auth.present', args, { test: true, treeDir: tree });
    expect(t.comment).toBe('All host keys in file salt://keys/team.pub are already present');

    const gone = await convergeTwice('ssh_auth.absent', args, { treeDir: tree });
    expect(gone.changes).toEqual({ team: 'Removed' });
    expect(read()).toBe(`${k3.line}\n`);

    const none = await runState('ssh_auth.present', { ...args, source: 'salt://keys/none.pub' }, { treeDir: tree });
    expect([none.result, none.comment]).toEqual([false, 'Failed to add the ssh key. Source file salt://keys/none.pub is missing']);
    const empty = writeTree({ 'k.pub': '# nothing here\n' });
    const bad = await runState('ssh_auth.present', { ...args, source: 'salt://k.pub' }, { treeDir: empty });
    expect([bad.result, bad.comment]).toEqual([false, 'No keys detected in salt://k.pub. Is file properly formatted?']);
  });

  it('fails on bad input and unknown users, predicting in test mode', async () => {
    reset(`${k3.line}\n`);
    const badEnc = await runState('ssh_auth.present', { name: k1.key, user, enc: 'ssh-foo' });
    expect([badEnc.result, badEnc.comment]).toEqual([false, "Incorrect encryption key type 'ssh-foo'."]);
    const badKey = await runState('ssh_auth.present', { name: 'AAAA#notbase64 some comment', user });
    expect([badKey.result, badKey.comment]).toEqual([false, 'Invalid public ssh key, most likely has spaces or invalid syntax']);
    expect(read()).toBe(`${k3.line}\n`);
    const nobody = await runState('ssh_auth.present', { name: k1.line, user: 'tsalt-no-such-user' });
    expect([nobody.result, nobody.comment]).toEqual([false, "User 'tsalt-no-such-user' does not exist"]);
    // a test run cannot know whether an earlier state creates the user: it predicts the add
    const predicted = await runState('ssh_auth.present', { name: k1.line, user: 'tsalt-no-such-user' }, { test: true });
    expect(predicted.result).toBeNull();
    expect(predicted.changes).toEqual({ [k1.key]: 'New' });
    await expect(runState('ssh_auth.present', { name: k1.line })).rejects.toThrow(/user/);
  });
});

describe('ssh_auth.absent', () => {
  it('removes every line of the key whatever its options/comment, keeping the rest', async () => {
    reset(`# top\n${k1.line}\n\nno-pty ${k1.enc} ${k1.key} other\n${k2.line}\n`);
    const predicted = await runState('ssh_auth.absent', { name: k1.key, user }, { test: true });
    expect(predicted.comment).toBe(`Key ${k1.key} for user ${user} is set for removal`);
    const r = await convergeTwice('ssh_auth.absent', { name: `${k1.enc} ${k1.key} whatever`, user });
    expect(r.changes).toEqual({ [k1.key]: 'Removed' });
    expect(r.comment).toBe('Key removed');
    expect(read()).toBe(`# top\n\n${k2.line}\n`);
    const again = await runState('ssh_auth.absent', { name: k1.key, user });
    expect([again.result, again.comment]).toEqual([true, 'Key not present']);
    const t = await runState('ssh_auth.absent', { name: k1.key, user }, { test: true });
    expect([t.result, t.comment]).toEqual([true, 'Key is already absent']);
  });

  it('nothing to do without the file or the user', async () => {
    reset();
    const r = await runState('ssh_auth.absent', { name: k1.line, user });
    expect([r.result, r.changes]).toEqual([true, {}]);
    expect(fs.existsSync(path.join(home, '.ssh'))).toBe(false);
    const nobody = await runState('ssh_auth.absent', { name: k1.line, user: 'tsalt-no-such-user' });
    expect([nobody.result, nobody.changes]).toEqual([true, {}]);
  });
});
