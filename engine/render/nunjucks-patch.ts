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
import { pyOutput, pyFloat, PyFloat, tuple } from './pyrepr.js';
import { pyRuntime } from './py-runtime.js';

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
  parser: ['parsePostfix', 'parseSignature', 'parseAggregate', 'parseIs'],
  compiler: ['compileLookupVal'],
} as const;

/** Originals kept for the upgrade test to fingerprint. */
export const ORIGINALS: Record<string, string> = {};

function own(obj: object, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(obj, key);
}

const CONSTANTS: Record<string, unknown> = { True: true, False: false, None: null };

/** The macro calls in progress (synchronous): their extra arguments, innermost last. */
const macroCalls: { varargs: unknown[]; kwargs: Record<string, unknown> }[] = [];

/** The variables of the renders in progress (rendering is synchronous): innermost last. */
export const renderGlobals: Record<string, unknown>[] = [];

let installed = false;
let PyTuple: any;
let PyDict: any;
let PySlice: any;

/** `x[i]`, `x[a:b]`, `x[::-1]`: an item lookup or a Python slice. */
function parseSubscript(p: any, target: any): any {
  const open = p.nextToken(); // [
  const parts: any[] = [null, null, null];
  let slice = false;
  let i = 0;
  for (;;) {
    const t = p.peekToken();
    if (t.type === lexer.TOKEN_RIGHT_BRACKET) {
      p.nextToken();
      break;
    }
    if (t.type === lexer.TOKEN_COLON) {
      p.nextToken();
      slice = true;
      i++;
      if (i > 2) p.fail('invalid slice', t.lineno, t.colno);
      continue;
    }
    if (parts[i] !== null) p.fail('invalid subscript', t.lineno, t.colno);
    parts[i] = p.parseExpression();
    if (!slice && p.peekToken().type === lexer.TOKEN_COMMA) {
      // x[a, b]: a tuple key
      const items = [parts[i]];
      while (p.skip(lexer.TOKEN_COMMA)) {
        if (p.peekToken().type === lexer.TOKEN_RIGHT_BRACKET) break;
        items.push(p.parseExpression());
      }
      parts[i] = new PyTuple(open.lineno, open.colno, items);
    }
  }
  if (slice) return new PySlice(open.lineno, open.colno, target, parts[0], parts[1], parts[2]);
  if (parts[0] === null) p.fail('expected an index', open.lineno, open.colno);
  return new nodes.LookupVal(open.lineno, open.colno, target, parts[0]);
}

