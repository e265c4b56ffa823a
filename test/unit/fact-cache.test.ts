/** engine/run/facts.ts: a run's memoised queries, and what an invalidation drops. */
import { describe, expect, it } from 'vitest';
import { FactCache } from '../../engine/run/facts.js';

describe('FactCache', () => {
  it('loads a key once; invalidatePrefix drops the keys under the prefix and no other', async () => {
    const f = new FactCache();
    const loads: string[] = [];
    const get = (k: string) => f.get(k, async () => (loads.push(k), k));
    for (const k of ['svc:a', 'svc:a\u0000sig:x', 'svc:a\u0000sig:y', 'svc:ab\u0000sig:x', 'svc:a']) await get(k);
    expect(loads).toEqual(['svc:a', 'svc:a\u0000sig:x', 'svc:a\u0000sig:y', 'svc:ab\u0000sig:x']);
    f.invalidatePrefix('svc:a\u0000');
    for (const k of ['svc:a', 'svc:a\u0000sig:x', 'svc:a\u0000sig:y', 'svc:ab\u0000sig:x']) await get(k);
    // the two sig variants of svc:a loaded again; svc:a itself and svc:ab's kept
    expect(loads.slice(4)).toEqual(['svc:a\u0000sig:x', 'svc:a\u0000sig:y']);
  });
});
