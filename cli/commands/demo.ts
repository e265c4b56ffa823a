/**
 * `tsalt demo [--dir DIR] [--exit] [--log-level L]`: a master on an embedded default (SQLite
 * file, keys and socket under a temp dir), one agent on this machine that the demo accepts,
 * the example tree (examples/states, committed into a git repo so the job pins a revision)
 * applied under a scratch root; then the master stays up for `tsalt jobs` until Ctrl-C.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCommand } from '../args.js';
import { dumpSaltYaml } from '../../core/salt-yaml.js';
import { execOk } from '../../engine/run/exec.js';
import { makeLogger, LogLevelSchema } from '../../core/log.js';
import { request } from '../../master/cli-client.js';
import { followJob, startedBy } from './apply.js';
import { loadOrCreateIdentity } from '../../core/identity.js';

/** The repo's examples/ (this file is dist/cli/commands/demo.js or cli/commands/demo.ts). */
function examplesDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const up of ['../../..', '../..']) {
    const d = path.resolve(here, up, 'examples');
    if (fs.existsSync(path.join(d, 'states', 'top.sls'))) return d;
  }
  throw new Error('examples/states not found next to this tsalt installation');
}

/** How to run tsalt from a shell here: `tsalt` when it is on PATH, else node and this launcher. */
function tsaltCommand(): string {
  for (const d of (process.env.PATH ?? '').split(':').filter(Boolean)) {
    try {
      fs.accessSync(path.join(d, 'tsalt'), fs.constants.X_OK);
      return 'tsalt';
    } catch {
      // not in this directory
    }
  }
  const bin = path.resolve(examplesDir(), '../bin/tsalt.js');
  return `${process.execPath} ${bin}`;
}

async function waitFor<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function data(sock: string, req: Parameters<typeof request>[1]): Promise<unknown> {
  let out: unknown;
  await request(sock, req, (ev) => {
    if (ev.type === 'data') out = ev.data;
  });
  return out;
}

const USAGE = 'usage: tsalt demo [--dir DIR] [--exit] [--log-level error|warn|info|debug]\n';

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCommand(
    argv,
    {
      dir: { type: 'string' },
      exit: { type: 'boolean' },
      'log-level': { type: 'string', short: 'l' },
      help: { type: 'boolean', short: 'h' },
    },
    USAGE,
    false,
  );
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const ex = examplesDir();
  const dir = values.dir ? path.resolve(values.dir) : fs.mkdtempSync(path.join(os.tmpdir(), 'tsalt-demo-'));
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const states = path.join(dir, 'states');
  // a state repo of our own: the job pins its commit, as it would on a real master
  fs.rmSync(states, { recursive: true, force: true });
  fs.cpSync(path.join(ex, 'states'), states, { recursive: true });
  const git = ['git', '-C', states, '-c', 'user.name=tsalt demo', '-c', 'user.email=demo@tsalt.invalid', '-c', 'init.defaultBranch=main'];
  await execOk([...git, 'init', '-q']);
  await execOk([...git, 'add', '-A']);
  await execOk([...git, 'commit', '-q', '-m', 'example tree']);
  fs.rmSync(path.join(dir, 'pillar'), { recursive: true, force: true });
  fs.cpSync(path.join(ex, 'pillar'), path.join(dir, 'pillar'), { recursive: true });
  if (fs.existsSync(path.join(ex, 'grains'))) fs.copyFileSync(path.join(ex, 'grains'), path.join(dir, 'grains'));

  const masterYaml = path.join(dir, 'master.yaml');
  const sock = path.join(dir, 'master.sock');
  fs.writeFileSync(
    masterYaml,
    dumpSaltYaml({
      interface: '127.0.0.1',
      port: 0,
      pki_dir: 'pki/master',
      db: 'master.db',
      socket: 'master.sock',
      state_tree: 'states',
      pillar_tree: 'pillar',
      log_level: 'warn',
    }),
  );
  const level = LogLevelSchema.parse(values['log-level'] ?? 'warn');
  const { loadMasterConfig } = await import('../../master/config.js');
  const { startMaster } = await import('../../master/master.js');
  const master = await startMaster(loadMasterConfig(masterYaml), makeLogger(level, 'master'));

  // Preseed the agent's key (Salt: preseeded minion keys), so the agent connects accepted instead
  // of logging "key pending" a moment before the demo would accept it
  const agentKey = await loadOrCreateIdentity(path.join(dir, 'pki/agent'), 'agent', 'demo-agent');
  const known = await master.store.getAgent('demo-agent');
  if (known && known.fingerprint !== agentKey.fingerprint) await master.store.deleteAgent('demo-agent');
  if (!known || known.fingerprint !== agentKey.fingerprint) await master.store.addAgent('demo-agent', agentKey.fingerprint, 'accepted');
  else if (known.key_state !== 'accepted') await master.store.setKeyState('demo-agent', 'accepted');

  const agentYaml = path.join(dir, 'agent.yaml');
  fs.writeFileSync(
    agentYaml,
    dumpSaltYaml({
      id: 'demo-agent',
      master: '127.0.0.1',
      master_port: master.port,
      master_finger: master.fingerprint,
      pki_dir: 'pki/agent',
      cache_dir: 'cache',
      grains_file: 'grains',
      root: 'root',
      backoff_min_s: 0.2,
      backoff_max_s: 2,
    }),
  );
  const { loadAgentConfig } = await import('../../agent/connection/config.js');
  const { AgentDaemon } = await import('../../agent/daemon.js');
  const agent = new AgentDaemon(loadAgentConfig(agentYaml), makeLogger(level, 'agent demo-agent'));
  let code = 1;
  try {
    await agent.start();
    process.stdout.write(`tsalt demo in ${dir}\n  master listening on 127.0.0.1:${master.port}, key ${master.fingerprint.slice(0, 16)}…\n`);
    process.stdout.write(`  accepted the key of demo-agent (preseeded: ${agentKey.fingerprint.slice(0, 16)}…)\n`);
    await waitFor('the agent to connect', 20_000, async () => {
      const d = (await data(sock, { type: 'agents.list' })) as { id: string; connected: boolean }[];
      return d.some((a) => a.id === 'demo-agent' && a.connected) ? true : undefined;
    });
    process.stdout.write(`  applying examples/states (highstate) under ${path.join(dir, 'root')}\n\n`);
    code = await followJob(
      { type: 'apply', target: '*', tgt_type: 'glob', sls: [], test: false, timeout_s: 300, user: startedBy() },
      { socket: sock, json: false, name: 'tsalt demo' },
    );
  } catch (e) {
    process.stderr.write(`tsalt demo: ${(e as Error).message}\n`);
  }
  const tsalt = tsaltCommand();
  const hint = `  ${tsalt} jobs --socket ${sock}\n  ${tsalt} jobs <JID> --socket ${sock}\n  ${tsalt} agents --socket ${sock}\n`;
  if (values.exit) {
    await agent.stop();
    await master.close();
    process.stdout.write(
      `\nJob history kept in ${path.join(dir, 'master.db')}. To browse it, start the master again and ask it:\n` +
        `  ${tsalt} master --config ${masterYaml} &\n${hint}`,
    );
    return code;
  }
  process.stdout.write(`\nThe master keeps running with the job history. In another terminal:\n${hint}Ctrl-C stops the demo.\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await agent.stop();
  await master.close();
  return code;
}
