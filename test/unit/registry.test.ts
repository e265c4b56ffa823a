/** The registry finds every state function; file's functions load one by one, the same objects file.ts exports. */
import { describe, expect, it } from 'vitest';
import { knownModules, lookupState } from '../../engine/states/registry.js';
import fileModule from '../../engine/states/file.js';

describe('state registry', () => {
  it("loads each file function on its own, and they are exactly file.ts's functions", async () => {
    for (const [fun, def] of Object.entries(fileModule)) {
      const found = await lookupState('file', fun);
      expect(found, `file.${fun}`).toEqual({ def });
      expect((found as { def: unknown }).def).toBe(def);
    }
    const missing = await lookupState('file', 'nosuch');
    expect((missing as { error: string }).error).toBe(`'file.nosuch' is not a state function (file has: ${Object.keys(fileModule).sort().join(', ')})`);
  });

  it('knows every module and refuses unknown ones with the list', async () => {
    expect(knownModules()).toContain('file');
    const r = await lookupState('nosuch', 'x');
    expect((r as { error: string }).error).toMatch(/^unknown state module 'nosuch' \(known: alternatives, archive, /);
  });
});
