// `--out yaml` prints what Salt's reader reads back as the same data: strings that YAML 1.1
// takes for booleans, numbers or null ('yes', 'on', '0644', '1:30', '~') come out quoted.
import { describe, expect, it } from 'vitest';
import { formatReturns } from '../../cli/nested.js';
import { formatReturnsAs } from '../../cli/highstate.js';
import { loadSaltYaml } from '../../core/salt-yaml.js';

const tricky = { a1: { answer: 'yes', switch: 'on', mode: '0644', time: '1:30', nothing: '~', date: '2024-01-02', real: true, n: 644, none: null } };

describe('--out yaml reads back under Salt YAML rules', () => {
  it('tsalt grains/call (nested.ts)', () => {
    expect(loadSaltYaml(formatReturns(tricky, 'yaml'))).toEqual(tricky);
  });
  it('tsalt apply (highstate.ts)', () => {
    expect(loadSaltYaml(formatReturnsAs(tricky, 'yaml'))).toEqual(tricky);
  });
  it('the same list printed twice is written out, not as a YAML alias', () => {
    const roles = ['db'];
    expect(formatReturns({ b1: roles, b2: roles }, 'yaml')).toBe('b1:\n  - db\nb2:\n  - db\n');
  });
});
