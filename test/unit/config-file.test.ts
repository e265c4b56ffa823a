/**
 * master.yaml / agent.yaml are read as Salt reads YAML (the SLS reader, YAML 1.1): a Salt user's
 * `auto_accept: yes` is true, not the string "yes" that YAML 1.2 makes of it (and zod refuses).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadMasterConfig } from '../../master/config.js';
import { loadAgentConfig } from '../../agent/connection/config.js';
import { ConfigError } from '../../core/config-file.js';
import { tempDir } from '../helpers/harness.js';

function write(text: string): string {
  const f = path.join(tempDir('tsalt-config-'), 'x.yaml');
  fs.writeFileSync(f, text);
  return f;
}

describe('config files in Salt YAML', () => {
  it('auto_accept: yes / on / True in master.yaml are true; no / off are false', () => {
    for (const v of ['yes', 'Yes', 'on', 'True', 'true']) expect(loadMasterConfig(write(`auto_accept: ${v}\n`)).auto_accept).toBe(true);
    for (const v of ['no', 'off', 'False']) expect(loadMasterConfig(write(`auto_accept: ${v}\n`)).auto_accept).toBe(false);
  });

  it('agent.yaml too (tofu: yes)', () => {
    expect(loadAgentConfig(write('tofu: yes\n')).tofu).toBe(true);
  });

  it('a key given twice is an error naming the file, as in SLS files', () => {
    const f = write('auto_accept: yes\nauto_accept: no\n');
    expect(() => loadMasterConfig(f)).toThrow(ConfigError);
    expect(() => loadMasterConfig(f)).toThrow(new RegExp(`${f.replace(/[.]/g, '\\.')}: not valid YAML: .*duplicated mapping key`));
  });
});
