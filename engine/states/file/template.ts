/** `template: jinja` for file content, with Salt's template variables. */
import path from 'node:path';
import type { RunContext } from '../context.js';
import { StateFailure } from '../define.js';

export interface TemplateInput {
  template: string;
  text: string;
  /** where the text came from (salt:// path or the state name), for messages and includes */
  label: string;
  treePath?: string;
  /** Salt: `defaults` merged with `context` (context wins), over everything else */
  defaults?: Record<string, unknown>;
  context?: Record<string, unknown>;
  /** state arguments Salt hands the template (name, source, user, group, mode) */
  stateVars: Record<string, unknown>;
  /** unknown keyword arguments of the state: template variables too (Salt quirk) */
  extra: Record<string, unknown>;
}

export function renderContent(ctx: RunContext, t: TemplateInput): string {
  if (t.template.toLowerCase() !== 'jinja') {
    throw new StateFailure(`Specified template format ${t.template} is not supported (tsalt renders jinja only)`);
  }
  const tplVars: Record<string, unknown> = {};
  if (t.treePath !== undefined) {
    const dir = path.posix.dirname(t.treePath);
    tplVars.tplfile = t.treePath;
    tplVars.tpldir = dir === '.' ? '' : dir;
    tplVars.tplroot = t.treePath.split('/')[0] ?? '';
  }
  const vars = { sls: ctx.sls, ...tplVars, ...t.stateVars, ...t.extra, ...(t.defaults ?? {}), ...(t.context ?? {}) };
  try {
    return ctx.renderTemplate(t.text, vars, t.treePath ?? t.label);
  } catch (e) {
    throw new StateFailure(`Unable to render template ${t.label}: ${e instanceof Error ? e.message : String(e)}`);
  }
}
