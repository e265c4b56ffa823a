/** Our in-process dpkg/rpm version comparison must agree with the real tools on this machine. */
import { describe, expect, it } from 'vitest';
import { exec } from '../../engine/run/exec.js';
import { compareDeb, compareRpm, satisfies, validSpec } from '../../engine/providers/pkg/version.js';

const PAIRS: Array<[string, string]> = [
  ['1.0', '1.0'],
  ['1.0', '1.1'],
  ['1.10', '1.9'],
  ['1.0~rc1', '1.0'],
  ['1.0~rc1', '1.0~rc2'],
  ['1.0+b1', '1.0'],
  ['1.0a', '1.0'],
  ['1.0.a', '1.0.1'],
  ['2.10-3', '2.10-10'],
  ['1:0.9', '2.0'],
  ['0:1.0', '1.0'],
  ['1.002', '1.2'],
  ['5.02-1+b1', '5.02-1'],
  ['1.2.3-4ubuntu1', '1.2.3-4'],
  ['9.0p1', '9.0'],
  ['1.0-1.el9', '1.0-1.el8'],
  ['2.0-1', '10.0-1'],
  ['1.0^git1', '1.0'],
  ['1.0^git1', '1.0.1'],
  ['abc', 'abd'],
  ['1.0_1', '1.0.1'],
];

async function dpkgCmp(a: string, b: string): Promise<number> {
  for (const [op, v] of [['lt', -1], ['eq', 0]] as const) {
    const r = await exec(['dpkg', '--compare-versions', a, op, b]);
    if (r.code === 0) return v;
  }
  return 1;
}

describe('version comparison', () => {
  it('compareDeb agrees with dpkg --compare-versions', async () => {
    for (const [a, b] of PAIRS) {
      if (a.includes('^')) continue; // not a valid Debian version character
      const want = await dpkgCmp(a, b);
      expect([a, b, compareDeb(a, b)]).toEqual([a, b, want]);
      expect([b, a, compareDeb(b, a)]).toEqual([b, a, want === 0 ? 0 : -want]);
    }
  });

  it("compareRpm agrees with rpm's own rpm.vercmp", async () => {
    // one rpm process for all pairs (rpm's Lua print adds no newline: comma-separated)
    const lua = PAIRS.filter(([a, b]) => !a.includes(':') && !b.includes(':'))
      .map(([a, b]) => `print(rpm.vercmp(${JSON.stringify(a)}, ${JSON.stringify(b)}) .. ',')`)
      .join(' ');
    const r = await exec(['rpm', '--eval', `%{lua: ${lua}}`]);
    expect(r.code, r.stderr).toBe(0);
    const got = r.stdout.trim().replace(/,$/, '').split(',').map(Number);
    const ours = PAIRS.filter(([a, b]) => !a.includes(':') && !b.includes(':')).map(([a, b]) => compareRpm(a, b));
    expect(ours).toEqual(got);
    expect(compareRpm('1:0.9-1', '2.0-1')).toBe(1);
    // yum: a version without a release matches any release
    expect(compareRpm('1.0-3', '1.0')).toBe(0);
  });

  it("reads Salt's version specs", () => {
    expect(satisfies('2.10-3', '2.10-3', compareDeb)).toBe(true);
    expect(satisfies('1:2.10-3', '2.10-3', compareDeb)).toBe(true); // no epoch asked: any epoch
    expect(satisfies('1:2.10-3', '0:2.10-3', compareDeb)).toBe(false);
    expect(satisfies('2.10-3', '2.10*', compareDeb)).toBe(true);
    expect(satisfies('2.10-3', '2.1*', compareDeb)).toBe(true);
    expect(satisfies('2.10-3', '2.2*', compareDeb)).toBe(false);
    expect(satisfies('2.10-3', '>=2.9', compareDeb)).toBe(true);
    expect(satisfies('2.10-3', '<2.9', compareDeb)).toBe(false);
    expect(satisfies('2.10-3', '=2.10-3', compareDeb)).toBe(true);
    expect(satisfies('1.0-1', '1.0', compareRpm)).toBe(true);
    expect(validSpec('>=1.2')).toBe(true);
    expect(validSpec('>=<1')).toBe(false);
    expect(validSpec('*')).toBe(false);
  });
});
