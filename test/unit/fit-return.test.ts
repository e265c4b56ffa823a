/** Returns over max_return_bytes are shortened (head and tail kept), never dropped silently. */
import { describe, expect, it } from 'vitest';
import { fitReturn, fitStateResult } from '../../agent/connection/fit.js';
import type { JobReturn } from '../../protocol/messages.js';
import type { StateResult } from '../../protocol/results.js';

const JID = '20261125120000000000';
const size = (v: unknown) => Buffer.byteLength(JSON.stringify(v));

function result(id: string, stdout: string): StateResult {
  return { id, sls: 's', fun: 'cmd.run', name: id, result: true, changes: { retcode: 0, stdout, stderr: '' }, comment: `Command "${id}" run`, start: '2026-11-25T12:00:00Z', duration_ms: 1, run_num: 0 };
}

describe('fitting returns under max_return_bytes', () => {
  it('leaves a small return alone (the same object)', () => {
    const ret: JobReturn = { type: 'job_return', jid: JID, body: { kind: 'run', retcode: 0, stdout: 'ok', stderr: '' } };
    expect(fitReturn(ret, 4096)).toBe(ret);
  });

  it('cuts a command output in the middle, keeping head and tail', () => {
    const out = 'HEAD' + 'x'.repeat(3_000_000) + 'TAIL';
    const ret: JobReturn = { type: 'job_return', jid: JID, body: { kind: 'run', retcode: 1, stdout: out, stderr: 'boom' } };
    const fitted = fitReturn(ret, 1024 * 1024);
    expect(size(fitted)).toBeLessThanOrEqual(1024 * 1024);
    const body = fitted.body as Extract<JobReturn['body'], { kind: 'run' }>;
    expect(body.stdout.startsWith('HEAD')).toBe(true);
    expect(body.stdout.endsWith('TAIL')).toBe(true);
    expect(body.stdout).toMatch(/characters cut by tsalt: the return was over max_return_bytes/);
    expect([body.retcode, body.stderr]).toEqual([1, 'boom']);
  });

  it('shortens only the states that are long, and says so in their warnings', () => {
    const results = [result('small', 'fine'), result('big', 'y'.repeat(2_000_000))];
    const ret: JobReturn = {
      type: 'job_return',
      jid: JID,
      revision: 'abc',
      body: { kind: 'apply', report: { id: 'a1', test: false, results, counts: { total: 2, succeeded: 2, changed: 2, failed: 0 }, duration_ms: 5 } },
    };
    const fitted = fitReturn(ret, 256 * 1024);
    expect(size(fitted)).toBeLessThanOrEqual(256 * 1024);
    const rs = (fitted.body as Extract<JobReturn['body'], { kind: 'apply' }>).report.results;
    expect(rs[0]).toEqual(results[0]);
    expect(rs[1]!.warnings?.[0]).toMatch(/output shortened by \d+ characters to fit max_return_bytes \(262144\)/);
    expect(rs[1]!.result).toBe(true);
  });

  it('a report too big even shortened becomes an error that says why', () => {
    const results = Array.from({ length: 5000 }, (_, i) => result(`s${i}`, 'z'.repeat(1000)));
    const ret: JobReturn = {
      type: 'job_return',
      jid: JID,
      body: { kind: 'apply', report: { id: 'a1', test: false, results, counts: { total: 5000, succeeded: 5000, changed: 5000, failed: 0 }, duration_ms: 5 } },
    };
    const fitted = fitReturn(ret, 64 * 1024);
    expect(fitted.body).toMatchObject({ kind: 'error' });
    expect((fitted.body as { error: string }).error).toMatch(/over max_return_bytes \(65536\) even shortened/);
  });

  it('fits a streamed state result too', () => {
    const r = result('big', 'q'.repeat(500_000));
    const fitted = fitStateResult(r, 64 * 1024);
    expect(size(fitted)).toBeLessThanOrEqual(64 * 1024);
    expect(fitted.warnings?.[0]).toMatch(/output shortened/);
  });
});
