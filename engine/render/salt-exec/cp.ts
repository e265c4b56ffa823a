/** Salt's cp.get_file_str for salt:// paths: read from the run's state tree, never outside it. */
import type { TreeSource } from '../../tree/source.js';
import { TreeError } from '../../tree/source.js';
import { bind, str, type SaltFns } from './args.js';

export function cpFunctions(tree: TreeSource | undefined): SaltFns {
  return {
    'cp.get_file_str': (...raw) => {
      const fn = 'cp.get_file_str';
      const { a } = bind(fn, raw, ['path', 'saltenv'], { loose: true });
      const p = str(fn, a, 'path');
      if (!p.startsWith('salt://')) throw new Error(`${fn}: only salt:// paths are supported (use file.read for local files): ${p}`);
      if (!tree) throw new Error(`${fn}: no state tree in this context`);
      try {
        // throws on `..` escapes; a missing file is Salt's False below
        if (!tree.existsSync(p)) return false;
        return tree.readSync(p).toString('utf8');
      } catch (e) {
        if (e instanceof TreeError) throw new Error(`${fn}: ${e.message}`);
        throw e;
      }
    },
  };
}
