/**
 * Issue 10's state arguments from community formulas: pkgrepo.managed `comments:` as a list, and
 * mysql_user.absent `name: ''` (the anonymous user), accepted as Salt accepts them.
 */
import { describe, expect, it } from 'vitest';
import { lookupState } from '../../engine/states/registry.js';
import { validateArgs } from '../../engine/run/invoke.js';

async function validate(fun: string, args: Record<string, unknown>) {
  const [mod, f] = fun.split('.') as [string, string];
  const found = await lookupState(mod, f);
  if ('error' in found) throw new Error(found.error);
  return validateArgs(found.def, args) as { args: Record<string, unknown> };
}

describe('state arguments formulas use', () => {
  it('pkgrepo.managed takes comments as a string or a list', async () => {
    const base = { name: 'deb http://deb.example.org/debian bookworm main', file: '/etc/apt/sources.list.d/x.list' };
    expect((await validate('pkgrepo.managed', { ...base, comments: ['# managed by salt', 'second line'] })).args.comments).toEqual(['# managed by salt', 'second line']);
    expect((await validate('pkgrepo.managed', { ...base, comments: 'one' })).args.comments).toBe('one');
    await expect(validate('pkgrepo.managed', { ...base, comments: [{ a: 1 }] })).rejects.toThrow(/comments/);
  });

  it("mysql_user.absent takes name: '' (the anonymous user), present still needs a name", async () => {
    expect((await validate('mysql_user.absent', { name: '', host: 'localhost' })).args.name).toBe('');
    await expect(validate('mysql_user.present', { name: '', host: 'localhost' })).rejects.toThrow(/name/);
  });
});
