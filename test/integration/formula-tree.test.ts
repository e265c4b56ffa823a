/**
 * Issue 10: a tree in the style of the community formulas (test/formulas: map.jinja with
 * parameters/ layers and filter_by, libtofs.jinja's files_switch, _mapdata) compiles with
 * `tsalt local show` on Debian 12 and Rocky 9 grains, with each OS's values, and runs as Salt
 * runs it (one sub-state alone: its requisite into an SLS it does not include is reported).
 */
import { describe, expect, it, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { loadSaltYaml } from '../../core/salt-yaml.js';
import { tempDir } from '../helpers/harness.js';

const BIN = path.resolve(import.meta.dirname, '../../bin/tsalt.js');
const TREE = path.resolve(import.meta.dirname, '../formulas');
const root = tempDir('tsalt-formula-root-');
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

type Row = { id: string; function: string; name: string; sls: string; args: Record<string, any>; requisites: { kind: string; target: string }[] };

function tsalt(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd: TREE });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function show(id: string, grains: string): Row[] {
  const r = tsalt(['local', 'show', '--states', 'states', '--pillar', 'pillar', '--id', id, '--grains-file', grains, '--json']);
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.out) as Row[];
}

describe('a formula-style tree (map.jinja + libtofs + _mapdata)', () => {
  it('compiles on Debian 12 grains with the Debian values', () => {
    const rows = show('web1', 'debian12.grains');
    const by = Object.fromEntries(rows.map((r) => [r.id, r]));
    expect(rows.map((r) => r.id)).toEqual([
      'webapp-package-repo-managed',
      'webapp-package-install-pkg-installed',
      'webapp-config-file-file-managed',
      'webapp-service-running-service-running',
      'webapp-mapdata-dump',
    ]);
    expect(by['webapp-package-repo-managed']!.args).toMatchObject({
      name: 'deb http://deb.example.org/webapp bookworm main',
      humanname: 'webapp for bookworm',
      comments: ['managed by the webapp formula', 'do not edit'],
    });
    expect(by['webapp-package-install-pkg-installed']!.name).toBe('webapp-deb');
    const conf = by['webapp-config-file-file-managed']!;
    expect(conf.name).toBe('/etc/webapp/webapp.conf');
    // files_switch: id, osfinger, os_family (from pillar tofs:files_switch), then default
    expect(conf.args.source).toEqual([
      'salt://webapp/files/web1/webapp.conf',
      'salt://webapp/files/web1/webapp.conf.jinja',
      'salt://webapp/files/Debian-12/webapp.conf',
      'salt://webapp/files/Debian-12/webapp.conf.jinja',
      'salt://webapp/files/Debian/webapp.conf',
      'salt://webapp/files/Debian/webapp.conf.jinja',
      'salt://webapp/files/default/webapp.conf',
      'salt://webapp/files/default/webapp.conf.jinja',
    ]);
    expect(conf.args).toMatchObject({ mode: '0644', group: 'root' });
    expect(conf.args.context.webapp).toMatchObject({ features: ['metrics', 'http2'], workers: 8, tls: { min: 'TLSv1.2', ciphers: 'modern' } });
    expect(conf.args.context.features).toBe('metrics,http2');
    expect(conf.requisites.map((r) => r.target).sort()).toEqual(['webapp-package-install-pkg-installed', 'webapp-package-repo-managed']);
    expect(by['webapp-service-running-service-running']!.args.enable).toBe(true);
  });

  it('compiles on Rocky 9 grains with the RedHat values', () => {
    const rows = show('web2', 'rocky9.grains');
    const by = Object.fromEntries(rows.map((r) => [r.id, r]));
    expect(by['webapp-package-repo-managed']!.args).toMatchObject({ name: 'webapp', humanname: 'webapp EL9', baseurl: 'https://rpm.example.org/el/9/$basearch', gpgcheck: 1 });
    expect(by['webapp-package-install-pkg-installed']!.name).toBe('webapp-rpm');
    const conf = by['webapp-config-file-file-managed']!;
    expect(conf.name).toBe('/etc/webapp.d/webapp.conf');
    expect(conf.args.group).toBe('wheel');
    expect(conf.args.source[2]).toBe('salt://webapp/files/Rocky Linux-9/webapp.conf');
    expect(conf.args.context.webapp).toMatchObject({ features: ['metrics'], workers: 16, tls: { ciphers: 'fips', min: 'TLSv1.2' } });
    expect(by['webapp-service-running-service-running']!.args.enable).toBe(false);
  });

  it('_mapdata renders the parameters as YAML through file.managed', () => {
    fs.mkdirSync(path.join(root, 'tmp'), { recursive: true });
    const r = tsalt(['local', 'apply', 'webapp._mapdata', '--states', 'states', '--pillar', 'pillar', '--id', 'web1', '--grains-file', 'debian12.grains', '--root', root, '--json']);
    expect(r.code).toBe(0);
    const text = fs.readFileSync(path.join(root, 'tmp/salt_mapdata_dump.yaml'), 'utf8');
    expect(text).toMatch(/^# yamllint disable/);
    expect(text).toMatch(/# Debian-12\n---\n/);
    const data = loadSaltYaml(text.split('---\n')[1]!) as Record<string, any>;
    expect(data.pkg).toEqual({ name: 'webapp-deb' });
    expect(data.tls).toMatchObject({ ciphers: 'modern' });
  });

  it('one sub-state alone: its requisite into an SLS it does not include is reported, as Salt does', () => {
    const r = tsalt(['local', 'apply', 'webapp.service.running', 'test=True', '--states', 'states', '--pillar', 'pillar', '--id', 'web1', '--grains-file', 'debian12.grains', '--json']);
    expect(r.code).toBe(2);
    const j = JSON.parse(r.out);
    expect(j.results).toHaveLength(1);
    expect(j.results[0].result).toBe(false);
    expect(j.results[0].comment).toBe(
      'The following requisites were not found:\n' +
        '                   watch:\n' +
        '                       file: webapp-config-file-file-managed\n' +
        '                   require:\n' +
        '                       sls: webapp.config.file\n',
    );
  });
});
