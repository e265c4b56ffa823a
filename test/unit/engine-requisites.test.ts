import { describe, expect, it } from 'vitest';
import { applyTree, byId, compileTree } from '../helpers/tree.js';
import { CompileError } from '../../engine/compile/errors.js';

const ok = 'test.succeed_without_changes';
const changed = 'test.succeed_with_changes';
const fail = 'test.fail_without_changes';

async function run(sls: string, o: { test?: boolean } = {}) {
  const r = await applyTree({ 'a.sls': sls }, { sls: ['a'], ...o });
  return { report: r, by: byId(r.results), order: r.results.map((x) => x.id) };
}

describe('requisites at run time (Salt semantics)', () => {
  it('require: runs after its target; a failed target fails the dependent without running it', async () => {
    const { by, order } = await run(`
dep:
  ${ok}:
    - require:
      - base
base:
  ${ok}: []
broken:
  ${fail}: []
needs_broken:
  ${changed}:
    - require:
      - test: broken
`);
    expect(order).toEqual(['base', 'dep', 'broken', 'needs_broken']);
    expect(by.needs_broken).toMatchObject({ result: false, changes: {}, comment: 'One or more requisite failed: a.broken' });
  });

  it('require_in and watch_in add the requisite to the target', async () => {
    const { order, by } = await run(`
late:
  ${ok}: []
early:
  ${changed}:
    - require_in:
      - late
    - watch_in:
      - test: watcher
watcher:
  ${ok}: []
`);
    expect(order.indexOf('early')).toBeLessThan(order.indexOf('late'));
    expect(by.watcher).toMatchObject({ result: true, comment: 'Watch statement fired.', changes: { watch: true } });
  });

  it('onchanges: skips when nothing changed, runs when a target changed (any of them)', async () => {
    const { by } = await run(`
quiet:
  ${ok}: []
noisy:
  ${changed}: []
skip_me:
  ${changed}:
    - onchanges:
      - quiet
run_me:
  ${changed}:
    - onchanges:
      - quiet
      - noisy
`);
    expect(by.skip_me).toMatchObject({ result: true, changes: {}, comment: 'State was not run because none of the onchanges reqs changed' });
    expect(Object.keys(by.run_me!.changes)).toEqual(['testing']);
  });

  it('onfail: runs only when a target failed; onfail_all needs all', async () => {
    const { by, report } = await run(`
bad:
  ${fail}: []
good:
  ${ok}: []
rescue:
  ${changed}:
    - onfail:
      - bad
not_needed:
  ${changed}:
    - onfail:
      - good
all_needed:
  ${changed}:
    - onfail_all:
      - bad
      - good
`);
    expect(by.rescue!.result).toBe(true);
    expect(Object.keys(by.rescue!.changes)).toEqual(['testing']);
    expect(by.not_needed).toMatchObject({ result: true, changes: {}, comment: 'State was not run because onfail req did not change' });
    expect(by.all_needed!.changes).toEqual({});
    expect(report.counts).toMatchObject({ total: 5, failed: 1 });
  });

  it('watch: mod_watch fires only when the watched state changed and the watcher itself did not', async () => {
    const { by } = await run(`
conf:
  ${changed}: []
same:
  ${ok}: []
svc:
  ${ok}:
    - watch:
      - conf
svc2:
  ${ok}:
    - watch:
      - same
`);
    expect(by.svc).toMatchObject({ comment: 'Watch statement fired.', changes: { watch: true } });
    expect(by.svc2).toMatchObject({ comment: 'Success!', changes: {} });
  });

  it('prereq: runs before its target only when the target is about to change', async () => {
    const { order, by } = await run(`
target_changes:
  ${changed}: []
target_quiet:
  ${ok}: []
before_change:
  ${changed}:
    - prereq:
      - target_changes
before_quiet:
  ${changed}:
    - prereq:
      - target_quiet
`);
    expect(order.indexOf('before_change')).toBeLessThan(order.indexOf('target_changes'));
    expect(Object.keys(by.before_change!.changes)).toEqual(['testing']);
    expect(by.before_quiet).toMatchObject({ result: true, changes: {}, comment: 'No changes detected' });
  });

  it('prereq failing blocks its target', async () => {
    const { by } = await run(`
target:
  ${changed}: []
guard:
  ${fail}:
    - prereq:
      - target
`);
    expect(by.guard!.result).toBe(false);
    expect(by.target).toMatchObject({ result: false, comment: 'One or more requisite failed: a.guard' });
  });

  it('listen: mod_watch runs at the end of the run', async () => {
    const { report } = await run(`
svc:
  ${ok}:
    - listen:
      - conf
conf:
  ${changed}: []
other:
  ${ok}: []
`);
    const ids = report.results.map((r) => r.id);
    expect(ids).toEqual(['svc', 'conf', 'other', 'listener_svc']);
    expect(report.results[3]).toMatchObject({ fun: 'test.mod_watch', comment: 'Watch statement fired.' });
  });

  it('order: first/number/last, and failhard stops the run', async () => {
    const { order } = await run(`
c:
  ${ok}:
    - order: last
a:
  ${ok}: []
b:
  ${ok}:
    - order: 1
z:
  ${ok}:
    - order: first
`);
    expect(order).toEqual(['z', 'b', 'a', 'c']);
    const hard = await run(`
one:
  ${fail}:
    - failhard: True
two:
  ${ok}: []
`);
    expect(hard.order).toEqual(['one']);
  });

  it('a requisite on a state outside the run fails that state with Salt\'s comment; the others run', async () => {
    // web.conf requires a state of web.pkg, which it does not include: running web.conf alone
    const files = {
      'web/pkg.sls': `nginx:\n  ${ok}: []\n`,
      'web/conf.sls': `conf:\n  ${ok}:\n    - require:\n      - test: nginx\n      - sls: web.pkg\n    - watch:\n      - other\nafter_conf:\n  ${ok}:\n    - require:\n      - conf\nindependent:\n  ${ok}: []\n`,
    };
    const ran: string[] = [];
    const report = await applyTree(files, { sls: ['web.conf'], onResult: (r) => ran.push(r.id) });
    const res = Object.fromEntries(report.results.map((r) => [r.id, r]));
    expect(res.conf!.result).toBe(false);
    expect(res.conf!.comment).toBe(
      'The following requisites were not found:\n' +
        '                   require:\n' +
        '                       test: nginx\n' +
        '                       sls: web.pkg\n' +
        '                   watch:\n' +
        '                       id: other\n',
    );
    expect(res.after_conf!.result).toBe(false);
    expect(res.after_conf!.comment).toMatch(/One or more requisite failed: web.conf.conf/);
    expect(res.independent!.result).toBe(true);
    expect(ran.sort()).toEqual(['after_conf', 'conf', 'independent']);
    // with web.pkg in the run, those requisites are found; only the watch on 'other' is missing
    const whole = await applyTree(files, { sls: ['web.pkg', 'web.conf'] });
    const w = Object.fromEntries(whole.results.map((r) => [r.id, r]));
    expect(w.nginx!.result).toBe(true);
    expect(w.conf!.comment).toBe('The following requisites were not found:\n                   watch:\n                       id: other\n');
  });

  it('cycles are compile errors; nothing runs', async () => {
    const ran: string[] = [];
    const e = await compileTree({ 'a.sls': `x:\n  ${ok}:\n    - require:\n      - y\ny:\n  ${ok}:\n    - watch:\n      - z\nz:\n  ${ok}:\n    - onchanges:\n      - x\n` }, { sls: ['a'] }).catch((err) => err);
    expect(e).toBeInstanceOf(CompileError);
    expect(e.message).toMatch(/requisite cycle: x \(test.succeed_without_changes\) -> y .* -> z .* -> x/);
    expect(ran).toEqual([]);
  });

  it('requisites match by name as well as id, and sls requisites cover a whole file', async () => {
    const r = await applyTree(
      {
        'a.sls': `include:\n  - b\nuse_name:\n  ${ok}:\n    - require:\n      - test: the-name\n    - require:\n      - sls: b\n`,
        'b.sls': `some_id:\n  ${fail}:\n    - name: the-name\n`,
      },
      { sls: ['a'] },
    );
    expect(byId(r.results).use_name).toMatchObject({ result: false, comment: 'One or more requisite failed: b.some_id' });
  });

  it('test mode: result None for pending changes, requisites still evaluated', async () => {
    const { by, report } = await run(`
conf:
  ${changed}: []
svc:
  ${ok}:
    - watch:
      - conf
after:
  ${changed}:
    - onchanges:
      - conf
`, { test: true });
    expect(by.conf!.result).toBeNull();
    expect(by.after!.result).toBeNull();
    expect(by.svc).toMatchObject({ result: null, comment: 'Watch statement fired.', changes: {} });
    expect(report.counts.failed).toBe(0);
  });

  it('unless / onlyif / creates apply to any state, with Salt comments', async () => {
    const { by } = await run(`
skipped_unless:
  ${changed}:
    - unless: 'true'
runs_unless:
  ${changed}:
    - unless:
      - 'true'
      - 'false'
skipped_onlyif:
  ${changed}:
    - onlyif: 'false'
skipped_creates:
  ${changed}:
    - creates: /
`);
    expect(by.skipped_unless).toMatchObject({ result: true, changes: {}, comment: 'unless condition is true' });
    expect(Object.keys(by.runs_unless!.changes)).toEqual(['testing']);
    expect(by.skipped_onlyif).toMatchObject({ result: true, changes: {}, comment: 'onlyif condition is false' });
    expect(by.skipped_creates).toMatchObject({ result: true, changes: {} });
  });

  it('use copies the arguments a state does not set itself', async () => {
    const states = await compileTree({
      'a.sls': `base_conf:
  test.configurable_test_state:
    - changes: False
    - comment: from base
mine:
  test.configurable_test_state:
    - comment: my own
    - use:
      - base_conf
`,
    }, { sls: ['a'] });
    const mine = states.find((s) => s.id === 'mine')!;
    expect(mine.args).toEqual({ name: 'mine', comment: 'my own', changes: false });
  });
});
