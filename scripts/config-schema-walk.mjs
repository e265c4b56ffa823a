// Walks a zod (v4) config schema: which keys hold mappings (directly, as a list, as a map of
// names, or as one form of a union), so that every one of them gets documented.
// Used by scripts/gen-config-docs.mjs.

/** The schema under optional/default/preprocess/transform wrappers, and the default on the way. */
export function unwrap(s) {
  let dflt;
  for (;;) {
    const d = s._zod.def;
    if (d.type === 'default' || d.type === 'prefault') {
      if (dflt === undefined) dflt = d.defaultValue;
      s = d.innerType;
    } else if (['optional', 'nullable', 'readonly', 'catch', 'nonoptional'].includes(d.type)) s = d.innerType;
    // z.preprocess(f, S) is pipe(transform, S); S.transform(f) is pipe(S, transform): keep S
    else if (d.type === 'pipe') s = d.in._zod.def.type === 'transform' ? d.out : d.in;
    else if (d.type === 'lazy') s = d.getter();
    else return { schema: s, default: dflt };
  }
}

/** The mappings a key holds, each with how its section's path goes on from the key's. */
export function nestedOf(s) {
  const { schema } = unwrap(s);
  const d = schema._zod.def;
  if (d.type === 'object') return [{ suffix: '', obj: schema }];
  if (d.type === 'array') return nestedOf(d.element).map((n) => ({ ...n, suffix: `[]${n.suffix}` }));
  if (d.type === 'record') return nestedOf(d.valueType).map((n) => ({ ...n, suffix: `.NAME${n.suffix}` }));
  if (d.type === 'union') {
    const forms = d.options.flatMap((o) => nestedOf(o));
    return forms.length > 1 ? forms.map((n, i) => ({ ...n, suffix: `${n.suffix} (form ${i + 1} of ${forms.length})` })) : forms;
  }
  if (d.type === 'intersection') return [...nestedOf(d.left), ...nestedOf(d.right)];
  return [];
}

/** The object schema at `path` and, depth first, every mapping under it. */
export function sectionsOf(obj, path = '', parent) {
  const out = [{ path, obj, parent }];
  for (const [key, v] of Object.entries(obj._zod.def.shape)) {
    for (const n of nestedOf(v)) out.push(...sectionsOf(n.obj, `${path ? `${path}.` : ''}${key}${n.suffix}`, { path, key }));
  }
  return out;
}
