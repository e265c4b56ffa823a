/**
 * YAML config files validated with zod; an error names the file, the key and what is wrong.
 * Read as Salt reads its own config (YAML 1.1, the same reader as SLS files), so what a Salt
 * user writes in master/minion configs means the same here: `auto_accept: yes` is true.
 */
import fs from 'node:fs';
// zod/mini's functions parse classic and mini schemas alike (the agent's config is a mini one)
import * as z from 'zod/mini';
import { loadSaltYaml } from './salt-yaml.js';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export function formatIssues(file: string, issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .map((i) => {
      const at = i.path.length ? i.path.join('.') : '';
      if (i.code === 'unrecognized_keys') {
        const keys = i.keys.map((k) => (at ? `${at}.${k}` : k));
        return `${file}: unknown key${keys.length > 1 ? 's' : ''} ${keys.map((k) => `'${k}'`).join(', ')}`;
      }
      return `${file}: ${at ? `'${at}'` : 'config'}: ${i.message}`;
    })
    .join('\n');
}

/**
 * Parse `file` with `schema`. A missing file is an empty config (defaults) unless `required`
 * (the operator named it with --config).
 */
export function loadConfigFile<S extends z.core.$ZodType>(file: string, schema: S, required: boolean): z.output<S> {
  let raw: unknown = {};
  if (fs.existsSync(file)) {
    try {
      raw = loadSaltYaml(fs.readFileSync(file, 'utf8'), file) ?? {};
    } catch (e) {
      throw new ConfigError(`${file}: not valid YAML: ${(e as Error).message}`);
    }
  } else if (required) {
    throw new ConfigError(`${file}: no such file`);
  }
  const r = z.safeParse(schema, raw);
  if (!r.success) throw new ConfigError(formatIssues(file, r.error.issues));
  return r.data;
}
