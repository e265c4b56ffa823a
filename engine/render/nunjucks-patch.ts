/**
 * What tsalt changes in Nunjucks (pinned to exactly NUNJUCKS_VERSION in package.json) so that it
 * parses and evaluates Jinja2 as Salt runs it. Nunjucks has no public hooks for expressions, so
 * these replace methods of its runtime, parser and compiler; test/unit/nunjucks-patch.test.ts
 * fails when an upgrade changes any function this file replaces or relies on.
 *
 * Runtime: every lookup and call goes through ./sandbox.ts.
 */
import nunjucks from 'nunjucks';
import { lookup, callChecked, helper } from './sandbox.js';
import { pyOutput } from './pyrepr.js';

export const NUNJUCKS_VERSION = '3.2.4';

/* eslint-disable @typescript-eslint/no-explicit-any */
const N = nunjucks as any;
export const rt: Record<string, any> = N.runtime;
const nodes = N.nodes;
const lexer = N.lexer;
const Parser = N.parser.Parser.prototype;
const Compiler = N.compiler.Compiler.prototype;

/** The Nunjucks functions this module replaces or wraps, by name (checked by the upgrade test). */
export const REPLACED = {
  runtime: ['memberLookup', 'callWrap', 'contextOrFrameLookup', 'makeMacro', 'suppressValue', 'ensureDefined'],
  parser: ['parsePostfix'],
  compiler: ['compileLookupVal'],
} as const;

/** Originals kept for the upgrade test to fingerprint. */
export const ORIGINALS: Record<string, string> = {};

function own(obj: object, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(obj, key);
}

let installed = false;

export function installPatches(): void {
  if (installed) return;
  installed = true;
  for (const n of REPLACED.runtime) ORIGINALS[`runtime.${n}`] = String(rt[n]);
  for (const n of REPLACED.parser) ORIGINALS[`parser.${n}`] = String(Parser[n]);
  for (const n of REPLACED.compiler) ORIGINALS[`compiler.${n}`] = String(Compiler[n]);

  // ---- runtime: the sandbox ----
  rt.memberLookup = (obj: unknown, key: unknown, attr?: boolean) => lookup(obj, key, attr === true);
  rt.callWrap = (fn: unknown, name: string, _context: unknown, args: unknown[]) => callChecked(fn, name, args);
  const origMakeMacro = rt.makeMacro as (...a: unknown[]) => (...a: unknown[]) => unknown;
  rt.makeMacro = (...a: unknown[]) => helper(origMakeMacro(...a));
  rt.contextOrFrameLookup = (context: any, frame: any, name: string) => {
    const v = frame.lookup(name); // frames hold their variables in a null-prototype object
    if (v !== undefined) return v;
    if (own(context.ctx, name)) return context.ctx[name];
    if (own(context.env.globals, name)) return context.env.globals[name];
    if (name === 'True') return true;
    if (name === 'False') return false;
    if (name === 'None') return null;
    return undefined;
  };
  rt.suppressValue = (val: unknown) => {
    if (val === undefined) return '';
    if (val instanceof rt.SafeString) return val;
    return pyOutput(val);
  };

  // ---- parser: `a.b` is an attribute lookup (Python getattr first), `a[b]` an item lookup ----
  Parser.parsePostfix = function parsePostfix(this: any, node: any) {
    let tok = this.peekToken();
    while (tok) {
      if (tok.type === lexer.TOKEN_LEFT_PAREN) {
        node = new nodes.FunCall(tok.lineno, tok.colno, node, this.parseSignature());
      } else if (tok.type === lexer.TOKEN_LEFT_BRACKET) {
        const agg = this.parseAggregate();
        if (agg.children.length > 1) this.fail('invalid index');
        node = new nodes.LookupVal(tok.lineno, tok.colno, node, agg.children[0]);
      } else if (tok.type === lexer.TOKEN_OPERATOR && tok.value === '.') {
        this.nextToken();
        const val = this.nextToken();
        if (val.type !== lexer.TOKEN_SYMBOL && val.type !== lexer.TOKEN_INT) {
          this.fail('expected name as lookup value, got ' + val.value, val.lineno, val.colno);
        }
        const key = val.type === lexer.TOKEN_INT ? Number(val.value) : val.value;
        node = new nodes.LookupVal(tok.lineno, tok.colno, node, new nodes.Literal(val.lineno, val.colno, key));
        node.isAttr = true;
      } else {
        break;
      }
      tok = this.peekToken();
    }
    return node;
  };
  Compiler.compileLookupVal = function compileLookupVal(this: any, node: any, frame: any) {
    this._emit('runtime.memberLookup((');
    this._compileExpression(node.target, frame);
    this._emit('),');
    this._compileExpression(node.val, frame);
    this._emit(node.isAttr ? ', true)' : ')');
  };
}
