/**
 * Libraries whose behaviour tsalt leans on beyond their declared API are pinned to one exact
 * version, and this test pins what each reliance is: an upgrade that changes it fails here,
 * naming the library, instead of changing what a Salt tree means.
 * (nunjucks, patched by the renderer, is pinned and checked with the render tests.)
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import yaml from 'js-yaml';
import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { dumpSaltYaml, loadSaltYaml } from '../../core/salt-yaml.js';
import { knownKeys } from '../../engine/states/define.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as Record<string, Record<string, string>>;
const require = createRequire(import.meta.url);

describe('pinned libraries', () => {
  it('js-yaml and zod are pinned to the exact version installed', () => {
    for (const name of ['js-yaml', 'zod']) {
      const want = pkg.dependencies![name] ?? pkg.devDependencies![name];
      expect(want, `${name} in package.json`).toMatch(/^\d+\.\d+\.\d+$/);
      expect((require(`${name}/package.json`) as { version: string }).version, name).toBe(want);
    }
  });

  it('js-yaml (through core/salt-yaml.ts) is the only YAML library, so tests read YAML as Salt does', () => {
    const all = { ...pkg.dependencies, ...pkg.devDependencies };
    expect(Object.keys(all).filter((n) => /yaml/i.test(n) && n !== 'js-yaml' && n !== '@types/js-yaml')).toEqual([]);
  });

  it("js-yaml: the undeclared `types` and the schema API core/salt-yaml.ts builds Salt's YAML 1.1 from", () => {
    const types = (yaml as unknown as { types: Record<string, unknown> }).types;
    for (const t of ['merge', 'int', 'float', 'bool', 'null']) expect(types[t], `yaml.types.${t}`).toBeInstanceOf(yaml.Type);
    expect(typeof yaml.FAILSAFE_SCHEMA.extend).toBe('function');
    // what the Salt schema then reads and writes
    expect(loadSaltYaml('a: yes\nb: 0644\nc: 1e3\nd: 2024-01-02\nbase: &b {x: 1}\ne:\n  <<: *b\n  y: 2\n')).toEqual({
      a: true,
      b: 644,
      c: '1e3',
      d: '2024-01-02',
      base: { x: 1 },
      e: { x: 1, y: 2 },
    });
    expect(() => loadSaltYaml('a: 1\na: 2\n')).toThrow(/duplicated mapping key/);
    expect(dumpSaltYaml({ s: 'yes', m: '0644', num: 644 })).toBe("s: 'yes'\nm: '0644'\nnum: 644\n");
  });

  it("zod: the public API knownKeys reads a state's argument names through", () => {
    const o = z.object({ name: z.string(), mode: z.string().optional() });
    expect(knownKeys(o)).toEqual(new Set(['name', 'mode']));
    expect(knownKeys(o.transform((v) => v))).toEqual(new Set(['name', 'mode']));
    expect(knownKeys(o.superRefine(() => {}))).toEqual(new Set(['name', 'mode']));
    expect(knownKeys(o.strict())).toEqual(new Set(['name', 'mode']));
    // any key allowed: no list of known keys
    expect(knownKeys(o.loose())).toBeUndefined();
    expect(knownKeys(o.passthrough())).toBeUndefined();
    expect(knownKeys(o.catchall(z.string()))).toBeUndefined();
    expect(knownKeys(z.string())).toBeUndefined();
  });
});
