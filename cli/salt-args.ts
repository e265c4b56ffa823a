/**
 * Salt's `key=value` arguments on the command line, as `salt '*' state.apply web test=True
 * pillar='{"version": "1.2"}'` takes them. Values are read as Salt reads them (YAML).
 */
import { loadSaltYaml } from '../engine/render/salt-yaml.js';

export interface SaltArgs {
  sls: string[];
  test?: boolean;
  /** merged over the rendered pillar for this run only */
  pillar?: Record<string, unknown>;
}

export class SaltArgError extends Error {}

export function parseSaltArgs(words: string[]): SaltArgs {
  const out: SaltArgs = { sls: [] };
  for (const w of words) {
    const m = /^(test|pillar)=(.*)$/is.exec(w);
    if (!m) {
      out.sls.push(...w.split(',').filter(Boolean)); // `sls1,sls2` as one word, as Salt allows
      continue;
    }
    const key = m[1]!.toLowerCase();
    if (key === 'test') {
      out.test = /^(true|1|yes|on)$/i.test(m[2]!);
      continue;
    }
    let value: unknown;
    try {
      value = loadSaltYaml(m[2]!);
    } catch (e) {
      throw new SaltArgError(`pillar=... is not valid YAML/JSON: ${(e as Error).message.split('\n')[0]}`);
    }
    if (!value || typeof value !== 'object' || Array.isArray(value)) {
      throw new SaltArgError(`pillar=... must be a mapping, e.g. pillar='{"app": {"version": "1.2"}}'`);
    }
    out.pillar = value as Record<string, unknown>;
  }
  return out;
}
