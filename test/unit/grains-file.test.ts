/**
 * The grains file (/etc/tsalt/grains) is read through loadGrainsFile by the agent, `tsalt local`
 * and grains.present: a YAML anchor holding its own alias parses into a value that contains
 * itself, which no grain may be (it cannot be sent, stored or printed); an alias shared between
 * two grains is plain data.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadGrainsFile } from '../../engine/grains/core.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsalt-grains-file-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text);
  return f;
};

describe('grains file', () => {
  it('refuses an alias inside its own anchor, naming the file', () => {
    const f = file('cycle', 'roles: [web]\nsite: &s\n  name: x\n  self: *s\n');
    expect(() => loadGrainsFile(f)).toThrow(`${f}: grains file refers to itself (an alias inside its own anchor)`);
    const deep = file('deep', 'a: &a\n  b:\n    - c: *a\n');
    expect(() => loadGrainsFile(deep)).toThrow(/refers to itself/);
  });

  it('takes an alias shared between grains', () => {
    const f = file('shared', 'dc: &dc {name: fra1, zone: a}\nbackup_dc: *dc\nroles: [web, db]\n');
    const g = loadGrainsFile(f);
    expect(g).toEqual({ dc: { name: 'fra1', zone: 'a' }, backup_dc: { name: 'fra1', zone: 'a' }, roles: ['web', 'db'] });
    expect(JSON.parse(JSON.stringify(g))).toEqual(g);
  });
});
