/**
 * What a tree, a grain or a name can reach on an agent: salt:// sources and template includes
 * stay inside the state tree (no `..`, no absolute paths, no symlinks out of it, no pillar
 * files), shell metacharacters in grains and state names are data, never commands, and pillar
 * secrets stay out of the master's and agent's logs and the master's SQLite files.
 * Real master and agent processes; the agent manages files under its --root.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Fleet } from '../integration/fleet-harness.js';

const SECRET = 'S3CR3T-7f1c9a2e';
const marker = path.join(os.tmpdir(), `tsalt-pwned-${process.pid}`);

const states = {
  'top.sls': "base:\n  '*':\n    - common\n",
  'common.sls': 'hello:\n  test.succeed_without_changes: []\n',
  'inside.txt': 'inside the tree\n',
  'traverse.sls': [
    ['up', 'salt://../master.yaml'],
    ['updeep', 'salt://sub/../../pillar/common.sls'],
    ['abs', 'salt:///etc/passwd'],
    ['link', 'salt://leak.txt'],
    ['linkdir', 'salt://leakdir/passwd'],
    ['pct', 'salt://%2e%2e/master.yaml'],
    ['env', 'salt://../master.yaml?saltenv=base'],
  ]
    .map(([id, src]) => `${id}:\n  file.managed:\n    - name: /out/${id}.txt\n    - source: ${src}\n`)
    .join(''),
  'include-up.sls': "{% include '../master.yaml' %}\n",
  'import-up.sls': "{% import_yaml '../pillar/common.sls' as p %}\nx:\n  test.nop:\n    - v: {{ p }}\n",
  'meta.sls':
    'grain_into_file:\n  file.managed:\n    - name: /out/meta.txt\n    - makedirs: True\n    - contents: "{{ grains.evil }}"\n' +
    `semicolon_name:\n  file.managed:\n    - name: "/out/a;touch ${marker}"\n    - makedirs: True\n    - contents: x\n` +
    `dollar_name:\n  file.managed:\n    - name: "/out/$(touch ${marker})"\n    - makedirs: True\n    - contents: x\n`,
  // program arguments: refused at compile time or passed as one argv element, never to a shell
  'meta-pkg.sls': `pkg_meta:\n  pkg.installed:\n    - name: "zz-none;touch ${marker}"\n`,
  'meta-svc.sls': `svc_meta:\n  service.running:\n    - name: "zz-none$(touch ${marker})"\n`,
  'meta-user.sls': `user_meta:\n  user.present:\n    - name: "zz\`touch ${marker}\`"\n`,
  'meta-group.sls': `group_meta:\n  group.present:\n    - name: "zz|touch ${marker}"\n`,
  'secret.sls':
    'secret_file:\n  file.managed:\n    - name: /out/secret.conf\n    - makedirs: True\n    - contents: "password={{ pillar.secret }}"\n    - show_changes: False\n',
};

interface ApplyJson {
  code: number;
  jid: string;
  agents: Record<string, { status: string; body?: { kind: string; error?: string; report?: { results: { id: string; result: boolean | null; comment: string }[] } } }>;
}

describe('security: what the tree, grains and names can reach', () => {
  let fleet: Fleet;
  let root: string;
  beforeAll(async () => {
    buildOnce();
    fleet = new Fleet({
      states,
      git: false,
      pillar: { 'top.sls': "base:\n  '*':\n    - common\n", 'common.sls': `secret: ${SECRET}\n` },
    });
    // links out of the tree: a file and a directory
    fs.symlinkSync('/etc/shadow', path.join(fleet.dir, 'states/leak.txt'));
    fs.symlinkSync('/etc', path.join(fleet.dir, 'states/leakdir'));
    fleet.commit('tree with links out of it');
    await fleet.startMaster();
    fleet.startAgent('t1', { grains: { evil: `$(touch ${marker}); touch ${marker} \`touch ${marker}\`` } });
    await fleet.acceptAll(['t1']);
    root = path.join(fleet.dir, 'agents/t1/root');
  });
  afterAll(async () => {
    fs.rmSync(marker, { force: true });
    await fleet?.stop();
  });

  it('salt:// sources cannot leave the state tree (.., absolute, symlinks, encoded)', async () => {
    const r = await fleet.json<ApplyJson>(['apply', 't1', 'traverse']);
    const results = r.agents.t1!.body!.report!.results;
    expect(results).toHaveLength(7);
    for (const x of results) expect([x.id, x.result]).toEqual([x.id, false]);
    const out = path.join(root, 'out');
    expect(fs.existsSync(out) ? fs.readdirSync(out) : []).toEqual([]);
    const job = JSON.stringify(await fleet.json(['jobs', r.jid]));
    expect(job).not.toMatch(/root:|interface|pki_dir|S3CR3T/);
  });

  it('template includes and imports cannot leave the state tree; SLS names cannot either', async () => {
    for (const sls of ['include-up', 'import-up', '../pillar/common', '..%2fpillar%2fcommon']) {
      const r = await fleet.json<ApplyJson>(['apply', 't1', sls]);
      expect(r.code).not.toBe(0);
      const text = JSON.stringify(r);
      expect(text).not.toMatch(/S3CR3T|pki_dir|pillar_tree/);
    }
  });

  it('shell metacharacters in grains and names are data, never run', async () => {
    const real = await fleet.json<ApplyJson>(['apply', 't1', 'meta']);
    expect(real.agents.t1!.body!.kind).toBe('apply');
    for (const sls of ['meta-pkg', 'meta-svc', 'meta-user', 'meta-group']) {
      for (const test of ['test=True', 'test=False']) {
        const r = await fleet.json<ApplyJson>(['apply', 't1', sls, test]);
        expect(r.agents.t1!.status).toMatch(/done|failed/);
      }
    }
    expect(fs.existsSync(marker)).toBe(false);
    expect(fs.readFileSync(path.join(root, 'out/meta.txt'), 'utf8')).toContain(`$(touch ${marker})`);
    expect(fs.existsSync(path.join(root, `out/a;touch ${marker}`))).toBe(true);
  });

  it('a pillar secret is delivered and used, yet never logged (debug level) nor stored in the master database', async () => {
    const r = await fleet.json<ApplyJson>(['apply', 't1', 'secret']);
    expect(r.code).toBe(0);
    expect(fs.readFileSync(path.join(root, 'out/secret.conf'), 'utf8')).toBe(`password=${SECRET}\n`);
    expect(JSON.stringify(r)).not.toContain(SECRET);
    const human = await fleet.cli(['jobs', r.jid]);
    expect(human.stdout + human.stderr).not.toContain(SECRET);
    expect(fleet.master!.out).not.toContain(SECRET);
    expect(fleet.agents[0]!.out).not.toContain(SECRET);
    expect(await fleet.storeContains(SECRET)).toBe(false);
    expect(await fleet.storeContains('secret.conf')).toBe(true); // the store is searched: the job's results are there
    // the agent's cache holds no pillar either
    const cache = path.join(fleet.dir, 'agents/t1/cache');
    const files = fs.existsSync(cache) ? (fs.readdirSync(cache, { recursive: true }) as string[]) : [];
    for (const f of files) {
      const p = path.join(cache, f);
      if (fs.statSync(p).isFile()) expect(fs.readFileSync(p).includes(SECRET)).toBe(false);
    }
  });
});
