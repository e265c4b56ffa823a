/** Salt's `test` state module: states that do nothing, or pretend to, for trees and tests. */
import * as z from 'zod/mini';
import { defineState, StateFailure, type StateModule } from './define.js';

const anyArgs = z.looseObject({ name: z.string() });

/** Salt's test.mod_watch: every test state reacts to watch with a visible change. */
async function modWatch(ctx: { test: boolean }) {
  return { changes: ctx.test ? {} : { watch: true }, comment: 'Watch statement fired.' };
}

const nop = defineState({
  args: anyArgs,
  async check() {
    return { comment: 'Success!' };
  },
  async apply() {
    return { changes: {}, comment: 'Success!' };
  },
  modWatch,
});

const succeed_without_changes = nop;

const succeed_with_changes = defineState({
  args: anyArgs,
  async check(_ctx, args) {
    return { changes: { testing: { old: 'Unchanged', new: 'Something pretended to change' } }, comment: `Success! (${args.name})` };
  },
  async apply(ctx, args) {
    return { changes: { testing: { old: 'Unchanged', new: 'Something pretended to change' } }, comment: 'Success!' };
  },
  modWatch,
});

const fail_without_changes = defineState({
  args: anyArgs,
  async check() {
    throw new StateFailure('Failure!');
  },
  async apply() {
    throw new StateFailure('Failure!');
  },
});

const fail_with_changes = defineState({
  args: anyArgs,
  async check() {
    return { changes: { testing: { old: 'Unchanged', new: 'Something pretended to change' } }, comment: 'Failure!' };
  },
  async apply() {
    return {
      changes: { testing: { old: 'Unchanged', new: 'Something pretended to change' } },
      comment: 'Failure!',
      result: false,
    };
  },
});

/** test.configurable_test_state: changes/result chosen by arguments, as in Salt. */
const configurable_test_state = defineState({
  args: z.object({
    name: z.string(),
    changes: z._default(z.union([z.boolean(), z.literal('Random')]), true),
    result: z._default(z.union([z.boolean(), z.literal('Random')]), true),
    comment: z._default(z.string(), ''),
  }),
  async check(_ctx, a) {
    if (a.result === false) throw new StateFailure(a.comment || 'Failure!');
    return a.changes === true
      ? { changes: { testing: { old: 'Unchanged', new: 'Something pretended to change' } }, comment: a.comment }
      : { comment: a.comment };
  },
  async apply(_ctx, a) {
    return { changes: { testing: { old: 'Unchanged', new: 'Something pretended to change' } }, comment: a.comment };
  },
});

export default {
  nop,
  succeed_without_changes,
  succeed_with_changes,
  fail_without_changes,
  fail_with_changes,
  configurable_test_state,
} satisfies StateModule;
