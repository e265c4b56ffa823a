import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { runState, tempDir } from '../helpers/harness.js';

const ORIGINAL = '# The following lines are desirable for IPv6 capable hosts\n127.0.0.1\tlocalhost\n10.0.0.5\told-db db1 # keep me\n::1 localhost ip6-localhost\n';

function root(): { root: string; file: string } {
  const r = tempDir();
  fs.mkdirSync(path.join(r, 'etc'));
  fs.writeFileSync(path.join(r, 'etc/hosts'), ORIGINAL);
  return { root: r, file: path.join(r, 'etc/hosts') };
}

async function converge(fun: string, args: Record<string, unknown>, r: string) {
  const predicted = await runState(fun, args, { root: r, test: true });
  const real = await runState(fun, args, { root: r });
  const again = await runState(fun, args, { root: r });
  expect(predicted.result).toBeNull();
  expect(predicted.changes).toEqual(real.changes);
  expect([real.result, again.result, again.changes]).toEqual([true, true, {}]);
  return real;
}

describe('host.present / host.absent (/etc/hosts under --root)', () => {
  it('adds a name to an existing address line or a new line, keeping everything else', async () => {
    const { root: r, file } = root();
    const real = await converge('host.present', { name: 'db1.example', ip: ['10.0.0.5', '10.0.0.6'] }, r);
    expect(real.changes).toEqual({ added: ['10.0.0.5 db1.example', '10.0.0.6 db1.example'] });
    expect(fs.readFileSync(file, 'utf8')).toBe(
      '# The following lines are desirable for IPv6 capable hosts\n127.0.0.1\tlocalhost\n10.0.0.5\told-db\tdb1\tdb1.example # keep me\n::1 localhost ip6-localhost\n10.0.0.6\tdb1.example\n',
    );
  });

  it('clean: True moves the name away from other addresses', async () => {
    const { root: r, file } = root();
    const real = await converge('host.present', { name: 'db1', ip: '10.0.0.9', clean: true }, r);
    expect(real.changes).toEqual({ added: ['10.0.0.9 db1'], removed: ['10.0.0.5 db1'] });
    expect(fs.readFileSync(file, 'utf8')).toContain('10.0.0.5\told-db # keep me\n');
  });

  it('absent removes the name (a line left without names goes), and bad input is refused', async () => {
    const { root: r, file } = root();
    await converge('host.absent', { name: 'old-db' }, r);
    await converge('host.absent', { name: 'db1', ip: '10.0.0.5' }, r);
    expect(fs.readFileSync(file, 'utf8')).not.toContain('10.0.0.5');
    await expect(runState('host.present', { name: 'x', ip: 'not-an-ip' }, { root: r })).rejects.toThrow(/IPv4 or IPv6/);
  });
});
