import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadMasterConfig } from '../../master/config.js';
import { loadAgentConfig } from '../../agent/connection/config.js';
import { tempDir } from '../helpers/harness.js';

function write(text: string): string {
  const f = path.join(tempDir(), 'c.yaml');
  fs.writeFileSync(f, text);
  return f;
}

describe('config files', () => {
  it('an unknown key is an error that names it', () => {
    expect(() => loadMasterConfig(write('port: 4506\nauto_acept: true\n'))).toThrow(/unknown key 'auto_acept'/);
    expect(() => loadAgentConfig(write('master: m\nmaster_fingre: ab\n'))).toThrow(/unknown key 'master_fingre'/);
  });

  it('a wrong type names the key', () => {
    expect(() => loadMasterConfig(write('port: high\n'))).toThrow(/'port'/);
    expect(() => loadAgentConfig(write('id: "../etc"\n'))).toThrow(/'id': invalid agent id/);
  });

  it('a named config file must exist; the default may be absent', () => {
    expect(() => loadMasterConfig('/nonexistent/master.yaml')).toThrow(/no such file/);
  });

  it('relative paths are relative to the config file', () => {
    const f = write('pki_dir: pki\nstate_tree: ../states\n');
    const c = loadMasterConfig(f);
    expect(c.pki_dir).toBe(path.join(path.dirname(f), 'pki'));
    expect(c.state_tree).toBe(path.resolve(path.dirname(f), '../states'));
    expect(c.port).toBe(4506);
    expect(c.auto_accept).toBe(false);
  });

  it('agent defaults follow Salt: master "salt", port 4506, id from the host name', () => {
    const c = loadAgentConfig(write('{}\n'));
    expect(c.master).toBe('salt');
    expect(c.master_port).toBe(4506);
    expect(c.id.length).toBeGreaterThan(0);
    expect(c.tofu).toBe(false);
  });
});
