/**
 * tsalt replaces methods of Nunjucks' runtime, lexer, parser and compiler
 * (engine/render/nunjucks-patch.ts): Nunjucks has no public hooks for expressions. This test
 * pins what those patches were written against: the exact Nunjucks version, the source of every
 * function they replace or wrap, and of the internals they call. An upgrade that changes any of
 * them fails here, naming the function to re-read before updating the fingerprint.
 */
import { describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import fs from 'node:fs';
import nunjucks from 'nunjucks';
import { JinjaRenderer } from '../../engine/render/jinja.js';
import { ORIGINALS, NUNJUCKS_VERSION } from '../../engine/render/nunjucks-patch.js';
import { LocalTree } from '../../engine/tree/local.js';
import { tempDir } from '../helpers/harness.js';

const fingerprint = (f: unknown) => crypto.createHash('sha256').update(String(f)).digest('hex').slice(0, 16);

/** The functions the patches replace or wrap, as Nunjucks NUNJUCKS_VERSION ships them. */
const REPLACED: Record<string, string> = {
  'compiler.compileKeywordArgs': 'c59c51847d7443a2',
  'compiler.compileMacro': 'd5b968fceafdd470',
  'Template._compile': '374bc355315cb6f2',
  'Template.render': '046b1fce49ec30a2',
  'Template.getExported': 'e9783d68a16e0c02',
  'compiler._makeCallback': 'a116429f6fcb9e88',
  'compiler.compileAdd': 'f8edcaa172c91968',
  'compiler.compileAnd': '93551819fcc3f5de',
  'compiler.compileCompare': '9c17fd9127e0427a',
  'compiler.compileConcat': '9ff248c0fd0f9d60',
  'compiler.compileDiv': '4847a7a7d71e0fe3',
  'compiler.compileFilter': 'ad98c17dea90e0b6',
  'compiler.compileFloorDiv': 'ba01f0e8f0becce5',
  'compiler.compileFor': '23c7b6d6fc131c26',
  'compiler.compileFromImport': '83f2b72ea8d735a7',
  'compiler.compileFunCall': 'b8437408fdcc3773',
  'compiler.compileIf': 'fcc158aee9636a5b',
  'compiler.compileImport': 'd27445cf06d11a8b',
  'compiler.compileIn': 'd6cad204f172dd6f',
  'compiler.compileInclude': '26be492b3e1521b2',
  'compiler.compileInlineIf': '80b9e5c3bd9a775b',
  'compiler.compileIs': 'c06c260b5220e727',
  'compiler.compileLiteral': '307837d13636105f',
  'compiler.compileLookupVal': 'd5407ca4db84ea27',
  'compiler.compileMod': '4c9ed3e0daff9651',
  'compiler.compileMul': 'a8603d254a0e548f',
  'compiler.compileNeg': 'a6d411bd64eeb734',
  'compiler.compileNot': '12387431cdeafefe',
  'compiler.compileOr': '353888f81913c14c',
  'compiler.compileOutput': '592d3176a6a061f4',
  'compiler.compilePos': 'bda3491227fbe16c',
  'compiler.compilePow': 'fa7e171831749d30',
  'compiler.compileSub': '7592b4f332a69d2e',
  'lexer._parseString': '3cb3bdad2128ea24',
  'lexer.nextToken': '013078cc34b5874a',
  'lib._prettifyError': '01a9456e1ab08073',
  'parser.parseAggregate': '58fdea7e786afc53',
  'parser.parseFor': '2d224998d30b6281',
  'parser.parseInlineIf': '97caaf2df3f7ed44',
  'parser.parseIs': '314dcecca73c18fe',
  'parser.parsePostfix': '90f220ec8ed7a4e0',
  'parser.parsePrimary': '7fb314c6804ba791',
  'parser.parseSet': '3804e0f5b5203926',
  'parser.parseSignature': 'd2c7dd3a96b21cb6',
  'parser.parseStatement': '2bd2ebbee4b7c545',
  'runtime.callWrap': '2d0e41bd0b207a5c',
  'runtime.contextOrFrameLookup': '477ca5ff60e3b12d',
  'runtime.ensureDefined': 'b43751f836638069',
  'runtime.handleError': 'a76329965ee7d79c',
  'runtime.makeMacro': 'eb6d1e46eb41db85',
  'runtime.memberLookup': 'a166232d0d35d710',
  'runtime.suppressValue': '74e32c58f1893087',
};

/** Nunjucks internals the patches call without replacing them. */
const RELIED: Record<string, string> = {
  'Frame.set': '90d04f86f75cb630',
  'Frame.lookup': 'c71b6ad1da1996af',
  'Frame.push': 'ce7822a692f5f7ba',
  'Frame.pop': '9b914fce9ebf4446',
  'compiler._compileAggregate': 'a43642c59c22ec45',
  'compiler._withScopedSyntax': '9c5e7a00d4ce6be7',
  'compiler._compileExpression': 'a85b1fb486342d30',
  'compiler.compileCapture': '34689ecb963693db',
  'parser.parseFilter': 'a94ae89c99d516f1',
  'parser.advanceAfterBlockEnd': 'a8fac69968d0ce9c',
  'parser.parseUntilBlocks': 'edae1ce0fbe8e4e2',
};

describe('Nunjucks patches', () => {
  it('Nunjucks is pinned to the exact version the patches were written for', () => {
    const pkg = JSON.parse(fs.readFileSync('package.json', 'utf8')) as { dependencies: Record<string, string> };
    const installed = JSON.parse(fs.readFileSync('node_modules/nunjucks/package.json', 'utf8')) as { version: string };
    expect(pkg.dependencies.nunjucks).toBe(NUNJUCKS_VERSION);
    expect(installed.version).toBe(NUNJUCKS_VERSION);
  });

  it('every replaced or wrapped function is the one the patches were written against', () => {
    const dir = tempDir('tsalt-np-');
    new JinjaRenderer(new LocalTree(dir)); // installs the patches, recording the originals
    fs.rmSync(dir, { recursive: true, force: true });
    const now: Record<string, string> = {};
    for (const [k, v] of Object.entries(ORIGINALS)) now[k] = fingerprint(v);
    expect(now).toEqual(REPLACED);
  });

  it('the internals the patches call are unchanged', () => {
    const N = nunjucks as any;
    const relied: Record<string, unknown> = {
      'Frame.set': N.runtime.Frame.prototype.set,
      'Frame.lookup': N.runtime.Frame.prototype.lookup,
      'Frame.push': N.runtime.Frame.prototype.push,
      'Frame.pop': N.runtime.Frame.prototype.pop,
      'compiler._compileAggregate': N.compiler.Compiler.prototype._compileAggregate,
      'compiler._withScopedSyntax': N.compiler.Compiler.prototype._withScopedSyntax,
      'compiler._compileExpression': N.compiler.Compiler.prototype._compileExpression,
      'compiler.compileCapture': N.compiler.Compiler.prototype.compileCapture,
      'parser.parseFilter': N.parser.Parser.prototype.parseFilter,
      'parser.advanceAfterBlockEnd': N.parser.Parser.prototype.advanceAfterBlockEnd,
      'parser.parseUntilBlocks': N.parser.Parser.prototype.parseUntilBlocks,
    };
    const now: Record<string, string> = {};
    for (const [k, v] of Object.entries(relied)) now[k] = fingerprint(v);
    expect(now).toEqual(RELIED);
  });
});
