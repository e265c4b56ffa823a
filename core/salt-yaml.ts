/**
 * YAML as Salt reads it: PyYAML's YAML 1.1 safe loader with Salt's own tweaks
 * (salt/utils/yamlloader.py), so existing trees mean what they meant under Salt:
 *
 * - `yes/no/on/off` (and True/FALSE/...) are booleans; `~`, `null` and empty are None;
 * - integers with a leading zero lose it and stay decimal (`mode: 0644` is the number 644,
 *   which file states read as the mode 0644); `0x1f`, `0b101`, `1_000` and `1:30` (base 60)
 *   are integers; a float needs a dot (`1e3` is a string, `1.0e+3` a float);
 * - dates stay the strings they were (Salt constructs timestamps as plain scalars);
 * - `<<` merge keys; a key declared twice in one mapping is an error.
 *
 * Dumping with this schema quotes any string that would read back as something else
 * (`'yes'`, `'0644'`), so the `yaml` filter's output survives a round trip.
 */
import yaml from 'js-yaml';

// `types` exists at run time; @types/js-yaml does not declare it
const builtin = (yaml as unknown as { types: Record<'merge' | 'int' | 'float' | 'bool' | 'null', yaml.Type> }).types;

const NULL_RE = /^(?:~|null|Null|NULL)?$/;
const BOOL_TRUE = new Set(['yes', 'Yes', 'YES', 'true', 'True', 'TRUE', 'on', 'On', 'ON']);
const BOOL_FALSE = new Set(['no', 'No', 'NO', 'false', 'False', 'FALSE', 'off', 'Off', 'OFF']);
const INT_RE = /^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$/;
const FLOAT_RE =
  /^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/;

/** Base-60 digits (`1:30:00`) as PyYAML adds them up. */
function sexagesimal(digits: string): number {
  return digits.split(':').reduce((acc, part) => acc * 60 + Number(part), 0);
}

const nullType = new yaml.Type('tag:yaml.org,2002:null', {
  kind: 'scalar',
  resolve: (data: string | null) => data === null || NULL_RE.test(data),
  construct: () => null,
  predicate: (v: unknown) => v === null,
  represent: { canonical: () => '~', lowercase: () => 'null' },
  defaultStyle: 'lowercase',
});

const boolType = new yaml.Type('tag:yaml.org,2002:bool', {
  kind: 'scalar',
  resolve: (data: string | null) => data !== null && (BOOL_TRUE.has(data) || BOOL_FALSE.has(data)),
  construct: (data: string) => BOOL_TRUE.has(data),
  predicate: (v: unknown) => typeof v === 'boolean',
  represent: { lowercase: (v: object) => (v ? 'true' : 'false') },
  defaultStyle: 'lowercase',
});

const intType = new yaml.Type('tag:yaml.org,2002:int', {
  kind: 'scalar',
  resolve: (data: string | null) => data !== null && INT_RE.test(data),
  construct: (data: string) => {
    let s = data.replace(/_/g, '');
    let sign = 1;
    if (s[0] === '-' || s[0] === '+') {
      if (s[0] === '-') sign = -1;
      // Salt strips leading zeros only when the scalar itself starts with 0; '-0644' stays octal
      const rest = s.slice(1);
      if (rest === '0') return 0;
      if (rest.startsWith('0b')) return sign * parseInt(rest.slice(2), 2);
      if (rest.startsWith('0x')) return sign * parseInt(rest.slice(2), 16);
      if (rest.startsWith('0')) return sign * parseInt(rest, 8);
      if (rest.includes(':')) return sign * sexagesimal(rest);
      return sign * parseInt(rest, 10);
    }
    if (s === '0') return 0;
    if (s.startsWith('0b')) return parseInt(s.slice(2), 2);
    if (s.startsWith('0x')) return parseInt(s.slice(2), 16);
    if (s.startsWith('0')) s = s.replace(/^0+/, '') || '0';
    if (s.includes(':')) return sexagesimal(s);
    return parseInt(s, 10);
  },
  predicate: (v: unknown) => typeof v === 'number' && Number.isInteger(v) && !Object.is(v, -0),
  represent: builtin.int.represent ?? undefined,
  defaultStyle: 'decimal',
});

const floatType = new yaml.Type('tag:yaml.org,2002:float', {
  kind: 'scalar',
  resolve: (data: string | null) => data !== null && FLOAT_RE.test(data) && data !== '.' && data !== '-.' && data !== '+.',
  construct: (data: string) => {
    const s = data.replace(/_/g, '');
    const lower = s.toLowerCase();
    if (lower.endsWith('.inf')) return s[0] === '-' ? -Infinity : Infinity;
    if (lower === '.nan') return NaN;
    if (s.includes(':')) {
      const sign = s[0] === '-' ? -1 : 1;
      const body = s.replace(/^[-+]/, '');
      const [whole, frac = ''] = body.split('.');
      return sign * (sexagesimal(whole!) + Number(`0.${frac || '0'}`));
    }
    return Number(s);
  },
  predicate: (v: unknown) => typeof v === 'number' && (!Number.isInteger(v) || Object.is(v, -0)),
  represent: builtin.float.represent ?? undefined,
  defaultStyle: 'lowercase',
});

/** The schema for SLS, pillar, `import_yaml`/`load_yaml` and the grains file. */
export const SALT_YAML_SCHEMA = yaml.FAILSAFE_SCHEMA.extend({
  implicit: [nullType, boolType, intType, floatType, builtin.merge],
});

/** Parse YAML as Salt would (throws js-yaml's YAMLException with a mark on bad input). */
export function loadSaltYaml(text: string, filename?: string): unknown {
  return yaml.load(text, { schema: SALT_YAML_SCHEMA, ...(filename ? { filename } : {}) });
}

/** Block-style YAML that reads back, under Salt's rules, as the same data. */
export function dumpSaltYaml(value: unknown, options: yaml.DumpOptions = {}): string {
  return yaml.dump(value, { schema: SALT_YAML_SCHEMA, ...options });
}
