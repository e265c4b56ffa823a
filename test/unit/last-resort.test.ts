/**
 * The daemons' last-resort net (core/last-resort.ts), the handler itself: every rejection the
 * fault tests found is handled where it happens now (test/faults/daemon-escapes.test.ts), so no
 * real path is left to drive it through; here it is given a real logger and the master's real
 * metrics, and what it logs and counts is read back.
 */
import { describe, expect, it } from 'vitest';
import { makeLogger } from '../../core/log.js';
import { installUnhandledRejectionNet, unhandledRejectionHandler } from '../../core/last-resort.js';
import { MasterMetrics, type MetricsSource } from '../../master/metrics.js';
import { samples } from '../helpers/prometheus.js';

const src: MetricsSource = { agents: () => [], revision: async () => undefined };

describe('last-resort net: an unhandled rejection', () => {
  it('is logged at error level with its stack, on one line, and counted in tsalt_unhandled_rejections_total', async () => {
    const lines: string[] = [];
    const metrics = new MasterMetrics();
    const before = samples(await metrics.render(src));
    expect(before.get('tsalt_unhandled_rejections_total')).toBe(0);
    const h = unhandledRejectionHandler(makeLogger('error', 'master', (l) => void lines.push(l)), () => metrics.unhandledRejection());
    function deepInTheStore(): Error {
      return new Error('SQLITE_FULL: database or disk is full');
    }
    h(deepInTheStore());
    h('a string, not an Error');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^\S+ error master: unhandled promise rejection .*the process goes on: Error: SQLITE_FULL: database or disk is full +at deepInTheStore /);
    expect(lines[0]!.trimEnd()).not.toContain('\n');
    expect(lines[1]).toMatch(/error master: unhandled promise rejection .*'a string, not an Error'/);
    expect(samples(await metrics.render(src)).get('tsalt_unhandled_rejections_total')).toBe(2);
  });

  it('is still logged when counting throws, and the handler never throws', () => {
    const lines: string[] = [];
    const h = unhandledRejectionHandler(makeLogger('error', 'agent a1', (l) => void lines.push(l)), () => {
      throw new Error('counter broken');
    });
    expect(() => h(new Error('boom'))).not.toThrow();
    expect(lines.join('')).toMatch(/agent a1: unhandled promise rejection .*Error: boom/);
    const deaf = unhandledRejectionHandler({ ...makeLogger('error', 'x'), error: () => { throw new Error('EPIPE'); } });
    expect(() => deaf(new Error('boom'))).not.toThrow();
  });

  it('is installed as a process listener, and removed by what install returns', () => {
    const n = process.listenerCount('unhandledRejection');
    const off = installUnhandledRejectionNet(makeLogger('error', 'x', () => {}));
    expect(process.listenerCount('unhandledRejection')).toBe(n + 1);
    off();
    expect(process.listenerCount('unhandledRejection')).toBe(n);
  });
});