export function installPatches(): void {
  if (installed) return;
  installed = true;
  PyTuple = nodes.NodeList.extend('PyTuple');
  PyDict = nodes.NodeList.extend('PyDict');
  PySlice = nodes.Node.extend('PySlice', { fields: ['target', 'start', 'stop', 'step'] });
  for (const n of REPLACED.runtime) ORIGINALS[`runtime.${n}`] = String(rt[n]);
  for (const n of REPLACED.parser) ORIGINALS[`parser.${n}`] = String(Parser[n]);
  for (const n of REPLACED.compiler) ORIGINALS[`compiler.${n}`] = String(Compiler[n]);

  rt.py = pyRuntime;
  const origHandle = rt.handleError;
  ORIGINALS['runtime.handleError'] = String(origHandle);
  rt.handleError = (err: any, lineno: number, colno: number) => {
    const out = origHandle(err, lineno, colno);
    if (err?.tsaltChain && out !== err) out.tsaltChain = err.tsaltChain;
    return out;
  };
  // Template.render rebuilds errors as plain Errors (opts.dev off): keep the import chain on them
  const origPrettify = N.lib._prettifyError;
  ORIGINALS['lib._prettifyError'] = String(origPrettify);
  N.lib._prettifyError = (p: string, withInternals: boolean, err: any) => {
    const chain = err?.tsaltChain;
    const out = origPrettify(p, withInternals, err);
    if (chain && out && typeof out === 'object') out.tsaltChain = chain;
    return out;
  };
  installCompilerPatches();
  installLexerPatch();
  installStatementPatches();

  // ---- runtime: the sandbox ----
  rt.memberLookup = (obj: unknown, key: unknown, attr?: boolean) => lookup(obj, key, attr === true);
  rt.callWrap = (fn: unknown, name: string, _context: unknown, args: unknown[]) => callChecked(fn, name, args);
  const origMakeMacro = rt.makeMacro as (...a: unknown[]) => (...a: unknown[]) => unknown;
  // macro attributes Jinja2 has: name, arguments (the rest stay undefined)
  ORIGINALS['compiler.compileMacro'] = String(Compiler.compileMacro);
  const origCompileMacro = Compiler.compileMacro;
  Compiler.compileMacro = function (this: any, node: any, frame: any) {
    origCompileMacro.call(this, node, frame);
    const funcId = frame.lookup(node.name.value);
    const names = node.args.children.flatMap((a: any) => (a.typename === 'Symbol' ? [a.value] : a.typename === 'Dict' || a.typename === 'KeywordArgs' ? a.children.map((p: any) => p.key.value) : []));
    this._emitLine(`runtime.py.nameMacro(${funcId}, ${JSON.stringify(node.name.value)}, ${JSON.stringify(names)});`);
  };
  // macros are helpers; a call's extra positional/keyword arguments are its `varargs`/`kwargs`
  rt.makeMacro = (argNames: string[], kwargNames: string[], func: unknown) => {
    const macro = origMakeMacro(argNames, kwargNames, func);
    return helper((...args: unknown[]) => {
      const last = args[args.length - 1] as Record<string, unknown> | undefined;
      const hasKw = !!last && typeof last === 'object' && Object.prototype.hasOwnProperty.call(last, '__keywords');
      const pos = hasKw ? args.slice(0, -1) : args;
      const extra: Record<string, unknown> = {};
      if (hasKw) {
        for (const [k, v] of Object.entries(last!)) {
          if (k !== '__keywords' && k !== 'caller' && !argNames.includes(k) && !kwargNames.includes(k)) extra[k] = v;
        }
      }
      macroCalls.push({ varargs: tuple(pos.slice(argNames.length + kwargNames.length)), kwargs: extra });
      try {
        return macro(...args);
      } finally {
        macroCalls.pop();
      }
    });
  };
  rt.contextOrFrameLookup = (context: any, frame: any, name: string) => {
    const v = frame.lookup(name); // frames hold their variables in a null-prototype object
    if (v !== undefined) return v;
    if ((name === 'varargs' || name === 'kwargs') && macroCalls.length) return macroCalls[macroCalls.length - 1]![name];
    if (own(context.ctx, name)) return context.ctx[name];
    // Salt makes the render's variables template globals (template.globals.update(context)):
    // a map.jinja imported without context still sees salt, grains, pillar, tpldir
    const g = renderGlobals[renderGlobals.length - 1];
    if (g && own(g, name)) return g[name];
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
    // Jinja's constants in either spelling
    if (node instanceof nodes.Symbol && Object.prototype.hasOwnProperty.call(CONSTANTS, node.value)) {
      node = new nodes.Literal(node.lineno, node.colno, CONSTANTS[node.value]);
    } else if (node instanceof nodes.Symbol && /^\d[\d_]*(?:[eE][+-]?\d+)?$/.test(node.value)) {
      // 1_000 and 1e3, which Nunjucks' lexer reads as names
      const text = node.value.replace(/_/g, '');
      node = new nodes.Literal(node.lineno, node.colno, /[eE]/.test(text) ? pyFloat(Number(text)) : Number(text));
    }
    let tok = this.peekToken();
    while (tok) {
      if (tok.type === lexer.TOKEN_LEFT_PAREN) {
        node = new nodes.FunCall(tok.lineno, tok.colno, node, this.parseSignature());
      } else if (tok.type === lexer.TOKEN_LEFT_BRACKET) {
        node = parseSubscript(this, node);
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
  // `f(a, b,)`: Jinja accepts a trailing comma in calls
  Parser.parseSignature = function parseSignature(this: any, tolerant?: boolean, noParens?: boolean) {
    let tok = this.peekToken();
    if (!noParens && tok.type !== lexer.TOKEN_LEFT_PAREN) {
      if (tolerant) return null;
      this.fail('expected arguments', tok.lineno, tok.colno);
    }
    if (tok.type === lexer.TOKEN_LEFT_PAREN) tok = this.nextToken();
    const args = new nodes.NodeList(tok.lineno, tok.colno);
    const kwargs = new nodes.KeywordArgs(tok.lineno, tok.colno);
    let checkComma = false;
    for (;;) {
      tok = this.peekToken();
      if (!noParens && tok.type === lexer.TOKEN_RIGHT_PAREN) {
        this.nextToken();
        break;
      } else if (noParens && tok.type === lexer.TOKEN_BLOCK_END) {
        break;
      }
      if (checkComma) {
        if (!this.skip(lexer.TOKEN_COMMA)) this.fail('parseSignature: expected comma after expression', tok.lineno, tok.colno);
        const next = this.peekToken();
        if (!noParens && next.type === lexer.TOKEN_RIGHT_PAREN) continue;
      }
      const arg = this.parseExpression();
      if (this.skipValue(lexer.TOKEN_OPERATOR, '=')) {
        kwargs.addChild(new nodes.Pair(arg.lineno, arg.colno, arg, this.parseExpression()));
      } else {
        args.addChild(arg);
      }
      checkComma = true;
    }
    if (kwargs.children.length) args.addChild(kwargs);
    return args;
  };
  // `x is test`, `x is test(args)`, `x is test arg` (one argument without parentheses), `is not`
  Parser.parseIs = function parseIs(this: any) {
    let node = this.parseCompare();
    while (this.skipSymbol('is')) {
      const not = this.skipSymbol('not');
      const nameTok = this.nextToken();
      let name = '';
      if (nameTok.type === lexer.TOKEN_SYMBOL) name = nameTok.value;
      else if (nameTok.type === lexer.TOKEN_NONE) name = 'none';
      else if (nameTok.type === lexer.TOKEN_BOOLEAN) name = nameTok.value;
      else this.fail(`expected a test name after 'is', got ${nameTok.value}`, nameTok.lineno, nameTok.colno);
      let args: any;
      const next = this.peekToken();
      if (next.type === lexer.TOKEN_LEFT_PAREN) {
        args = this.parseSignature();
      } else if (
        [lexer.TOKEN_STRING, lexer.TOKEN_INT, lexer.TOKEN_FLOAT, lexer.TOKEN_LEFT_BRACKET, lexer.TOKEN_LEFT_CURLY, lexer.TOKEN_BOOLEAN, lexer.TOKEN_NONE].includes(next.type) ||
        (next.type === lexer.TOKEN_SYMBOL && !['else', 'or', 'and', 'is', 'in', 'not', 'if'].includes(next.value))
      ) {
        args = new nodes.NodeList(next.lineno, next.colno, [this.parsePrimary()]);
      } else {
        args = new nodes.NodeList(next.lineno, next.colno, []);
      }
      const test = new nodes.FunCall(nameTok.lineno, nameTok.colno, new nodes.Symbol(nameTok.lineno, nameTok.colno, name), args);
      node = new nodes.Is(node.lineno, node.colno, node, test);
      if (not) node = new nodes.Not(node.lineno, node.colno, node);
    }
    return node;
  };
  // `(a, b)` tuples, `(a,)`, `{expr: v}` dict keys of any expression, trailing commas
  Parser.parseAggregate = function parseAggregate(this: any) {
    const tok = this.nextToken();
    let kind: 'group' | 'list' | 'dict';
    if (tok.type === lexer.TOKEN_LEFT_PAREN) kind = 'group';
    else if (tok.type === lexer.TOKEN_LEFT_BRACKET) kind = 'list';
    else if (tok.type === lexer.TOKEN_LEFT_CURLY) kind = 'dict';
    else return null;
    const close = kind === 'group' ? lexer.TOKEN_RIGHT_PAREN : kind === 'list' ? lexer.TOKEN_RIGHT_BRACKET : lexer.TOKEN_RIGHT_CURLY;
    const items: any[] = [];
    let comma = false;
    for (;;) {
      if (this.peekToken().type === close) {
        this.nextToken();
        break;
      }
      if (items.length > 0) {
        if (!this.skip(lexer.TOKEN_COMMA)) this.fail('parseAggregate: expected comma after expression', tok.lineno, tok.colno);
        comma = true;
        if (this.peekToken().type === close) {
          this.nextToken();
          break;
        }
      }
      if (kind === 'dict') {
        const key = this.parseExpression();
        if (!this.skip(lexer.TOKEN_COLON)) this.fail('parseAggregate: expected colon after dict key', tok.lineno, tok.colno);
        const value = this.parseExpression();
        items.push(new nodes.Pair(key.lineno, key.colno, key, value));
      } else {
        items.push(this.parseExpression());
      }
    }
    if (kind === 'list') return new nodes.Array(tok.lineno, tok.colno, items);
    if (kind === 'dict') return new PyDict(tok.lineno, tok.colno, items);
    if (items.length === 1 && !comma) return new nodes.Group(tok.lineno, tok.colno, items);
    return new PyTuple(tok.lineno, tok.colno, items);
  };
  const origLiteral = Compiler.compileLiteral;
  ORIGINALS['compiler.compileLiteral'] = String(origLiteral);
  Compiler.compileLiteral = function (this: any, node: any, frame: any) {
    if (node.value instanceof PyFloat) return this._emit(`runtime.py.float(${node.value.value})`);
    return origLiteral.call(this, node, frame);
  };
  const origPrimary = Parser.parsePrimary;
  ORIGINALS['parser.parsePrimary'] = String(origPrimary);
  Parser.parsePrimary = function (this: any, noPostfix?: boolean) {
    const tok = this.peekToken();
    if (tok && tok.type === lexer.TOKEN_FLOAT) {
      // 2.0 is a float: keep it one (Nunjucks reads it as the number 2)
      this.nextToken();
      let text = tok.value as string;
      const next = this.peekToken();
      if (next && next.type === lexer.TOKEN_SYMBOL && /^[eE]\d*$/.test(next.value) && /^\d*$/.test(text.split('.')[1] ?? '')) {
        this.nextToken();
        text += next.value;
      }
      const node = new nodes.Literal(tok.lineno, tok.colno, pyFloat(Number(text)));
      return noPostfix ? node : this.parsePostfix(node);
    }
    if (tok && tok.type === lexer.TOKEN_STRING) {
      // adjacent string literals are one string, as in Python: 'it' 's' is 'its'
      this.nextToken();
      let text = tok.value as string;
      while (this.peekToken()?.type === lexer.TOKEN_STRING) text += this.nextToken().value;
      const node = new nodes.Literal(tok.lineno, tok.colno, text);
      return noPostfix ? node : this.parsePostfix(node);
    }
    return origPrimary.call(this, noPostfix);
  };
  Compiler.compileLookupVal = function compileLookupVal(this: any, node: any, frame: any) {
    // a lookup on an undefined value is an error (Jinja raises for any Undefined here)
    this._emit('runtime.memberLookup((');
    emitStrict(this, node.target, frame);
    this._emit('),');
    this._compileExpression(node.val, frame);
    this._emit(node.isAttr ? ', true)' : ')');
  };
}

// ---- compiler: Python's semantics for expressions, StrictUndefined for operands ----

/** How a node reads in a message: `pillar.db.pass`, `x['k']`, `f()`. */
export function describe(node: any): string {
  switch (node?.typename) {
    case 'Symbol':
      return node.value;
    case 'LookupVal': {
      const t = describe(node.target);
      const v = node.val;
      if (v?.typename === 'Literal') {
        if (node.isAttr) return `${t}.${v.value}`;
        return typeof v.value === 'string' ? `${t}['${v.value}']` : `${t}[${v.value}]`;
      }
      return `${t}[${describe(v)}]`;
    }
    case 'FunCall':
      return `${describe(node.name)}()`;
    case 'Filter':
      return `${describe(node.args?.children?.[0])} | ${node.name?.value}`;
    case 'Literal':
      return JSON.stringify(node.value);
    case 'PyWrap':
      return describe(node.target);
    case 'InlineIf':
      return 'the inline if-expression (false, and no else section)';
    default:
      return 'expression';
  }
}

/** Filters that accept an undefined value (Jinja's default/d). */
const UNDEFINED_OK_FILTERS = new Set(['default', 'd']);

let PyWrap: any;

function emitStrict(c: any, node: any, frame: any): void {
  c._emit('runtime.py.strict(');
  c._compileExpression(node, frame);
  c._emit(`, ${JSON.stringify(describe(node))}, ${node.lineno}, ${node.colno})`);
}

function binary(fn: string) {
  return function (this: any, node: any, frame: any) {
    this._emit(`runtime.py.${fn}(`);
    emitStrict(this, node.left, frame);
    this._emit(', ');
    emitStrict(this, node.right, frame);
    this._emit(')');
  };
}

function unary(fn: string) {
  return function (this: any, node: any, frame: any) {
    this._emit(`runtime.py.${fn}(`);
    emitStrict(this, node.target, frame);
    this._emit(')');
  };
}

export const REPLACED_COMPILER = [
  'compileOr', 'compileAnd', 'compileNot', 'compileAdd', 'compileConcat', 'compileSub', 'compileMul', 'compileDiv',
  'compileFloorDiv', 'compileMod', 'compilePow', 'compileNeg', 'compilePos', 'compileCompare', 'compileIn',
  'compileInlineIf', 'compileFilter', 'compileIs', 'compileFunCall', 'compileOutput', 'compileIf', 'compileFor', '_makeCallback',
] as const;

export function installCompilerPatches(): void {
  for (const n of REPLACED_COMPILER) ORIGINALS[`compiler.${n}`] = String(Compiler[n]);
  PyWrap = nodes.Node.extend('PyWrap', { fields: ['target', 'kind'] });
  Compiler.compilePyWrap = function (this: any, node: any, frame: any) {
    if (node.kind === 'truth') {
      this._emit('runtime.py.truthy(');
      emitStrict(this, node.target, frame);
      this._emit(')');
    } else if (node.kind === 'iter') {
      this._emit('runtime.py.iterable(');
      emitStrict(this, node.target, frame);
      this._emit(')');
    } else {
      emitStrict(this, node.target, frame);
    }
  };
  const origAssert = Compiler.assertType;
  Compiler.assertType = function (this: any, node: any, ...types: unknown[]) {
    if (node instanceof PyWrap || node instanceof PyTuple || node instanceof PyDict || node instanceof PySlice) return;
    if (node instanceof nodes.Capture) return;
    return origAssert.call(this, node, ...types);
  };
  Compiler.compilePyTuple = function (this: any, node: any, frame: any) {
    this._emit('runtime.py.tuple(');
    this._compileAggregate(node, frame, '[', ']');
    this._emit(')');
  };
  Compiler.compilePyDict = function (this: any, node: any, frame: any) {
    this._emit('runtime.py.dict([');
    node.children.forEach((pair: any, i: number) => {
      if (i > 0) this._emit(', ');
      this._emit('[');
      this._compileExpression(pair.key, frame);
      this._emit(', ');
      this._compileExpression(pair.value, frame);
      this._emit(']');
    });
    this._emit('])');
  };
  // keyword arguments as own properties whatever their name (`f(__proto__=x)` sets no prototype)
  ORIGINALS['compiler.compileKeywordArgs'] = String(Compiler.compileKeywordArgs);
  Compiler.compileKeywordArgs = function (this: any, node: any, frame: any) {
    this._emit('runtime.makeKeywordArgs(runtime.py.kwargs([');
    node.children.forEach((pair: any, i: number) => {
      if (i > 0) this._emit(', ');
      const key = pair.key.typename === 'Symbol' ? pair.key.value : pair.key.value;
      this._emit(`[${JSON.stringify(String(key))}, `);
      this._compileExpression(pair.value, frame);
      this._emit(']');
    });
    this._emit(']))');
  };
  Compiler.compilePySlice = function (this: any, node: any, frame: any) {
    this._emit('runtime.py.slice(');
    emitStrict(this, node.target, frame);
    for (const part of [node.start, node.stop, node.step]) {
      this._emit(', ');
      if (part) this._compileExpression(part, frame);
      else this._emit('null');
    }
    this._emit(')');
  };
  // the called name goes into the code as a JSON string (Nunjucks' own quoting breaks on newlines)
  Compiler.compileFunCall = function (this: any, node: any, frame: any) {
    this._emit(`(lineno = ${node.lineno}, colno = ${node.colno}, runtime.callWrap(`);
    emitStrict(this, node.name, frame);
    this._emit(`, ${JSON.stringify(describe(node.name))}, context, `);
    this._compileAggregate(node.args, frame, '[', '])');
    this._emit(')');
  };
  Compiler.compileIs = function (this: any, node: any, frame: any) {
    const t = node.right;
    this._emit(`runtime.py.test(env, ${JSON.stringify(t.name.value)}, ${t.lineno}, ${t.colno})(`);
    this._compileExpression(node.left, frame);
    for (const a of t.args.children) {
      this._emit(', ');
      this._compileExpression(a, frame);
    }
    this._emit(')');
  };
  Compiler.compileOr = function (this: any, node: any, frame: any) {
    this._emit('runtime.py.or(');
    emitStrict(this, node.left, frame);
    this._emit(', () => (');
    this._compileExpression(node.right, frame);
    this._emit('))');
  };
  Compiler.compileAnd = function (this: any, node: any, frame: any) {
    this._emit('runtime.py.and(');
    emitStrict(this, node.left, frame);
    this._emit(', () => (');
    this._compileExpression(node.right, frame);
    this._emit('))');
  };
  Compiler.compileNot = function (this: any, node: any, frame: any) {
    this._emit('!runtime.py.truthy(');
    emitStrict(this, node.target, frame);
    this._emit(')');
  };
  Compiler.compileAdd = binary('add');
  Compiler.compileConcat = binary('concat');
  Compiler.compileSub = binary('sub');
  Compiler.compileMul = binary('mul');
  Compiler.compileDiv = binary('div');
  Compiler.compileFloorDiv = binary('floordiv');
  Compiler.compileMod = binary('mod');
  Compiler.compilePow = binary('pow');
  Compiler.compileNeg = unary('neg');
  Compiler.compilePos = unary('pos');
  Compiler.compileIn = function (this: any, node: any, frame: any) {
    this._emit('runtime.py.contains(');
    emitStrict(this, node.right, frame);
    this._emit(', ');
    emitStrict(this, node.left, frame);
    this._emit(')');
  };
  Compiler.compileCompare = function (this: any, node: any, frame: any) {
    // a < b < c is (a < b) and (b < c), each operand evaluated once
    this._emit('runtime.py.compareChain(');
    emitStrict(this, node.expr, frame);
    for (const op of node.ops) {
      this._emit(`, ${JSON.stringify(op.type.replace('===', '==').replace('!==', '!='))}, () => (`);
      emitStrict(this, op.expr, frame);
      this._emit(')');
    }
    this._emit(')');
  };
  Compiler.compileInlineIf = function (this: any, node: any, frame: any) {
    this._emit('(runtime.py.truthy(');
    emitStrict(this, node.cond, frame);
    this._emit(') ? (');
    this._compileExpression(node.body, frame);
    this._emit(') : (');
    if (node.else_) this._compileExpression(node.else_, frame);
    else this._emit('undefined');
    this._emit('))');
  };
  Compiler.compileFilter = function (this: any, node: any, frame: any) {
    const name = node.name;
    this.assertType(name, nodes.Symbol);
    this._emit(`runtime.py.filter(env, ${JSON.stringify(name.value)}, ${name.lineno}, ${name.colno})(`);
    const args = node.args.children;
    args.forEach((a: any, i: number) => {
      if (i > 0) this._emit(', ');
      if (i === 0 && !UNDEFINED_OK_FILTERS.has(name.value)) emitStrict(this, a, frame);
      else this._compileExpression(a, frame);
    });
    this._emit(')');
  };
  const origOutput = Compiler.compileOutput;
  Compiler.compileOutput = function (this: any, node: any, frame: any) {
    node.children = node.children.map((c: any) =>
      c instanceof nodes.TemplateData || c instanceof PyWrap ? c : new PyWrap(c.lineno, c.colno, c, 'strict'),
    );
    return origOutput.call(this, node, frame);
  };
  const origIf = Compiler.compileIf;
  Compiler.compileIf = function (this: any, node: any, frame: any, async?: boolean) {
    if (!(node.cond instanceof PyWrap)) node.cond = new PyWrap(node.cond.lineno, node.cond.colno, node.cond, 'truth');
    return origIf.call(this, node, frame, async);
  };
  const origFor = Compiler.compileFor;
  Compiler.compileFor = function (this: any, node: any, frame: any) {
    if (!(node.arr instanceof PyWrap)) node.arr = new PyWrap(node.arr.lineno, node.arr.colno, node.arr, 'iter');
    return origFor.call(this, node, frame);
  };
  // Errors coming back from an imported/included template: record where the importer was.
  Compiler._makeCallback = function (this: any, res?: string) {
    const err = this._tmpid();
    return `function(${err}${res ? ',' + res : ''}) {\nif(${err}) { cb(runtime.py.importedFrom(${err}, ${this._templateName()}, lineno)); return; }`;
  };
  for (const n of ['compileImport', 'compileFromImport', 'compileInclude'] as const) {
    const orig = Compiler[n];
    ORIGINALS[`compiler.${n}`] = String(orig);
    Compiler[n] = function (this: any, node: any, frame: any) {
      this._emitLine(`lineno = ${node.lineno}; colno = ${node.colno};`);
      return orig.call(this, node, frame);
    };
  }
}

// ---- lexer: `}}` inside `{% %}` closes two dicts, not the tag; a stray `#}` is text ----

export const TOKENIZER_PROTO: any = Object.getPrototypeOf(lexer.lex(''));

const SIMPLE_ESCAPES: Record<string, string> = { '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\n': '' };

function installLexerPatch(): void {
  ORIGINALS['lexer._parseString'] = String(TOKENIZER_PROTO._parseString);
  // Python's string literal escapes (Jinja's lexer decodes them as Python does): \xhh, \uXXXX,
  // octal, and an unknown escape such as '\d' keeps its backslash (regex patterns rely on it)
  TOKENIZER_PROTO._parseString = function _parseString(this: any, delimiter: string) {
    this.forward();
    let str = '';
    while (!this.isFinished() && this.current() !== delimiter) {
      const cur = this.current();
      if (cur !== '\\') {
        str += cur;
        this.forward();
        continue;
      }
      this.forward();
      const c = this.current();
      const rest: string = this.str.slice(this.index);
      let m: RegExpExecArray | null;
      if (Object.prototype.hasOwnProperty.call(SIMPLE_ESCAPES, c)) {
        str += SIMPLE_ESCAPES[c];
        this.forward();
      } else if (c === 'x' && (m = /^x([0-9a-fA-F]{2})/.exec(rest))) {
        str += String.fromCharCode(parseInt(m[1]!, 16));
        this.forwardN(3);
      } else if (c === 'u' && (m = /^u([0-9a-fA-F]{4})/.exec(rest))) {
        str += String.fromCharCode(parseInt(m[1]!, 16));
        this.forwardN(5);
      } else if (c === 'U' && (m = /^U([0-9a-fA-F]{8})/.exec(rest))) {
        str += String.fromCodePoint(parseInt(m[1]!, 16));
        this.forwardN(9);
      } else if ((m = /^([0-7]{1,3})/.exec(rest))) {
        str += String.fromCharCode(parseInt(m[1]!, 8));
        this.forwardN(m[1]!.length);
      } else {
        str += '\\' + c;
        this.forward();
      }
    }
    this.forward();
    return str;
  };
  const orig = TOKENIZER_PROTO.nextToken;
  ORIGINALS['lexer.nextToken'] = String(orig);
  TOKENIZER_PROTO.nextToken = function nextToken(this: any) {
    if (!this.in_code && this._matches('{%+')) {
      // `{%+`: Jinja's "keep leading whitespace" marker; tsalt never strips it (lstrip_blocks off)
      const tok = { type: lexer.TOKEN_BLOCK_START, value: '{%', lineno: this.lineno, colno: this.colno };
      this.forwardN(3);
      this.in_code = true;
      this.tsaltBraces = 0;
      return tok;
    }
    if (this.in_code) {
      // as Jinja's lexer balances braces: `}}` while a `{` is open closes it (dict literals)
      if ((this.tsaltBraces ?? 0) > 0 && this._matches('}}')) {
        const tok = { type: lexer.TOKEN_RIGHT_CURLY, value: '}', lineno: this.lineno, colno: this.colno };
        this.forward();
        this.tsaltBraces--;
        return tok;
      }
    } else if (!this.isFinished() && !this._matches('{%') && !this._matches('{{') && !this._matches('{#')) {
      // template text up to the next tag; Jinja prints a `#}` that closes no comment as text
      const lineno = this.lineno;
      const colno = this.colno;
      const rest: string = this.str.slice(this.index);
      const m = /\{[%{#]/.exec(rest);
      const n = m ? m.index : rest.length;
      this.forwardN(n);
      return { type: lexer.TOKEN_DATA, value: rest.slice(0, n), lineno, colno };
    }
    const tok = orig.call(this);
    if (!tok) return tok;
    if (tok.type === lexer.TOKEN_BLOCK_START || tok.type === lexer.TOKEN_VARIABLE_START) this.tsaltBraces = 0;
    else if (tok.type === lexer.TOKEN_LEFT_CURLY) this.tsaltBraces = (this.tsaltBraces ?? 0) + 1;
    else if (tok.type === lexer.TOKEN_RIGHT_CURLY) this.tsaltBraces = Math.max(0, (this.tsaltBraces ?? 0) - 1);
    return tok;
  };
}

// ---- statements: for (loop object, filter, recursive, break/continue), set, with ----

let PyFor: any;
let PySet: any;
let PyWith: any;
let PyJump: any;

/** Loop targets: `x` or `a, b`. */
function parseTargets(p: any): any[] {
  const targets = [];
  for (;;) {
    const t = p.nextToken();
    if (t.type !== lexer.TOKEN_SYMBOL) p.fail('expected a variable name', t.lineno, t.colno);
    targets.push(new nodes.Symbol(t.lineno, t.colno, t.value));
    if (!p.skip(lexer.TOKEN_COMMA)) break;
  }
  return targets;
}

/** An expression, or a tuple of them when commas follow (`{% set a, b = 1, 2 %}`). */
function parseTupleExpression(p: any, parse: () => any): any {
  const first = parse();
  if (p.peekToken().type !== lexer.TOKEN_COMMA) return first;
  const items = [first];
  while (p.skip(lexer.TOKEN_COMMA)) {
    const t = p.peekToken();
    if (t.type === lexer.TOKEN_BLOCK_END || (t.type === lexer.TOKEN_SYMBOL && t.value === 'if')) break;
    items.push(parse());
  }
  return new PyTuple(first.lineno, first.colno, items);
}

/** Bind compiled value `src` to targets in the current frame (compile time and run time). */
function bindTargets(c: any, frame: any, targets: any[], src: string, topLevelExport: boolean): void {
  const ids: [string, string][] = [];
  if (targets.length === 1) {
    ids.push([targets[0].value, src]);
  } else {
    const u = c._tmpid();
    c._emitLine(`var ${u} = runtime.py.unpack(${src}, ${targets.length});`);
    targets.forEach((t: any, i: number) => ids.push([t.value, `${u}[${i}]`]));
  }
  for (const [name, expr] of ids) {
    // a name already set at this level (the other branch of an if) keeps its variable; a name of
    // an outer level gets a new one here (Jinja: a set inside a loop does not leak out of it)
    const existing = Object.prototype.hasOwnProperty.call(frame.variables, name) ? frame.variables[name] : undefined;
    const id = existing ?? c._tmpid();
    c._emitLine(existing ? `${id} = ${expr};` : `var ${id} = ${expr};`);
    c._emitLine(`frame.set(${JSON.stringify(name)}, ${id});`);
    frame.set(name, id);
    if (topLevelExport) {
      c._emitLine(`if(frame.topLevel) { context.setVariable(${JSON.stringify(name)}, ${id}); }`);
      if (!name.startsWith('_')) c._emitLine(`if(frame.topLevel) { context.addExport(${JSON.stringify(name)}, ${id}); }`);
    }
  }
}

export function installStatementPatches(): void {
  PyFor = nodes.Node.extend('PyFor', { fields: ['targets', 'arr', 'cond', 'body', 'else_', 'recursive'] });
  PySet = nodes.Node.extend('PySet', { fields: ['targets', 'value', 'body'] });
  PyWith = nodes.Node.extend('PyWith', { fields: ['targets', 'values', 'body'] });
  PyJump = nodes.Node.extend('PyJump', { fields: ['kind'] });
  for (const n of ['parseFor', 'parseSet', 'parseStatement', 'parseInlineIf']) ORIGINALS[`parser.${n}`] = String(Parser[n]);

  Parser.parseInlineIf = function (this: any) {
    const node = this.parseOr();
    if (this.skipSymbol('if')) {
      const cond = this.parseOr();
      const out = new nodes.InlineIf(node.lineno, node.colno);
      out.body = node;
      out.cond = cond;
      out.else_ = this.skipSymbol('else') ? this.parseInlineIf() : null;
      return out;
    }
    return node;
  };

  Parser.parseFor = function (this: any) {
    const tok = this.peekToken();
    if (!this.skipSymbol('for')) this.fail('parseFor: expected for', tok.lineno, tok.colno);
    const targets = parseTargets(this);
    if (!this.skipSymbol('in')) this.fail('parseFor: expected "in" keyword for loop', tok.lineno, tok.colno);
    const arr = parseTupleExpression(this, () => this.parseOr());
    const cond = this.skipSymbol('if') ? this.parseExpression() : null;
    const recursive = this.skipSymbol('recursive');
    this.advanceAfterBlockEnd('for');
    const body = this.parseUntilBlocks('endfor', 'else');
    let else_ = null;
    if (this.skipSymbol('else')) {
      this.advanceAfterBlockEnd('else');
      else_ = this.parseUntilBlocks('endfor');
    }
    this.advanceAfterBlockEnd();
    return new PyFor(tok.lineno, tok.colno, targets, arr, cond, body, else_, recursive);
  };

  Parser.parseSet = function (this: any) {
    const tok = this.peekToken();
    if (!this.skipSymbol('set')) this.fail('parseSet: expected set', tok.lineno, tok.colno);
    const targets: any[] = [];
    for (;;) {
      let t = this.parsePrimary(true);
      // `ns.attr` (namespace attribute)
      while (this.skipValue(lexer.TOKEN_OPERATOR, '.')) {
        const a = this.nextToken();
        t = new nodes.LookupVal(a.lineno, a.colno, t, new nodes.Literal(a.lineno, a.colno, a.value));
        t.isAttr = true;
      }
      targets.push(t);
      if (!this.skip(lexer.TOKEN_COMMA)) break;
    }
    if (this.skipValue(lexer.TOKEN_OPERATOR, '=')) {
      const value = parseTupleExpression(this, () => this.parseExpression());
      this.advanceAfterBlockEnd('set');
      return new PySet(tok.lineno, tok.colno, targets, value, null);
    }
    // block set, optionally filtered: {% set x | upper %}...{% endset %}
    const hole = new nodes.Symbol(tok.lineno, tok.colno, '__tsalt_block__');
    const filtered = this.peekToken().type === lexer.TOKEN_PIPE ? this.parseFilter(hole) : hole;
    this.advanceAfterBlockEnd('set');
    const capture = new nodes.Capture(tok.lineno, tok.colno, this.parseUntilBlocks('endset'));
    this.advanceAfterBlockEnd();
    let body = capture;
    if (filtered !== hole) {
      let f = filtered;
      while (f.args.children[0] !== hole) f = f.args.children[0];
      f.args.children[0] = capture;
      body = filtered;
    }
    return new PySet(tok.lineno, tok.colno, targets, null, body);
  };

  const origStatement = Parser.parseStatement;
  Parser.parseStatement = function (this: any) {
    const tok = this.peekToken();
    if (tok.type === lexer.TOKEN_SYMBOL && (tok.value === 'break' || tok.value === 'continue')) {
      this.nextToken();
      this.advanceAfterBlockEnd(tok.value);
      return new PyJump(tok.lineno, tok.colno, tok.value);
    }
    if (tok.type === lexer.TOKEN_SYMBOL && tok.value === 'with') {
      this.nextToken();
      const targets: any[] = [];
      const values: any[] = [];
      while (this.peekToken().type !== lexer.TOKEN_BLOCK_END) {
        if (targets.length && !this.skip(lexer.TOKEN_COMMA)) this.fail('with: expected comma', tok.lineno, tok.colno);
        const t = this.nextToken();
        targets.push(new nodes.Symbol(t.lineno, t.colno, t.value));
        if (!this.skipValue(lexer.TOKEN_OPERATOR, '=')) this.fail('with: expected =', t.lineno, t.colno);
        values.push(this.parseExpression());
      }
      this.advanceAfterBlockEnd('with');
      const body = this.parseUntilBlocks('endwith');
      this.advanceAfterBlockEnd();
      return new PyWith(tok.lineno, tok.colno, targets, values, body);
    }
    return origStatement.call(this);
  };

  Compiler.compilePyJump = function (this: any, node: any) {
    this._emitLine(`throw runtime.py.${node.kind === 'break' ? 'BREAK' : 'CONTINUE'};`);
  };

  Compiler.compilePyWith = function (this: any, node: any, frame: any) {
    const vals = node.values.map((v: any) => {
      const id = this._tmpid();
      this._emit(`var ${id} = `);
      this._compileExpression(v, frame);
      this._emitLine(';');
      return id;
    });
    this._emitLine('frame = frame.push();');
    const inner = frame.push();
    node.targets.forEach((t: any, i: number) => bindTargets(this, inner, [t], vals[i], false));
    this._withScopedSyntax(() => this.compile(node.body, inner));
    this._emitLine('frame = frame.pop();');
  };

  Compiler.compilePySet = function (this: any, node: any, frame: any) {
    const val = this._tmpid();
    if (node.value) {
      this._emit(`var ${val} = `);
      this._compileExpression(node.value, frame);
      this._emitLine(';');
    } else {
      this._emit(`var ${val} = `);
      if (node.body.typename === 'Capture') this.compile(node.body, frame);
      else this._compileExpression(node.body, frame);
      this._emitLine(';');
    }
    if (node.targets.length === 1 && node.targets[0].typename === 'LookupVal') {
      const t = node.targets[0];
      this._emit('runtime.py.nsSet(');
      emitStrict(this, t.target, frame);
      this._emitLine(`, ${JSON.stringify(t.val.value)}, ${val});`);
      return;
    }
    for (const t of node.targets) if (t.typename !== 'Symbol') this.fail('set: can only assign to names and namespace attributes', t.lineno, t.colno);
    bindTargets(this, frame, node.targets, val, true);
  };

  Compiler.compilePyFor = function (this: any, node: any, frame: any) {
    const fn = this._tmpid();
    const items = this._tmpid();
    const depth = this._tmpid();
    const loop = this._tmpid();
    const i = this._tmpid();
    const buf = this._tmpid();
    const outer = this.buffer;
    this._emitLine(`var ${fn} = function(${items}, ${depth}) {`);
    this._emitLine(`var ${buf} = "";`);
    this._emitLine('frame = frame.push();');
    const inner = frame.push();
    if (node.cond) {
      const it = this._tmpid();
      this._emitLine(`${items} = ${items}.filter(function(${it}) {`);
      bindTargets(this, inner, node.targets, it, false);
      this._emit('return runtime.py.truthy(');
      emitStrict(this, node.cond, inner);
      this._emitLine(');');
      this._emitLine('});');
    }
    this._emitLine(`var ${loop} = runtime.py.loop(${items}, ${depth}, ${node.recursive ? fn : 'null'});`);
    this._emitLine(`for (var ${i} = 0; ${i} < ${items}.length; ${i}++) {`);
    bindTargets(this, inner, node.targets, `${items}[${i}]`, false);
    const loopId = this._tmpid();
    this._emitLine(`var ${loopId} = ${loop}.at(${i});`);
    this._emitLine(`frame.set("loop", ${loopId});`);
    inner.set('loop', loopId);
    this._emitLine('try {');
    this.buffer = buf;
    this._withScopedSyntax(() => this.compile(node.body, inner));
    this._emitLine('} catch (e) {');
    this._emitLine(`if (e === runtime.py.BREAK) break; if (e === runtime.py.CONTINUE) continue; throw e;`);
    this._emitLine('}');
    this._emitLine('}');
    if (node.else_) {
      this._emitLine(`if (${items}.length === 0) {`);
      this._withScopedSyntax(() => this.compile(node.else_, frame.push()));
      this._emitLine('}');
    }
    this.buffer = outer;
    this._emitLine('frame = frame.pop();');
    this._emitLine(`return ${buf};`);
    this._emitLine('};');
    this._emit(`${outer} += ${fn}(runtime.py.iterable(`);
    emitStrict(this, node.arr, frame);
    this._emitLine('), 1);');
  };
}
