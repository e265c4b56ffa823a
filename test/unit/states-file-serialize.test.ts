import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { runState, tempDir } from '../helpers/harness.js';
import { convergeTwice } from './states-file-helpers.js';

describe('file.serialize', () => {
  it('writes YAML (Salt default) with sorted keys; converges; test mode predicts', async () => {
    const d = tempDir();
    const name = path.join(d, 'app.yaml');
    const real = await convergeTwice('file.serialize', { name, dataset: { z: 1, a: { list: [1, 'two'] } }, mode: '0640' });
    expect(real.changes).toMatchObject({ diff: 'New file', mode: '0640' });
    expect(fs.readFileSync(name, 'utf8')).toBe('a:\n  list:\n    - 1\n    - two\nz: 1\n');
    expect(fs.statSync(name).mode & 0o777).toBe(0o640);
  });

  it('writes JSON from pillar, indented and sorted; a changed value shows as a diff', async () => {
    const d = tempDir();
    const name = path.join(d, 'app.json');
    const pillar = { app: { config: { port: 8080, host: 'db1' } } };
    await convergeTwice('file.serialize', { name, dataset_pillar: 'app:config', formatter: 'json' }, { pillar });
    expect(fs.readFileSync(name, 'utf8')).toBe('{\n  "host": "db1",\n  "port": 8080\n}\n');
    const changed = await runState('file.serialize', { name, dataset_pillar: 'app:config', formatter: 'json' }, { pillar: { app: { config: { port: 9090, host: 'db1' } } } });
    expect(String(changed.changes.diff)).toMatch(/-  "port": 8080\n\+  "port": 9090/);
  });

  it('merge_if_exists keeps keys the file has and the dataset does not', async () => {
    const d = tempDir();
    const name = path.join(d, 'settings.json');
    fs.writeFileSync(name, '{"keep": true, "port": 1}\n');
    await convergeTwice('file.serialize', { name, dataset: { port: 2 }, formatter: 'json', merge_if_exists: true });
    expect(JSON.parse(fs.readFileSync(name, 'utf8'))).toEqual({ keep: true, port: 2 });
  });

  it('needs exactly one of dataset and dataset_pillar, and a pillar key that exists', async () => {
    const d = tempDir();
    expect((await runState('file.serialize', { name: path.join(d, 'x') })).comment).toMatch(/Only one of 'dataset' and 'dataset_pillar'/);
    const missing = await runState('file.serialize', { name: path.join(d, 'x'), dataset_pillar: 'no:such' });
    expect([missing.result, missing.comment]).toEqual([false, 'pillar key no:such is not set']);
    expect(fs.existsSync(path.join(d, 'x'))).toBe(false);
  });
});
