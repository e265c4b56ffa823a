/** `test=True`, `pillar='{...}'` and `a,b` on the command line, read as Salt reads them. */
import { describe, expect, it } from 'vitest';
import { parseSaltArgs } from '../../cli/salt-args.js';

describe("Salt's key=value command-line arguments", () => {
  it('splits SLS names and reads test= and pillar= as YAML', () => {
    expect(parseSaltArgs(['web,db', 'app', 'test=True', 'pillar={"app": {"version": "1.2"}, "debug": yes}'])).toEqual({
      sls: ['web', 'db', 'app'],
      test: true,
      pillar: { app: { version: '1.2' }, debug: true },
    });
    expect(parseSaltArgs(['test=false'])).toEqual({ sls: [], test: false });
    expect(parseSaltArgs(["pillar={app: {port: 8080}}"]).pillar).toEqual({ app: { port: 8080 } });
  });

  it('refuses a pillar that is not a mapping or does not parse', () => {
    expect(() => parseSaltArgs(['pillar=[1, 2]'])).toThrow(/must be a mapping/);
    expect(() => parseSaltArgs(['pillar={"a": '])).toThrow(/not valid YAML\/JSON/);
  });
});

describe('pillar overrides cannot reach prototypes', () => {
  it('a __proto__ key in pillar= is dropped by the merge, Object.prototype stays clean', async () => {
    const { deepMerge } = await import('../../engine/render/salt-functions.js');
    const { pillar } = parseSaltArgs(['pillar={"__proto__": {"polluted": 1}, "constructor": {"prototype": {"x": 1}}, "ok": 1}']);
    const merged = deepMerge({ a: 1 }, pillar!);
    expect(merged).toEqual({ a: 1, ok: 1 });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });
});
