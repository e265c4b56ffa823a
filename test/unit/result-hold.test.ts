/**
 * agent/result-hold.ts: a run's results are held until the mark, sent together there if the run
 * still goes on and one by one after; a run that ends before the mark sends none (its return
 * carries them). Real timers, a short mark.
 */
import { describe, expect, it } from 'vitest';
import { holdResults } from '../../agent/result-hold.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('holdResults', () => {
  it('a run that ends before the mark sends nothing, not even once the mark has passed', async () => {
    const sent: number[] = [];
    const hold = holdResults<number>((r) => sent.push(r), 40);
    hold.add(0);
    hold.add(1);
    hold.end();
    await sleep(80);
    hold.add(2); // a stray after the end
    expect(sent).toEqual([]);
  });

  it('a run still going at the mark: the held results leave together then, later ones as they come', async () => {
    const sent: { r: number; at: number }[] = [];
    const t0 = performance.now();
    const hold = holdResults<number>((r) => sent.push({ r, at: performance.now() - t0 }), 40);
    hold.add(0);
    hold.add(1);
    expect(sent).toEqual([]);
    await sleep(80);
    expect(sent.map((s) => s.r)).toEqual([0, 1]);
    expect(sent[0]!.at).toBeGreaterThanOrEqual(35);
    expect(sent[1]!.at - sent[0]!.at).toBeLessThan(5); // in one turn
    hold.add(2);
    expect(sent.map((s) => s.r)).toEqual([0, 1, 2]); // at once, not held
    hold.end();
    hold.add(3);
    expect(sent.map((s) => s.r)).toEqual([0, 1, 2]);
  });
});
