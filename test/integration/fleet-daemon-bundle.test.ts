/**
 * `tsalt agent` runs its daemon from a bundle of its own (dist/bundle/agent-daemon.cjs, built by
 * scripts/bundle.mjs, picked by bin/tsalt.js) that leaves the engine out: an idle agent should
 * not hold code it never runs (issue 14, agent idle RSS). Its job worker makes the agent's key
 * at the first start (the x509 library stays out of the daemon) and runs from a bundle of its
 * own (dist/bundle/job-worker.cjs: the engine and the worker's loop). An agent that runs its jobs
 * itself (`multiprocessing: False`) runs from the CLI bundle.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Fleet, REPO, waitFor, type Proc } from './fleet-harness.js';

const states = { 'hello.sls': "hello:\n  cmd.run:\n    - name: 'true'\n" };

describe('fleet: the agent daemon bundle', () => {
  let fleet: Fleet;
  let w1: Proc;
  let w2: Proc;
  beforeAll(async () => {
    buildOnce();
    fleet = new Fleet({ states });
    await fleet.startMaster();
    // its job worker lets go a second after a job: the worker then exits, writing its code cache
    for (const f of ['job-worker.cjs', 'tsalt.cjs']) fs.rmSync(path.join(REPO, `dist/bundle/${f}.job-worker.v8cache`), { force: true });
    w1 = fleet.startAgent('w1', { cfg: { job_worker_idle_s: 1 } });
    w2 = fleet.startAgent('w2', { cfg: { multiprocessing: false } });
    await fleet.acceptAll(['w1', 'w2']);
  });
  afterAll(async () => {
    await fleet?.stop();
  });

  it('holds no engine: no states, Jinja renderer, compiler, nunjucks, systeminformation or x509 library', () => {
    const map = JSON.parse(fs.readFileSync(path.join(REPO, 'dist/bundle/agent-daemon.cjs.map'), 'utf8')) as { sources: string[] };
    const sources = map.sources.map((s) => path.relative(REPO, path.resolve(path.join(REPO, 'dist/bundle'), s)));
    expect(sources).toContain('agent/daemon.ts');
    expect(sources).toContain('agent/connection/client.ts');
    const heavy = sources.filter((s) => /^engine\/(engine\.ts|states\/|compile\/|providers\/|render\/(jinja|filters|salt-exec))|node_modules\/(nunjucks|systeminformation|@peculiar)\//.test(s));
    expect(heavy).toEqual([]);
    // nor the CLI socket's schemas (built at load, never used by an agent)
    expect(sources).not.toContain('protocol/cli-messages.ts');
    expect(sources).toContain('cli/zod-jitless.ts');
    // nor zod's classic API: its schemas carry their methods as closures per instance, what an
    // idle agent holds for its life (the daemon's schemas are zod/mini ones)
    expect(sources.filter((s) => /node_modules\/zod\/(v4\/)?classic\//.test(s))).toEqual([]);
  });

  it("says what is wrong in a config in English, as the CLI does (zod/mini loads no messages of its own)", () => {
    const bad = path.join(fleet.dir, 'bad-agent.yaml');
    fs.writeFileSync(bad, 'master_port: 70000\nmaster: []\n');
    const r = spawnSync(process.execPath, [path.join(REPO, 'bin/tsalt.js'), 'agent', '--config', bad], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${bad}: 'master_port': Too big: expected number to be <=65535`);
    expect(r.stderr).toContain(`${bad}: 'master': Too small: expected array to have >=1 items`);
  });

  it('runs the daemon from it; its job worker makes the key and runs the job from the job worker bundle', async () => {
    await w1.waitOutput(/running from \S*dist\/bundle\/agent-daemon\.cjs/);
    await w1.waitOutput(/created the agent key in \S+ \(by the job worker\)/);
    const r = await fleet.cli(['apply', 'w1', 'hello', '--json'], 120_000);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { agents: Record<string, { status: string; body?: { report?: { counts: { failed: number; succeeded?: number } } } }> };
    expect(out.agents.w1?.status).toBe('done');
    expect(out.agents.w1?.body?.report?.counts.failed).toBe(0);
    // the worker ran from dist/bundle/job-worker.cjs: its exit wrote that bundle's cache, and no
    // worker ran from the CLI bundle (whose cache of this kind stays absent)
    await waitFor('the job worker gone, its code cache written', () => fs.existsSync(path.join(REPO, 'dist/bundle/job-worker.cjs.job-worker.v8cache')) || undefined);
    expect(fs.existsSync(path.join(REPO, 'dist/bundle/tsalt.cjs.job-worker.v8cache'))).toBe(false);
  });

  it('the job worker bundle holds the engine and the worker, not the daemon, the master or the extras', () => {
    const map = JSON.parse(fs.readFileSync(path.join(REPO, 'dist/bundle/job-worker.cjs.map'), 'utf8')) as { sources: string[] };
    const sources = map.sources.map((s) => path.relative(REPO, path.resolve(path.join(REPO, 'dist/bundle'), s)));
    for (const s of ['cli/job-worker-main.ts', 'agent/worker.ts', 'engine/engine.ts']) expect(sources).toContain(s);
    const foreign = sources.filter((s) => /^master\/|^agent\/(daemon|connection\/)|node_modules\/(pg|ws|prom-client|node-cron|@peculiar|systeminformation)\//.test(s));
    expect(foreign).toEqual([]);
  });

  it('an agent that runs its jobs itself runs from the CLI bundle', async () => {
    await w2.waitOutput(/running from \S*dist\/bundle\/tsalt\.cjs/);
    expect(w2.out).not.toMatch(/by the job worker/);
    const r = await fleet.cli(['apply', 'w2', 'hello', '--json'], 120_000);
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as { agents: Record<string, { status: string }> }).agents.w2?.status).toBe('done');
  });
});
