/**
 * Salt's `file` state module. Each function lives in engine/states/file/<topic>.ts; the shared
 * core (atomic writes, ownership, diffs) keeps them reporting changes the same way.
 * Every managed path goes through `ctx.path()` (--root); messages show names as the tree wrote them.
 */
import type { StateModule } from './define.js';
import { managed } from './file/managed.js';
import { directory } from './file/directory.js';
import { absent, exists, missing, touch } from './file/simple.js';
import { symlink } from './file/symlink.js';
import { copy } from './file/copy.js';
import { recurse } from './file/recurse.js';
import { append, line, replace } from './file/edit.js';
import { serialize_ } from './file/serialize.js';
import { accumulated, blockreplace } from './file/block.js';
import { comment, uncomment } from './file/comment.js';
import { prepend } from './file/prepend.js';
import { keyvalue } from './file/keyvalue.js';

export default {
  managed,
  directory,
  absent,
  exists,
  missing,
  touch,
  symlink,
  copy,
  recurse,
  line,
  replace,
  append,
  serialize: serialize_,
  blockreplace,
  accumulated,
  comment,
  uncomment,
  prepend,
  keyvalue,
} satisfies StateModule;
