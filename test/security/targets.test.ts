/**
 * Targets can never silently mean "everyone": an empty pattern anywhere in a target (a list item,
 * a glob, a regex or one of its alternatives, a grain or pillar value, a CIDR, a nodegroup, a
 * compound part) is refused by the master with an error naming it, and nothing runs. Checked
 * through the real CLI against a real master with two agents, plus top.sls (compiled by agents).
 * IPv4 and IPv6 subnets match through node:net's BlockList.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Fleet } from '../integration/fleet-harness.js';

const states = {
  'top.sls': "base:\n  '*':\n    - common\n",
  'common.sls': 'hello:\n  test.succeed_without_changes: []\n',
};
const emptyTop = "base:\n  'roles:':\n    - match: grain_pcre\n    - common\n";

interface RunJson {
  code: number;
  agents: Record<string, { status: string; body?: unknown }>;
}
const ids = (r: RunJson) => Object.keys(r.agents ?? {}).sort();

describe('security: empty patterns in targets', () => {
  let fleet: Fleet;
  beforeAll(async () => {
    buildOnce();
    fleet = new Fleet({
      states,
      pillar: {
        'top.sls': "base:\n  '*':\n    - common\n",
        'common.sls': 'tier: {{ "front" if grains.id == "s1" else "back" }}\n',
      },
      master: { nodegroups: { emptyre: 'E@', emptyitem: ['s1', ''], blank: ' ', nested: 'N@emptyre or s1' } },
    });
    await fleet.startMaster();
    fleet.startAgent('s1', { grains: { roles: ['web'], ipv4: ['10.9.0.1', '127.0.0.1'], ipv6: ['fd00:9::1', '::1'] } });
    fleet.startAgent('s2', { grains: { roles: ['db'], ipv4: ['10.9.1.1', '127.0.0.1'], ipv6: ['fd00:8::1', '::1'] } });
    await fleet.acceptAll(['s1', 's2']);
  });
  afterAll(async () => {
    await fleet?.stop();
  });

  const jobCount = async () => (await fleet.json<unknown[]>(['jobs'])).length;

  it.each([
    [['-C', 'E@']],
    [['-C', ' ']],
    [['-E', '|']],
    [['-E', 's1|']],
    [['-E', '(|x)']],
    [['-E', '(?:)']],
    [['-C', 's1 or E@']],
    [['-C', 's1 and not E@']],
    [['-C', '( E@s|| )']],
    [['-C', 'P@roles:']],
    [['-P', 'roles:']],
    [['-P', 'roles:(web|)']],
    [['-G', 'roles:']],
    [['-G', 'roles: ']],
    [['-G', ':web']],
    [['-C', 'G@roles:']],
    [['-I', 'tier:']],
    [['-J', 'tier:']],
    [['-C', 'I@tier:']],
    [['-C', 'J@tier:']],
    [['-L', 's1,,s2']],
    [['-L', 's1,']],
    [['-L', ',']],
    [['-C', 'L@']],
    [['-C', 'L@s1,']],
    [['-S', '10.9.0.0/']],
    [['-S', 'fd00::/']],
    [['-C', 'S@']],
    [['-C', 'S@10.9.0.0/ or s1']],
    [['-C', 'N@']],
    [['-N', 'emptyre']],
    [['-N', 'emptyitem']],
    [['-N', 'blank']],
    [['-N', 'nested']],
  ])('%j is an error and runs nothing', async ([flag, expr]) => {
    const before = await jobCount();
    const r = await fleet.cli(['run', flag!, expr!, 'echo RAN-EVERYWHERE']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/empty|expected key:value/);
    expect(r.stdout).not.toMatch(/RAN-EVERYWHERE/);
    const a = await fleet.cli(['apply', flag!, expr!]);
    expect(a.code).toBe(1);
    expect(a.stderr).toMatch(/empty|expected key:value/);
    expect(await jobCount()).toBe(before);
  });

  it('the error names the empty part', async () => {
    const r = await fleet.cli(['run', '-C', 'G@roles:web and E@', 'true']);
    expect(r.stderr).toMatch(/part 'E@': empty regular expression/);
    const l = await fleet.cli(['run', '-L', 's1,,s2', 'true']);
    expect(l.stderr).toMatch(/list "s1,,s2" has an empty item/);
  });

  it('a top.sls target with an empty pattern fails the compile on each agent; nothing converges', async () => {
    fleet.writeTree('states', { 'top.sls': emptyTop });
    fleet.commit('empty top target');
    const r = await fleet.json<RunJson>(['apply', '*']);
    expect(r.code).not.toBe(0);
    expect(ids(r)).toEqual(['s1', 's2']);
    for (const x of Object.values(r.agents)) expect(JSON.stringify(x)).toMatch(/top\.sls.*empty value pattern/);
    fleet.writeTree('states', { 'top.sls': states['top.sls'] });
    fleet.commit('good top');
  });

  it.each([
    ['10.9.0.0/24', ['s1']],
    ['10.9.0.0/16', ['s1', 's2']],
    ['10.9.1.1', ['s2']],
    ['fd00:9::/64', ['s1']],
    ['fd00::/16', ['s1', 's2']],
    ['fd00:8::1', ['s2']],
  ])('-S %s (IPv4 and IPv6 through BlockList) -> %j', async (cidr, want) => {
    const r = await fleet.json<RunJson>(['run', '-S', cidr, 'true']);
    expect(r.code).toBe(0);
    expect(ids(r)).toEqual(want);
  });

  it('compound S@ with IPv6, and bad CIDRs are errors', async () => {
    const r = await fleet.json<RunJson>(['run', '-C', 'S@fd00::/16 and G@roles:db', 'true']);
    expect(ids(r)).toEqual(['s2']);
    for (const bad of ['10.9.0.0/33', 'fd00::/129', '10.9.0/24', 'nonsense', '10.9.0.0/x']) {
      const b = await fleet.cli(['run', '-S', bad, 'true']);
      expect(b.code).toBe(1);
      expect(b.stderr).toMatch(/bad CIDR/);
    }
  });
});
