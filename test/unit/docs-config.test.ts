/**
 * docs/config.md and docs/examples/{master,agent}.yaml are generated from the config schemas
 * (scripts/gen-config-docs.mjs): they must not fall behind them, and the example files must load
 * (every key at its default, and with the commented rollout/metrics/schedule blocks switched on).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { loadMasterConfig } from '../../master/config.js';
import { loadAgentConfig } from '../../agent/connection/config.js';
import { MasterConfigSchema } from '../../master/config.js';
import { AgentConfigSchema } from '../../agent/connection/config.js';
import { tempDir } from '../helpers/harness.js';

const root = path.resolve(import.meta.dirname, '../..');

it('docs/config.md and the example files are what the schemas generate', () => {
  const r = spawnSync(process.execPath, [path.join(root, 'scripts/gen-config-docs.mjs'), '--check'], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
});

it('docs/config.md has a row for every key of master.yaml and agent.yaml', () => {
  const md = fs.readFileSync(path.join(root, 'docs/config.md'), 'utf8');
  for (const k of [...Object.keys(MasterConfigSchema.shape), ...Object.keys(AgentConfigSchema.shape)]) expect(md).toMatch(new RegExp(`^\\| \`${k}\` \\|`, 'm'));
});

it('the example files load, with their optional blocks switched on too', () => {
  const dir = tempDir();
  const m = fs.readFileSync(path.join(root, 'docs/examples/master.yaml'), 'utf8');
  fs.writeFileSync(path.join(dir, 'master.yaml'), m);
  expect(loadMasterConfig(path.join(dir, 'master.yaml')).port).toBe(4506);
  const on = m.replace(/^# (git|rollout|metrics|schedule):$/gm, '$1:').replace(/^# ( +[^#\s].*)$/gm, '$1');
  fs.writeFileSync(path.join(dir, 'master-on.yaml'), on);
  const cfg = loadMasterConfig(path.join(dir, 'master-on.yaml'));
  expect(cfg.rollout?.batch).toBe('25%');
  expect(cfg.metrics).toEqual({ interface: '127.0.0.1', port: 9506 });
  expect(cfg.schedule.highstate_hourly).toMatchObject({ function: 'state.highstate', hours: 1 });
  fs.writeFileSync(path.join(dir, 'agent.yaml'), fs.readFileSync(path.join(root, 'docs/examples/agent.yaml'), 'utf8'));
  expect(loadAgentConfig(path.join(dir, 'agent.yaml')).master).toBe('salt');
});
