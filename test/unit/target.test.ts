import { describe, expect, it } from 'vitest';
import { resolveTarget, targetNeedsPillar } from '../../master/target.js';
import { batchSize } from '../../master/jobs.js';
import type { AgentRow } from '../../master/store-api.js';
import type { TargetType } from '../../protocol/cli-messages.js';

const row = (id: string, grains: Record<string, unknown>, key_state: AgentRow['key_state'] = 'accepted'): AgentRow => ({
  id,
  fingerprint: 'f',
  key_state,
  grains,
  first_seen: '',
  last_seen: null,
  revision_applied: null,
  revision_attempted: null,
  attempt_status: null,
  attempt_jid: null,
  revision_assigned: null,
});
const agents = [
  row('web1', { roles: ['web'], os_family: 'RedHat', ipv4: ['10.0.0.1'] }),
  row('web2', { roles: ['web'], os_family: 'RedHat', ipv4: ['10.0.0.2'] }),
  row('db1', { roles: ['db'], os_family: 'Debian', ipv4: ['10.0.1.1'] }),
  row('new1', { roles: ['web'] }, 'pending'),
  row('bad1', { roles: ['web'] }, 'rejected'),
];
const pillars: Record<string, Record<string, unknown>> = { web1: { tier: 'front' }, web2: { tier: 'front' }, db1: { tier: 'back' } };
const nodegroups = { webs: 'G@roles:web', both: ['web1', 'db1'] };

async function ids(expr: string, kind: TargetType): Promise<string[]> {
  const asked: string[] = [];
  const r = await resolveTarget(expr, kind, agents, nodegroups, async (a) => {
    asked.push(a.id);
    return pillars[a.id] ?? {};
  });
  return r.map((a) => a.id);
}

describe('targeting', () => {
  it.each([
    ['*', 'glob', ['web1', 'web2', 'db1']],
    ['web*', 'glob', ['web1', 'web2']],
    ['web1,db1', 'list', ['web1', 'db1']],
    ['roles:web', 'grain', ['web1', 'web2']],
    ['os_family:Deb*', 'grain', ['db1']],
    ['roles:w.b', 'grain_pcre', ['web1', 'web2']],
    ['tier:back', 'pillar', ['db1']],
    ['web[12]', 'pcre', ['web1', 'web2']],
    ['10.0.0.0/24', 'ipcidr', ['web1', 'web2']],
    ['G@roles:web and not web2', 'compound', ['web1']],
    ['I@tier:front or db*', 'compound', ['web1', 'web2', 'db1']],
    ['webs', 'nodegroup', ['web1', 'web2']],
    ['both', 'nodegroup', ['web1', 'db1']],
  ] as [string, TargetType, string[]][])('%s (%s)', async (expr, kind, want) => {
    expect(await ids(expr, kind)).toEqual(want);
  });

  it('pending and rejected agents are never targeted', async () => {
    expect(await ids('new1,bad1,web1', 'list')).toEqual(['web1']);
  });

  it('no match is an error, never everyone', async () => {
    await expect(ids('nothing*', 'glob')).rejects.toThrow(/matched no accepted agent/);
    await expect(ids('new1', 'glob')).rejects.toThrow(/matched no accepted agent/);
    await expect(ids('nope', 'nodegroup')).rejects.toThrow(/no nodegroup 'nope'/);
    await expect(ids('broken', 'grain')).rejects.toThrow(/expected key:value/);
  });

  it('pillar is rendered only when the target needs it', () => {
    expect(targetNeedsPillar('web*', 'glob', {})).toBe(false);
    expect(targetNeedsPillar('G@roles:web', 'compound', {})).toBe(false);
    expect(targetNeedsPillar('G@roles:web and I@a:b', 'compound', {})).toBe(true);
    expect(targetNeedsPillar('g', 'nodegroup', { g: 'I@x:y' })).toBe(true);
    expect(targetNeedsPillar('x:y', 'pillar', {})).toBe(true);
  });
});

describe('batches', () => {
  it('N agents or N% of the targets at a time, at least one', () => {
    expect(batchSize(undefined, 7)).toBe(7);
    expect(batchSize('2', 7)).toBe(2);
    expect(batchSize('25%', 8)).toBe(2);
    expect(batchSize('10%', 3)).toBe(1);
    expect(batchSize(undefined, 0)).toBe(1);
  });
});

describe('empty patterns', () => {
  it.each([
    ['', true],
    ['|', true],
    ['web|', true],
    ['|web', true],
    ['a||b', true],
    ['(|a)', true],
    ['(a|)', true],
    ['()', true],
    ['(?:)', true],
    ['(?<n>)', true],
    ['web', false],
    ['web\\|', false],
    ['[|]x', false],
    ['[^|]+', false],
    ['[]|]', false],
    ['(?:a|b)c', false],
    ['(?<n>a)|b', false],
    ['.*', false],
  ])('regex %j has an empty alternative: %s', async (src, empty) => {
    const { hasEmptyAlternative } = await import('../../engine/compile/match.js');
    expect(hasEmptyAlternative(src)).toBe(empty);
  });
});
